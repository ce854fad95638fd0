"""The real oci-cli, a second real client of the OCI simulator (the OCI SDK is the first).

Where it comes from: ``NIMBLE_TEST_OCI_CLI`` (an ``oci`` executable), else the venv that
``make tools`` installs into ``.tools/oci-cli``; without either, tests marked
``needs_oci_cli`` are skipped with a reason naming ``make tools``. Each ``oci`` call costs
1-2 s of Python start-up: batch the calls a test makes, and run independent ones with
:meth:`OciCli.many`.
"""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nimble_oke.sim.oci import OciSimulator

REPO = Path(__file__).resolve().parents[1]
ENV_VAR = "NIMBLE_TEST_OCI_CLI"
TOOLS_OCI = REPO / ".tools" / "oci-cli" / "bin" / "oci"


def locate() -> Path | None:
    """The oci executable to test with, or None."""
    explicit = os.environ.get(ENV_VAR)
    if explicit:
        return Path(explicit)
    return TOOLS_OCI if TOOLS_OCI.is_file() and os.access(TOOLS_OCI, os.X_OK) else None


# read at import: the autouse fixture of tests/conftest.py clears NIMBLE_* before each test
OCI_CLI = locate()
SKIP_REASON = (
    "no oci-cli: `make tools` installs it into .tools/oci-cli "
    f"(or set {ENV_VAR}=<path to an oci executable>)"
)
needs_oci_cli = pytest.mark.skipif(OCI_CLI is None, reason=SKIP_REASON)


@dataclass
class CliResult:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def data(self) -> Any:
        assert self.returncode == 0, f"oci {' '.join(self.args)}: {self.stderr}"
        return json.loads(self.stdout)["data"] if self.stdout.strip() else None

    def error(self) -> dict[str, Any]:
        """The service error the CLI printed (``ServiceError:`` / ``TransientServiceError:``
        then a JSON object), plus ``kind``: the printed exception name."""
        assert self.returncode != 0, f"oci {' '.join(self.args)} succeeded: {self.stdout}"
        start = self.stderr.find("{")
        assert start >= 0, self.stderr
        kind = self.stderr[:start].strip().splitlines()[-1].rstrip(":")
        body: dict[str, Any] = json.loads(self.stderr[start : self.stderr.rindex("}") + 1])
        return {**body, "kind": kind}


class OciCli:
    """``oci`` pointed at a simulator: its config file and endpoint, an empty HOME (no
    ``~/.oci/oci_cli_rc`` defaults leak in)."""

    def __init__(self, sim: OciSimulator, home: Path) -> None:
        assert OCI_CLI is not None, SKIP_REASON
        self.binary = OCI_CLI
        self.sim = sim
        self.config = sim.write_config_file()
        home.mkdir(parents=True, exist_ok=True)
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(home),
            "LC_ALL": "C.UTF-8",
            "OCI_CLI_SUPPRESS_FILE_PERMISSIONS_WARNING": "True",
            "SUPPRESS_LABEL_WARNING": "True",
        }

    def argv(self, *args: str) -> list[str]:
        head = [str(self.binary), "--config-file", str(self.config)]
        return [*head, "--endpoint", self.sim.endpoint, *args]

    def run(self, *args: str, timeout: float = 180) -> CliResult:
        done = subprocess.run(
            self.argv(*args),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env,
            check=False,
        )
        return CliResult(args, done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str) -> Any:
        return self.run(*args).data()

    def many(self, *commands: tuple[str, ...]) -> list[CliResult]:
        """Run independent commands at once (results in the order given)."""
        with ThreadPoolExecutor(max_workers=min(4, len(commands))) as pool:
            return list(pool.map(lambda c: self.run(*c), commands))
