"""The sim target across commands: a background simulator service, `nimble up` in one
process and `nimble down` in the next see the same cloud (real subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
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


def _status(home: Path) -> dict[str, object]:
    done = nimble(home, "status", "--name", "wd", "--output", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    row: dict[str, object] = json.loads(done.stdout)[0]
    return row


@pytest.mark.slow
def test_status_reads_the_watchdog_after_the_laptop_was_closed(tmp_path: Path) -> None:
    """The lease runs out while no nimble command runs (`nimble sim advance`); the in-cluster
    watchdog scales the GPU pool to zero, and the next `status`/`cost` stop counting it."""
    home = tmp_path / "home"
    try:
        assert nimble(home, "sim", "start").returncode == 0
        up = nimble(
            home, "up", "--name", "wd", "--yes", "--no-bench", "--hours", "2", "--budget", "50"
        )
        assert up.returncode == 0, up.stdout + up.stderr
        before = _status(home)
        assert before["watchdog"] is None
        rate = float(before["running_usd_per_hour"])  # type: ignore[arg-type]
        assert rate > 1.0  # a GPU node (A10: $2/h) is billing

        # skip to 10 simulated minutes past the lease's end: the jump plays the watchdog's
        # runs (every 5 minutes in the cluster) in order, and the last before the end acts
        left = float(before["lease_seconds_left"])  # type: ignore[arg-type]
        hours = f"{(left + 600) / 3600:.4f}"
        skipped = nimble(home, "sim", "advance", "--hours", hours)
        assert skipped.returncode == 0 and f"moved {float(hours):g} h" in skipped.stdout, skipped
        deadline = time.monotonic() + 60
        after = _status(home)
        while after["watchdog"] is None and time.monotonic() < deadline:
            time.sleep(0.5)
            after = _status(home)
        assert "scaled the GPU pool wd-gpu to zero at" in str(after["watchdog"]), after
        # at its last check before the end
        assert "lease ends in" in str(after["watchdog"]), after["watchdog"]
        # once the watchdog has acted, no command says "ready" with an endpoint
        assert after["status"] == "stopped by the watchdog" and after["endpoint"] is None
        # the GPU pool stopped billing at enforcement: what accrued since `before` is the
        # lease's remaining hours at the running rate (less ≤ one 5-minute watchdog period:
        # it enforces at its last check before the end; plus the job's run), not the time
        # status was last asked
        assert float(after["running_usd_per_hour"]) < rate - 1.0  # type: ignore[arg-type]
        grown = float(after["accrued_usd"]) - float(before["accrued_usd"])  # type: ignore[arg-type]
        expected = rate * left / 3600
        # (the event clock plays the CronJob at its times: at most one 5-minute period early)
        early = rate * 5.5 / 60
        assert expected - early < grown < expected + rate * 0.1, (grown, expected, after)
        nimble(home, "sim", "advance", "--hours", "0.1667")  # 10 more minutes: no GPU accrues
        later = _status(home)
        slower = float(later["accrued_usd"]) - float(after["accrued_usd"])  # type: ignore[arg-type]
        assert slower < rate / 6 * 0.5, (slower, rate)
        table = nimble(home, "status", "--name", "wd")
        assert "watchdog: the watchdog scaled the GPU pool wd-gpu to zero" in table.stdout
        cost = json.loads(nimble(home, "cost", "wd", "--output", "json").stdout)
        assert cost["watchdog"] == after["watchdog"]
        # the session list agrees with cost (it uses the same accrual, within the control
        # plane and volume cents a second of simulated time adds)
        (listed,) = json.loads(nimble(home, "sessions", "--output", "json").stdout)
        assert listed["accrued_usd"] == pytest.approx(cost["accrued_usd"], abs=0.02)
        assert listed["status"] == cost["status"] == "stopped by the watchdog"
        down = nimble(home, "down", "--name", "wd", "--yes", "--output", "json")
        assert down.returncode == 0, down.stdout + down.stderr
    finally:
        assert nimble(home, "sim", "stop").returncode == 0


def test_sim_advance_refuses_bad_hours_and_a_stopped_simulator(tmp_path: Path) -> None:
    home = tmp_path / "home"
    stopped = nimble(home, "sim", "advance", "--hours", "1")
    assert stopped.returncode != 0 and "not running" in stopped.stderr + stopped.stdout
    assert "Traceback" not in stopped.stderr
    bad = nimble(home, "sim", "advance", "--hours", "-3")
    assert bad.returncode != 0 and "0 < hours ≤ 720" in bad.stderr + bad.stdout
