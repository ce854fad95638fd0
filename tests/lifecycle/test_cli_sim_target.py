"""The sim target across commands: a background simulator service, `nimble up` in one
process and `nimble down` in the next see the same cloud (real subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def nimble(home: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NIMBLE_HOME": str(home)}
    env.pop("NGC_API_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "nimble_oke.cli.app", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.mark.slow
def test_up_in_one_command_down_in_the_next(tmp_path: Path) -> None:
    home = tmp_path / "home"
    try:
        started = nimble(home, "sim", "start", "--time-scale", "1200")
        assert started.returncode == 0, started.stderr
        endpoints = json.loads((home / "sim" / "endpoints.json").read_text())
        assert {"oci", "kube", "kubeconfig", "oci_config", "admin"} <= set(endpoints)
        assert (home / "sim" / "oci" / "config").exists()
        up = nimble(
            home,
            "up",
            "--name",
            "cli",
            "--yes",
            "--no-bench",
            "--hours",
            "24",
            "--budget",
            "200",
            "--output",
            "json",
        )
        assert up.returncode == 0, up.stdout + up.stderr
        result = json.loads(up.stdout)
        assert result["ok"] and result["endpoint"].startswith("http://127.0.0.1:")
        status = json.loads(nimble(home, "status", "--output", "json").stdout)
        assert status[0]["session"] == "cli" and status[0]["status"] == "ready"
        assert status[0]["accrued_usd"] > 0
        dry = json.loads(nimble(home, "sweep", "--dry-run", "--output", "json").stdout)
        assert {r["kind"] for r in dry["resources"]} >= {
            "vcn",
            "cluster",
            "node_pool",
            "load_balancer",
        }
        down = nimble(home, "down", "--name", "cli", "--yes", "--output", "json")
        assert down.returncode == 0, down.stdout + down.stderr
        assert json.loads(down.stdout)["remaining"] == []
        after = json.loads(nimble(home, "sweep", "--dry-run", "--output", "json").stdout)
        assert after["resources"] == []
        cost = json.loads(nimble(home, "cost", "cli", "--output", "json").stdout)
        assert cost["accrued_usd"] > 0 and cost["running_usd_per_hour"] == 0
    finally:
        stopped = nimble(home, "sim", "stop")
        assert stopped.returncode == 0
    assert not (home / "sim" / "endpoints.json").exists()
