"""The load generator: one asyncio process, aiohttp, timestamps only on the hot path.

Per request the hot path does: take ``perf_counter_ns`` before the POST, after the
response headers, and after each body read (appending the time and the cumulative byte
offset into ``array('q')`` buffers and the bytes into a ``bytearray``). Reads use
``iter_any`` (whatever arrived) with a 1 MiB read buffer, so long SSE lines never hit
aiohttp's 64 KiB line-buffer limit. JSON is never parsed during the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import time
from array import array
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import numpy as np

from nimble_oke.bench.config import BenchConfig
from nimble_oke.bench.prompts import make_prompts
from nimble_oke.bench.records import Chunks, ErrorKind, RequestStore
from nimble_oke.bench.result import BenchResult, RunHealth
from nimble_oke.bench.schedule import schedule_length, send_offsets_ns
from nimble_oke.bench.server_metrics import ServerSnapshot, scrape, server_summary
from nimble_oke.errors import EndpointError

perf_ns = time.perf_counter_ns
READ_BUFSIZE = 1 << 20  # 1 MiB: far above aiohttp's 64 KiB default (bench.md pitfall)
LOOP_TICK_S = 0.005  # event-loop lag ticker period
PROMPT_POOL = 4096  # duration-bounded runs cycle through this many distinct prompts
SCRAPE_PERIOD_S = 1.0


def base_url(endpoint: str) -> str:
    """``http://host:port`` (a trailing ``/v1`` or ``/`` is accepted and removed)."""
    url = endpoint.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def _headers(config: BenchConfig) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    if config.api_key:
        headers["Authorization"] = f"Bearer {config.api_key}"
    return headers


async def discover_model(session: aiohttp.ClientSession, base: str) -> str:
    """The first model id listed by ``GET /v1/models``."""
    try:
        async with session.get(f"{base}/v1/models") as resp:
            if resp.status != 200:
                raise EndpointError(f"GET {base}/v1/models answered HTTP {resp.status}")
            data = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise EndpointError(f"cannot reach {base}/v1/models: {type(exc).__name__}") from None
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
    nvext: dict[str, Any] = {}
    if config.ignore_eos:
        nvext = {"nvext": {"ignore_eos": True, "min_tokens": config.output_tokens}}
    shapes: list[tuple[str, dict[str, Any]]] = []
    for extra in ({**usage, **nvext}, usage, {}):
        for param in params:
            if (param, extra) not in shapes:
                shapes.append((param, extra))
    return shapes


async def negotiate(
    session: aiohttp.ClientSession, config: BenchConfig, url: str, model: str
) -> tuple[str, dict[str, Any]]:
    """Find a request shape the server accepts (``max_completion_tokens`` → ``max_tokens``
    fallback on HTTP 400, then without nvext, then without ``stream_options``)."""
    last = ""
    for param, extras in _candidate_shapes(config):
        probe = dict(extras)
        if "nvext" in probe:  # a one-token probe: min_tokens must not exceed max tokens
            probe["nvext"] = {**probe["nvext"], "min_tokens": 1}
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
            raise EndpointError(f"cannot reach {url}: {type(exc).__name__}") from None
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


