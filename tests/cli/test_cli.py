from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nimble_oke.cli.app import app

runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), env=env)


def test_help_lists_commands() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for name in ("plan", "config", "cost", "sessions"):
        assert name in result.output


def test_plan_json_example_from_the_issue() -> None:
    result = run(
        "plan", "--target", "oci", "--shape", "VM.GPU.A10.1", "--hours", "2", "--output", "json"
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["target"] == "oci" and data["hours"] == 2
    assert isinstance(data["total_usd"], float) and data["total_usd"] > 0
    for line in data["lines"]:
        assert set(line) >= {"item", "quantity", "unit", "usd"}
    lb = [line for line in data["lines"] if line["price_key"].startswith("lb.")]
    assert sum(line["usd"] for line in lb) < 0.10
    assert data["guard"]["action"] in ("proceed", "confirm", "refuse")
    assert data["worst_case_usd"] >= data["total_usd"]


def test_plan_shows_the_warm_up_beside_the_gpu_pool_and_the_volume_trade_off() -> None:
    result = run("plan", "--hours", "2", "--output", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    phases = {p["phase"]: p for p in data["timeline"]}
    assert phases["cpu node pool"]["start_s"] == phases["gpu node pool"]["start_s"]
    assert not phases["model download (cpu node)"]["gpu_billed"]
    assert data["warm_up"]["shape"] == "VM.Standard.E4.Flex"
    volume = data["cache_volume"]
    assert volume["chosen_by"] == "planner" and len(volume["options"]) >= 2
    assert {"size_gb", "vpus_per_gb", "gpu_wait_s", "volume_usd"} <= set(volume["options"][0])
    table = run("plan", "--hours", "2")
    assert "cache volume (planner's choice" in table.output and "cache warm-up:" in table.output
    fixed = json.loads(run("plan", "--cache-size", "300", "--output", "json").stdout)
    assert fixed["cache_volume"]["size_gb"] == 300


def test_plan_table_output() -> None:
    result = run("plan", "--hours", "1", "--preemptible")
    assert result.exit_code == 0, result.output
    assert "estimate $" in result.output and "worst case $" in result.output
    assert "GPU nodes (VM.GPU.A10.1 ×1, preemptible)" in result.output


def test_plan_over_budget_shows_refusal_and_exits_3() -> None:
    """A script can tell from `plan`'s exit code that the budget guard would refuse (issue
    #21); the plan is still printed on stdout and the reason is one line on stderr."""
    result = run("plan", "--shape", "BM.GPU.H100.8", "--budget", "5", "--output", "json")
    assert result.exit_code == 3
    assert json.loads(result.stdout)["guard"]["action"] == "refuse"
    assert result.stderr.count("\n") == 1 and "exceeds the budget $5.00" in result.stderr


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (("plan", "--target", "aws"), 2, "--target 'aws': must be 'sim' or 'oci'"),
        (("plan", "--nodes", "-3"), 2, "--nodes -3: must be greater than or equal to 0"),
        (("plan", "--shape", "VM.GPU.NOPE"), 2, "unknown GPU shape 'VM.GPU.NOPE'"),
        (("plan", "--model", "meta/llama-3.3-70b-instruct"), 2, "does not fit VM.GPU.A10.1"),
        (("plan", "--output", "xml"), 2, "allowed values are table, json"),
        (("--log-format", "xml", "plan"), 2, "human, json"),
        (("plan", "--nodes", "many"), 2, "Invalid value for '--nodes'"),
    ],
)
def test_bad_input_is_one_clear_line_and_nonzero(
    args: tuple[str, ...], code: int, needle: str
) -> None:
    result = run(*args)
    assert result.exit_code == code, result.output
    assert needle in result.output
    assert "Traceback" not in result.output


