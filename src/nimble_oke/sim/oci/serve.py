"""Run the OCI simulator as a long-lived process (``nimble sim serve`` wires this in).

Writes ``endpoints.json`` (merged with other simulators' keys) and a ready-to-use OCI
config file ``oci/config`` + key pair into ``state_dir``, prints the endpoints, runs until
SIGTERM/SIGINT, then stops and saves ``oci-state.json``.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import signal
import sys
import threading
from pathlib import Path

from nimble_oke.sim.oci.faults import FaultPlan
from nimble_oke.sim.oci.simulator import OciSimulator

ENDPOINTS_FILE = "endpoints.json"


def write_endpoints(state_dir: Path, sim: OciSimulator) -> Path:
    """Merge our keys into endpoints.json (other simulators add theirs); an flock on
    ``endpoints.json.lock`` serialises writers that use the same convention."""
    path = state_dir / ENDPOINTS_FILE
    with open(state_dir / f"{ENDPOINTS_FILE}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(path.read_text()) if path.exists() else {}
        data["oci"] = sim.endpoint
        data["oci_regions"] = dict(sim.endpoints)
        data["oci_config"] = str(state_dir / "oci" / "config")
        tmp = path.with_suffix(".oci.tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(path)
    return path


def serve(
    state_dir: str | Path,
    host: str = "127.0.0.1",
    port: int = 0,
    time_scale: float = 600.0,
    faults_file: str | Path | None = None,
    seed: int | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT (must be called from the main thread)."""
    state_dir = Path(state_dir)
    plan = FaultPlan.load(faults_file) if faults_file else FaultPlan()
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    sim = OciSimulator(
        state_dir, time_scale=time_scale, faults=plan, seed=seed, host=host, port=port
    )
    try:
        sim.start()
        config = sim.write_config_file()
        write_endpoints(state_dir, sim)
        sys.stdout.write(f"oci {sim.endpoint}\n")
        for region, url in sim.endpoints.items():
            sys.stdout.write(f"oci[{region}] {url}\n")
        sys.stdout.write(f"config {config}\n")
        sys.stdout.flush()
        while not stop.wait(0.2):
            pass
    finally:
        sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the Nimble OKE OCI API simulator")
    parser.add_argument("state_dir")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--time-scale", type=float, default=600.0)
    parser.add_argument("--faults", default=None)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    serve(args.state_dir, args.host, args.port, args.time_scale, args.faults, args.seed)


if __name__ == "__main__":
    main()
