"""A minimal, exact OpenAI-compatible SSE server whose timings are ground truth.

It schedules each chunk at an absolute time (receive + TTFT + k·ITL), records when it
actually wrote the first content chunk (``perf_counter_ns``, same clock as the client in
the same process), and can inject faults: HTTP 5xx, hangs (client timeout), a 400 for
``max_completion_tokens``, a role-only first chunk, multi-token chunks, a usage chunk.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN = "tk "  # every token is 3 characters, so chunks' lengths are proportional to tokens


@dataclass
class TruthSettings:
    ttft_s: float = 0.02
    itl_s: float = 0.005
    tokens_per_chunk: int = 1
    role_chunk: bool = True
    reject_max_completion_tokens: bool = False
    reject_top_level_sampling: bool = False  # a NIM 1.x-like server: only nvext carries them
    fail_every: int = 0  # every n-th completion request answers fail_status
    fail_status: int = 500
    hang_every: int = 0  # every n-th request never answers (client timeout)
    error_event_every: int = 0  # every n-th stream breaks off with an SSE error event
    usage: bool = True  # honour stream_options.include_usage
    first_chunk_padding: int = 0  # extra characters in the first content event (long lines)
    model: str = "truth/model-a"
    metrics: bool = True
    prompt_tokens: int = 7


@dataclass
class Truth:
    """What the server observed, per completion request, in arrival order."""

    received_ns: list[int] = field(default_factory=list)
    first_token_ns: list[int] = field(default_factory=list)
    params_seen: list[str] = field(default_factory=list)
    authorization: list[str | None] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)

    def server_ttft_ms(self) -> list[float]:
        return [
            (f - r) / 1e6 for r, f in zip(self.received_ns, self.first_token_ns, strict=False) if f
        ]


class TruthServer:
    def __init__(self, settings: TruthSettings | None = None) -> None:
        self.settings = settings or TruthSettings()
        self.truth = Truth()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._count = 0
        self._ttft_sum = 0.0
        self._ttft_count = 0
        self._hangs: list[asyncio.Event] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> TruthServer:
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/completions", self._chat)
        if self.settings.metrics:
            app.router.add_get("/v1/metrics", self._metrics)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def stop(self) -> None:
        for event in self._hangs:
            event.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> TruthServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": self.settings.model, "object": "model"}]}
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        text = (
            "# TYPE vllm:time_to_first_token_seconds histogram\n"
            f'vllm:time_to_first_token_seconds_sum{{model_name="m"}} {self._ttft_sum}\n'
            f'vllm:time_to_first_token_seconds_count{{model_name="m"}} {self._ttft_count}\n'
            'vllm:time_to_first_token_seconds_bucket{le="+Inf"} 0\n'
            "vllm:num_requests_waiting 0\n"
            "vllm:num_requests_running 1\n"
            "vllm:kv_cache_usage_perc 0.25\n"
        )
        return web.Response(text=text, content_type="text/plain")

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        received = time.perf_counter_ns()
        s = self.settings
        body = await request.json()
        self.truth.authorization.append(request.headers.get("Authorization"))
        if "max_completion_tokens" in body and s.reject_max_completion_tokens:
            return web.json_response(
                {"error": {"message": "max_completion_tokens is not supported", "code": 400}},
                status=400,
            )
        if s.reject_top_level_sampling and {"ignore_eos", "min_tokens"} & set(body):
            return web.json_response(
                {"error": {"message": "extra fields not permitted: ignore_eos", "code": 400}},
                status=400,
            )
        if (
            body.get("messages") == [{"role": "user", "content": "ping"}]
            or body.get("prompt") == "ping"
        ):
            # the client's request-shape probe: answer, but do not count it
            return await self._stream(request, body, received, record=False)
        self._count += 1
        n = self._count
        if s.hang_every and n % s.hang_every == 0:
            event = asyncio.Event()
            self._hangs.append(event)
            await event.wait()
            return web.Response(status=503)
        if s.fail_every and n % s.fail_every == 0:
            return web.json_response({"error": {"message": "injected"}}, status=s.fail_status)
        broken = bool(s.error_event_every and n % s.error_event_every == 0)
        return await self._stream(request, body, received, record=True, broken=broken)

    async def _stream(
        self,
        request: web.Request,
        body: dict[str, Any],
        received: int,
        record: bool,
        broken: bool = False,
    ) -> web.StreamResponse:
        s = self.settings
        limit = int(body.get("max_completion_tokens") or body.get("max_tokens") or 16)
        include_usage = s.usage and bool((body.get("stream_options") or {}).get("include_usage"))
        idx = -1
        if record:
            self.truth.received_ns.append(received)
            self.truth.first_token_ns.append(0)
            self.truth.bodies.append(body)
            self.truth.params_seen.append(
                "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
            )
            idx = len(self.truth.received_ns) - 1
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        chat = "messages" in body

        def event(text: str | None, role: bool = False) -> bytes:
            if chat:
                delta: dict[str, Any] = {"role": "assistant"} if role else {"content": text}
                choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": None}
            else:
                choice = {"index": 0, "text": text or "", "finish_reason": None}
            obj = "chat.completion.chunk" if chat else "text_completion"
            chunk = {"id": "x", "object": obj, "choices": [choice]}
            return b"data: " + json.dumps(chunk).encode() + b"\n\n"

        if s.role_chunk and chat:
            await resp.write(event(None, role=True))
        sent = 0
        k = 0
        while sent < limit:
            target = received + int((s.ttft_s + k * s.itl_s) * 1e9)
            delay = (target - time.perf_counter_ns()) / 1e9
            if delay > 0:
                await asyncio.sleep(delay)
            take = min(s.tokens_per_chunk, limit - sent)
            padding = " " * s.first_chunk_padding if k == 0 else ""
            await resp.write(event(TOKEN * take + padding))
            if k == 0 and record:
                now = time.perf_counter_ns()
                self.truth.first_token_ns[idx] = now
                self._ttft_sum += (now - received) / 1e9
                self._ttft_count += 1
            sent += take
            k += 1
            if broken:
                error = {"error": {"message": "engine died", "type": "InternalServerError"}}
                await resp.write(b"data: " + json.dumps(error).encode() + b"\n\n")
                await resp.write_eof()
                return resp
        if include_usage:
            usage = {
                "prompt_tokens": s.prompt_tokens,
                "completion_tokens": sent,
                "total_tokens": s.prompt_tokens + sent,
            }
            await resp.write(
                b"data: "
                + json.dumps(
                    {"id": "x", "object": "chat.completion.chunk", "choices": [], "usage": usage}
                ).encode()
                + b"\n\n"
            )
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp
