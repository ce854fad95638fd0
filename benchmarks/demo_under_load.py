"""`nimble demo`'s measured time to ready against its plan, on an idle machine and on one
whose every core is busy.

The demo runs the real `up` on the simulators' default clock (the event clock): simulated
time jumps over provisioning while the client waits, and runs at real speed while it
computes. A loaded machine makes the client slower in *real* seconds; on a scaled clock
(600×: the old default) each of those seconds became ten simulated minutes (+82-92% over
plan measured on a loaded 2-core machine, issue 15); here they count once.

Usage: python benchmarks/demo_under_load.py [--load-procs N] [--runs N] [--loaded-only]
       [--output json]
The busy-loop processes end by themselves (after --max-load-s) even if this script dies.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

from nimble_oke.services.demo import run_demo

BUSY_LOOP = (
    "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"
)


def busy_loops(count: int, seconds: float) -> list[subprocess.Popen[bytes]]:
    """``count`` processes spinning a core each, for at most ``seconds``."""
    code = BUSY_LOOP.format(seconds=seconds)
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(count)]


def measure(load_procs: int, max_load_s: float) -> dict[str, Any]:
    """One demo (no benchmark phase) with ``load_procs`` busy loops running beside it."""
    loops = busy_loops(load_procs, max_load_s)
    started = time.perf_counter()
    try:
        result = run_demo(echo=None, bench=False)
    finally:
        for proc in loops:
            proc.kill()
            proc.wait(10)
    ready, plan = result["ready_s"], result["plan_ready_s"]
    return {
        "load_procs": load_procs,
        "ok": result["ok"],
        "ready_min": None if ready is None else round(ready / 60, 2),
        "plan_min": round(plan / 60, 2),
        "deviation_pct": None if ready is None else round(100 * (ready - plan) / plan, 1),
        "wall_s": round(time.perf_counter() - started, 1),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--load-procs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--loaded-only", action="store_true")
    parser.add_argument("--max-load-s", type=float, default=300.0)
    parser.add_argument("--output", "-o", choices=["table", "json"], default="table")
    args = parser.parse_args()
    loads = [args.load_procs] if args.loaded_only else [0, args.load_procs]
    rows = [measure(load, args.max_load_s) for load in loads for _ in range(args.runs)]
    if args.output == "json":
        print(json.dumps({"cores": os.cpu_count(), "runs": rows}, indent=2))
        return
    print(f"demo time to ready vs plan, event clock ({os.cpu_count()} cores)")
    print(
        f"  {'busy loops':>10} {'ready min':>9} {'plan min':>8} {'dev':>7} {'wall s':>7} {'load':>5}"
    )
    for r in rows:
        dev = "-" if r["deviation_pct"] is None else f"{r['deviation_pct']:+.1f}%"
        print(
            f"  {r['load_procs']:>10} {r['ready_min'] or 0:>9.2f} {r['plan_min']:>8.2f} {dev:>7}"
            f" {r['wall_s']:>7.1f} {r['load_avg_1m']:>5.2f}{'' if r['ok'] else '  FAILED'}"
        )


if __name__ == "__main__":
    main()
