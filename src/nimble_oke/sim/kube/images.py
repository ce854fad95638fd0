"""Container images as local code: a registry from image reference to a container factory.

A container is an object with ``async start() -> int | None`` (the real local HTTP port it
serves, if any), ``async wait() -> int`` (exit code) and ``async stop()``; optionally
``required_memory_bytes`` (for OOMKilled) and ``async exec(argv) -> int`` (exec probes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from nimble_oke.sim.clock import SCHEDULED, SimClock

if TYPE_CHECKING:
    from nimble_oke.sim.nim import NimSettings

# NIM images are not published with a size; ≈12 GB assumed (calibration.md, "NIM image size").
NIM_IMAGE_BYTES = 12_000_000_000
BUSYBOX_IMAGE_BYTES = 4_300_000
HTTP_ECHO_IMAGE_BYTES = 12_000_000
PAUSE_LIKE_IMAGE_BYTES = 50_000_000


@dataclass
class ContainerContext:
    """Everything a factory needs to build one container instance."""

    image: str
    name: str
    pod: str
    namespace: str
    env: dict[str, str]
    command: list[str]
    args: list[str]
    mounts: dict[str, Path]  # container mount path -> host directory
    ports: list[int]  # declared containerPorts
    clock: SimClock
    log: Callable[[str], None]
    gpu: str | None = None  # GPU model of the node (e.g. "A10")
    gpu_count: int = 0
    resolve: Callable[[str, int], tuple[str, int]] | None = None  # in-cluster host:port
    extra: dict[str, Any] = field(default_factory=dict)

    def mount_bytes_per_s(self, container_path: str) -> float | None:
        """Throughput of the block volume mounted at (or above) ``container_path``, or
        None when no block volume backs it (kubelet's ``mount_bytes_per_s``)."""
        rates: dict[str, float] = self.extra.get("mount_bytes_per_s") or {}
        mount = max(
            (m for m in rates if container_path.startswith(m.rstrip("/"))), key=len, default=None
        )
        return None if mount is None else rates[mount]

    def host_path(self, container_path: str) -> Path | None:
        """Translate a path inside the container to the host directory backing it."""
        best = ""
        for mount in self.mounts:
            if (
                container_path == mount or container_path.startswith(mount.rstrip("/") + "/")
            ) and len(mount) > len(best):
                best = mount
        if not best:
            return None
        rest = container_path[len(best) :].lstrip("/")
        return self.mounts[best] / rest if rest else self.mounts[best]


class Container(Protocol):
    async def start(self) -> int | None: ...

    async def wait(self) -> int: ...

    async def stop(self) -> None: ...


Factory = Callable[[ContainerContext], Container]
Matcher = Callable[[str], bool]


@dataclass
class ImageEntry:
    match: Matcher
    factory: Factory
    size_bytes: int
    name: str


class ImageRegistry:
    """Later registrations win, so a project image can override a built-in."""

    def __init__(self) -> None:
        self._entries: list[ImageEntry] = []

    def register(
        self,
        match: Matcher | str,
        factory: Factory,
        *,
        size_bytes: int = 50_000_000,
        name: str = "",
    ) -> None:
        if isinstance(match, str):
            prefix = match
            matcher: Matcher = lambda image: image.startswith(prefix)  # noqa: E731
        else:
            matcher = match
        self._entries.insert(0, ImageEntry(matcher, factory, size_bytes, name or str(match)))

    def lookup(self, image: str) -> ImageEntry | None:
        for entry in self._entries:
            if entry.match(image):
                return entry
        return None


def normalize(image: str) -> str:
    """Docker's reference normalisation: ``busybox`` -> ``docker.io/library/busybox:latest``."""
    name, _, digest = image.partition("@")
    first = name.split("/", 1)[0]
    if "/" not in name or ("." not in first and ":" not in first and first != "localhost"):
        name = "docker.io/" + (name if "/" in name else "library/" + name)
    if ":" not in name.rsplit("/", 1)[-1] and not digest:
        name += ":latest"
    return name + ("@" + digest if digest else "")


def registry_of(image: str) -> str:
    return normalize(image).split("/", 1)[0]


class TaskContainer:
    """A container whose process is one asyncio task (``self._task``, set by ``start``):
    its exit code is the task's result; stopping cancels it."""

    _task: asyncio.Task[int] | None = None

    async def wait(self) -> int:
        assert self._task is not None
        return await asyncio.shield(self._task)

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


# --- built-in: busybox-like command runner ---------------------------------------------------
class CommandContainer(TaskContainer):
    """Runs a tiny shell vocabulary: ``sleep N``, ``echo ...``, ``exit N``, ``true``,
    ``false``, ``touch PATH``, ``cat PATH``, ``test -f|-d|-e PATH``, joined by ``;``, ``&&``,
    newlines. Time is simulated (``sleep 60`` takes 60 simulated seconds). Its filesystem is
    its volume mounts: ``kubectl exec`` runs the same vocabulary, plus ``tar`` for
    ``kubectl cp`` into and out of mounted volumes."""

    SHELLS = ("sh", "/bin/sh", "bash", "/bin/bash")
    COMMANDS = ("sleep", "echo", "exit", "true", "false", "touch", "cat", "test", "tar", "ls")

    def __init__(self, ctx: ContainerContext) -> None:
        self.ctx = ctx
        self._task: asyncio.Task[int] | None = None

    async def start(self) -> int | None:
        self._task = asyncio.create_task(self._run_script(self._script(), _Io(self.ctx.log)))
        return None

    def _script(self) -> str:
        argv = self.ctx.command + self.ctx.args
        if len(argv) >= 3 and argv[0] in self.SHELLS and argv[1] == "-c":
            return argv[2]
        return shlex.join(argv) if argv else "true"

    async def exec_command(self, argv: list[str], stdin: bytes | None) -> Any:
        """``kubectl exec``: a shell script, or one command of the vocabulary."""
        from .streams import ExecError, ExecResult

        if argv and argv[0] in self.SHELLS:
            script = argv[2] if len(argv) >= 3 and argv[1] == "-c" else "true"
        elif argv and argv[0].rsplit("/", 1)[-1] in self.COMMANDS:
            script = shlex.join(argv)
        else:
            raise ExecError(missing_executable(argv))
        io = _Io(None, stdin or b"")
        code = await self._run_script(script, io)
        return ExecResult(code, bytes(io.stdout), bytes(io.stderr))

    async def _run_script(self, script: str, io: _Io) -> int:
        for line in script.replace("&&", "\n").replace(";", "\n").splitlines():
            words = shlex.split(line.strip())
            if not words:
                continue
            code = await self._command(words, io)
            if code is not None:
                return code
        return 0

    async def _command(self, words: list[str], io: _Io) -> int | None:
        cmd, rest = words[0].rsplit("/", 1)[-1], words[1:]
        if cmd == "sleep":
            clock = self.ctx.clock
            # a process sleeping is not provisioning: the event clock does not jump for it
            await clock.wait_until(clock.now() + (float(rest[0]) if rest else 0), kind=SCHEDULED)
        elif cmd == "echo":
            io.out(" ".join(self.ctx.env.get(w[1:], "") if w.startswith("$") else w for w in rest))
        elif cmd == "exit":
            return int(rest[0]) if rest else 0
        elif cmd == "false":
            return 1
        elif cmd in ("touch", "cat", "test", "ls"):
            return self._file_command(cmd, rest, io)
        elif cmd == "tar":
            return _tar(self.ctx, rest, io)
        elif cmd != "true":
            io.err(f"sh: {cmd}: not found")
            return 127
        return None

    def _file_command(self, cmd: str, rest: list[str], io: _Io) -> int | None:
        target = self.ctx.host_path(rest[-1]) if rest else None
        if cmd == "touch" and target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
        elif cmd == "cat":
            if target is None or not target.is_file():
                io.err(f"cat: can't open '{rest[-1] if rest else ''}': No such file or directory")
                return 1
            for text in target.read_text().splitlines():
                io.out(text)
        elif cmd == "ls":
            if target is None or not target.exists():
                io.err(f"ls: {rest[-1] if rest else '.'}: No such file or directory")
                return 1
            for entry in sorted(target.iterdir()) if target.is_dir() else [target]:
                io.out(entry.name)
        elif cmd == "test":
            flag = rest[0] if len(rest) > 1 else "-e"
            ok = target is not None and (
                target.is_dir()
                if flag == "-d"
                else target.is_file()
                if flag == "-f"
                else target.exists()
            )
            return None if ok else 1
        return None


class _Io:
    """Where a script's output goes: the container log, or captured for an exec."""

    def __init__(self, log: Callable[[str], None] | None, stdin: bytes = b"") -> None:
        self.log = log
        self.stdin = stdin
        self.stdout = bytearray()
        self.stderr = bytearray()

    def out(self, line: str) -> None:
        if self.log is not None:
            self.log(line)
        else:
            self.stdout += (line + "\n").encode()

    def err(self, line: str) -> None:
        if self.log is not None:
            self.log(line)
        else:
            self.stderr += (line + "\n").encode()

    def out_bytes(self, data: bytes) -> None:
        self.stdout += data


def _tar(ctx: ContainerContext, args: list[str], io: _Io) -> int:
    """``tar cf - PATH`` and ``tar -xmf - [-C DIR]`` (what kubectl cp runs), on the
    container's mounted volumes; anywhere else the path does not exist."""
    import io as pyio
    import tarfile

    flags = "".join(a.lstrip("-") for a in args if a.startswith("-") and not a.startswith("--"))
    flags += "".join(a for a in args[:1] if not a.startswith("-"))
    if "c" in flags:
        src = args[-1]
        host = ctx.host_path(src)
        if host is None or not host.exists():
            io.err(f"tar: {src.lstrip('/')}: Cannot stat: No such file or directory")
            io.err("tar: Exiting with failure status due to previous errors")
            return 2
        buffer = pyio.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            archive.add(host, arcname=src.lstrip("/"))
        io.out_bytes(buffer.getvalue())
        return 0
    if "x" in flags:
        dest = args[args.index("-C") + 1] if "-C" in args else "/"
        host = ctx.host_path(dest)
        if host is None:
            io.err(f"tar: {dest}: Cannot open: Read-only file system")
            return 2
        with tarfile.open(fileobj=pyio.BytesIO(io.stdin), mode="r") as archive:
            archive.extractall(host, filter="data")
        return 0
    io.err("tar: You must specify one of the '-Acdtrux', '--delete' or '--test-label' options")
    return 2


def missing_executable(argv: list[str]) -> str:
    """The container runtime's error for a command the image does not have (the simulator
    models no filesystem for images it only emulates)."""
    name = argv[0] if argv else ""
    return (
        "OCI runtime exec failed: exec failed: unable to start container process: exec: "
        f'"{name}": executable file not found in $PATH: unknown'
    )


# --- built-in: HTTP echo server --------------------------------------------------------------
class HttpEchoContainer:
    """An HTTP server: ``/`` echoes pod and request as JSON, ``/healthz`` is 200 once ready.

    Env (simulated seconds): ``READY_AFTER_SECONDS`` (503 until then; when ``CACHE_DIR`` is
    set and holds ``ready.marker`` from an earlier run, it is ready at once — a stand-in for
    a model cache), ``EXIT_AFTER_SECONDS`` + ``EXIT_CODE``, ``MEMORY_BYTES`` (what the
    process needs; above the memory limit it gets OOMKilled)."""

    def __init__(self, ctx: ContainerContext) -> None:
        self.ctx = ctx
        self._runner: web.AppRunner | None = None
        self._exit: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._tasks: list[asyncio.Task[None]] = []
        self._ready_at = 0.0
        self.required_memory_bytes = int(ctx.env.get("MEMORY_BYTES", "0") or 0)

    def _cache_marker(self) -> Path | None:
        cache = self.ctx.env.get("CACHE_DIR")
        host = self.ctx.host_path(cache) if cache else None
        return host / "ready.marker" if host else None

    async def start(self) -> int | None:
        delay = float(self.ctx.env.get("READY_AFTER_SECONDS", "0") or 0)
        marker = self._cache_marker()
        if marker is not None and marker.exists():
            self.ctx.log("cache hit: ready.marker found, skipping warm-up")
            delay = 0.0
        self._ready_at = self.ctx.clock.now() + delay
        app = web.Application()
        app.router.add_get("/healthz", self._health)
        app.router.add_get("/{tail:.*}", self._echo)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        port = int(sockets[0].getsockname()[1])
        self.ctx.log(f"listening on :{self.ctx.ports[0] if self.ctx.ports else port}")
        if marker is not None and delay > 0:
            self._tasks.append(asyncio.create_task(self._write_marker(marker, delay)))
        exit_after = self.ctx.env.get("EXIT_AFTER_SECONDS")
        if exit_after:
            self._tasks.append(asyncio.create_task(self._exit_later(float(exit_after))))
        return port

    async def _write_marker(self, marker: Path, delay: float) -> None:
        await self.ctx.clock.wait_until(self.ctx.clock.now() + delay)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("ready\n")
        self.ctx.log("warm-up complete, cache written")

    async def _exit_later(self, seconds: float) -> None:
        await self.ctx.clock.wait_until(self.ctx.clock.now() + seconds, kind=SCHEDULED)
        if not self._exit.done():
            self._exit.set_result(int(self.ctx.env.get("EXIT_CODE", "0") or 0))

    async def _health(self, _request: web.Request) -> web.Response:
        if self.ctx.clock.now() < self._ready_at:
            return web.Response(status=503, text="warming up")
        return web.Response(text="ok")

    async def _echo(self, request: web.Request) -> web.Response:
        body = {
            "pod": self.ctx.pod,
            "namespace": self.ctx.namespace,
            "path": request.path,
            "method": request.method,
        }
        return web.Response(text=json.dumps(body), content_type="application/json")

    async def wait(self) -> int:
        return await asyncio.shield(self._exit)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if not self._exit.done():
            self._exit.set_result(143)


# --- built-in: NVIDIA NIM (the emulator in nimble_oke.sim.nim) ---------------------------------
def nim_settings(ctx: ContainerContext, **extra: Any) -> NimSettings:
    """NimSettings of a container of the NIM image: NIM_CACHE_PATH is translated to the
    host directory of the volume mounted there (the model cache PVC)."""
    from nimble_oke.sim.nim import NimSettings

    env = dict(ctx.env)
    cache_path = env.get("NIM_CACHE_PATH", "/opt/nim/.cache")
    cache = ctx.host_path(cache_path)
    if cache is not None:
        env["NIM_CACHE_PATH"] = str(cache)
    else:
        env.pop("NIM_CACHE_PATH", None)  # no volume: a private, throw-away cache
    return NimSettings.from_env(
        env,
        gpu=ctx.gpu or "A10",
        gpu_count=max(1, ctx.gpu_count),
        time_scale=ctx.clock.scale,
        image=ctx.image,
        **{**_cache_volume_speed(ctx, cache_path), **extra},
    )


class NimContainer(TaskContainer):
    """Runs :class:`nimble_oke.sim.nim.NimEmulator` (the NIM server) with
    :func:`nim_settings`."""

    def __init__(self, ctx: ContainerContext) -> None:
        from nimble_oke.sim.nim import NimEmulator

        settings = nim_settings(ctx)
        self.emulator = NimEmulator(settings, clock=ctx.clock, log=ctx.log)
        self.required_memory_bytes = self.emulator.required_memory_bytes

    async def start(self) -> int | None:
        port = await self.emulator.start("127.0.0.1", 0)
        self._task = asyncio.create_task(self._wait_failed())
        return port

    async def _wait_failed(self) -> int:
        await self.emulator.wait_ready()
        if self.emulator.phase == "failed":
            return 1
        await asyncio.Event().wait()  # runs until stopped
        return 0

    async def stop(self) -> None:
        await super().stop()
        await self.emulator.stop()


class NimDownloadContainer(TaskContainer):
    """NIM's ``download-to-cache`` utility (``-p/--profiles PROFILE``, else
    NIM_MODEL_PROFILE, else automatic selection, which needs a GPU): fills NIM_CACHE_PATH
    like a server's cold start and exits 0; 1 on a NIM error, 2 on a usage error."""

    USAGE = "usage: download-to-cache [-h] [--profiles [PROFILES ...]]"

    def __init__(self, ctx: ContainerContext, argv: list[str]) -> None:
        self.ctx = ctx
        self.argv = argv
        self._task: asyncio.Task[int] | None = None

    def _profiles(self) -> list[str]:
        """The profiles named on the command line (argparse ``nargs="*"`` semantics)."""
        profiles: list[str] = []
        collecting = False
        unknown: list[str] = []
        for word in self.argv:
            if word in ("-p", "--profiles", "--profile"):
                collecting = True
            elif word.startswith(("--profiles=", "--profile=")):
                profiles.append(word.split("=", 1)[1])
                collecting = False
            elif collecting and not word.startswith("-"):
                profiles.append(word)
            else:
                unknown.append(word)
        if unknown:
            raise ValueError(" ".join(unknown))
        return profiles

    async def start(self) -> int | None:
        self._task = asyncio.create_task(self._run())
        return None

    async def _run(self) -> int:
        from nimble_oke.sim.nim.coldstart import ColdStart, ColdStartError, format_log

        clock = self.ctx.clock

        def log(level: str, source: str, message: str) -> None:
            for n, line in enumerate(message.splitlines()):
                self.ctx.log(format_log(clock, level, source, line) if n == 0 else line)

        try:
            profiles = self._profiles()
        except ValueError as exc:
            self.ctx.log(self.USAGE)
            self.ctx.log(f"download-to-cache: error: unrecognized arguments: {exc}")
            return 2
        from nimble_oke.sim.nim.settings import precision_from_profile

        visible = self.ctx.gpu is not None and self.ctx.gpu_count > 0
        pinned: list[dict[str, Any]] = [
            {"model_profile": p, "precision": precision_from_profile(p)} for p in profiles
        ]
        for extra in pinned or [{}]:  # no --profiles: NIM_MODEL_PROFILE, else automatic
            try:
                settings = nim_settings(self.ctx, **extra)
            except ValueError as exc:  # e.g. an unknown GPU: the process dies at start
                log("ERROR", "utils.py:21", f"{type(exc).__name__}: {exc}")
                return 1
            cold = ColdStart(settings, clock, log, lambda _phase: None)
            try:
                await cold.download_only(gpu_visible=visible)
            except ColdStartError as exc:
                log("ERROR", "utils.py:21", str(exc))
                return 1
            finally:
                if settings.remove_cache_on_stop:  # no volume: the cache dies with the container
                    shutil.rmtree(settings.cache_path, ignore_errors=True)
        return 0


# Entry points of the NIM image other than its shell (NIM docs, "Utilities"; nim.md).
NIM_DOWNLOAD_TOOLS = ("download-to-cache", "nim_download_to_cache")
NIM_SERVER_TOOLS = ("start_server.sh", "start-server", "nim_llm")


def nim_image(ctx: ContainerContext) -> Container:
    """A container of the NIM image runs what its command says, as the real image does:
    nothing (the image's own command) -> the NIM server; ``download-to-cache`` -> NIM's
    downloader; anything else (``true``, ``sh -c ...``) -> a shell command, e.g. an image
    pre-pull pod. Without a command, ``args`` replace the image's command."""
    argv = ctx.command + ctx.args if ctx.command else list(ctx.args)
    tool = argv[0].rsplit("/", 1)[-1] if argv else ""
    if not argv or tool in NIM_SERVER_TOOLS:
        return NimContainer(ctx)
    if tool in NIM_DOWNLOAD_TOOLS:
        return NimDownloadContainer(ctx, argv[1:])
    return CommandContainer(ctx)


class PauseContainer:
    """Does nothing until stopped (the pause image, device plugins, agents)."""

    def __init__(self, ctx: ContainerContext) -> None:
        self.ctx = ctx
        self._stopped = asyncio.Event()

    async def start(self) -> int | None:
        return None

    async def wait(self) -> int:
        await self._stopped.wait()
        return 0

    async def stop(self) -> None:
        self._stopped.set()


def needs_credentials(image: str) -> bool:
    """NIM images on nvcr.io are gated by NGC entitlement; public NVIDIA images are not."""
    ref = normalize(image)
    return ref.startswith("nvcr.io/nim/") or ref.startswith("nvcr.io/nvidia/nim/")


def _cache_volume_speed(ctx: ContainerContext, cache_path: str) -> dict[str, Any]:
    """NimSettings overrides: weights load at the cache volume's throughput, and the
    download cannot write faster than the volume either (calibration.md: "model as
    min(NIC, volume write cap, ...)"). Explicit ``nim_overrides`` win."""
    overrides: dict[str, Any] = {}
    rate = ctx.mount_bytes_per_s(cache_path)
    if rate is not None:
        from nimble_oke.sim.nim.settings import DEFAULT_DOWNLOAD_BYTES_PER_S

        overrides["load_bytes_per_s"] = rate
        overrides["download_bytes_per_s"] = min(rate, DEFAULT_DOWNLOAD_BYTES_PER_S)
    explicit = dict(ctx.extra.get("nim_overrides") or {})
    if "download_bytes_per_s" in explicit and rate is not None:
        explicit["download_bytes_per_s"] = min(explicit["download_bytes_per_s"], rate)
    overrides.update(explicit)
    return overrides


UNEMULATED = "unemulated"


class InertContainer(PauseContainer):
    """An image the simulator has no emulation for: pulled, then Running and doing
    nothing (no process output, no open port) until stopped; the kubelet says so in a
    Warning event on the pod."""
