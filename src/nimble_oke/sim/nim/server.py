"""The NIM emulator: an aiohttp server with NIM's endpoints, cold start and batching model.

Ground truth for benchmark calibration: every finished generation leaves a
:class:`RequestRecord` (``emu.records``, and ``GET /v1/emulator/requests`` as JSON) with the
server's own ``perf_counter_ns`` timestamps of the request's arrival and of the moment its
first and last content tokens were written to the socket. Responses carry the id in the
``x-request-id`` header, so a client can match its own measurement to the server's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web

from nimble_oke.sim.clock import SimClock
from nimble_oke.sim.nim import management
from nimble_oke.sim.nim.coldstart import ColdStart, ColdStartError, format_log
from nimble_oke.sim.nim.engine import BatchScheduler, GenRequest, OverloadedError
from nimble_oke.sim.nim.metrics import NimMetrics
from nimble_oke.sim.nim.outputs import StreamChunks, full_response
from nimble_oke.sim.nim.protocol import (
    ApiError,
    ChunkEncoder,
    GenerationParams,
    parse_body,
    parse_generation,
    usage,
)
from nimble_oke.sim.nim.sampling import plan_choices
from nimble_oke.sim.nim.settings import NimSettings
from nimble_oke.sim.nim.text import TokenTable

PHASES = ("starting", "downloading", "loading", "ready", "failed")
_MAX_RECORDS = 100_000
_MAX_LOG_LINES = 10_000


@dataclass(frozen=True)
class RequestRecord:
    """Server-side timestamps of one generation (``time.perf_counter_ns`` of this process)."""

    request_id: str
    arrival_ns: int
    first_token_ns: int | None
    last_token_ns: int | None
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    stream: bool

    @property
    def ttft_ns(self) -> int | None:
        return None if self.first_token_ns is None else self.first_token_ns - self.arrival_ns


class NimEmulator:
    """One emulated NIM process. ``await start()``, then talk to it over HTTP; ``await stop()``."""

    serves_extras = True  # tokenizer, render, messages and responses endpoints (NIM 2.x)

    def __init__(
        self,
        settings: NimSettings,
        clock: SimClock | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or SimClock(scale=settings.time_scale)
        self._log_sink = log
        self.log_lines: deque[str] = deque(maxlen=_MAX_LOG_LINES)
        self.phase = "starting"
        self.phase_history: list[tuple[str, float]] = [("starting", self.clock.now())]
        self.failure: str | None = None
        self.metrics = NimMetrics(settings.served_model_name)
        self.scheduler = BatchScheduler(settings, self.metrics)
        self.tokens = TokenTable(settings.model_spec.vocab_size)
        self.records: deque[RequestRecord] = deque(maxlen=_MAX_RECORDS)
        self._record_index: dict[str, RequestRecord] = {}
        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._scheduler_task: asyncio.Task[None] | None = None
        self._ready_event = asyncio.Event()
        self._created = int(self.clock.wall())
        self._id_base = uuid.uuid4().hex[:16]
        self._id_counter = 0
        self._extras: Any = None

    @property
    def api_version(self) -> int:
        return self.settings.api_version

    def error(self, exc: ApiError) -> web.Response:
        """An error in the body shape of this NIM's API version."""
        return web.json_response(exc.body(self.api_version), status=exc.status)

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def required_memory_bytes(self) -> int:
        """Host memory the process needs (for OOMKilled decisions by a pod simulator)."""
        return self.settings.required_memory_bytes

    @property
    def max_model_len(self) -> int:
        return self.settings.effective_max_model_len

    def _routes(self, app: web.Application) -> None:
        from nimble_oke.sim.nim.extras import NimExtras

        get, post = app.router.add_get, app.router.add_post
        get("/v1/health/live", self._live)
        get("/v1/health/ready", self._ready)
        get("/v1/models", self._models)
        get("/v1/metrics", self._metrics)
        get("/v1/version", self._version)
        get("/v1/metadata", self._metadata)
        get("/v1/license", self._license)
        post("/v1/chat/completions", self._chat)
        post("/v1/completions", self._completions)
        if self.api_version >= 2 and self.serves_extras:
            self._extras = NimExtras(self)
            self._extras.add_routes(app)
        get("/v1/emulator/requests", self._records)
        get("/v1/emulator/state", self._state)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host:port`` (0 = any free port), start the cold start in the
        background, and return the bound port."""
        app = web.Application(client_max_size=16 * 1024 * 1024)
        self._routes(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1]) if sockets else port
        self._tasks.append(asyncio.create_task(self._cold_start(), name="nim-cold-start"))
        self._scheduler_task = asyncio.create_task(self.scheduler.run(), name="nim-scheduler")
        self._tasks.append(self._scheduler_task)
        return self.port

    async def stop(self) -> None:
        """Stop serving, cancel background work and close every socket."""
        self.scheduler.drain()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.settings.remove_cache_on_stop:
            shutil.rmtree(self.settings.cache_path, ignore_errors=True)

    async def wait_ready(self, timeout_s: float | None = None) -> str:
        """Wait (real seconds) until the phase is ``ready`` or ``failed``; return it."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready_event.wait(), timeout_s)
        return self.phase

    def _set_phase(self, phase: str) -> None:
        assert phase in PHASES
        if phase == self.phase:
            return
        self.phase = phase
        self.phase_history.append((phase, self.clock.now()))
        if phase in ("ready", "failed"):
            self._ready_event.set()

    def _log(self, level: str, source: str, message: str) -> None:
        line = format_log(self.clock, level, source, message)
        self.log_lines.append(line)
        if self._log_sink is not None:
            self._log_sink(line)

    async def _cold_start(self) -> None:
        try:
            await ColdStart(self.settings, self.clock, self._log, self._set_phase).run()
        except ColdStartError as exc:
            self.failure = str(exc)
            self._log("ERROR", "nimutils.py:97", str(exc))
            self._set_phase("failed")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 — a crash is a failed NIM, not a hung one
            self.failure = f"{type(exc).__name__}: {exc}"
            self._log("ERROR", "nimutils.py:99", self.failure)
            self._set_phase("failed")

    def stats(self) -> dict[str, Any]:
        """Counters and gauges for tests and the pod simulator."""
        return {
            "phase": self.phase,
            "requests_finished": len(self.records),
            "prompt_tokens_total": self.metrics.prompt_tokens_total,
            "generation_tokens_total": self.metrics.generation_tokens_total,
            "kv_capacity_tokens": self.settings.kv_capacity_tokens,
            "preemptions": self.scheduler.preemptions,
            **self.scheduler.gauges(),
        }

    # -- plain endpoints -------------------------------------------------------------------
    @property
    def serving(self) -> bool:
        """Ready and able to serve: the model loaded and the scheduler loop alive."""
        task = self._scheduler_task
        return self.phase == "ready" and (task is None or not task.done())

    async def _live(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "health.response", "message": "Service is live."})

    async def _ready(self, request: web.Request) -> web.Response:
        if self.serving:
            return web.json_response({"object": "health.response", "message": "Service is ready."})
        state = self.phase if self.phase != "ready" else "engine stopped"
        return web.json_response(
            {"object": "health.response", "message": f"Service is not ready ({state})."},
            status=503,
        )

    def not_ready(self) -> ApiError | None:
        if self.serving:
            return None
        return ApiError(503, f"Service is not ready ({self.phase})", "ServiceUnavailableError")

    def model_card(self) -> dict[str, Any]:
        return {
            "id": self.settings.served_model_name,
            "object": "model",
            "created": self._created,
            "owned_by": "system",
            "root": self.settings.model,
            "parent": None,
            "max_model_len": self.max_model_len,
        }

    async def _models(self, request: web.Request) -> web.Response:
        if err := self.not_ready():
            return self.error(err)
        return web.json_response({"object": "list", "data": [self.model_card()]})

    async def _metrics(self, request: web.Request) -> web.Response:
        text = self.metrics.render(self.scheduler.gauges)
        return web.Response(
            body=text.encode(),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response(management.version(self.settings))

    async def _metadata(self, request: web.Request) -> web.Response:
        return web.json_response(management.metadata(self.settings))

    async def _license(self, request: web.Request) -> web.Response:
        return web.json_response(management.license_info())

    async def _records(self, request: web.Request) -> web.Response:
        try:
            limit = max(1, int(request.query.get("limit", "1000")))
        except ValueError:
            return self.error(ApiError(400, "limit must be an integer", param="limit"))
        rows = list(self.records)[-limit:]
        return web.json_response({"requests": [asdict(r) | {"ttft_ns": r.ttft_ns} for r in rows]})

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"phase": self.phase, "failure": self.failure, "logs": list(self.log_lines)[-50:]}
        )

    # -- generation --------------------------------------------------------------------------
    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, "chat")

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, "completion")

    def next_id(self, kind: str) -> str:
        self._id_counter += 1
        prefix = {"chat": "chatcmpl-", "completion": "cmpl-"}.get(kind, f"{kind}_")
        return f"{prefix}{self._id_base}{self._id_counter:08x}"

    _next_id = next_id  # the upstream front's name for it

    def parse(self, body: dict[str, Any], kind: str) -> GenerationParams:
        """Validate a generation body and check the model (404 as vLLM words it)."""
        params = parse_generation(
            body,
            kind,
            reject_max_completion_tokens=self.settings.reject_max_completion_tokens,
            api_version=self.api_version,
            default_model=self.settings.served_model_name,
        )
        if params.model != self.settings.served_model_name:
            raise ApiError(
                404, f"The model `{params.model}` does not exist.", "NotFoundError", "model"
            )
        if params.ignored:
            fields = ", ".join(sorted(params.ignored))
            self._log(
                "WARNING",
                "protocol.py:70",
                f"The following fields were present in the request but ignored: {{{fields}}}",
            )
        return params

    def plan(self, params: GenerationParams, arrival: int) -> list[GenRequest]:
        """The sequences of a request, planned and submitted to the scheduler."""
        plans = plan_choices(
            params, seed=self.settings.seed, max_model_len=self.max_model_len, table=self.tokens
        )
        request_id = self.next_id(params.kind)
        gens = [
            GenRequest(request_id, params.prompt_tokens, p.tokens, p.finish_reason, arrival, plan=p)
            for p in plans
        ]
        if not self.settings.zero_delay:
            try:
                for gen in gens:
                    self.scheduler.submit(gen)
            except OverloadedError:
                for gen in gens:
                    self.scheduler.cancel(gen)
                raise
        return gens

    async def _generate(self, request: web.Request, kind: str) -> web.StreamResponse:
        arrival = time.perf_counter_ns()
        try:
            if err := self.not_ready():
                raise err
            params = self.parse(parse_body(await request.read()), kind)
            gens = self.plan(params, arrival)
        except ApiError as exc:
            return self.error(exc)
        except OverloadedError:
            return self.error(
                ApiError(429, "Too many requests waiting; retry later", "RateLimitError")
            )
        try:
            if params.stream:
                if params.plain:
                    return await self._stream_plain(request, params, gens[0])
                return await self._stream(request, params, gens)
            return await self._whole(params, gens)
        finally:
            incomplete = [g for g in gens if not g.complete]
            for gen in incomplete:
                self.scheduler.cancel(gen)
            if incomplete:
                self.finish(gens, params, "abort")

    async def wait_complete(self, gens: list[GenRequest]) -> bool:
        """Wait until every sequence is complete; False if one was cancelled."""
        if self.settings.zero_delay:
            for gen in gens:
                gen.produced = len(gen.tokens)
            return True
        for gen in gens:
            while not gen.complete and not gen.cancelled:
                await gen.wait_for_tokens(gen.produced)
            if gen.cancelled:
                return False
        return True

    async def _whole(self, params: GenerationParams, gens: list[GenRequest]) -> web.Response:
        if not await self.wait_complete(gens):
            return self.error(
                ApiError(503, "The server is shutting down", "ServiceUnavailableError")
            )
        payload = full_response(
            params,
            [g.plan for g in gens],
            request_id=gens[0].request_id,
            created=int(self.clock.wall()),
            api_version=self.api_version,
        )
        response = web.Response(
            body=json.dumps(payload).encode(),
            content_type="application/json",
            headers={"x-request-id": gens[0].request_id},
        )
        now = time.perf_counter_ns()
        for gen in gens:
            gen.first_token_ns = gen.last_token_ns = now
        self.finish(gens, params, gens[0].finish_reason)
        return response

    async def _open_stream(self, request: web.Request, request_id: str) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "x-request-id": request_id,
            }
        )
        await response.prepare(request)
        return response

    async def _stream_plain(
        self, request: web.Request, params: GenerationParams, gen: GenRequest
    ) -> web.StreamResponse:
        """One free-text choice: precomputed chunk JSON (the emulator's fast path)."""
        response = await self._open_stream(request, gen.request_id)
        enc = ChunkEncoder(params.kind, gen.request_id, int(self.clock.wall()), params.model)
        role = enc.role() if params.kind == "chat" else b""
        tokens = gen.tokens
        total = len(tokens)
        tail = enc.usage(usage(gen.prompt_tokens, total)) if params.include_usage else b""
        tail += enc.done()
        if self.settings.zero_delay:
            # One write for the whole stream: only the emulator's own CPU cost remains.
            gen.produced = total
            body = "".join([enc.token(t) for t in tokens[:-1]])
            body += enc.token(tokens[-1], gen.finish_reason)
            await response.write_eof(role + body.encode() + tail)
            gen.first_token_ns = gen.last_token_ns = time.perf_counter_ns()
        else:
            if role:
                await response.write(role)
            sent = 0
            while sent < total:
                produced = await gen.wait_for_tokens(sent)
                if gen.cancelled:
                    return response
                parts = [enc.token(t) for t in tokens[sent:produced]]
                if produced == total:
                    parts[-1] = enc.token(tokens[-1], gen.finish_reason)
                await response.write("".join(parts).encode())
                now = time.perf_counter_ns()
                if sent == 0:
                    gen.first_token_ns = now
                gen.last_token_ns = now
                sent = produced
            await response.write_eof(tail)
        self.finish([gen], params, gen.finish_reason)
        return response

    async def _stream(
        self, request: web.Request, params: GenerationParams, gens: list[GenRequest]
    ) -> web.StreamResponse:
        """Several choices, logprobs, tool calls, stops or echo: general chunks."""
        response = await self._open_stream(request, gens[0].request_id)
        chunks = StreamChunks(params, gens[0].request_id, int(self.clock.wall()), self.api_version)
        for gen in gens:
            opening = chunks.opening(gen.plan)
            if opening:
                await response.write(opening)
        sent = [0] * len(gens)
        pending = list(range(len(gens)))
        while pending:
            for i in list(pending):
                gen = gens[i]
                total = len(gen.tokens)
                produced = total
                if total and not self.settings.zero_delay:
                    produced = await gen.wait_for_tokens(sent[i])
                if gen.cancelled:
                    return response
                gen.produced = max(gen.produced, produced)
                await response.write(chunks.tokens(gen.plan, sent[i], produced, produced >= total))
                now = time.perf_counter_ns()
                gen.first_token_ns = gen.first_token_ns or now
                gen.last_token_ns = now
                sent[i] = produced
                if produced >= total:
                    pending.remove(i)
        if params.include_usage:
            await response.write(chunks.usage(sum(len(g.tokens) for g in gens)))
        await response.write_eof(ChunkEncoder.done())
        self.finish(gens, params, gens[0].finish_reason)
        return response

    def finish(self, gens: list[GenRequest], params: GenerationParams, reason: str) -> None:
        """Metrics and the server-side record of one request (all its choices)."""
        gen = gens[0]
        completion = sum(g.produced for g in gens)
        end = max((g.last_token_ns or 0) for g in gens) or time.perf_counter_ns()
        first = gen.first_token_ns
        # Like vLLM, the TTFT metric is taken when the engine produced the token.
        produced = gen.first_produced_ns or first
        self.metrics.record_request(
            prompt_tokens=gen.prompt_tokens,
            generation_tokens=completion,
            finish_reason=reason,
            ttft_s=None if produced is None else (produced - gen.arrival_ns) / 1e9,
            e2e_s=(end - gen.arrival_ns) / 1e9,
        )
        record = RequestRecord(
            gen.request_id,
            gen.arrival_ns,
            first,
            end if gen.last_token_ns else None,
            gen.prompt_tokens,
            completion,
            reason,
            params.stream,
        )
        if len(self.records) == self.records.maxlen:
            self._record_index.pop(self.records[0].request_id, None)
        self.records.append(record)
        self._record_index[record.request_id] = record

    def _finish(self, gen: GenRequest, params: GenerationParams, reason: str) -> None:
        self.finish([gen], params, reason)

    def record(self, request_id: str) -> RequestRecord | None:
        """The server-side record of a request (by its ``x-request-id``), if still kept."""
        return self._record_index.get(request_id)
