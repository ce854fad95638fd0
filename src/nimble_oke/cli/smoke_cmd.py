"""``nimble smoke``: run the NIM smoke suite against an endpoint or a session's endpoint
(the app registers it)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from nimble_oke.cli.common import check_output_format, handle_errors, print_json


@handle_errors
def smoke(
    endpoint: Annotated[
        str | None,
        typer.Option("--endpoint", "-e", help="NIM base URL (default http://127.0.0.1:8000)."),
    ] = None,
    session: Annotated[
        str | None,
        typer.Option("--session", help="Check this session's endpoint (instead of --endpoint)."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Expected model (default: the first listed)."),
    ] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="table or json.")] = "table",
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Also write a JUnit XML report to this file.")
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per check.")] = 30.0,
) -> None:
    """Check that a NIM endpoint is live, ready, answers, streams and exposes metrics."""
    from nimble_oke.nim.smoke import run_smoke, to_dict, to_junit_xml, to_rows

    check_output_format(output)
    if session is not None:
        from nimble_oke.cli.bench_cmd import session_endpoint
        from nimble_oke.errors import ConfigError

        if endpoint is not None:
            raise ConfigError("--endpoint and --session are exclusive: pick one")
        endpoint = session_endpoint(session)
    endpoint = endpoint or "http://127.0.0.1:8000"
    api_key = os.environ.get("NIMBLE_ENDPOINT_API_KEY") or None
    report = run_smoke(endpoint, model, timeout, api_key=api_key)
    if junit is not None:
        junit.parent.mkdir(parents=True, exist_ok=True)
        junit.write_text(to_junit_xml(report), encoding="utf-8")
    if output == "json":
        print_json(to_dict(report))
    else:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(title=f"nimble smoke — {report.model or '?'} @ {report.endpoint}")
        for column in ("check", "result", "ms", "detail"):
            table.add_column(column, justify="right" if column == "ms" else "left")
        colours = {"passed": "green", "failed": "red", "skipped": "yellow"}
        for name, status, ms, detail in to_rows(report):
            table.add_row(name, Text(status, style=colours[status]), ms, Text(detail))
        console = Console()
        console.print(table)
        console.print(f"smoke: {report.summary}")
    if not report.passed:
        raise typer.Exit(1)
