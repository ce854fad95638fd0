"""The ``curlimages/curl`` image: the pod's command runs in the host's real ``sh`` with the
host's real ``curl`` (the image is just those two), so the chart's ``helm test`` scripts
run for real against the simulated NIM.

Isolation, as far as a local simulator goes: a scratch working directory, only the pod's
environment (plus PATH), real time (curl's ``--max-time`` is wall-clock). Cluster DNS is
emulated by an HTTP forward proxy the container's ``http_proxy`` points at: it resolves
``svc``, ``svc.ns``, ``svc.ns.svc[.cluster.local]`` to the Service's local forwarder and
refuses every other host (the simulator sends no traffic off this machine), as a cluster
without egress would."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from urllib.parse import urlsplit

from .images import ContainerContext, TaskContainer, missing_executable
from .streams import ExecResult

CURL_IMAGE_BYTES = 12_600_000  # curlimages/curl 8.x, compressed (Docker Hub)
_HOP_BY_HOP = {"proxy-connection", "proxy-authorization", "connection", "keep-alive"}


def host_tools_available() -> bool:
    return shutil.which("sh") is not None and shutil.which("curl") is not None


class ClusterProxy:
    """An HTTP/1.1 forward proxy (absolute-form requests, one per connection)."""

    def __init__(self, ctx: ContainerContext) -> None:
        self.ctx = ctx
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def _target(self, host: str, port: int) -> tuple[str, int] | None:
        if self.ctx.resolve is not None:
            resolved = self.ctx.resolve(host, port)
            if resolved != (host, port):
                return resolved
        return None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._proxy(reader, writer)
        except (ConnectionError, OSError, ValueError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _proxy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        method, target, version = (await reader.readline()).decode("latin-1").split()
        headers: list[str] = []
        while (line := (await reader.readline()).decode("latin-1")) not in ("\r\n", "\n", ""):
            if line.split(":", 1)[0].strip().lower() not in _HOP_BY_HOP:
                headers.append(line.rstrip("\r\n"))
        url = urlsplit(target)
        host, port = url.hostname or "", url.port or 80
        upstream = self._target(host, port) if method != "CONNECT" else None
        if upstream is None:
            body = f"Could not resolve host: {host}\n".encode()
            writer.write(
                f"{version} 502 Bad Gateway\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
            return
        up_reader, up_writer = await asyncio.open_connection(*upstream)
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        head = [f"{method} {path} {version}", *headers, "Connection: close", "", ""]
        up_writer.write("\r\n".join(head).encode("latin-1"))
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            up_writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


class HostShellContainer(TaskContainer):
    def __init__(self, ctx: ContainerContext) -> None:
        self.ctx = ctx
        self.proxy = ClusterProxy(ctx)
        self._task: asyncio.Task[int] | None = None
        self._scratch = tempfile.TemporaryDirectory(prefix="nimble-sim-sh-")

    def _argv(self, argv: list[str]) -> list[str]:
        return argv or ["curl", "--help"]  # the image's default command

    def _env(self) -> dict[str, str]:
        proxy = f"http://127.0.0.1:{self.proxy.port}"
        return {
            **self.ctx.env,
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self._scratch.name,
            "http_proxy": proxy,
            "HTTP_PROXY": proxy,
            "no_proxy": "",
        }

    async def start(self) -> int | None:
        await self.proxy.start()
        argv = self._argv(self.ctx.command + self.ctx.args)
        self._task = asyncio.create_task(self._run(argv))
        return None

    async def _run(self, argv: list[str]) -> int:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=self._scratch.name,
            env=self._env(),
        )
        try:
            assert proc.stdout is not None
            while line := await proc.stdout.readline():
                self.ctx.log(line.decode(errors="replace").rstrip("\n"))
            return await proc.wait()
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise

    async def exec_command(self, argv: list[str], stdin: bytes | None) -> ExecResult:
        from .streams import ExecError

        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=self._scratch.name,
                env=self._env(),
            )
        except (FileNotFoundError, PermissionError) as exc:
            raise ExecError(missing_executable(argv)) from exc
        out, err = await proc.communicate(stdin or b"")
        return ExecResult(proc.returncode or 0, out, err)

    async def stop(self) -> None:
        await super().stop()
        await self.proxy.close()
        self._scratch.cleanup()
