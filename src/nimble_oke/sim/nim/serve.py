"""Run one NIM emulator in the foreground: ``nimble sim nim``, ``python -m nimble_oke.sim.nim``."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from nimble_oke.ngc_keys import throwaway_key
from nimble_oke.sim.nim.coldstart import warm_cache
from nimble_oke.sim.nim.server import NimEmulator
from nimble_oke.sim.nim.settings import NimSettings

# A key that passes the emulator's format check: `--warm` and local demos need no real key.


def _write_line(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def build_settings(
    *,
    model: str | None,
    gpu: str,
    gpu_count: int = 1,
    engine: str,
    warm: bool,
    cache_path: str | Path | None,
    time_scale: float = 1.0,
    zero_delay: bool = False,
    ngc_api_key: str | None = None,
    port: int = 8000,
    nim_release: str | None = None,
) -> NimSettings:
    """Settings for a foreground emulator. ``warm`` makes start-up instant: the model files
    are written into the cache first (as if a previous run had downloaded them) and the
    load/engine phases do not wait. Serving keeps its performance model."""
    env = {"NIM_SERVER_PORT": str(port)}
    if cache_path:
        env["NIM_CACHE_PATH"] = str(cache_path)
    if ngc_api_key:
        env["NGC_API_KEY"] = ngc_api_key
    elif warm or engine == "llama-cpp":
        env["NGC_API_KEY"] = throwaway_key("demo")
    settings = NimSettings.from_env(
        env,
        model=model,
        gpu=gpu,
        gpu_count=gpu_count,
        time_scale=time_scale,
        engine=engine,
        zero_delay=zero_delay,
        instant_start=warm,
        **({"nim_release": nim_release} if nim_release else {}),
    )
    if warm:
        warm_cache(settings)
    return settings


async def serve_async(
    settings: NimSettings,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    log: Callable[[str], None] = _write_line,
    stop: asyncio.Event | None = None,
    on_started: Callable[[int], None] | None = None,
) -> None:
    """Serve until ``stop`` is set (or SIGINT/SIGTERM)."""
    if settings.engine == "llama-cpp":
        from nimble_oke.sim.nim.upstream import LlamaCppNim

        emulator: NimEmulator = LlamaCppNim(settings, log=log)
    else:
        emulator = NimEmulator(settings, log=log)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    bound = await emulator.start(host, port)
    name = settings.served_model_name
    log(
        f"NIM emulator for {name} on http://{host}:{bound}/v1 "
        f"({settings.gpu}, NIM {settings.nim_release})"
    )
    if on_started is not None:
        on_started(bound)
    try:
        await stop.wait()
    finally:
        await emulator.stop()


def serve_nim(
    host: str = "127.0.0.1",
    port: int = 8000,
    model: str | None = None,
    gpu: str = "A10",
    engine: str = "emulator",
    warm: bool = False,
    cache_path: str | Path | None = None,
    *,
    zero_delay: bool = False,
    nim_release: str | None = None,
) -> None:
    """Blocking: serve one emulated NIM until interrupted (port 0: any free port, logged).
    ``nim_release``: the NIM release to behave as (``1.8.0`` → NIM 1.x; default 2.x)."""
    settings = build_settings(
        model=model,
        gpu=gpu,
        engine=engine,
        warm=warm,
        cache_path=cache_path,
        port=port,
        zero_delay=zero_delay,
        nim_release=nim_release,
    )
    try:
        import uvloop

        runner: Callable[..., None] = uvloop.run
    except ImportError:
        runner = asyncio.run
    runner(serve_async(settings, host, port))