def test_config_init_validate_show_schema(tmp_path: Path) -> None:
    path = tmp_path / "nimble.yaml"
    assert run("config", "init", str(path)).exit_code == 0
    assert run("config", "init", str(path)).exit_code == 2  # exists
    text = path.read_text()
    assert "# Cache volume size (the one size key, C1)." in text
    assert run("config", "validate", "-c", str(path)).exit_code == 0
    shown = run("config", "show", "-c", str(path), "--output", "json")
    assert json.loads(shown.stdout)["target"] == "sim"
    schema = json.loads(run("config", "schema").stdout)
    assert schema["title"] == "NimbleConfig"


def test_config_file_env_and_flag_layers(tmp_path: Path) -> None:
    path = tmp_path / "nimble.yaml"
    path.write_text("gpu_pool:\n  nodes: 2\nbudget:\n  max_hours: 3\n")
    env = {"NIMBLE_CONFIG": str(path), "NIMBLE_BUDGET_MAX_HOURS": "4"}
    data = json.loads(run("plan", "--output", "json", env=env).stdout)
    assert data["hours"] == 4
    assert "×2" in next(r["detail"] for r in data["resources"] if r["kind"] == "node-pool")
    data = json.loads(run("plan", "--hours", "5", "--output", "json", env=env).stdout)
    assert data["hours"] == 5


def test_config_validate_reports_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("cache:\n  size: 200Gi\n  mode: nfs\n")
    result = run("config", "validate", "-c", str(path))
    assert result.exit_code == 2
    assert "unknown key 'cache.size'" in result.output
    assert "cache.mode = 'nfs'" in result.output
    missing = run("config", "validate", "-c", str(tmp_path / "nope.yaml"))
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_sessions_and_cost_from_the_store() -> None:
    from nimble_oke.domain.cost import load_balancer_meters
    from nimble_oke.state.store import StateStore

    assert "no sessions yet" in run("sessions").output
    with StateStore() as store:
        store.upsert_session("s1", target="sim", status="up", estimate_usd=1.5)
        store.record_created(
            "s1",
            "load-balancer",
            "ocid1.lb",
            meters=load_balancer_meters(10),
            created_at=store.now() - 3600,
        )
    data = json.loads(run("sessions", "--output", "json").stdout)
    assert data[0]["name"] == "s1" and data[0]["live_resources"] == 1
    report = json.loads(run("cost", "s1", "--output", "json").stdout)
    assert report["accrued_usd"] == pytest.approx(0.0123, rel=0.01)
    missing = run("cost", "nope")
    assert missing.exit_code == 4 and "known sessions: s1" in missing.output


def test_cost_compare_two_sessions() -> None:
    from nimble_oke.domain.cost import load_balancer_meters
    from nimble_oke.state.store import StateStore

    with StateStore() as store:
        for name, hours in (("a", 1), ("b", 3)):
            store.upsert_session(name, target="sim", status="down", estimate_usd=1.0)
            store.record_created(
                name,
                "load-balancer",
                f"lb-{name}",
                meters=load_balancer_meters(10),
                created_at=store.now() - hours * 3600,
            )
            store.record_deleted(name, "load-balancer", f"lb-{name}", deleted_at=store.now())
    result = run("cost", "compare", "a", "b", "--output", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["b"]["accrued_usd"] == pytest.approx(3 * data["a"]["accrued_usd"], rel=0.01)
    assert {row["item"] for row in data["lines"]} == {
        "Load balancer base (flexible)",
        "Load balancer bandwidth (10 Mbps)",
    }
    table = run("cost", "compare", "a", "b")
    assert "total accrued" in table.output
    bad = run("cost", "compare", "a")
    assert bad.exit_code == 2 and "usage: nimble cost compare" in bad.output


@pytest.mark.parametrize("args", [("status",), ("plan",)])
def test_a_reader_that_leaves_early_is_not_reported_as_a_bug(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    """`nimble status | head -1`: the pipe closes before nimble writes; it stops quietly."""
    import os
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "nimble_oke.cli.app", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "NIMBLE_HOME": str(tmp_path / "home")},
    )
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before the first line
    _out, errors = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert b"internal error" not in errors and b"Traceback" not in errors, errors
