"""Run the Kubernetes simulator as a long-lived process (``nimble sim serve`` wires it in).

Writes the API URL (key ``kube``) and the kubeconfig path (key ``kubeconfig``) into
``state_dir/endpoints.json``, keeping keys other simulators wrote, then runs until
SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Callable
from pathlib import Path

from nimble_oke.sim.clock import SimClock

from .simulator import KubeSimulator


def write_endpoints(state_dir: Path, values: dict[str, str]) -> Path:
    path = state_dir / "endpoints.json"
    current: dict[str, object] = {}
    if path.exists():
        with contextlib.suppress(ValueError):
            loaded = json.loads(path.read_text())
            current = loaded if isinstance(loaded, dict) else {}
    current.update(values)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


async def serve_async(
    state_dir: Path | str,
    host: str = "127.0.0.1",
    port: int = 0,
    time_scale: float = 60.0,
    stop: asyncio.Event | None = None,
    clock: SimClock | None = None,
    on_ready: Callable[[KubeSimulator], object] | None = None,
) -> None:
    """Serve until ``stop`` is set (or SIGTERM/SIGINT). ``on_ready(kube)`` runs on the
    simulator's loop once it listens: add nodes, register images, join the OCI simulator."""
    state = Path(state_dir)
    state.mkdir(parents=True, exist_ok=True)
    kube = KubeSimulator(state / "kube", clock or SimClock(time_scale), host=host, port=port)
    await kube.astart()
    try:
        kubeconfig = kube.write_kubeconfig(state / "kubeconfig")
        if on_ready is not None:
            on_ready(kube)
        write_endpoints(state, {"kube": kube.url, "kubeconfig": str(kubeconfig)})
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await kube.astop()


def serve(
    state_dir: Path | str, host: str = "127.0.0.1", port: int = 0, time_scale: float = 60.0
) -> None:
    """Blocking entry point: serve until SIGTERM/SIGINT."""
    asyncio.run(serve_async(state_dir, host, port, time_scale))
