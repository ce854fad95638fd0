"""``nimble bench`` through Typer's CliRunner against the exact SSE server (in a thread)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from nimble_oke.cli.bench_cmd import bench, bench_diff

from .truth_server import TruthServer, TruthSettings

# wired the way the top-level app does it: ``nimble bench …`` and ``nimble bench diff A B``
bench_app = typer.Typer(invoke_without_command=True)
bench_app.callback(invoke_without_command=True)(bench)
bench_app.command("diff")(bench_diff)
app = typer.Typer()
app.add_typer(bench_app, name="bench")
runner = CliRunner()


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    """The truth server on its own event loop in a thread (the CLI runs its own loop)."""
    loop = asyncio.new_event_loop()
    server = TruthServer(TruthSettings(ttft_s=0.005, itl_s=0.001))
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(5)
    try:
        yield server.url
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_json_output_has_aiperf_fields(server_url: str) -> None:
    result = runner.invoke(
        app,
        [
            "bench",
            "--endpoint",
            server_url,
            "--requests",
            "8",
            "--concurrency",
            "2",
            "--output-tokens",
            "4",
            "--slo",
            "ttft=500ms,itl=40ms",
            "--output",
            "json",
        ],
    )
    data = json.loads(result.stdout)
    # 8 = finished but INVALID (the gate may trip when this shared machine is overloaded)
    assert data["outcome"]["status"] == "PASSED"
    assert result.exit_code == (0 if data["validity"]["valid"] else 8), result.output
    for key in (
        "time_to_first_token",
        "inter_token_latency",
        "request_latency",
        "output_sequence_length",
        "input_sequence_length",
        "request_throughput",
        "output_token_throughput",
        "output_token_throughput_per_user",
        "validity",
        "outcome",
        "goodput",
        "good_request_count",
        "slo",
        "server",
        "config",
    ):
        assert key in data
    assert data["config"]["model"] == "truth/model-a"
    assert data["slo"]["slo_ms"] == {"ttft": 500.0, "itl": 40.0}
    assert data["goodput"]["unit"] == "requests/sec"
    assert data["request_count"] == {"unit": "requests", "avg": 8.0}


def test_table_output_and_export(server_url: str, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "bench",
            "--endpoint",
            server_url,
            "--rate",
            "50",
            "--arrival",
            "constant",
            "--requests",
            "10",
            "--output-tokens",
            "3",
            "--export",
            str(tmp_path / "run"),
        ],
    )
    assert result.exit_code in (0, 8), result.output
    status = "VALID" if result.exit_code == 0 else "INVALID"
    assert f"validity     {status}" in result.stdout
    assert "TTFT" in result.stdout
    assert (tmp_path / "run" / "report.html").exists()
    diff = runner.invoke(app, ["bench", "diff", str(tmp_path / "run"), str(tmp_path / "run")])
    assert diff.exit_code == 0, diff.output
    assert "not significant" in diff.stdout


def test_sweep_and_repeats(server_url: str) -> None:
    result = runner.invoke(
        app,
        [
            "bench",
            "--endpoint",
            server_url,
            "--sweep",
            "1,2",
            "--requests",
            "4",
            "--output-tokens",
            "2",
        ],
    )
    assert result.exit_code in (0, 8), result.output
    assert "concurrency 1" in result.stdout and "concurrency 2" in result.stdout
    result = runner.invoke(
        app,
        [
            "bench",
            "--endpoint",
            server_url,
            "--repeats",
            "2",
            "--requests",
            "4",
            "--output-tokens",
            "2",
            "--output",
            "json",
        ],
    )
    assert result.exit_code in (0, 8), result.output
    data = json.loads(result.stdout)
    assert data["repeat_variation"]["repeats"] == 2
    assert len(data["runs"]) == 2


def test_find_capacity_is_bounded(server_url: str) -> None:
    result = runner.invoke(
        app,
        [
            "bench",
            "--endpoint",
            server_url,
            "--find-capacity",
            "--slo",
            "ttft=1000ms",
            "--requests",
            "4",
            "--output-tokens",
            "2",
            "--output",
            "json",
        ],
    )
    assert result.exit_code in (0, 8), result.output
    data = json.loads(result.stdout)
    assert 1 <= len(data["capacity"]["steps"]) <= 8
    assert data["capacity"]["value"] is not None


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--concurrency", "0"], "--concurrency"),
        (["--rate", "5", "--concurrency", "2"], "exclusive"),
        (["--arrival", "bursty", "--rate", "3"], "--arrival"),
        (["--slo", "ttft=fast"], "--slo"),
        (["--slo", "latency=3ms"], "--slo"),
        (["--input-tokens", "abc"], "--input-tokens"),
        (["--sweep", "1,x"], "--sweep"),
        (["--output", "yaml"], "--output"),
        (["--find-capacity"], "--slo"),
        (["--repeats", "0"], "--repeats"),
    ],
)
def test_bad_flags_give_one_clear_line(args: list[str], needle: str) -> None:
    result = runner.invoke(app, ["bench", "--endpoint", "http://127.0.0.1:9", *args])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert needle in lines[0]
    assert "Traceback" not in result.output


def test_unreachable_endpoint_exit_code(tmp_path: Path) -> None:
    result = runner.invoke(app, ["bench", "--endpoint", "http://127.0.0.1:9", "--requests", "1"])
    assert result.exit_code == 7
    assert "connection refused at 127.0.0.1:9 — is the endpoint running?" in result.stderr
    assert "Error" not in result.stderr.replace("[ERROR]", "")  # no library class name


def test_missing_endpoint() -> None:
    result = runner.invoke(app, ["bench", "--requests", "1"])
    assert result.exit_code == 2
    assert "--endpoint is required" in result.stderr


def test_diff_missing_path(tmp_path: Path) -> None:
    result = runner.invoke(app, ["bench", "diff", str(tmp_path / "nope"), str(tmp_path / "nope2")])
    assert result.exit_code == 2
    assert "no such export" in result.stderr


def _bad_inputs(tmp: Path) -> list[tuple[Path, str]]:
    text = tmp / "notes.txt"
    text.write_text("not json at all\n")
    binary = tmp / "blob.json"
    binary.write_bytes(bytes(range(256)) * 4)
    array = tmp / "array.json"
    array.write_text("[1, 2, 3]")
    deep = tmp / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    empty_dir = tmp / "empty"
    empty_dir.mkdir()
    bad_lines = tmp / "badlines"
    bad_lines.mkdir()
    (bad_lines / "profile_export_aiperf.json").write_text('{"request_throughput": {"avg": 1}}')
    (bad_lines / "profile_export.jsonl").write_text('{"metrics": {}}\n{oops\n')
    return [
        (text, "not a benchmark summary (invalid JSON at line 1)"),
        (binary, "not text"),
        (array, "not a benchmark summary (no request_throughput)"),
        (deep, "not a benchmark summary (invalid JSON"),
        (empty_dir, "no profile_export_aiperf.json or profile_export_genai_perf.json"),
        (Path("/dev/zero"), "not a regular file"),
        (bad_lines, "line 2 is not JSON"),
    ]


def test_diff_of_anything_but_an_export_is_one_clear_line(tmp_path: Path) -> None:
    """#16: ``bench diff`` of a non-JSON file exited 70 ("this is a bug")."""
    fixture = Path(__file__).parent / "fixtures" / "aiperf-0.13.0"
    for bad, needle in _bad_inputs(tmp_path):
        result = runner.invoke(app, ["bench", "diff", str(bad), str(fixture)])
        assert result.exit_code == 2, (bad, result.output)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and needle in lines[0], (bad, lines)
        assert "Traceback" not in result.output and "bug" not in result.output
