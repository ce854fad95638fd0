"""`nimble --help`, `plan` and `config` must not import the OCI SDK (it costs ~0.35 s).
Timing itself is measured by benchmarks/cli_startup.py, not here."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = (
    "import sys; from nimble_oke.cli.app import app\n"
    "try:\n    app(sys.argv[1:], prog_name='nimble')\n"
    "except SystemExit:\n    pass\n"
    "heavy = sorted(m for m in ('oci', 'lightkube', 'aiohttp', 'numpy', 'helm_python') if m in sys.modules)\n"
    "print('HEAVY=' + ','.join(heavy), file=sys.stderr)\n"
)


@pytest.mark.parametrize(
    "args",
    [["--help"], ["plan", "--output", "json"], ["config", "schema"], ["config", "validate"]],
)
def test_no_heavy_imports(args: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60
    )
    heavy = next(line for line in out.stderr.splitlines() if line.startswith("HEAVY="))
    assert "oci" not in heavy.removeprefix("HEAVY=").split(","), heavy
    if args == ["--help"]:
        assert heavy == "HEAVY=", heavy
