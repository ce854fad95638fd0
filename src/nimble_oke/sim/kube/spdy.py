"""SPDY/3.1 framing, server side, the subset Kubernetes' streaming protocols use (what
the moby/spdystream library that client-go and the kubelet speak implements): SYN_STREAM /
SYN_REPLY with zlib-compressed header blocks (the SPDY/3 dictionary, one compression
context per direction), DATA with FIN, RST_STREAM, PING, GOAWAY; SETTINGS and
WINDOW_UPDATE are read and ignored (spdystream does no flow control either).

The byte stream underneath is abstract: kubectl 1.33 tunnels SPDY inside WebSocket binary
messages for port-forward (subprotocol ``SPDY/3.1+portforward.k8s.io``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import zlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = (
    1, 2, 3, 4, 6, 7, 8, 9,
)  # fmt: skip
FLAG_FIN = 0x01
RST_CANCEL = 5

# The SPDY/3 header compression dictionary (spdystream spdy/dictionary.go; the spec's).
DICTIONARY = bytes.fromhex(
    "000000076f7074696f6e73000000046865616400000004706f7374000000037075740000000664656c657465"
    "000000057472616365000000066163636570740000000e6163636570742d636861727365740000000f616363"
    "6570742d656e636f64696e670000000f6163636570742d6c616e67756167650000000d6163636570742d7261"
    "6e6765730000000361676500000005616c6c6f770000000d617574686f72697a6174696f6e0000000d636163"
    "68652d636f6e74726f6c0000000a636f6e6e656374696f6e0000000c636f6e74656e742d6261736500000010"
    "636f6e74656e742d656e636f64696e6700000010636f6e74656e742d6c616e67756167650000000e636f6e74"
    "656e742d6c656e67746800000010636f6e74656e742d6c6f636174696f6e0000000b636f6e74656e742d6d64"
    "350000000d636f6e74656e742d72616e67650000000c636f6e74656e742d7479706500000004646174650000"
    "0004657461670000000665787065637400000007657870697265730000000466726f6d00000004686f737400"
    "00000869662d6d617463680000001169662d6d6f6469666965642d73696e63650000000d69662d6e6f6e652d"
    "6d617463680000000869662d72616e67650000001369662d756e6d6f6469666965642d73696e63650000000d"
    "6c6173742d6d6f646966696564000000086c6f636174696f6e0000000c6d61782d666f727761726473000000"
    "06707261676d610000001270726f78792d61757468656e7469636174650000001370726f78792d617574686f"
    "72697a6174696f6e0000000572616e676500000007726566657265720000000b72657472792d616674657200"
    "00000673657276657200000002746500000007747261696c6572000000117472616e736665722d656e636f64"
    "696e6700000007757067726164650000000a757365722d6167656e7400000004766172790000000376696100"
    "0000077761726e696e67000000107777772d61757468656e746963617465000000066d6574686f6400000003"
    "6765740000000673746174757300000006323030204f4b0000000776657273696f6e00000008485454502f31"
    "2e310000000375726c000000067075626c69630000000a7365742d636f6f6b69650000000a6b6565702d616c"
    "697665000000066f726967696e31303031303132303132303232303532303633303033303233303333303433"
    "3035333036333037343032343035343036343037343038343039343130343131343132343133343134343135"
    "343136343137353032353034353035323033204e6f6e2d417574686f726974617469766520496e666f726d61"
    "74696f6e323034204e6f20436f6e74656e74333031204d6f766564205065726d616e656e746c793430302042"
    "6164205265717565737434303120556e617574686f72697a656434303320466f7262696464656e343034204e"
    "6f7420466f756e6435303020496e7465726e616c20536572766572204572726f72353031204e6f7420496d70"
    "6c656d656e746564353033205365727669636520556e617661696c61626c654a616e20466562204d61722041"
    "7072204d6179204a756e204a756c204175672053657074204f6374204e6f76204465632030303a30303a3030"
    "204d6f6e2c205475652c205765642c205468752c204672692c205361742c2053756e2c20474d546368756e6b"
    "65642c746578742f68746d6c2c696d6167652f706e672c696d6167652f6a70672c696d6167652f6769662c61"
    "70706c69636174696f6e2f786d6c2c6170706c69636174696f6e2f7868746d6c2b786d6c2c746578742f706c"
    "61696e2c746578742f6a6176617363726970742c7075626c6963707269766174656d61782d6167653d677a69"
    "702c6465666c6174652c73646368636861727365743d7574662d38636861727365743d69736f2d383835392d"
    "312c7574662d2c2a2c656e713d302e"
)

Reader = Callable[[int], Awaitable[bytes]]  # exactly n bytes; raises EOFError at the end
Writer = Callable[[bytes], Awaitable[None]]


class SpdyStream:
    """One stream opened by the client: its headers, incoming data, and replies."""

    def __init__(self, conn: SpdyConnection, stream_id: int, headers: dict[str, str]) -> None:
        self.conn = conn
        self.id = stream_id
        self.headers = headers
        self._incoming: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.remote_closed = False
        self.local_closed = False

    def feed(self, data: bytes, fin: bool) -> None:
        if data:
            self._incoming.put_nowait(data)
        if fin and not self.remote_closed:
            self.remote_closed = True
            self._incoming.put_nowait(None)

    def reset_by_peer(self) -> None:
        self.local_closed = True
        self.feed(b"", True)

    async def read(self) -> bytes:
        """The next chunk; b"" once the client finished its side."""
        chunk = await self._incoming.get()
        if chunk is None:
            self._incoming.put_nowait(None)
            return b""
        return chunk

    async def write(self, data: bytes) -> None:
        if not self.local_closed and data:
            await self.conn.send_data(self.id, data, fin=False)

    async def close(self) -> None:
        """FIN: this side is done writing."""
        if not self.local_closed:
            self.local_closed = True
            await self.conn.send_data(self.id, b"", fin=True)


class SpdyConnection:
    def __init__(
        self,
        read: Reader,
        write: Writer,
        on_stream: Callable[[SpdyStream], Coroutine[Any, Any, None]],
    ) -> None:
        self._read = read
        self._write = write
        self._on_stream = on_stream
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(zdict=DICTIONARY)
        self._lock = asyncio.Lock()
        self.streams: dict[int, SpdyStream] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = asyncio.Event()

    # --- writing ---------------------------------------------------------------------------
    async def _send(self, frame: bytes) -> None:
        async with self._lock:
            await self._write(frame)

    @staticmethod
    def _control(kind: int, flags: int, payload: bytes) -> bytes:
        return struct.pack(">HHI", 0x8000 | VERSION, kind, flags << 24 | len(payload)) + payload

    def _header_block(self, headers: dict[str, str]) -> bytes:
        raw = struct.pack(">I", len(headers))
        for name, value in headers.items():
            n, v = name.lower().encode(), value.encode()
            raw += struct.pack(">I", len(n)) + n + struct.pack(">I", len(v)) + v
        return self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    async def reply(self, stream_id: int, headers: dict[str, str] | None = None) -> None:
        async with self._lock:  # the compression context is shared: compress under the lock
            block = self._header_block(headers or {})
            await self._write(self._control(SYN_REPLY, 0, struct.pack(">I", stream_id) + block))

    async def send_data(self, stream_id: int, data: bytes, *, fin: bool) -> None:
        for start in range(0, max(len(data), 1), 0xFFFFFF):
            chunk = data[start : start + 0xFFFFFF]
            last = start + 0xFFFFFF >= len(data)
            flags = FLAG_FIN if fin and last else 0
            header = struct.pack(">II", stream_id & 0x7FFFFFFF, flags << 24 | len(chunk))
            await self._send(header + chunk)

    async def reset(self, stream_id: int, status: int = RST_CANCEL) -> None:
        await self._send(self._control(RST_STREAM, 0, struct.pack(">II", stream_id, status)))

    async def go_away(self) -> None:
        with contextlib.suppress(Exception):
            await self._send(self._control(GOAWAY, 0, struct.pack(">II", 0, 0)))

    # --- reading ---------------------------------------------------------------------------
    def _headers(self, block: bytes) -> dict[str, str]:
        raw = self._inflate.decompress(block)
        count = struct.unpack(">I", raw[:4])[0]
        pos, out = 4, {}
        for _ in range(count):
            n = struct.unpack(">I", raw[pos : pos + 4])[0]
            name = raw[pos + 4 : pos + 4 + n].decode()
            pos += 4 + n
            v = struct.unpack(">I", raw[pos : pos + 4])[0]
            out[name] = raw[pos + 4 : pos + 4 + v].decode()
            pos += 4 + v
        return out

    async def run(self) -> None:
        """Read frames until the peer goes away; each new stream runs on_stream."""
        try:
            while True:
                head = await self._read(8)
                first, second = struct.unpack(">II", head)
                flags, length = second >> 24, second & 0xFFFFFF
                payload = await self._read(length) if length else b""
                if first & 0x80000000:
                    if not await self._control_frame(first & 0xFFFF, flags, payload):
                        return
                else:
                    stream = self.streams.get(first & 0x7FFFFFFF)
                    if stream is not None:
                        stream.feed(payload, bool(flags & FLAG_FIN))
        except (EOFError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            for stream in self.streams.values():
                stream.reset_by_peer()
            self.closed.set()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _control_frame(self, kind: int, flags: int, payload: bytes) -> bool:
        if kind == SYN_STREAM:
            stream_id = struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF
            stream = SpdyStream(self, stream_id, self._headers(payload[10:]))
            self.streams[stream_id] = stream
            if flags & FLAG_FIN:
                stream.feed(b"", True)
            await self.reply(stream_id)
            task = asyncio.create_task(self._on_stream(stream))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif kind == RST_STREAM:
            stream_id = struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF
            found = self.streams.pop(stream_id, None)
            if found is not None:
                found.reset_by_peer()
        elif kind == PING:
            await self._send(self._control(PING, 0, payload))
        elif kind == GOAWAY:
            return False
        elif kind == HEADERS:
            self._headers(payload[4:])  # keep the decompression context in step
        return True
