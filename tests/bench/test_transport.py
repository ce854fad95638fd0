"""The lean HTTP/1.1 hot path: framing, timestamps at write, warm pool, quiet GC."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable

import pytest

from nimble_oke.bench import BenchConfig, run_async, summarize
from nimble_oke.bench.engine import Progress, closed_loop
from nimble_oke.bench.http1 import Load, Origin, decode_body, request_bytes
from nimble_oke.bench.records import ErrorKind, RequestStore

from .conftest import arun
from .truth_server import TruthServer, TruthSettings

SSE = b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\ndata: [DONE]\n\n'


def _chunked(body: bytes, pieces: int = 3, trailer: bytes = b"") -> bytes:
    step = max(1, len(body) // pieces)
    parts = [body[i : i + step] for i in range(0, len(body), step)]
    framed = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in parts)
    return framed + b"0\r\n" + trailer + b"\r\n"


class RawServer:
    """A loopback server answering every request with canned bytes (in slices, to make
    the client see several reads), then closing if ``close`` is set."""

    def __init__(self, answer: bytes, *, close: bool = False, slices: int = 1) -> None:
        self.answer = answer
        self.close = close
        self.slices = slices
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                await reader.readexactly(length)
                step = max(1, len(self.answer) // self.slices)
                for i in range(0, len(self.answer), step):
                    writer.write(self.answer[i : i + step])
                    await writer.drain()
                    await asyncio.sleep(0.002)
                if self.close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1/chat/completions"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        await self.server.wait_closed()


async def _send(url: str, count: int, concurrency: int = 1) -> Load:
    origin = Origin.from_url(url)
    load = Load(origin, [request_bytes(origin, {}, b"{}")], RequestStore(count), timeout_s=5)
    closed_loop(load, concurrency, count, None)
    await load.drained()
    load.close()
    return load


@pytest.mark.parametrize(
    ("answer", "close"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(SSE), SSE), False),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + _chunked(SSE), False),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + _chunked(SSE, 5, b"X-Trailer: 1\r\n"),
            False,
        ),
        (b"HTTP/1.0 200 OK\r\n\r\n" + SSE, True),  # delimited by the close
    ],
    ids=["content-length", "chunked", "chunked-trailer", "until-close"],
)
def test_every_framing_gives_the_same_body_and_read_offsets(answer: bytes, close: bool) -> None:
    async def scenario() -> None:
        async with RawServer(answer, close=close, slices=4) as url:
            load = await _send(url, 3)
        store = load.store
        assert [int(e) for e in store.error[:3]] == [0, 0, 0], store.messages
        for i in range(3):
            chunks = store.chunks[i]
            assert chunks is not None
            body, ends = decode_body(chunks)
            assert body == SSE
            assert ends == sorted(ends) and ends[-1] == len(SSE)
            assert len(chunks.times_ns) == len(ends) >= 2  # several reads, each stamped
            assert store.headers_ns[i] >= store.send_ns[i] > 0

    arun(scenario())


def test_keep_alive_reuses_one_connection_and_close_does_not() -> None:
    keep = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(SSE), SSE)
    close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (
        len(SSE),
        SSE,
    )

    async def scenario() -> tuple[int, int]:
        reused = RawServer(keep)
        async with reused as url:
            await _send(url, 5)
        fresh = RawServer(close, close=True)
        async with fresh as url:
            load = await _send(url, 5)
        assert load.failed == 0
        return reused.connections, fresh.connections

    assert arun(scenario()) == (1, 5)


def test_garbage_and_early_close_are_errors_in_words() -> None:
    async def scenario() -> None:
        async with RawServer(b"SSH-2.0-OpenSSH\r\n\r\n") as url:
            load = await _send(url, 1)
        assert load.store.error[0] == ErrorKind.CONNECTION_ERROR
        assert load.store.messages[0] == "not an HTTP response"
        cut = b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\npartial"
        async with RawServer(cut, close=True) as url:
            load = await _send(url, 1)
        assert load.store.error[0] == ErrorKind.CONNECTION_ERROR
        assert "closed the connection after" in load.store.messages[0]

    arun(scenario())


def test_send_time_is_when_the_request_is_written_and_pool_is_warm() -> None:
    """Without a warm pool the first wave waits for its connections and the send stamp
    comes after the connect (send lag > 0); with the pool (the default) no connection is
    opened mid-run. Every send precedes the server's receipt (same clock, one process)."""

    async def scenario(warm: bool) -> tuple[list[float], list[float], dict[str, object]]:
        async with TruthServer(TruthSettings(ttft_s=0.002, itl_s=0.0005)) as srv:
            result = await run_async(
                BenchConfig(
                    endpoint=srv.url,
                    concurrency=16,
                    requests=64,
                    output_tokens=3,
                    warm_connections=warm,
                )
            )
            received = sorted(srv.truth.received_ns)
        store = result.store
        sends = sorted(int(t) for t in store.send_ns)
        gaps = [(r - s) / 1e6 for s, r in zip(sends, received, strict=True)]
        first_wave = [(int(store.send_ns[i]) - int(store.intended_ns[i])) / 1e6 for i in range(16)]
        return gaps, first_wave, result.health.connections

    gaps, first_wave, conns = arun(scenario(warm=False))
    assert all(lag > 0 for lag in first_wave)  # each waited for its own connect
    assert conns["warmed"] == 0 and conns["opened_during_run"] == 16
    assert min(gaps) > -0.5
    gaps, first_wave, conns = arun(scenario(warm=True))
    assert conns["warmed"] == 16 and conns["opened_during_run"] == 0
    assert min(gaps) > -0.5


