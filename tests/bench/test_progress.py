"""The live progress line: drawn on a terminal during the run, absent otherwise."""

from __future__ import annotations

import io

from rich.console import Console
from typer.testing import CliRunner

from nimble_oke.bench import BenchConfig, run_async
from nimble_oke.bench.engine import Progress
from nimble_oke.bench.progress import ProgressDisplay, status_line

from .conftest import arun
from .test_cli import app, server_url  # noqa: F401 - a fixture
from .truth_server import TruthServer, TruthSettings


def test_status_line_shows_rate_in_flight_and_errors() -> None:
    before = Progress("measured", 1.0, 100, 90, 1, 10, 400, None)
    now = Progress("measured", 1.25, 150, 140, 3, 10, 400, None)
    assert status_line(now, before) == (
        "measured   1.2 s · sent 150/400 · 200 req/s · in flight 10 · done 140 · errors 3"
    )
    timed = Progress("measured", 2.0, 50, 40, 0, 10, None, 5.0)
    assert "sent 50 in 2/5 s" in status_line(timed, None)


def test_display_redraws_during_a_run_on_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)

    async def scenario() -> None:
        async with TruthServer(TruthSettings(ttft_s=0.05, itl_s=0.05)) as srv:
            with ProgressDisplay(console) as show:
                await run_async(
                    BenchConfig(endpoint=srv.url, concurrency=4, requests=24, output_tokens=4),
                    observer=show,
                )

    arun(scenario())
    text = out.getvalue()
    assert "measured" in text and "in flight 4" in text and "errors 0" in text


def test_cli_without_a_terminal_prints_no_progress(server_url: str) -> None:  # noqa: F811
    args = ["bench", "--endpoint", server_url, "--requests", "40", "--output-tokens", "2"]
    result = CliRunner().invoke(app, [*args, "--concurrency", "2"])
    assert result.exit_code in (0, 8), result.output
    assert "in flight" not in result.output and "validity" in result.stdout
