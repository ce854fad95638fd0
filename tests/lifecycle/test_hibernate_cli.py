"""`nimble down --hibernate`, `status`, `cost` and `up` as a user runs them: real
subprocesses of the CLI against the background simulator service (event clock)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli_sim_target import nimble

UP = ("up", "--yes", "--no-bench", "--hours", "24", "--budget", "300", "--output", "json")


@pytest.mark.slow
def test_hibernate_status_cost_and_wake_through_the_cli(tmp_path: Path) -> None:
    home = tmp_path / "home"
    try:
        assert nimble(home, "sim", "start").returncode == 0
        # a bare-metal A10 is billed while stopped: refused, one line, exit 2, nothing changed
        bm = nimble(home, *UP, "--name", "bm", "--shape", "BM.GPU.A10.4", timeout=300)
        assert bm.returncode == 0, bm.stdout + bm.stderr
        refused = nimble(home, "down", "--name", "bm", "--hibernate", "--yes")
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "cannot hibernate BM.GPU.A10.4" in refused.stderr
        assert "is_billed_for_stopped_instance=true" in refused.stderr
        assert "Traceback" not in refused.stderr
        status = json.loads(nimble(home, "status", "--name", "bm", "--output", "json").stdout)
        assert status[0]["status"] == "ready"
        assert nimble(home, "down", "--name", "bm", "--yes").returncode == 0

        a10 = nimble(home, *UP, "--name", "a10", "--shape", "VM.GPU.A10.1", timeout=300)
        assert a10.returncode == 0, a10.stdout + a10.stderr
        both = nimble(home, "down", "--name", "a10", "--hibernate", "--keep-cache", "--yes")
        assert both.returncode == 2 and "does not combine" in both.stderr
        slept = nimble(home, "down", "--name", "a10", "--hibernate", "--yes")
        assert slept.returncode == 0, slept.stdout + slept.stderr
        assert "hibernated a10" in slept.stdout and "/day" in slept.stdout
        row = json.loads(nimble(home, "status", "--name", "a10", "--output", "json").stdout)[0]
        assert row["status"] == "hibernated" and row["endpoint"] is None
        assert 0 < row["storage_usd_per_day"] < 2 and "storage only" in row["watchdog"]
        cost = json.loads(nimble(home, "cost", "a10", "--output", "json").stdout)
        assert cost["storage_usd_per_day"] == pytest.approx(row["storage_usd_per_day"])
        assert cost["running_usd_per_hour"] == pytest.approx(
            row["storage_usd_per_day"] / 24, rel=1e-3
        )

        woken = nimble(home, *UP, "--name", "a10", "--shape", "VM.GPU.A10.1", timeout=300)
        assert woken.returncode == 0, woken.stdout + woken.stderr
        assert json.loads(woken.stdout)["wake"] == "hibernated"
        down = nimble(home, "down", "--name", "a10", "--yes", "--output", "json")
        assert down.returncode == 0 and json.loads(down.stdout)["remaining"] == []
    finally:
        assert nimble(home, "sim", "stop").returncode == 0
