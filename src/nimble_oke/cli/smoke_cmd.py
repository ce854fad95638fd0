"""``nimble smoke``: run the NIM smoke suite against an endpoint or a session's endpoint
(the app registers it).

Without ``--endpoint`` the endpoint, served model and planned profile come from the
session ``nimble up`` recorded (``--session NAME``, or the only session with an endpoint);
nothing is guessed. A failed check exits with the endpoint error code (7)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from nimble_oke.cli.common import check_output_format, handle_errors, print_json


@dataclass(frozen=True)
class SmokeTarget:
    endpoint: str
    model: str | None
    profile: str | None
    session: str | None = None


def _from_record(record: Any) -> SmokeTarget:
    nim = (record.config or {}).get("nim") or {}
    model = nim.get("served_model_name") or nim.get("model")
    return SmokeTarget(record.endpoint, model, nim.get("model_profile"), record.name)


def resolve_target(endpoint: str | None, session: str | None) -> SmokeTarget:
    """The endpoint to check (read-only use of the state store)."""
    from nimble_oke.errors import ConfigError, StateError
    from nimble_oke.state.store import StateStore

    if endpoint is not None and session is not None:
        raise ConfigError("--endpoint and --session are exclusive: pick one")
    if endpoint is not None:
        return SmokeTarget(endpoint, None, None)
    with StateStore() as store:
        records = store.sessions()
    if session is not None:
        record = next((r for r in records if r.name == session), None)
        if record is None:
            known = ", ".join(r.name for r in records) or "none"
            raise StateError(f"no session named '{session}' (known sessions: {known})")
        if not record.endpoint:
            raise ConfigError(
                f"session '{session}' has no endpoint (status: {record.status}); bring it up "
                "with `nimble up`, or pass --endpoint URL"
            )
        return _from_record(record)
    live = [r for r in records if r.endpoint]
    if len(live) == 1:
        return _from_record(live[0])
    if not live:
        raise ConfigError(
            "no endpoint to check: no session has one; pass --endpoint URL (e.g. "
            "http://127.0.0.1:8000) or bring a session up with `nimble up`"
        )
    names = ", ".join(r.name for r in live)
    raise ConfigError(f"several sessions have an endpoint ({names}): pass --session NAME")


def _write_junit(path: Path, text: str) -> None:
    from nimble_oke.errors import ConfigError

    if path.is_dir():
        raise ConfigError(
            f"--junit {path}: is a directory; give a file path such as {path}/smoke.xml"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--junit {path}: cannot write it ({exc.strerror or exc})") from None


def _print_table(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from nimble_oke.nim.smoke import to_rows

    table = Table(title=f"nimble smoke — {report.model or '?'} @ {report.endpoint}")
    for column in ("check", "result", "ms", "detail"):
        table.add_column(column, justify="right" if column == "ms" else "left")
    colours = {"passed": "green", "failed": "red", "skipped": "yellow"}
    for name, status, ms, detail in to_rows(report):
        table.add_row(name, Text(status, style=colours[status]), ms, Text(detail))
    console = Console()
    console.print(table)
    console.print(f"smoke: {report.summary}")


@handle_errors
def smoke(
    endpoint: Annotated[
        str | None,
        typer.Option("--endpoint", "-e", help="NIM base URL (default: the session's endpoint)."),
    ] = None,
    session: Annotated[
        str | None,
        typer.Option("--session", help="Check this session's endpoint (instead of --endpoint)."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help="Expected model (default: the session's, else the first listed)."
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            help="NIM profile /v1/metadata must show as selected (default: the session's "
            "nim.model_profile).",
        ),
    ] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="table or json.")] = "table",
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Also write a JUnit XML report to this file.")
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per check.")] = 30.0,
) -> None:
    """Check that a NIM endpoint answers what applications call: health, models, chat,
    streaming, usage, stop sequences, structured output, tool calls, logprobs, metrics and
    the selected profile."""
    from nimble_oke.errors import ConfigError, EndpointError
    from nimble_oke.nim.smoke import run_smoke, to_dict, to_junit_xml

    check_output_format(output)
    if timeout <= 0:
        raise ConfigError(f"--timeout {timeout:g}: must be a positive number of seconds")
    if junit is not None and junit.is_dir():
        raise ConfigError(
            f"--junit {junit}: is a directory; give a file path such as {junit}/smoke.xml"
        )
    target = resolve_target(endpoint, session)
    api_key = os.environ.get("NIMBLE_ENDPOINT_API_KEY") or None
    report = run_smoke(
        target.endpoint,
        model or target.model,
        timeout,
        api_key=api_key,
        expected_profile=profile or target.profile,
    )
    if junit is not None:
        _write_junit(junit, to_junit_xml(report))
    if output == "json":
        print_json(to_dict(report))
    else:
        _print_table(report)
    if not report.passed:
        failed = ", ".join(c.name for c in report.failed)
        raise EndpointError(f"smoke test failed at {report.endpoint}: {failed}")
