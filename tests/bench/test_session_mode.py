"""``nimble smoke --session`` and ``nimble bench --session [--in-cluster]`` end to end: a
real session brought up on the joined simulators, then the CLI (Typer's CliRunner) with
``NIMBLE_HOME`` pointing at that session's state store.

The in-process stack is registered as the home's running simulator service exactly as
``nimble sim start`` registers its daemon (``sim/endpoints.json`` + ``sim/sim.pid``, here
this process's pid), so the CLI's target resolution and cost clock find it."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nimble_oke.catalog import load_catalog
from nimble_oke.cli.app import app
from nimble_oke.domain.config import build_config
from nimble_oke.domain.plan import build_plan
from nimble_oke.services.costs import session_cost
from nimble_oke.services.lifecycle import up
from nimble_oke.services.sim_service import PID_FILE
from nimble_oke.services.sim_tools import product_stack
from nimble_oke.services.targets import sim_target
from nimble_oke.state.store import StateStore

SCALE = 3000.0
SESSION = "bench-cli"
LOAD = ["--requests", "8", "--concurrency", "2", "--input-tokens", "32", "--output-tokens", "16"]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("session-mode") / "home"
    cfg = build_config(
        {
            "cluster": {"name": SESSION},
            # a lease long enough for the compressed clock (3000×: an hour is 1.2 s)
            "budget": {"max_hours": 48, "max_usd": 500},
        }
    )
    with product_stack(home / "sim", time_scale=SCALE, seed=5) as stack:
        target = sim_target(cfg, stack.endpoints(), {})
        with (
            contextlib.closing(target.provider),
            StateStore(home, now=stack.clock.wall) as store,
        ):
            result = up(
                cfg,
                build_plan(cfg, load_catalog()),
                target,
                store,
                say=lambda _m: None,
                bench=False,
            )
            assert result.ok, result.error
            # a session that never got an endpoint (e.g. rolled back before the deploy)
            store.upsert_session(
                "no-endpoint",
                target="sim",
                status="rolled back",
                config=cfg.model_dump(mode="json"),
                lease_expires_at=None,
                budget_usd=10.0,
                estimate_usd=1.0,
                worst_case_usd=2.0,
            )
        stack.write_endpoints()
        pid_file = home / "sim" / PID_FILE
        pid_file.write_text(str(os.getpid()))
        try:
            yield home
        finally:
            pid_file.unlink()


def _invoke(home: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"NIMBLE_HOME": str(home)})
    return result.exit_code, result.stdout, result.stderr


def _endpoint(home: Path) -> str:
    with StateStore(home) as store:
        record = store.session(SESSION)
        assert record is not None and record.endpoint
        return record.endpoint


def test_smoke_by_session_checks_the_session_endpoint(home: Path) -> None:
    code, out, err = _invoke(home, "smoke", "--session", SESSION, "--output", "json")
    assert code == 0, out + err
    report = json.loads(out)
    assert report["endpoint"] == _endpoint(home)
    assert report["passed"] is True
    assert sum(c["status"] == "passed" for c in report["checks"]) >= 7


def test_bench_by_session_reports_cost_per_million_tokens_and_records_the_run(
    home: Path, tmp_path: Path
) -> None:
    with StateStore(home) as store:
        before = len(store.bench_runs(SESSION))
    export = tmp_path / "out"
    code, out, err = _invoke(
        home, "bench", "--session", SESSION, *LOAD, "--output", "json", "--export", str(export)
    )
    assert code in (0, 8), out + err  # 8: INVALID on an overloaded machine, still reported
    summary = json.loads(out)
    assert summary["config"]["endpoint"] == _endpoint(home)
    assert summary["request_count"]["avg"] == 8
    cost = summary["cost"]
    assert cost["session"] == SESSION and cost["basis"] == "usd_per_hour * window_s / 3600"
    with StateStore(home) as store:
        rate = session_cost(SESSION, None, store)["running_usd_per_hour"]
        runs = store.bench_runs(SESSION)
    assert rate > 0 and cost["usd_per_hour"] == pytest.approx(rate, rel=1e-6)
    tokens = summary["output_token_throughput"]["avg"] * summary["config"]["window_s"]
    assert tokens == pytest.approx(8 * 16, rel=1e-6)
    expected = rate * cost["window_s"] / 3600 / tokens * 1e6
    assert cost["usd_per_million_output_tokens"] == pytest.approx(expected, rel=1e-6)
    assert cost["session_cost_usd"] == pytest.approx(rate * cost["window_s"] / 3600, rel=1e-6)
    assert cost["session_accrued_usd"] > 0
    assert len(runs) == before + 1
    assert runs[-1]["export_dir"] == str(export)
    assert runs[-1]["summary"]["cost"]["usd_per_million_output_tokens"] == pytest.approx(
        cost["usd_per_million_output_tokens"]
    )
    exported = json.loads((export / "profile_export_aiperf.json").read_text())
    assert exported["cost"]["usd_per_million_output_tokens"] == pytest.approx(
        cost["usd_per_million_output_tokens"]
    )

    code, out, err = _invoke(home, "bench", "--session", SESSION, *LOAD)
    assert code in (0, 8), out + err
    assert "per 1M output tokens (session bench-cli at $" in out


def test_bench_in_cluster_by_session_merges_the_workers(home: Path) -> None:
    code, out, err = _invoke(
        home,
        "bench",
        "--session",
        SESSION,
        "--in-cluster",
        "--workers",
        "2",
        *LOAD,
        "--output",
        "json",
    )
    assert code in (0, 8), out + err
    summary = json.loads(out)
    placement = summary["in_cluster"]
    assert placement["workers"] == 2
    assert [s["requests"] for s in placement["shards"]] == [4, 4]
    assert summary["config"]["endpoint"] == placement["endpoint"]
    assert ".svc:" in placement["endpoint"] and "127.0.0.1" not in placement["endpoint"]
    assert summary["request_count"]["avg"] == 8 and summary["errors"]["count"] == 0
    assert summary["time_to_first_token"]["p50"] > 0
    assert summary["cost"]["usd_per_million_output_tokens"] > 0
    assert "2 worker Jobs" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bench", "--session", "nope"], "no session named 'nope' (known sessions: "),
        (["smoke", "--session", "nope"], "no session named 'nope'"),
        (["bench", "--session", "no-endpoint"], "session 'no-endpoint' has no endpoint"),
        (["smoke", "--session", "no-endpoint"], "session 'no-endpoint' has no endpoint"),
        (
            ["bench", "--session", SESSION, "--endpoint", "http://127.0.0.1:1"],
            "--endpoint and --session are exclusive",
        ),
        (["bench", "--endpoint", "http://127.0.0.1:1", "--in-cluster"], "--in-cluster needs"),
        (["bench", "--session", SESSION, "--workers", "2"], "--workers needs --in-cluster"),
        (
            ["bench", "--session", SESSION, "--session-cost", "3"],
            "--session-cost is for --endpoint runs",
        ),
    ],
)
def test_session_mode_errors_are_one_clear_line(home: Path, args: list[str], message: str) -> None:
    code, out, err = _invoke(home, *args)
    assert code != 0
    assert message in err, out + err
    assert "Traceback" not in out + err


def test_bench_worker_command_prints_one_decodable_shard(home: Path) -> None:
    """The command the worker Jobs run (``nimble bench worker``), as the real image runs it:
    its stdout is the pod log the lead decodes."""
    import typer

    from nimble_oke.bench import BenchConfig
    from nimble_oke.bench.incluster import decode_raw, worker_argv
    from nimble_oke.cli.bench_cmd import bench_worker

    cli = typer.Typer()
    cli.callback()(lambda: None)
    cli.command("worker")(bench_worker)
    config = BenchConfig(
        endpoint="http://unused:1", concurrency=2, requests=6, input_tokens_mean=32, output_tokens=8
    )
    argv = worker_argv(_endpoint(home), 1, 2, config)
    result = CliRunner().invoke(cli, argv[2:])
    assert result.exit_code == 0, result.output
    shard = decode_raw(result.stdout.splitlines())
    assert shard.store.count == 3 and shard.config.worker_index == 1
    assert shard.config.endpoint == _endpoint(home)
