"""The load generator: one asyncio process, timestamps only on the hot path.

Set-up (model discovery, the request-shape probe, ``/v1/metrics``) uses aiohttp; the
measured requests go through :mod:`nimble_oke.bench.http1`, a lean HTTP/1.1 client whose
hot path takes ``perf_counter_ns`` when the request is written and at every socket read,
and keeps the raw bytes. JSON is never parsed during the run. Around the measured phase:

- the connection pool is opened first (``warm_connections``, on by default: no wave of
  simultaneous connects at the start of a high-concurrency run, and the connect time is
  never inside a TTFT);
- the garbage collector is quiet (:mod:`nimble_oke.bench.quiet_gc`);
- a 5 ms ticker measures event-loop lag, and a housekeeping task collects the young
  generations and reports progress (a separate task, so the ticker sees its pauses).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import numpy as np

from nimble_oke.bench.config import BenchConfig
from nimble_oke.bench.http1 import Load, Origin, describe_os_error, request_bytes
from nimble_oke.bench.prompts import make_prompts
from nimble_oke.bench.quiet_gc import QuietGC
from nimble_oke.bench.records import RequestStore
from nimble_oke.bench.result import BenchResult, RunHealth
from nimble_oke.bench.schedule import schedule_length, send_offsets_ns
from nimble_oke.bench.server_metrics import ServerSnapshot, scrape, server_summary
from nimble_oke.errors import EndpointError

perf_ns = time.perf_counter_ns
READ_BUFSIZE = 1 << 20  # 1 MiB: far above aiohttp's 64 KiB default (bench.md pitfall)
LOOP_TICK_S = 0.005  # event-loop lag ticker period
HOUSEKEEPING_S = 0.25  # young-generation GC step and progress report period
PROMPT_POOL = 4096  # duration-bounded runs cycle through this many distinct prompts
SCRAPE_PERIOD_S = 1.0
OPEN_LOOP_WARM_S = 0.1  # open loop: warm rate x 0.1 s connections (Little's law at 100 ms)
MIN_OPEN_LOOP_CONNECTIONS = 16
MAX_BURST = 32  # open loop: overdue sends in a row before the loop is given back


def base_url(endpoint: str) -> str:
    """``http://host:port`` (a trailing ``/v1`` or ``/`` is accepted and removed)."""
    url = endpoint.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def _headers(config: BenchConfig) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    if config.api_key:
        headers["Authorization"] = f"Bearer {config.api_key}"
    return headers


def unreachable(exc: BaseException, url: str) -> str:
    """What went wrong reaching ``url``, in the user's words (no library class names)."""
    where = Origin.from_url(url).where
    if isinstance(exc, aiohttp.ClientConnectorError):
        text = describe_os_error(exc.os_error, where)[1]
        hint = " — is the endpoint running?" if "refused" in text else ""
        return text + hint
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return f"{where} closed the connection without answering"
    if isinstance(exc, TimeoutError):
        return f"no answer from {where} in time"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return f"the answer from {where} was cut short"
    if isinstance(exc, aiohttp.InvalidURL):
        return "not a valid URL"
    return f"request failed ({str(exc) or 'no detail'})"


async def discover_model(session: aiohttp.ClientSession, base: str) -> str:
    """The first model id listed by ``GET /v1/models``."""
    try:
        async with session.get(f"{base}/v1/models") as resp:
            if resp.status != 200:
                raise EndpointError(f"GET {base}/v1/models answered HTTP {resp.status}")
            data = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise EndpointError(f"cannot reach {base}/v1/models: {unreachable(exc, base)}") from None
    models = data.get("data") if isinstance(data, dict) else None
    if not models or not isinstance(models[0], dict) or "id" not in models[0]:
        raise EndpointError(f"{base}/v1/models lists no model; pass --model")
    return str(models[0]["id"])


def build_payload(
    config: BenchConfig, model: str, prompt: str, token_param: str, extras: dict[str, Any]
) -> bytes:
    """The JSON body of one streamed request."""
    body: dict[str, Any] = {"model": model, "stream": True, token_param: config.output_tokens}
    if config.api == "chat":
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    body.update(extras)
    return json.dumps(body).encode()


