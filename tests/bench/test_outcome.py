"""The run outcome: errors above --max-error-rate FAIL the run, in every output."""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nimble_oke.bench import BenchConfig, analyze, run_async, summarize, write_exports
from nimble_oke.bench.outcome import outcome
from nimble_oke.bench.records import ErrorKind

from .conftest import arun
from .test_cli import app
from .truth_server import TruthServer, TruthSettings

runner = CliRunner()


def _table_with(errors: list[int]) -> object:
    """A real table from a run, with its error column replaced."""

    async def scenario() -> object:
        async with TruthServer(TruthSettings(ttft_s=0.001, itl_s=0.0005)) as srv:
            result = await run_async(
                BenchConfig(endpoint=srv.url, requests=len(errors), output_tokens=2)
            )
        table = analyze(result)
        table.error = np.asarray(errors, dtype=np.int64)
        table.ok = table.error == 0
        return table

    return arun(scenario())


def test_threshold_and_all_failed() -> None:
    table = _table_with([0] * 99 + [int(ErrorKind.HTTP_5XX)])
    assert outcome(table, 0.01)["status"] == "PASSED"  # 1 % is not above 1 %
    failed = outcome(table, 0.005)
    assert failed["status"] == "FAILED" and not failed["passed"]
    assert failed["reasons"] == [
        "1 of 100 requests failed (1.0% > --max-error-rate 0.5%): http_5xx 1"
    ]
    everything = _table_with([int(ErrorKind.CONNECTION_REFUSED)] * 4)
    verdict = outcome(everything, 1.0)  # even a 100 % allowance: nothing succeeded
    assert verdict["status"] == "FAILED"
    assert verdict["reasons"] == ["all 4 requests failed (connection_refused 4)"]


def test_endpoint_dying_mid_run_fails_in_every_output(tmp_path: Path) -> None:
    """#20: "32 ok · errors 168" printed VALID and exited 0. The server stops after its
    32nd answer; the run is FAILED with the breakdown in JSON, CSV, JSONL and HTML."""

    async def scenario() -> tuple[dict[str, object], object]:
        srv = TruthServer(TruthSettings(ttft_s=0.002, itl_s=0.001))
        await srv.start()

        async def kill_after(n: int) -> None:
            while len(srv.truth.received_ns) < n:
                await asyncio.sleep(0.001)
            await srv.stop()

        killer = asyncio.create_task(kill_after(32))
        result = await run_async(
            BenchConfig(
                endpoint=srv.url, concurrency=4, requests=200, output_tokens=3, scrape_metrics=False
            )
        )
        await killer
        return summarize(result), result

    summary, result = arun(scenario())
    o = summary["outcome"]
    assert o["status"] == "FAILED"
    errors = summary["errors"]
    assert errors["count"] >= 150 and summary["request_count"]["avg"] <= 40
    assert set(errors["by_type"]) <= {"connection_refused", "connection_error"}
    assert "requests failed" in o["reasons"][0] and "connection_refused" in o["reasons"][0]
    paths = write_exports(tmp_path, [result], [summary])  # type: ignore[list-item]
    exported = json.loads(paths["json"].read_text())
    assert exported["outcome"]["status"] == "FAILED"
    assert exported["request_error_rate"]["avg"] > 75.0
    rows = list(csv.reader(paths["csv"].read_text().splitlines()))
    assert ["Outcome", "FAILED"] in rows
    first = json.loads(paths["jsonl"].read_text().splitlines()[0])
    assert first["nimble"]["run_outcome"] == "FAILED"
    assert '<span class="FAILED">FAILED</span>' in paths["html"].read_text()


@pytest.fixture(scope="module")
def half_failing_url() -> Iterator[str]:
    """A truth server in a thread answering every second request with HTTP 500."""
    import threading

    loop = asyncio.new_event_loop()
    server = TruthServer(TruthSettings(ttft_s=0.001, itl_s=0.0005, fail_every=2))
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(5)
    yield server.url
    asyncio.run_coroutine_threadsafe(server.stop(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def test_cli_half_failing_exits_9_in_table_and_json(half_failing_url: str) -> None:
    args = ["bench", "--endpoint", half_failing_url, "--requests", "20", "--output-tokens", "2"]
    table = runner.invoke(app, [*args, "--concurrency", "2"])
    assert table.exit_code == 9, table.output
    assert "outcome      FAILED" in table.stdout
    assert "10 of 20 requests failed (50.0% > --max-error-rate 1.0%): http_5xx 10" in table.stdout
    as_json = runner.invoke(app, [*args, "--output", "json"])
    assert as_json.exit_code == 9
    assert as_json.stderr.splitlines() == [
        "[nimble][ERROR] benchmark FAILED: 10 of 20 requests failed (50.0% > "
        "--max-error-rate 1.0%): http_5xx 10"
    ]
    data = json.loads(as_json.stdout)
    assert data["outcome"]["status"] == "FAILED" and data["errors"]["by_type"] == {"http_5xx": 10}
    allowed = runner.invoke(app, [*args, "--max-error-rate", "60%", "--output", "json"])
    assert json.loads(allowed.stdout)["outcome"]["status"] == "PASSED"
    assert allowed.exit_code in (0, 8)


@pytest.mark.parametrize("value", ["abc", "150%", "-1", "1.5"])
def test_bad_max_error_rate_is_one_line(value: str) -> None:
    result = runner.invoke(
        app, ["bench", "--endpoint", "http://127.0.0.1:9", "--max-error-rate", value]
    )
    assert result.exit_code == 2
    assert "--max-error-rate" in result.stderr and "Traceback" not in result.output
