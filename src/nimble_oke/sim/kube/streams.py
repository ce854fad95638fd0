"""The streaming pod subresources as kubectl 1.33 reaches them, over WebSocket:

- ``pods/portforward``: SPDY/3.1 tunnelled in WebSocket binary messages (subprotocol
  ``SPDY/3.1+portforward.k8s.io``, kubectl's first choice since 1.31). Each forwarded
  connection is a pair of SPDY streams (``streamType`` error and data, same
  ``requestID``); the data stream is piped to the container's real local port, a failure
  to connect is written on the error stream, as the kubelet does.
- ``pods/exec`` and ``pods/attach``: the ``v5.channel.k8s.io`` family (v4 too): one byte of
  channel (0 stdin, 1 stdout, 2 stderr, 3 error/status, 4 resize, 255 close) per binary
  message; the command's exit is reported as a Status on channel 3.

What the container can run is the runtime's business (:class:`PodRuntime`, the kubelet).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Protocol

from aiohttp import WSMsgType, web

from . import apierrors
from .spdy import SpdyConnection, SpdyStream
from .store import Obj

log = logging.getLogger(__name__)

PORT_FORWARD_PROTOCOL = "portforward.k8s.io"
TUNNEL_PREFIX = "SPDY/3.1+"
EXEC_PROTOCOLS = (
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
)
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


@dataclass
class ExecResult:
    exit_code: int
    stdout: bytes = b""
    stderr: bytes = b""


class ExecError(Exception):
    """The runtime could not start the command (the CRI's error, e.g. no such executable)."""


class PodRuntime(Protocol):
    def local_port(self, namespace: str, pod: str, port: int) -> int | None: ...

    async def exec(
        self, namespace: str, pod: str, container: str, argv: list[str], stdin: bytes | None
    ) -> ExecResult: ...


def not_upgraded(message: str) -> apierrors.ApiError:
    return apierrors.bad_request(message)


def require_running(pod: Obj, container: str | None) -> str:
    """The container to stream to; errors as the API server/kubelet answer before upgrading."""
    spec = pod["spec"]
    names = [c["name"] for c in spec.get("containers") or []]
    inits = [c["name"] for c in spec.get("initContainers") or []]
    name = container or (names[0] if len(names) == 1 else "")
    if not name:
        raise apierrors.bad_request(
            f"a container name must be specified for pod {pod['metadata']['name']}, choose one "
            f"of: [{' '.join(names)}]"
        )
    if name not in names + inits:
        raise apierrors.bad_request(
            f"container {name} is not valid for pod {pod['metadata']['name']}"
        )
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise apierrors.bad_request(
            f"cannot exec into a container in a completed pod; current phase is {phase}"
        )
    running = any(
        s.get("name") == name and "running" in (s.get("state") or {})
        for s in (pod.get("status") or {}).get("containerStatuses") or []
    )
    if not running:
        raise apierrors.bad_request(f'container not found ("{name}")')
    return name


# --- port-forward ------------------------------------------------------------------------------
class _WsBytes:
    """A WebSocket whose binary messages carry one byte stream (client-go's tunnelling)."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.buffer = bytearray()

    async def read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            msg = await self.ws.receive()
            if msg.type != WSMsgType.BINARY:
                raise EOFError
            self.buffer += msg.data
        out = bytes(self.buffer[:n])
        del self.buffer[:n]
        return out

    async def write(self, data: bytes) -> None:
        await self.ws.send_bytes(data)


class PortForward:
    def __init__(self, runtime: PodRuntime, pod: Obj) -> None:
        self.runtime = runtime
        self.ns = pod["metadata"]["namespace"]
        self.name = pod["metadata"]["name"]
        self.uid = pod["metadata"]["uid"]
        self.error_streams: dict[str, SpdyStream] = {}
        self.error_arrived: dict[str, asyncio.Event] = {}

    async def serve(self, request: web.Request) -> web.StreamResponse:
        wanted = TUNNEL_PREFIX + PORT_FORWARD_PROTOCOL
        ws = web.WebSocketResponse(protocols=(wanted,), autoping=True)
        await ws.prepare(request)
        if ws.ws_protocol != wanted:
            await ws.close()
            return ws
        pipe = _WsBytes(ws)
        conn = SpdyConnection(pipe.read, pipe.write, self._stream)
        await conn.run()
        await ws.close()
        return ws

    def _event(self, request_id: str) -> asyncio.Event:
        return self.error_arrived.setdefault(request_id, asyncio.Event())

    async def _stream(self, stream: SpdyStream) -> None:
        request_id = stream.headers.get("requestid", "")
        if stream.headers.get("streamtype") == "error":
            self.error_streams[request_id] = stream
            self._event(request_id).set()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event(request_id).wait(), 5)
        error = self.error_streams.pop(request_id, None)
        try:
            await self._forward(stream, error, int(stream.headers.get("port", "0") or 0))
        finally:
            self.error_arrived.pop(request_id, None)
            if error is not None:
                await error.close()

    async def _forward(self, data: SpdyStream, error: SpdyStream | None, port: int) -> None:
        local = self.runtime.local_port(self.ns, self.name, port)
        target = None
        if local is not None:
            with contextlib.suppress(OSError):
                target = await asyncio.open_connection("127.0.0.1", local)
        if target is None:
            if error is not None:
                await error.write(
                    f"error forwarding port {port} to pod {self.uid}, uid : failed to connect "
                    f"to localhost:{port} inside namespace: dial tcp4 127.0.0.1:{port}: "
                    "connect: connection refused".encode()
                )
            await data.close()
            return
        reader, writer = target
        try:
            await asyncio.gather(self._upstream(data, writer), self._downstream(reader, data))
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    async def _upstream(data: SpdyStream, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while chunk := await data.read():
                writer.write(chunk)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()

    @staticmethod
    async def _downstream(reader: asyncio.StreamReader, data: SpdyStream) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while chunk := await reader.read(65536):
                if data.local_closed:
                    return
                await data.write(chunk)
        await data.close()


# --- exec / attach -----------------------------------------------------------------------------
def exit_status(result: ExecResult, argv: list[str]) -> Obj:
    """The Status the kubelet reports on the error channel."""
    if result.exit_code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": (
            f"command terminated with non-zero exit code: error executing command "
            f"[{' '.join(argv)}], exit code {result.exit_code}"
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(result.exit_code)}]},
    }


def internal_status(message: str) -> Obj:
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"Internal error occurred: {message}",
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    }


class Exec:
    def __init__(
        self, runtime: PodRuntime, pod: Obj, container: str, argv: list[str], stdin: bool
    ) -> None:
        self.runtime = runtime
        self.pod = pod
        self.container = container
        self.argv = argv
        self.stdin = stdin

    async def serve(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(protocols=EXEC_PROTOCOLS, autoping=True)
        await ws.prepare(request)
        protocol = ws.ws_protocol or ""
        data = await self._read_stdin(ws, protocol) if self.stdin else None
        meta = self.pod["metadata"]
        try:
            result = await self.runtime.exec(
                meta["namespace"], meta["name"], self.container, self.argv, data
            )
        except ExecError as exc:
            status = internal_status(f"error executing command in container: {exc}")
            await ws.send_bytes(bytes([ERROR]) + json.dumps(status).encode())
            await ws.close()
            return ws
        if result.stdout:
            await ws.send_bytes(bytes([STDOUT]) + result.stdout)
        if result.stderr:
            await ws.send_bytes(bytes([STDERR]) + result.stderr)
        status = exit_status(result, self.argv)
        if protocol.startswith(("v4", "v5")):
            await ws.send_bytes(bytes([ERROR]) + json.dumps(status).encode())
        elif result.exit_code != 0:
            await ws.send_bytes(bytes([ERROR]) + status["message"].encode())
        await ws.close()
        return ws

    @staticmethod
    async def _read_stdin(ws: web.WebSocketResponse, _protocol: str) -> bytes:
        """stdin until the client closes it (v5: a CLOSE message for channel 0)."""
        data = bytearray()
        while True:
            msg = await ws.receive()
            if msg.type != WSMsgType.BINARY or not msg.data:
                return bytes(data)
            channel, payload = msg.data[0], msg.data[1:]
            if channel == STDIN:
                data += payload
            elif channel == CLOSE:
                return bytes(data)
