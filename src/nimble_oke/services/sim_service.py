"""The simulated cloud as a local background service, so the ``sim`` target outlives one
command: ``nimble up`` in one command and ``nimble down`` in the next see the same
resources. State lives under ``NIMBLE_HOME/sim/`` (the OCI simulator persists its cloud to
``oci-sim/oci-state.json``); the service listens on 127.0.0.1 only.

``serve`` runs in the foreground (``nimble sim serve``); ``start`` spawns it detached and
waits for its ``endpoints.json``; ``stop`` sends SIGTERM and waits; commands on the sim
target call :func:`ensure_running`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from nimble_oke.errors import NimbleError

PID_FILE = "sim.pid"
LOG_FILE = "sim.log"
ENDPOINTS_FILE = "endpoints.json"


class SimServiceError(NimbleError):
    """The simulator service could not start, stop or answer: the sim target's cloud API,
    so the cloud API's exit code (9 is a benchmark FAILED)."""

    exit_code = 5


def state_dir(home: Path) -> Path:
    return home / "sim"


def serve(
    directory: Path,
    *,
    time_scale: float | None,
    faults_file: Path | None = None,
    seed: int | None = None,
    ready: threading.Event | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Run the joined simulators until SIGTERM/SIGINT (or ``stop``)."""
    from nimble_oke.services.sim_tools import product_stack
    from nimble_oke.sim.oci import FaultPlan

    stop = stop or threading.Event()
    in_main = threading.current_thread() is threading.main_thread()
    previous: dict[signal.Signals, Any] = {}
    if in_main:
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    faults = FaultPlan.load(faults_file) if faults_file else None
    endpoints = directory / ENDPOINTS_FILE
    endpoints.unlink(missing_ok=True)
    try:
        with product_stack(directory, time_scale=time_scale, faults=faults, seed=seed) as stack:
            path = stack.write_endpoints()
            data = json.loads(path.read_text())
            for key in ("oci", "kube", "kubeconfig", "oci_config"):
                sys.stdout.write(f"{key:<10} {data[key]}\n")
            sys.stdout.write(f"endpoints  {path}\n")
            sys.stdout.flush()
            if ready is not None:
                ready.set()
            while not stop.wait(0.2):
                pass
    finally:
        endpoints.unlink(missing_ok=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _pid(directory: Path) -> int | None:
    try:
        pid = int((directory / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def status(home: Path) -> dict[str, Any]:
    directory = state_dir(home)
    pid = _pid(directory)
    endpoints = _read_endpoints(directory) if pid else None
    return {
        "running": bool(pid and endpoints),
        "pid": pid,
        "endpoints": endpoints,
        "state_dir": str(directory),
    }


def _read_endpoints(directory: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((directory / ENDPOINTS_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data


def start(
    home: Path, *, time_scale: float | None = None, timeout_s: float = 60.0
) -> dict[str, Any]:
    """Start the service (the event clock, or a scaled one with ``time_scale``)."""
    directory = state_dir(home)
    directory.mkdir(parents=True, exist_ok=True)
    current = status(home)
    if current["running"]:
        return current
    (directory / ENDPOINTS_FILE).unlink(missing_ok=True)
    log = (directory / LOG_FILE).open("ab")
    try:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "nimble_oke.cli.app",
                "sim",
                "serve",
                "--state-dir",
                str(directory),
                *(["--time-scale", str(time_scale)] if time_scale is not None else []),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env={**os.environ, "NIMBLE_HOME": str(home)},
        )
    finally:
        log.close()
    (directory / PID_FILE).write_text(str(proc.pid))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (directory / LOG_FILE).read_text(errors="replace")[-800:]
            raise SimServiceError(
                f"the simulator service exited at start (code {proc.returncode}): {tail}"
            )
        endpoints = _read_endpoints(directory)
        if endpoints and "kube" in endpoints:
            return status(home)
        time.sleep(0.1)
    stop(home)
    raise SimServiceError(
        f"the simulator service did not start within {timeout_s:.0f}s (log: {directory / LOG_FILE})"
    )


def advance(home: Path, hours: float) -> float:
    """Move the running simulator's clock ``hours`` forward (as if the laptop had been
    closed that long); returns the new simulated Unix time."""
    from nimble_oke.errors import ConfigError, StateError
    from nimble_oke.services.sim_clock import SimClockClient

    if not 0 < hours <= 720:
        raise ConfigError(f"--hours {hours}: allowed 0 < hours ≤ 720")
    current = status(home)
    if not current["running"]:
        raise StateError("the simulator is not running (start it with: nimble sim start)")
    clock = SimClockClient(str(current["endpoints"]["admin"]))
    clock.advance(hours * 3600)
    return clock.now()


def stop(home: Path, *, timeout_s: float = 30.0) -> bool:
    directory = state_dir(home)
    pid = _pid(directory)
    if pid is None:
        (directory / PID_FILE).unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
    (directory / PID_FILE).unlink(missing_ok=True)
    return True


def ensure_running(home: Path) -> dict[str, Any]:
    """Endpoints of the running service, starting it first if needed."""
    current = status(home)
    if not current["running"]:
        current = start(home)
    endpoints: dict[str, Any] = current["endpoints"]
    return endpoints
