"""Median wall time of `nimble --help` (target: under 0.3 s on the 2-core dev machine).

Also reports `nimble plan --output json` and `nimble config schema`, and whether any of
them imported the OCI SDK (they must not: `import oci` alone costs ~0.35 s).

Usage: python benchmarks/cli_startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROBE = (
    "import sys; from nimble_oke.cli.app import app\n"
    "try:\n    app(sys.argv[1:], prog_name='nimble')\n"
    "except SystemExit:\n    pass\n"
    "print('OCI_IMPORTED' if 'oci' in sys.modules else 'OCI_NOT_IMPORTED', file=sys.stderr)\n"
)


def _nimble() -> list[str]:
    exe = Path(sys.executable).parent / "nimble"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("nimble")
    return [found] if found else [sys.executable, "-m", "nimble_oke.cli.app"]


def time_command(cmd: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def imports_oci(args: list[str]) -> bool:
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True)
    return "OCI_IMPORTED" in out.stderr


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--output", choices=["table", "json"], default="table")
    args = parser.parse_args()
    nimble = _nimble()
    rows = []
    for label, extra in (
        ("nimble --help", ["--help"]),
        ("nimble plan --output json", ["plan", "--output", "json"]),
        ("nimble config schema", ["config", "schema"]),
    ):
        median = time_command([*nimble, *extra], args.runs)
        rows.append(
            {"command": label, "median_s": round(median, 4), "imports_oci": imports_oci(extra)}
        )
    if args.output == "json":
        print(json.dumps({"runs": args.runs, "target_help_s": 0.3, "results": rows}, indent=2))
        return
    print(f"CLI start-up, median of {args.runs} runs (target: nimble --help < 0.3 s)")
    for row in rows:
        print(
            f"  {row['command']:<28} {row['median_s'] * 1000:7.1f} ms   imports oci: {row['imports_oci']}"
        )


if __name__ == "__main__":
    main()
