"""Each exit code of the README's table, triggered through the real CLI, with its one line
on stderr: 2 config/catalog, 3 budget, 4 state, 5 cloud API, 6 Kubernetes, 7 endpoint,
8 benchmark INVALID, 70 internal bug (and 130 for Ctrl-C)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nimble_oke.cli.app import app

runner = CliRunner()


def nimble(
    home: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    base = {**os.environ, "NIMBLE_HOME": str(home)}
    base.pop("NGC_API_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "nimble_oke.cli.app", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**base, **(env or {})},
        stdin=subprocess.DEVNULL,
        check=False,
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("[nimble][ERROR]")]


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_2_config() -> None:
    result = runner.invoke(app, ["plan", "--target", "aws"])
    assert result.exit_code == 2 and result.stdout == ""
    assert error_lines(result.stderr) == [
        "[nimble][ERROR] --target 'aws': must be 'sim' or 'oci' (config key target)"
    ]


def test_2_catalog() -> None:
    result = runner.invoke(app, ["plan", "--model", "meta/llama-3.3-70b-instruct"])
    assert result.exit_code == 2 and len(error_lines(result.stderr)) == 1
    assert "does not fit VM.GPU.A10.1" in result.stderr


def test_3_budget_plan_and_up() -> None:
    from nimble_oke.state.store import StateStore

    plan = runner.invoke(app, ["plan", "--budget", "1"])
    assert plan.exit_code == 3
    assert "estimate $" in plan.stdout  # the plan is still shown
    (line,) = error_lines(plan.stderr)
    assert "budget guard would refuse" in line and "exceeds the budget $1.00" in line
    up = runner.invoke(app, ["up", "--budget", "1", "--yes", "--no-bench"])
    assert up.exit_code == 3 and len(error_lines(up.stderr)) == 1
    with StateStore() as store:
        assert store.sessions() == []  # refused before anything was created


def test_3_not_for_a_plan_that_only_needs_confirmation() -> None:
    """A plan above the confirmation threshold but within budget: `up` would ask (or take
    --yes), so `plan` exits 0 and shows '?' — a script can run `plan && up --yes`."""
    result = runner.invoke(app, ["plan", "--hours", "3", "--output", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["worst_case_usd"] > 5 and data["guard"]["action"] == "confirm"


def test_4_state() -> None:
    result = runner.invoke(app, ["cost", "nope"])
    assert result.exit_code == 4
    assert error_lines(result.stderr) == [
        "[nimble][ERROR] no session named 'nope' (known sessions: none)"
    ]


def test_5_cloud_api(tmp_path: Path) -> None:
    done = nimble(
        tmp_path,
        "sweep",
        "--target",
        "oci",
        "--dry-run",
        env={"NIMBLE_OCI_CONFIG_FILE": str(tmp_path / "missing-oci-config")},
    )
    assert done.returncode == 5, done.stderr
    (line,) = error_lines(done.stderr)
    assert "Could not find config file" in line


def test_5_cloud_sdk_refusing_its_key_file(tmp_path: Path) -> None:
    """The OCI SDK's own exceptions reach the CLI as one line and exit 5, not a bug."""
    config = tmp_path / "oci-config"
    config.write_text(
        "[DEFAULT]\nuser=ocid1.user.oc1..aaaa\nfingerprint=aa:bb\n"
        "tenancy=ocid1.tenancy.oc1..aaaa\nregion=us-ashburn-1\n"
        f"key_file={tmp_path / 'missing.pem'}\n"
    )
    done = nimble(
        tmp_path,
        "sweep",
        "--target",
        "oci",
        "--dry-run",
        env={"NIMBLE_OCI_CONFIG_FILE": str(config)},
    )
    assert done.returncode == 5, done.stderr
    (line,) = error_lines(done.stderr)
    assert "key_file" in line and "internal error" not in line


@pytest.mark.slow
def test_5_up_failing_on_a_cloud_error(tmp_path: Path) -> None:
    """`up` reports its failure on stderr (one line) with the error's exit code; the
    preflight refuses an availability domain the region does not have."""
    try:
        done = nimble(
            tmp_path,
            "up",
            "--yes",
            "--no-bench",
            env={"NIMBLE_GPU_POOL_AVAILABILITY_DOMAINS": "[AD-9]"},
            timeout=240,
        )
    finally:  # up started the simulator service in the background: stop it
        stopped = nimble(tmp_path, "sim", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not (tmp_path / "sim" / "endpoints.json").exists()
    (line,) = error_lines(done.stderr)
    assert line.startswith("[nimble][ERROR] up failed: availability domain 'AD-9'")
    assert done.returncode == 5, done.stdout + done.stderr


def test_6_kubernetes(tmp_path: Path) -> None:
    port = closed_port()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{port}'}}}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
        "users: [{name: u, user: {token: abc}}]\n"
    )
    result = runner.invoke(app, ["troubleshoot", "--kubeconfig", str(kubeconfig)])
    assert result.exit_code == 6, result.output
    assert error_lines(result.stderr) == [
        f"[nimble][ERROR] the Kubernetes API: connection refused at 127.0.0.1:{port} "
        "— is it running?"
    ]


