"""A lean HTTP/1.1 client for the measured requests (the hot path).

Why not aiohttp here: per request aiohttp builds a request object, a response object,
header multidicts, a timer and a task — 0.15–0.25 ms of client CPU, which is the whole
core at 4,000 streamed requests/s and leaves nothing for the event loop (issue #20 saw
the loop stall 1–2.5 s above 2,500 req/s). Here:

- a request is a byte string built before the run, written on an idle keep-alive
  connection; the send timestamp is taken right before ``transport.write`` — when the
  request actually leaves, never while it waits for a connection;
- the response is recorded as the raw bytes plus the ``perf_counter_ns`` and cumulative
  size of every socket read. The only parsing on the hot path is what is needed to know
  where the response ends: the status line, three framing headers and, for chunked
  transfer encoding, the chunk-size lines. De-chunking, SSE and JSON are post-run work
  (:func:`decode_body`, :mod:`nimble_oke.bench.analysis`);
- completion is a callback: a closed-loop worker's next request is written from the
  completion of the previous one, with no task per request.

aiohttp still does everything off the hot path (model discovery, the request-shape
probe, ``/v1/metrics``). Not supported on the hot path (not needed against an
OpenAI-compatible server): proxies, redirects, ``Expect: 100-continue``, pipelining.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from nimble_oke.bench.records import Chunks, ErrorKind, RequestStore

perf_ns = time.perf_counter_ns
MAX_HEAD_BYTES = 64 * 1024  # a response head larger than this is a protocol error
UNTIL_CLOSE, BY_LENGTH, CHUNKED = 0, 1, 2


@dataclass(frozen=True)
class Origin:
    """Where the requests go: scheme, host, port (and the TLS context for https)."""

    scheme: str
    host: str
    port: int
    path: str

    @classmethod
    def from_url(cls, url: str) -> Origin:
        parts = urlsplit(url)
        scheme = parts.scheme or "http"
        port = parts.port or (443 if scheme == "https" else 80)
        return cls(scheme, parts.hostname or "127.0.0.1", port, parts.path or "/")

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def where(self) -> str:
        """``host:port`` for messages."""
        return f"{self.host}:{self.port}"

    def ssl_context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context() if self.scheme == "https" else None


def request_bytes(
    origin: Origin, headers: dict[str, str], body: bytes, *, close: bool = False
) -> bytes:
    """One complete ``POST`` (head and body), ready to be written as is."""
    lines = [f"POST {origin.path} HTTP/1.1", f"Host: {origin.host_header}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    lines.append("User-Agent: nimble-bench")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def describe_os_error(exc: BaseException, where: str) -> tuple[ErrorKind, str]:
    """What happened, in words (never a library class name), and the error kind."""
    if isinstance(exc, ConnectionRefusedError) or getattr(exc, "errno", None) == errno.ECONNREFUSED:
        return ErrorKind.CONNECTION_REFUSED, f"connection refused at {where}"
    if isinstance(exc, socket.gaierror):
        return ErrorKind.CONNECTION_ERROR, f"cannot resolve {where.rsplit(':', 1)[0]}"
    if isinstance(exc, ssl.SSLError):
        return ErrorKind.CONNECTION_ERROR, f"TLS handshake with {where} failed ({exc.reason})"
    if isinstance(exc, ConnectionResetError):
        return ErrorKind.CONNECTION_ERROR, f"connection reset by {where}"
    if isinstance(exc, TimeoutError):
        return ErrorKind.TIMEOUT, f"no connection to {where} in time"
    text = getattr(exc, "strerror", None) or str(exc) or "connection failed"
    return ErrorKind.CONNECTION_ERROR, f"{text} ({where})"


def decode_body(chunks: Chunks) -> tuple[bytes, list[int]]:
    """The response body without HTTP framing, and each read's end as a body offset.

    ``chunks.body`` holds what the socket delivered from the status line on; reads that
    ended inside the head map to offset 0."""
    raw = chunks.body
    start = chunks.start
    if not chunks.chunked:
        return raw[start:], [max(0, e - start) for e in chunks.ends]
    segments = _chunk_segments(raw, start)
    body = b"".join(raw[a:b] for a, b in segments)
    ends: list[int] = []
    k = done = 0  # k: current segment, done: body bytes before segment k
    for end in chunks.ends:
        while k < len(segments) and segments[k][1] <= end:
            done += segments[k][1] - segments[k][0]
            k += 1
        partial = max(0, end - segments[k][0]) if k < len(segments) else 0
        ends.append(done + partial)
    return body, ends


def _chunk_segments(raw: bytes, pos: int) -> list[tuple[int, int]]:
    """(start, end) of each chunk's data in ``raw`` (a truncated last chunk included)."""
    out: list[tuple[int, int]] = []
    find, size = raw.find, len(raw)
    while True:
        nl = find(b"\r\n", pos)
        if nl < 0:
            return out
        line = raw[pos:nl]
        try:
            length = int(line.split(b";", 1)[0] if b";" in line else line, 16)
        except ValueError:
            return out
        if length == 0:
            return out
        start = nl + 2
        out.append((start, min(start + length, size)))
        pos = start + length + 2


class Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time (no pipelining)."""

    def __init__(self, load: Load) -> None:
        self.load = load
        self.transport: asyncio.Transport | None = None
        self.open = False
        self.served = 0
        self.index = -1  # the request in flight, -1 when idle
        self.sent_ns = 0
        self._reset()

    def _reset(self) -> None:
        self.buf = bytearray()
        self.times: array[int] = array("q")
        self.ends: array[int] = array("q")
        self.body_start = -1
        self.mode = UNTIL_CLOSE
        self.length = 0
        self.scan = 0
        self.status = 0
        self.head_ns = -1
        self.keep_alive = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses: no isinstance check
        self.transport = transport  # type: ignore[assignment]
        self.open = True

    def send(self, index: int, data: bytes) -> None:
        """Write request ``index``; its send time is stamped here, as it leaves."""
        self._reset()
        self.index = index
        assert self.transport is not None
        now = perf_ns()
        self.sent_ns = now
        self.load.store.send_ns[index] = now
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        now = perf_ns()
        if self.index < 0:  # nothing was asked: not a connection to reuse
            self.open = False
            if self.transport is not None:
                self.transport.close()
            return
        buf = self.buf
        buf += data
        self.times.append(now)
        self.ends.append(len(buf))
        if self.body_start < 0 and not self._head(now):
            return
        if self._complete():
            self.finish(None)

    def _head(self, now: int) -> bool:
        """Parse the status line and the framing headers once the head is complete."""
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEAD_BYTES:
                self.finish((ErrorKind.CONNECTION_ERROR, "response head larger than 64 KiB"))
            return False
        lines = bytes(buf[:end]).split(b"\r\n")
        try:
            version, code = lines[0].split(b" ", 2)[:2]
            self.status = int(code)
        except ValueError:
            self.finish((ErrorKind.CONNECTION_ERROR, "not an HTTP response"))
            return False
        self.keep_alive = version == b"HTTP/1.1"
        self.head_ns = now
        self.body_start = self.scan = end + 4
        self.mode = BY_LENGTH if self.status in (204, 304) else UNTIL_CLOSE
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"transfer-encoding" and b"chunked" in value.lower():
                self.mode = CHUNKED
            elif name == b"content-length" and self.mode != CHUNKED:
                self.mode, self.length = BY_LENGTH, int(value.strip() or 0)
            elif name == b"connection":
                token = value.strip().lower()
                self.keep_alive = token == b"keep-alive" or (self.keep_alive and token != b"close")
        if self.mode == UNTIL_CLOSE:
            self.keep_alive = False
        return True

    def _complete(self) -> bool:
        buf = self.buf
        if self.mode == BY_LENGTH:
            return len(buf) - self.body_start >= self.length
        if self.mode != CHUNKED:
            return False
        scan = self.scan
        while True:
            nl = buf.find(b"\r\n", scan)
            if nl < 0:
                return False
            try:
                size = int(buf[scan:nl].split(b";", 1)[0], 16)
            except ValueError:
                self.finish((ErrorKind.CONNECTION_ERROR, "malformed chunked encoding"))
                return False
            if size == 0:  # the last chunk, then optional trailers and an empty line
                return buf.find(b"\r\n\r\n", nl) >= 0
            nxt = nl + 4 + size
            if nxt > len(buf):
                return False
            self.scan = scan = nxt

    def finish(self, error: tuple[ErrorKind, str] | None) -> None:
        """Record the response (or the failure) and hand the connection back."""
        index = self.index
        if index < 0:
            return
        self.index = -1
        store = self.load.store
        store.end_ns[index] = perf_ns()
        store.headers_ns[index] = self.head_ns
        store.status[index] = self.status
        chunks = Chunks(
            self.times, self.ends, bytes(self.buf), max(0, self.body_start), self.mode == CHUNKED
        )
        store.chunks[index] = chunks
        if error is not None:
            store.fail(index, *error)
        elif self.status >= 400:
            kind = ErrorKind.HTTP_5XX if self.status >= 500 else ErrorKind.HTTP_4XX
            store.fail(index, kind, f"HTTP {self.status}: {decode_body(chunks)[0][:200]!r}")
        self.served += 1
        reuse = error is None and self.keep_alive and self.open
        if not reuse and self.transport is not None:
            self.open = False
            self.transport.close()
        self.load.completed(self, index, error is not None or self.status >= 400, reuse)

    def fail_timeout(self, timeout_s: float) -> None:
        self.finish((ErrorKind.TIMEOUT, f"no complete answer in {timeout_s:g} s"))
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if self.index < 0:
            self.load.forget(self)
            return
        if self.mode == UNTIL_CLOSE and self.body_start >= 0:
            self.finish(None)  # a response delimited by the close
        elif not self.buf and self.served and self.load.retry_stale(self):
            pass  # a reused connection the server had closed as we wrote: sent again
        else:
            where = self.load.origin.where
            reason = describe_os_error(exc, where)[1] if exc else f"{where} closed the connection"
            got = f" after {len(self.buf)} bytes" if self.buf else " before answering"
            self.finish((ErrorKind.CONNECTION_ERROR, reason + got))
        self.load.forget(self)


class Load:
    """Dispatches the requests of one phase onto keep-alive connections to ``origin``.

    Counters (``sent``, ``done``, ``failed``, ``in_flight``) are what the progress display
    shows; they are plain integers updated in the completion callback."""

    def __init__(
        self,
        origin: Origin,
        requests: list[bytes],
        store: RequestStore,
        *,
        timeout_s: float,
        fresh_connections: bool = False,
    ) -> None:
        self.origin = origin
        self.requests = requests
        self.store = store
        self.timeout_s = timeout_s
        self.fresh = fresh_connections
        self.idle: list[Connection] = []
        self.busy: set[Connection] = set()
        self.opened = 0  # connections opened so far
        self.stale_retries = 0
        self.sent = self.done = self.failed = self.in_flight = 0
        self.in_flight_waits = 0
        self.on_complete: Callable[[], None] | None = None
        self._ssl = origin.ssl_context()
        self._loop = asyncio.get_running_loop()
        self._idle_event: asyncio.Event | None = None
        self._below: asyncio.Event | None = None
        self._cap = 0
        self._sweeper: asyncio.Task[None] | None = None

    # --- connections ---------------------------------------------------------------
    async def connect(self) -> Connection:
        _, conn = await self._loop.create_connection(
            lambda: Connection(self),
            self.origin.host,
            self.origin.port,
            ssl=self._ssl,
            server_hostname=self.origin.host if self._ssl else None,
        )
        self.opened += 1
        return conn

    async def warm(self, count: int) -> tuple[int, str | None]:
        """Open ``count`` connections before the measured phase (returns how many were
        opened, and why it stopped early if it did)."""
        opened, batch = 0, 64
        while opened < count:
            tries = [self.connect() for _ in range(min(batch, count - opened))]
            results = await asyncio.gather(*tries, return_exceptions=True)
            for item in results:
                if isinstance(item, Connection):
                    self.idle.append(item)
                    opened += 1
            failures = [r for r in results if isinstance(r, BaseException)]
            if failures:
                return opened, describe_os_error(failures[0], self.origin.where)[1]
        return opened, None

    def forget(self, conn: Connection) -> None:
        self.busy.discard(conn)
        if conn in self.idle:
            self.idle.remove(conn)

    def close(self) -> None:
        for conn in [*self.idle, *self.busy]:
            if conn.transport is not None:
                conn.transport.close()
        self.idle.clear()
        if self._sweeper is not None:
            self._sweeper.cancel()

    # --- requests ------------------------------------------------------------------
    def send(self, index: int, intended_ns: int) -> None:
        """Send request ``index`` now, on an idle connection or a new one."""
        self.store.reserve(index)
        self.store.intended_ns[index] = intended_ns
        self.sent += 1
        self.in_flight += 1
        while self.idle and not self.fresh:
            conn = self.idle.pop()
            if conn.transport is None or conn.transport.is_closing():
                continue  # closed by the server; its connection_lost has not run yet
            self.busy.add(conn)
            try:
                conn.send(index, self.requests[index % len(self.requests)])
            except RuntimeError:
                # uvloop refuses a write on a transport closed under it ("the handler is
                # closed"); asyncio drops it silently: either way, a new connection
                conn.index = -1  # its connection_lost must not complete this request
                self.busy.discard(conn)
                break
            return
        self._loop.create_task(self._connect_and_send(index))

    async def _connect_and_send(self, index: int) -> None:
        attempt = perf_ns()
        try:
            async with asyncio.timeout(self.timeout_s):
                conn = await self.connect()
        except (OSError, TimeoutError) as exc:
            self.store.send_ns[index] = attempt
            self.store.end_ns[index] = perf_ns()
            self.store.fail(index, *describe_os_error(exc, self.origin.where))
            self.completed(None, index, True, False)
            return
        self.busy.add(conn)
        try:
            conn.send(index, self.requests[index % len(self.requests)])
        except RuntimeError as exc:  # closed by the server as soon as it was opened
            conn.index = -1
            self.busy.discard(conn)
            self.store.end_ns[index] = perf_ns()
            self.store.fail(index, ErrorKind.CONNECTION_ERROR, f"{self.origin.where}: {exc}")
            self.completed(None, index, True, False)

    def retry_stale(self, conn: Connection) -> bool:
        """The server closed an idle keep-alive connection as the request was written
        (no byte answered): send it once more on a new connection."""
        if self.stale_retries > max(8, self.sent // 100):
            return False
        index = conn.index
        conn.index = -1
        self.busy.discard(conn)
        self.stale_retries += 1
        self._loop.create_task(self._connect_and_send(index))
        return True

    def completed(self, conn: Connection | None, index: int, failed: bool, reuse: bool) -> None:
        self.in_flight -= 1
        self.done += 1
        self.failed += failed
        if conn is not None:
            self.busy.discard(conn)
            if reuse and not self.fresh:
                self.idle.append(conn)
            elif conn.transport is not None and conn.open:
                conn.open = False
                conn.transport.close()
        if self.on_complete is not None:
            self.on_complete()
        if self._below is not None and self.in_flight < self._cap:
            self._below.set()
        if self._idle_event is not None and self.in_flight == 0:
            self._idle_event.set()

    async def drained(self) -> None:
        """Wait until nothing is in flight."""
        while self.in_flight > 0:
            self._idle_event = asyncio.Event()
            await self._idle_event.wait()
        self._idle_event = None

    async def below(self, cap: int) -> None:
        """Wait until fewer than ``cap`` requests are in flight."""
        self._cap = cap
        while self.in_flight >= cap:
            self._below = asyncio.Event()
            await self._below.wait()
        self._below = None

    def start_sweeper(self) -> None:
        """Time out requests that take longer than ``timeout_s`` (one task, not a timer
        per request)."""
        self._sweeper = self._loop.create_task(self._sweep())

    async def _sweep(self) -> None:
        period = min(1.0, max(0.01, self.timeout_s / 5))
        limit = int(self.timeout_s * 1e9)
        while True:
            await asyncio.sleep(period)
            now = perf_ns()
            for conn in [c for c in self.busy if c.index >= 0 and now - c.sent_ns > limit]:
                conn.fail_timeout(self.timeout_s)