def test_new_connection_per_request_when_asked() -> None:
    async def scenario() -> None:
        async with TruthServer(TruthSettings(ttft_s=0.001, itl_s=0.0005)) as srv:
            result = await run_async(
                BenchConfig(
                    endpoint=srv.url,
                    concurrency=2,
                    requests=6,
                    output_tokens=2,
                    connection_reuse="never",
                )
            )
        assert result.health.connections["warmed"] == 0
        assert result.health.connections["opened_during_run"] == 6
        assert summarize(result)["errors"]["count"] == 0

    arun(scenario())


def test_collector_is_off_and_frozen_only_during_the_measured_phase() -> None:
    seen: list[tuple[str, bool, bool]] = []

    def observer(p: Progress) -> None:
        seen.append((p.phase, gc.isenabled(), gc.get_freeze_count() > 0))

    async def scenario(observe: Callable[[Progress], None]) -> None:
        async with TruthServer(TruthSettings(ttft_s=0.02, itl_s=0.02)) as srv:
            result = await run_async(
                BenchConfig(
                    endpoint=srv.url, concurrency=4, requests=24, warmup=8, output_tokens=8
                ),
                observer=observe,
            )
        assert result.health.gc["collections"] == 0

    assert gc.isenabled()
    arun(scenario(observer))
    assert gc.isenabled() and gc.get_freeze_count() == 0
    measured = [s for s in seen if s[0] == "measured"]
    assert measured and all(not enabled and frozen for _, enabled, frozen in measured)
    assert any(phase == "warm-up" and enabled for phase, enabled, _ in seen)


def test_open_loop_catching_up_gives_the_loop_back() -> None:
    """320 overdue sends at once: the dispatcher yields every MAX_BURST sends, so other
    work on the loop (reading responses) runs while it catches up."""
    import contextlib
    import time

    import numpy as np

    from nimble_oke.bench.engine import open_loop

    async def scenario() -> list[int]:
        async with TruthServer(TruthSettings(ttft_s=0.001, itl_s=0.0005)) as srv:
            origin = Origin.from_url(f"{srv.url}/v1/chat/completions")
            body = b'{"model":"truth/model-a","stream":true,"max_tokens":2,"messages":[]}'
            load = Load(origin, [request_bytes(origin, {}, body)], RequestStore(320), timeout_s=5)
            await load.warm(8)
            seen: list[int] = []

            async def other_work() -> None:
                while True:
                    seen.append(load.sent)
                    await asyncio.sleep(0)

            task = asyncio.create_task(other_work())
            await open_loop(
                load, np.zeros(320, dtype=np.int64), time.perf_counter_ns(), None, 10_000
            )
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await load.drained()
            load.close()
            return seen

    seen = arun(scenario())
    during = {n for n in seen if 0 < n < 320}
    assert len(during) >= 4, sorted(during)