def test_7_endpoint(tmp_path: Path) -> None:
    done = nimble(tmp_path, "bench", "--endpoint", f"http://127.0.0.1:{closed_port()}")
    assert done.returncode == 7, done.stderr
    assert len(error_lines(done.stderr)) == 1 and "internal error" not in done.stderr


def test_7_up_whose_smoke_test_failed_is_an_endpoint_error() -> None:
    """Mapping of a failed up's result: the error kind when given, else today's words."""
    from nimble_oke.cli.session_cmds import up_exit_code

    assert up_exit_code({"ok": False, "error": "smoke test failed: chat, stream"}) == 7
    assert up_exit_code({"ok": False, "error": "interrupted"}) == 130
    assert up_exit_code({"ok": False, "error": "x", "error_kind": "cloud"}) == 5
    assert up_exit_code({"ok": False, "error": "x", "error_kind": "CapacityError"}) == 5
    assert up_exit_code({"ok": False, "error": "x", "exit_code": 6}) == 6
    assert up_exit_code({"ok": False, "error": "x", "exception": RuntimeError("bug")}) == 70


def test_a_failed_up_names_what_it_rolled_back_and_what_is_left() -> None:
    """Resources as the user knows them (issue 21: not raw OCIDs), on one line."""
    from nimble_oke.cli.session_cmds import up_failure_line

    done = ["node pool try1-gpu", "cluster try1"]
    line = up_failure_line({"session": "s", "error": "boom", "rolled_back": done})
    assert line == (
        "up failed: boom · rolled back 2 resources this run created "
        "(node pool try1-gpu, cluster try1)"
    )
    many = [f"subnet s{i}" for i in range(7)]
    line = up_failure_line({"session": "s", "error": "boom", "rolled_back": many})
    assert line.endswith("(subnet s0, subnet s1, subnet s2, subnet s3, +3 more)")
    left = up_failure_line(
        {
            "session": "s",
            "error": "boom",
            "rolled_back": [],
            "rollback_failed": ["vcn try1-vcn: 409 Conflict: the VCN still has subnets"],
        }
    )
    assert left == (
        "up failed: boom · could not remove 1 resource (vcn try1-vcn): nimble down --name s"
    )


@pytest.fixture
def nim_emulator(tmp_path: Path) -> Iterator[str]:
    """`nimble sim nim --warm` in the background (stopped at the end)."""
    port = closed_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "nimble_oke.cli.app", "sim", "nim", "--warm", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "NIMBLE_HOME": str(tmp_path / "home")},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/v1/health/ready", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "emulator did not start"
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(20)


@pytest.mark.slow
def test_8_benchmark_invalid(tmp_path: Path, nim_emulator: str) -> None:
    """An open-loop rate no client can send at: the validity gate marks the run INVALID."""
    done = nimble(
        tmp_path,
        "bench",
        "--endpoint",
        nim_emulator,
        "--rate",
        "1000000",
        "--arrival",
        "constant",
        "--requests",
        "100",
        "--output-tokens",
        "2",
        "--output",
        "json",
    )
    assert done.returncode == 8, done.stdout[-500:] + done.stderr
    assert json.loads(done.stdout)["validity"]["status"] == "INVALID"
    assert [line.split(":")[0] for line in error_lines(done.stderr)] == [
        "[nimble][ERROR] benchmark INVALID"
    ]


def test_70_internal_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    import nimble_oke.services.costs as costs

    def broken() -> list[dict[str, object]]:
        raise RuntimeError("a bug")

    monkeypatch.setattr(costs, "session_summaries", broken)
    result = runner.invoke(app, ["sessions"])
    assert result.exit_code == 70
    assert error_lines(result.stderr) == [
        "[nimble][ERROR] internal error: RuntimeError: a bug "
        "(this is a bug; run with --debug for the traceback)"
    ]


def test_130_interrupted(monkeypatch: pytest.MonkeyPatch) -> None:
    import nimble_oke.services.costs as costs

    def interrupted() -> list[dict[str, object]]:
        raise KeyboardInterrupt

    monkeypatch.setattr(costs, "session_summaries", interrupted)
    result = runner.invoke(app, ["sessions"])
    assert result.exit_code == 130
    assert error_lines(result.stderr) == ["[nimble][ERROR] interrupted"]
