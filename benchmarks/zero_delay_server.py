"""A zero-delay OpenAI-compatible streaming server for measuring *client* overhead.

Raw asyncio protocol (uvloop when available), HTTP/1.1 keep-alive, no framework: every
``POST /v1/chat/completions`` gets a canned SSE stream (a role chunk, one chunk per token,
a usage chunk, ``[DONE]``) in chunked transfer encoding, written at once. ``GET /v1/models``
lists one model. It runs in its own process so its CPU is not counted as the client's.

With ``--ttft-ms``/``--itl-ms`` it becomes a *timed* ground-truth server (calibration):
tokens are written on schedule and the server's own TTFT is exported on ``/v1/metrics``.

Usage: ``python benchmarks/zero_delay_server.py [--tokens N] [--ttft-ms T --itl-ms I]`` —
prints the port, serves until terminated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from dataclasses import dataclass
from typing import Any

MODEL = "zero/delay"


def _chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _event(data: dict[str, Any]) -> bytes:
    return _chunk(b"data: " + json.dumps(data).encode() + b"\n\n")


HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    b"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
)
# every chunk names its object, as OpenAI and vLLM do (AIPerf's parser requires it)
CHUNK = {"id": "z", "object": "chat.completion.chunk", "created": 0, "model": MODEL}
ROLE = _event({**CHUNK, "choices": [{"index": 0, "delta": {"role": "assistant"}}]})
TOKEN = _event({**CHUNK, "choices": [{"index": 0, "delta": {"content": " tok"}}]})
DONE = _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"


def _usage(tokens: int) -> bytes:
    usage = {"prompt_tokens": 16, "completion_tokens": tokens, "total_tokens": 16 + tokens}
    return _event({**CHUNK, "choices": [], "usage": usage})


def sse_response(tokens: int) -> bytes:
    """The whole zero-delay answer: head, role chunk, one chunk per token, usage, [DONE]."""
    return HEAD + ROLE + TOKEN * tokens + _usage(tokens) + DONE


def json_response(data: object, content_type: bytes = b"application/json") -> bytes:
    body = data if isinstance(data, bytes) else json.dumps(data).encode()
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\n"
        b"Content-Length: %d\r\nConnection: keep-alive\r\n\r\n%s" % (content_type, len(body), body)
    )


@dataclass
class Timing:
    """Timed (calibration) mode: first token after ``ttft_s``, then one every ``itl_s``;
    the server's own TTFT is exported on /v1/metrics as a histogram sum/count."""

    tokens: int
    ttft_s: float = 0.0
    itl_s: float = 0.0
    ttft_sum_s: float = 0.0
    ttft_count: int = 0

    @property
    def zero_delay(self) -> bool:
        return self.ttft_s == 0 and self.itl_s == 0

    def metrics(self) -> bytes:
        return (
            f"time_to_first_token_seconds_sum {self.ttft_sum_s}\n"
            f"time_to_first_token_seconds_count {self.ttft_count}\n"
        ).encode()


class Http(asyncio.Protocol):
    def __init__(self, timing: Timing, stream: bytes, models: bytes) -> None:
        self.timing = timing
        self.stream = stream
        self.models = models
        self.buf = b""
        self.transport: asyncio.WriteTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: no isinstance check
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buf) < end + 4 + length:
                return
            self.buf = self.buf[end + 4 + length :]
            assert self.transport is not None
            if head.startswith("GET /v1/models"):
                self.transport.write(self.models)
            elif head.startswith("GET /v1/metrics"):
                self.transport.write(json_response(self.timing.metrics(), b"text/plain"))
            elif head.startswith("POST") and self.timing.zero_delay:
                self.transport.write(self.stream)
            elif head.startswith("POST"):
                self._timed(self.transport)
            else:
                self.transport.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")

    def _timed(self, transport: asyncio.WriteTransport) -> None:
        loop = asyncio.get_running_loop()
        timing = self.timing
        received = time.perf_counter()
        start = loop.time()
        transport.write(HEAD + ROLE)

        def token(k: int) -> None:
            if transport.is_closing():
                return
            transport.write(TOKEN)
            if k == 0:
                timing.ttft_sum_s += time.perf_counter() - received
                timing.ttft_count += 1
            if k == timing.tokens - 1:
                transport.write(_usage(timing.tokens) + DONE)

        for k in range(timing.tokens):
            loop.call_at(start + timing.ttft_s + k * timing.itl_s, token, k)


async def serve(timing: Timing) -> None:
    loop = asyncio.get_running_loop()
    stream = sse_response(timing.tokens)
    models = json_response({"object": "list", "data": [{"id": MODEL, "object": "model"}]})
    server = await loop.create_server(
        lambda: Http(timing, stream, models), "127.0.0.1", 0, backlog=1024
    )
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--ttft-ms", type=float, default=0.0, help="timed mode: first token")
    parser.add_argument("--itl-ms", type=float, default=0.0, help="timed mode: token gap")
    args = parser.parse_args()
    timing = Timing(args.tokens, args.ttft_ms / 1e3, args.itl_ms / 1e3)
    try:
        import uvloop

        uvloop.run(serve(timing))
    except ImportError:
        asyncio.run(serve(timing))


if __name__ == "__main__":
    main()