def _candidate_shapes(config: BenchConfig) -> list[tuple[str, dict[str, Any]]]:
    """Request shapes to try, most informative first; the first one answered 2xx is used."""
    params = (
        ["max_completion_tokens", "max_tokens"]
        if config.token_param == "auto"  # noqa: S105 - not a secret
        else [config.token_param]
    )
    usage: dict[str, Any] = {"stream_options": {"include_usage": True}}
    forced: list[dict[str, Any]] = []
    if config.ignore_eos:
        # vLLM's sampling parameters (NIM 2.x: `nvext` is gone and silently ignored), then
        # NIM 1.x's `nvext` for a server that refuses the top-level ones
        length = {"ignore_eos": True, "min_tokens": config.output_tokens}
        forced = [{**usage, **length}, {**usage, "nvext": length}]
    shapes: list[tuple[str, dict[str, Any]]] = []
    for extra in (*forced, usage, {}):
        for param in params:
            if (param, extra) not in shapes:
                shapes.append((param, extra))
    return shapes


async def negotiate(
    session: aiohttp.ClientSession, config: BenchConfig, url: str, model: str
) -> tuple[str, dict[str, Any]]:
    """Find a request shape the server accepts (``max_completion_tokens`` → ``max_tokens``
    fallback on HTTP 400, then NIM 1.x's nvext instead of vLLM's top-level ignore_eos and
    min_tokens, then neither, then without ``stream_options``)."""
    last = ""
    for param, extras in _candidate_shapes(config):
        probe = dict(extras)
        # a one-token probe: min_tokens must not exceed max tokens
        if "nvext" in probe:
            probe["nvext"] = {**probe["nvext"], "min_tokens": 1}
        if "min_tokens" in probe:
            probe["min_tokens"] = 1
        body = build_payload(config.replace(output_tokens=1), model, "ping", param, probe)
        try:
            async with session.post(url, data=body, headers=_headers(config)) as resp:
                text = await resp.read()
                if resp.status < 300:
                    return param, extras
                last = f"HTTP {resp.status}: {text[:200].decode('utf-8', 'replace')}"
                if resp.status not in {400, 422}:
                    break
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise EndpointError(f"cannot reach {url}: {unreachable(exc, url)}") from None
    raise EndpointError(f"the server rejected every request shape tried ({last})")


class LoopMonitor:
    """A ticker task measuring how late the event loop wakes up (lag adds to every timestamp)."""

    def __init__(self) -> None:
        self.lags: list[int] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        period_ns = int(LOOP_TICK_S * 1e9)
        while True:
            expected = perf_ns() + period_ns
            await asyncio.sleep(LOOP_TICK_S)
            self.lags.append(max(0, perf_ns() - expected))

    async def stop(self) -> np.ndarray[tuple[int], np.dtype[np.int64]]:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return np.asarray(self.lags, dtype=np.int64)


@dataclass(frozen=True)
class Progress:
    """What a progress display shows, sampled every :data:`HOUSEKEEPING_S`."""

    phase: str  # "warm-up" or "measured"
    elapsed_s: float
    sent: int
    done: int
    failed: int
    in_flight: int
    planned: int | None  # requests planned (None: bounded by duration only)
    duration_s: float | None


Observer = Callable[[Progress], None]


async def _housekeeping(
    load: Load, gc: QuietGC | None, observer: Observer | None, phase: str, planned: Progress
) -> None:
    """Young-generation GC steps and progress reports, off the ticker."""
    t0 = perf_ns()
    while True:
        await asyncio.sleep(HOUSEKEEPING_S)
        if gc is not None:
            gc.step()
        if observer is not None:
            observer(
                Progress(
                    phase,
                    (perf_ns() - t0) / 1e9,
                    load.sent,
                    load.done,
                    load.failed,
                    load.in_flight,
                    planned.planned,
                    planned.duration_s,
                )
            )


async def _stop(task: asyncio.Task[Any] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def closed_loop(load: Load, concurrency: int, count: int | None, deadline_ns: int | None) -> None:
    """Start ``concurrency`` workers; each completion sends that worker's next request."""
    next_index = 0

    def next_one() -> None:
        nonlocal next_index
        if (count is not None and next_index >= count) or (
            deadline_ns is not None and perf_ns() >= deadline_ns
        ):
            return
        index = next_index
        next_index += 1
        load.send(index, perf_ns())

    load.on_complete = next_one
    for _ in range(concurrency):
        next_one()


async def open_loop(
    load: Load,
    offsets_ns: np.ndarray[Any, Any],
    start_ns: int,
    deadline_ns: int | None,
    max_in_flight: int,
) -> None:
    """Send at the precomputed intended times, whatever is still in flight.

    Behind schedule (the process was descheduled, the loop was busy), overdue requests go
    out at once — but the loop is given back every :data:`MAX_BURST` sends, so responses
    keep being read while the dispatcher catches up (a catch-up burst that never yields
    starves the reads, which puts it further behind: the collapse issue #20 saw)."""
    load.on_complete = None
    burst = 0
    for index, offset in enumerate(offsets_ns.tolist()):
        intended = start_ns + offset
        if deadline_ns is not None and intended >= deadline_ns:
            break
        delay = intended - perf_ns()
        if delay > 0:
            burst = 0
            await asyncio.sleep(delay / 1e9)
        elif burst >= MAX_BURST:
            burst = 0
            await asyncio.sleep(0)
        if load.in_flight >= max_in_flight:
            load.in_flight_waits += 1
            await load.below(max_in_flight)
        load.send(index, intended)
        burst += 1


def _payloads(
    config: BenchConfig, model: str, param: str, extras: dict[str, Any], n: int
) -> list[bytes]:
    prompts = make_prompts(
        n,
        mean=config.input_tokens_mean,
        sd=config.input_tokens_sd,
        low=config.input_tokens_min,
        high=config.input_tokens_max,
        seed=config.seed * 1000 + config.worker_index,
    )
    return [build_payload(config, model, p.text, param, extras) for p in prompts]


async def _scrape_periodically(
    session: aiohttp.ClientSession, base: str, out: list[ServerSnapshot]
) -> None:
    while True:
        await asyncio.sleep(SCRAPE_PERIOD_S)
        snap = await scrape(session, base)
        if snap is not None:
            out.append(snap)


@dataclass
class Plan:
    """What set-up decided: where, which model and request shape, how many, when."""

    url: str
    model: str
    token_param: str
    extras: dict[str, Any]
    requests: list[bytes]  # complete HTTP requests, cycled through
    count: int  # rows to preallocate
    offsets: np.ndarray[Any, Any] | None  # open loop: intended send offsets (ns)


async def prepare(config: BenchConfig, session: aiohttp.ClientSession) -> Plan:
    """Discover the model, negotiate the request shape, build every request up front."""
    base = base_url(config.endpoint)
    url = f"{base}/v1/chat/completions" if config.api == "chat" else f"{base}/v1/completions"
    model = config.model or await discover_model(session, base)
    param, extras = await negotiate(session, config, url, model)
    offsets = None
    if config.rate is None:
        count = config.requests if config.requests is not None else PROMPT_POOL
    else:
        count = schedule_length(config.rate, config.requests, config.duration_s)
        seed = config.seed + config.worker_index
        offsets = send_offsets_ns(config.arrival, config.rate, count, seed, config.gamma_shape)
    origin = Origin.from_url(url)
    close = config.connection_reuse == "never"
    bodies = _payloads(config, model, param, extras, min(count, PROMPT_POOL))
    requests = [request_bytes(origin, _headers(config), b, close=close) for b in bodies]
    return Plan(url, model, param, extras, requests, count, offsets)


def warm_count(config: BenchConfig) -> int:
    """Connections to open before the run: the concurrency (closed loop), or enough for
    ``rate × 0.1 s`` in flight (open loop); ``connections`` overrides both."""
    if not config.warm_connections or config.connection_reuse == "never":
        return 0
    if config.connections is not None:
        return config.connections
    if config.rate is None:
        return config.concurrency
    wanted = max(MIN_OPEN_LOOP_CONNECTIONS, math.ceil(config.rate * OPEN_LOOP_WARM_S))
    return min(config.max_in_flight, wanted)


def _forces_close(session: aiohttp.ClientSession) -> bool:
    """A session whose connector closes every connection asks for a new connection per
    request (e.g. to spread load over a Service's replicas): honoured on the hot path."""
    connector = session.connector
    return bool(connector is not None and connector.force_close)


async def _warm_up(config: BenchConfig, load: Load, plan: Plan, observer: Observer | None) -> None:
    """``config.warmup`` closed-loop requests on the same pool, excluded from every figure."""
    load.store = RequestStore(config.warmup)
    house = asyncio.get_running_loop().create_task(
        _housekeeping(load, None, observer, "warm-up", _planned(config.warmup, None))
    )
    try:
        closed_loop(load, config.concurrency, config.warmup, None)
        await load.drained()
    finally:
        await _stop(house)
    load.sent = load.done = load.failed = 0


def _planned(count: int | None, duration_s: float | None) -> Progress:
    return Progress("", 0.0, 0, 0, 0, 0, count, duration_s)


@dataclass
class Measured:
    store: RequestStore
    start_ns: int
    stop_ns: int
    wall_offset_ns: int
    health: RunHealth


async def measure(
    config: BenchConfig, load: Load, plan: Plan, observer: Observer | None
) -> Measured:
    """The measured phase, inside a quiet garbage collector, with the loop-lag ticker."""
    load.store = RequestStore(plan.count)
    opened_before = load.opened
    monitor = LoopMonitor()
    loop = asyncio.get_running_loop()
    with QuietGC() as quiet:
        monitor.start()
        planned = _planned(config.requests, config.duration_s)
        house = loop.create_task(_housekeeping(load, quiet, observer, "measured", planned))
        load.start_sweeper()
        cpu0 = time.process_time()
        start = perf_ns()
        wall_offset = time.time_ns() - start
        deadline = None if config.duration_s is None else start + int(config.duration_s * 1e9)
        try:
            if plan.offsets is None:
                closed_loop(load, config.concurrency, config.requests, deadline)
            else:
                await open_loop(load, plan.offsets, start, deadline, config.max_in_flight)
            await load.drained()
        finally:
            stop = perf_ns()
            cpu = time.process_time() - cpu0
            lags = await monitor.stop()
            await _stop(house)
    health = RunHealth(
        wall_s=(stop - start) / 1e9,
        cpu_s=cpu,
        loop_lag_ns=lags,
        in_flight_waits=load.in_flight_waits,
        gc=quiet.stats.as_dict(),
        connections={"opened_during_run": load.opened - opened_before},
    )
    return Measured(load.store.trimmed(), start, stop, wall_offset, health)


async def run_async(
    config: BenchConfig,
    session: aiohttp.ClientSession | None = None,
    *,
    observer: Observer | None = None,
) -> BenchResult:
    """Run one benchmark (connection warm-up, warm-up requests, then the measured phase)
    and return its raw result. ``observer`` receives :class:`Progress` snapshots."""
    if session is None:
        async with new_session(config) as own:
            return await run_async(config, own, observer=observer)
    plan = await prepare(config, session)
    fresh = config.connection_reuse == "never" or _forces_close(session)
    load = Load(
        Origin.from_url(plan.url),
        plan.requests,
        RequestStore(1),
        timeout_s=config.timeout_s,
        fresh_connections=fresh,
    )
    try:
        t0 = perf_ns()
        warmed, warm_error = await load.warm(0 if fresh else warm_count(config))
        warm_s = (perf_ns() - t0) / 1e9
        if config.warmup:
            await _warm_up(config, load, plan, observer)
        base = base_url(config.endpoint)
        before = await scrape(session, base) if config.scrape_metrics else None
        during: list[ServerSnapshot] = []
        scraper = None
        if before is not None:
            scraper = asyncio.get_running_loop().create_task(
                _scrape_periodically(session, base, during)
            )
        try:
            measured = await measure(config, load, plan, observer)
        finally:
            await _stop(scraper)
        after = await scrape(session, base) if before is not None else None
    finally:
        load.close()
    measured.health.connections.update(
        {"warmed": warmed, "warm_s": warm_s, "warm_error": warm_error, "reuse": not fresh}
    )
    measured.health.connections["stale_retries"] = load.stale_retries
    return BenchResult(
        config=config,
        model=plan.model,
        token_param=plan.token_param,
        request_extras=plan.extras,
        store=measured.store,
        start_ns=measured.start_ns,
        stop_ns=measured.stop_ns,
        wall_offset_ns=measured.wall_offset_ns,
        health=measured.health,
        server=server_summary(before, after, during),
    )


def new_session(config: BenchConfig) -> aiohttp.ClientSession:
    """A client session tuned for the hot path (no connection cap, big read buffer)."""
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
    timeout = aiohttp.ClientTimeout(total=config.timeout_s)
    return aiohttp.ClientSession(
        connector=connector, timeout=timeout, read_bufsize=READ_BUFSIZE, auto_decompress=False
    )


def run_sync(coro_factory: Callable[[], Awaitable[Any]]) -> Any:
    """Run a coroutine on a fresh event loop, with uvloop where available."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(_wrap(coro_factory))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_wrap(coro_factory))


async def _wrap(factory: Callable[[], Awaitable[Any]]) -> Any:
    return await factory()