class Runner:
    """Sends the requests of one phase (warm-up or measured) and records them."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        config: BenchConfig,
        url: str,
        payloads: list[bytes],
        capacity: int,
    ) -> None:
        self.session = session
        self.config = config
        self.url = url
        self.payloads = payloads
        self.headers = _headers(config)
        self.store = RequestStore(capacity)
        self.in_flight_waits = 0

    async def one(self, index: int, intended_ns: int) -> None:
        """The hot path: one streamed request, timestamps and raw bytes only."""
        store = self.store
        body = self.payloads[index % len(self.payloads)]
        times: array[int] = array("q")
        ends: array[int] = array("q")
        buf = bytearray()
        store.intended_ns[index] = intended_ns
        store.send_ns[index] = perf_ns()
        try:
            async with self.session.post(self.url, data=body, headers=self.headers) as resp:
                store.headers_ns[index] = perf_ns()
                store.status[index] = resp.status
                async for data in resp.content.iter_any():
                    times.append(perf_ns())
                    buf += data
                    ends.append(len(buf))
            if resp.status >= 400:
                kind = ErrorKind.HTTP_5XX if resp.status >= 500 else ErrorKind.HTTP_4XX
                store.fail(index, kind, f"HTTP {resp.status}: {bytes(buf[:200])!r}")
        except TimeoutError:
            store.fail(index, ErrorKind.TIMEOUT, f"no complete answer in {self.config.timeout_s}s")
        except aiohttp.ClientConnectorError as exc:
            refused = exc.os_error.errno == errno.ECONNREFUSED
            kind = ErrorKind.CONNECTION_REFUSED if refused else ErrorKind.CONNECTION_ERROR
            store.fail(index, kind, type(exc).__name__)
        except aiohttp.ClientError as exc:
            store.fail(index, ErrorKind.CONNECTION_ERROR, f"{type(exc).__name__}: {exc}")
        store.end_ns[index] = perf_ns()
        store.chunks[index] = Chunks(times, ends, bytes(buf))

    async def closed_loop(self, count: int | None, deadline_ns: int | None) -> None:
        """``concurrency`` workers, each sending its next request when the previous ends."""
        next_index = 0

        async def worker() -> None:
            nonlocal next_index
            while True:
                now = perf_ns()
                if (count is not None and next_index >= count) or (
                    deadline_ns is not None and now >= deadline_ns
                ):
                    return
                index = next_index
                next_index += 1
                self.store.reserve(index)
                await self.one(index, now)

        await asyncio.gather(*(worker() for _ in range(self.config.concurrency)))

    async def open_loop(self, offsets_ns: np.ndarray[Any, Any], deadline_ns: int | None) -> None:
        """Send at the precomputed intended times, whatever is still in flight."""
        limit = asyncio.Semaphore(self.config.max_in_flight)
        tasks: set[asyncio.Task[None]] = set()
        start = perf_ns()

        async def guarded(index: int, intended: int) -> None:
            try:
                await self.one(index, intended)
            finally:
                limit.release()

        for index, offset in enumerate(offsets_ns.tolist()):
            intended = start + offset
            if deadline_ns is not None and intended >= deadline_ns:
                break
            delay = intended - perf_ns()
            if delay > 0:
                await asyncio.sleep(delay / 1e9)
            if limit.locked():
                self.in_flight_waits += 1
            await limit.acquire()
            self.store.reserve(index)
            task = asyncio.get_running_loop().create_task(guarded(index, intended))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        while tasks:
            await asyncio.gather(*list(tasks))


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


async def run_async(
    config: BenchConfig, session: aiohttp.ClientSession | None = None
) -> BenchResult:
    """Run one benchmark (warm-up, then the measured phase) and return its raw result."""
    if session is None:
        async with new_session(config) as own:
            return await run_async(config, own)
    base = base_url(config.endpoint)
    url = f"{base}/v1/chat/completions" if config.api == "chat" else f"{base}/v1/completions"
    model = config.model or await discover_model(session, base)
    param, extras = await negotiate(session, config, url, model)

    if config.rate is None:
        n_sched = config.requests if config.requests is not None else PROMPT_POOL
        offsets = None
    else:
        n_sched = schedule_length(config.rate, config.requests, config.duration_s)
        offsets = send_offsets_ns(
            config.arrival,
            config.rate,
            n_sched,
            config.seed + config.worker_index,
            config.gamma_shape,
        )
    payloads = _payloads(config, model, param, extras, min(n_sched, PROMPT_POOL))

    if config.warmup:
        warm = Runner(session, config, url, payloads, config.warmup)
        await warm.closed_loop(config.warmup, None)

    before = await scrape(session, base) if config.scrape_metrics else None
    during: list[ServerSnapshot] = []
    scraper = (
        asyncio.get_running_loop().create_task(_scrape_periodically(session, base, during))
        if before is not None
        else None
    )
    runner = Runner(session, config, url, payloads, n_sched)
    monitor = LoopMonitor()
    monitor.start()
    cpu0 = time.process_time()
    start = perf_ns()
    wall_offset = time.time_ns() - start
    deadline = None if config.duration_s is None else start + int(config.duration_s * 1e9)
    try:
        if offsets is None:
            await runner.closed_loop(config.requests, deadline)
        else:
            await runner.open_loop(offsets, deadline)
    finally:
        stop = perf_ns()
        cpu = time.process_time() - cpu0
        lags = await monitor.stop()
        if scraper is not None:
            scraper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await scraper
    after = await scrape(session, base) if before is not None else None
    return BenchResult(
        config=config,
        model=model,
        token_param=param,
        request_extras=extras,
        store=runner.store.trimmed(),
        start_ns=start,
        stop_ns=stop,
        wall_offset_ns=wall_offset,
        health=RunHealth(
            wall_s=(stop - start) / 1e9,
            cpu_s=cpu,
            loop_lag_ns=lags,
            in_flight_waits=runner.in_flight_waits,
        ),
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
