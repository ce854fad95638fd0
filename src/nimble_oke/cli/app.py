"""The ``nimble`` command line (Typer). Thin: parse, call a service, render."""

from __future__ import annotations

from typing import Annotated

import typer

from nimble_oke import __version__
from nimble_oke.cli.common import (
    OPTIONS,
    check_output_format,
    check_session_name,
    err,
    handle_errors,
    print_json,
)
from nimble_oke.cli.flags import session_flags

app = typer.Typer(
    name="nimble",
    help=(
        "NVIDIA NIM on Oracle Kubernetes Engine: plan, provision, deploy, smoke-test, "
        "benchmark and tear down inside a budget. Default target: the local simulator (sim)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
config_app = typer.Typer(help="Create, validate and inspect nimble.yaml.", no_args_is_help=True)
app.add_typer(config_app, name="config")

ConfigOpt = Annotated[
    str | None,
    typer.Option("--config", "-c", help="Config file (default: $NIMBLE_CONFIG or ./nimble.yaml)."),
]
OutputOpt = Annotated[str, typer.Option("--output", "-o", help="table or json.")]


def _register_commands() -> None:
    """Commands defined in their own modules (each imports its heavy parts lazily)."""
    from nimble_oke.cli.bench_cmd import bench, bench_diff, bench_worker
    from nimble_oke.cli.models_cmd import models_app
    from nimble_oke.cli.production_cmd import export_app, monitoring_app, profiles
    from nimble_oke.cli.session_cmds import (
        doctor_cmd,
        down_cmd,
        extend_cmd,
        lint_cmd,
        render_cmd,
        rollback_cmd,
        status_cmd,
        sweep_cmd,
        troubleshoot_cmd,
        up_cmd,
        watchdog_app,
    )
    from nimble_oke.cli.sim_cmd import sim_app
    from nimble_oke.cli.smoke_cmd import smoke

    app.command("up")(up_cmd)
    app.command("down")(down_cmd)
    app.command("status")(status_cmd)
    app.command("extend")(extend_cmd)
    app.command("sweep")(sweep_cmd)
    app.command("doctor")(doctor_cmd)
    app.command("troubleshoot")(troubleshoot_cmd)
    app.command("render")(render_cmd)
    app.command("lint")(lint_cmd)
    app.command("rollback")(rollback_cmd)
    app.command("smoke")(smoke)
    bench_app = typer.Typer(
        help="Benchmark an OpenAI-compatible endpoint (AIPerf-compatible exports).",
        invoke_without_command=True,
    )
    bench_app.callback(invoke_without_command=True)(bench)
    bench_app.command("diff")(bench_diff)
    bench_app.command("worker", hidden=True)(bench_worker)
    app.add_typer(bench_app, name="bench")
    app.add_typer(sim_app, name="sim")
    app.add_typer(models_app, name="models")
    app.command("profiles")(profiles)
    app.add_typer(export_app, name="export")
    app.add_typer(monitoring_app, name="monitoring")
    app.add_typer(watchdog_app, name="watchdog")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nimble {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    config: ConfigOpt = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    log_format: Annotated[
        str, typer.Option("--log-format", help="human or json.", envvar="NIMBLE_LOG_FORMAT")
    ] = "human",
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    from nimble_oke.log import configure

    if log_format not in ("human", "json"):
        typer.echo("[nimble][ERROR] --log-format: allowed values are human, json", err=True)
        raise typer.Exit(2)
    OPTIONS.config = config
    OPTIONS.debug = debug
    OPTIONS.log_format = log_format
    configure("DEBUG" if debug else "INFO", log_format)


# --- plan ----------------------------------------------------------------------------


@app.command()
@handle_errors
def plan(
    config: ConfigOpt = None,
    target: Annotated[str | None, typer.Option(help="sim or oci.")] = None,
    name: Annotated[str | None, typer.Option(help="Session name (default: cluster name).")] = None,
    shape: Annotated[str | None, typer.Option(help="GPU shape, e.g. VM.GPU.A10.1.")] = None,
    nodes: Annotated[int | None, typer.Option(help="GPU nodes.")] = None,
    preemptible: Annotated[
        bool | None, typer.Option("--preemptible/--on-demand", help="Preemptible capacity.")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="NIM model, e.g. meta/llama-3.1-8b-instruct.")
    ] = None,
    precision: Annotated[str | None, typer.Option(help="bf16, fp16, fp8 or int4-awq.")] = None,
    hours: Annotated[float | None, typer.Option(help="Session time box (lease) in hours.")] = None,
    budget: Annotated[float | None, typer.Option(help="Budget in USD.")] = None,
    cache_size: Annotated[int | None, typer.Option(help="Model cache volume size in GB.")] = None,
    cache_mode: Annotated[str | None, typer.Option(help="pvc, object-storage or ngc.")] = None,
    warm: Annotated[bool, typer.Option(help="Plan as if the model cache were warm.")] = False,
    gap: Annotated[
        str | None,
        typer.Option(
            help="Expected time between sessions (16h, 1d, 2w): compare hibernate, standby "
            "and cold for it."
        ),
    ] = None,
    output: OutputOpt = "table",
) -> None:
    """Show what a session would create, its timeline and every billed line.

    Exits 3 when the budget guard would refuse the session (its worst case exceeds the
    budget); a session that needs confirmation shows '?' (up asks, or takes --yes)."""
    from nimble_oke.errors import BudgetError
    from nimble_oke.services.planning import (
        parse_gap,
        plan_session,
        session_warmth,
        sleep_comparison,
        sleep_lines,
    )

    check_output_format(output)
    gap_hours = parse_gap(gap) if gap is not None else None  # a bad --gap exits 2 first
    flags = session_flags(
        target,
        name,
        shape,
        nodes,
        preemptible,
        model,
        precision,
        hours,
        budget,
        cache_size,
        cache_mode,
    )
    # interactive: evaluate as `up` would with someone to confirm (or --yes), so a refusal
    # here means the budget itself says no, whatever the caller's terminal
    planned = plan_session(
        config or OPTIONS.config, flags, interactive=True, cache_warm=warm, warmth=session_warmth
    )
    between = sleep_comparison(planned.config, gap_hours) if gap_hours is not None else None
    if output == "json":
        data = planned.plan.as_dict()
        data["budget_usd"] = planned.config.budget.max_usd
        data["guard"] = {"action": planned.guard.action, "reason": planned.guard.reason}
        if between is not None:
            data["between_sessions"] = between
        print_json(data)
    else:
        from nimble_oke.cli.render import render_plan

        render_plan(planned.plan, planned.guard, planned.config.budget.max_usd)
        for line in sleep_lines(between) if between is not None else []:
            typer.echo(line)
    if planned.guard.action == "refuse":
        raise BudgetError(f"the budget guard would refuse this session: {planned.guard.reason}")


# --- config --------------------------------------------------------------------------


@config_app.command("init")
@handle_errors
def config_init(
    path: Annotated[str, typer.Argument(help="Where to write the file.")] = "nimble.yaml",
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented nimble.yaml with every default."""
    from pathlib import Path

    from nimble_oke.errors import ConfigError
    from nimble_oke.services.config_docs import default_config_yaml

    target = Path(path)
    if target.is_dir():
        raise ConfigError(
            f"{target} is a directory; name the file to write (e.g. {target}/nimble.yaml)"
        )
    if target.exists() and not force:
        raise ConfigError(f"{target} already exists (use --force to overwrite)")
    try:
        target.write_text(default_config_yaml(), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {(exc.strerror or str(exc)).lower()}") from None
    typer.echo(f"wrote {target}")


@config_app.command("validate")
@handle_errors
def config_validate(config: ConfigOpt = None) -> None:
    """Validate the config (file + NIMBLE_* environment) and everything plan would refuse
    (model, shape, precision, preemptible); exit 2 with the problems if invalid."""
    from nimble_oke.config_file import check_deployable, load_config

    cfg, path = load_config(config or OPTIONS.config)
    check_deployable(cfg)
    typer.echo(f"ok: {path or 'defaults'} (target {cfg.target}, session {cfg.session_name})")


@config_app.command("show")
@handle_errors
def config_show(
    config: ConfigOpt = None,
    output: Annotated[str, typer.Option("--output", "-o", help="yaml or json.")] = "yaml",
) -> None:
    """Print the effective configuration (defaults < file < environment)."""
    import yaml

    from nimble_oke.config_file import load_config
    from nimble_oke.errors import ConfigError

    if output not in ("yaml", "json"):
        raise ConfigError(f"--output {output!r}: allowed values are yaml, json")
    from nimble_oke.redact import redact_obj

    cfg, _ = load_config(config or OPTIONS.config)
    data = cfg.model_dump(mode="json")
    if output == "json":
        print_json(data)
    else:
        typer.echo(yaml.safe_dump(redact_obj(data), sort_keys=False).rstrip())


@config_app.command("schema")
@handle_errors
def config_schema() -> None:
    """Print the JSON Schema of nimble.yaml."""
    from nimble_oke.domain.config import NimbleConfig

    print_json(NimbleConfig.model_json_schema())


# --- sessions and costs ----------------------------------------------------------------


@app.command()
@handle_errors
def sessions(output: OutputOpt = "table") -> None:
    """Session history: state, lease, estimate and accrued cost."""
    from nimble_oke.services.costs import session_summaries

    check_output_format(output)
    rows = session_summaries()
    if output == "json":
        print_json(rows)
        return
    from rich.table import Table

    from nimble_oke.cli.render import console

    if not rows:
        typer.echo("no sessions yet (start one with: nimble up, or try: nimble demo)")
        return
    table = Table(show_edge=False)
    for col in ("session", "target", "status", "created", "estimate", "accrued", "live resources"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["name"],
            r["target"],
            r["status"],
            r["created"],
            f"${r['estimate_usd']:.2f}" if r["estimate_usd"] is not None else "-",
            f"${r['accrued_usd']:.4f}",
            str(r["live_resources"]),
        )
    console().print(table)


@app.command()
@handle_errors
def cost(
    args: Annotated[
        list[str] | None,
        typer.Argument(help="SESSION (default: the config's), or: compare SESSION_A SESSION_B."),
    ] = None,
    config: ConfigOpt = None,
    output: OutputOpt = "table",
) -> None:
    """What a session has cost so far, by line item, next to its estimate (or compare two)."""
    from nimble_oke.errors import ConfigError
    from nimble_oke.services.costs import compare_costs, session_cost

    check_output_format(output)
    words = list(args or [])
    if words and words[0] == "compare":
        if len(words) != 3:
            raise ConfigError("usage: nimble cost compare SESSION_A SESSION_B")
        check_session_name(words[1], "SESSION_A")
        check_session_name(words[2], "SESSION_B")
        report = compare_costs(words[1], words[2])
        if output == "json":
            print_json(report)
            return
        from rich.table import Table

        from nimble_oke.cli.render import console

        table = Table(show_edge=False)
        for col in ("item", words[1], words[2], "difference"):
            table.add_column(col, justify="left" if col == "item" else "right")
        for row in report["lines"]:
            table.add_row(
                row["item"],
                f"{row['a_usd']:.4f}",
                f"{row['b_usd']:.4f}",
                f"{row['b_usd'] - row['a_usd']:+.4f}",
            )
        table.add_row(
            "total accrued",
            f"{report['a']['accrued_usd']:.4f}",
            f"{report['b']['accrued_usd']:.4f}",
            f"{report['b']['accrued_usd'] - report['a']['accrued_usd']:+.4f}",
        )
        console().print(table)
        return
    if len(words) > 1:
        raise ConfigError("usage: nimble cost [SESSION] | nimble cost compare SESSION_A SESSION_B")
    if words:
        check_session_name(words[0], "SESSION")
    report = session_cost(words[0] if words else None, config or OPTIONS.config)
    if output == "json":
        print_json(report)
        return
    from nimble_oke.cli.render import console

    out = console()
    out.print(
        f"[bold]cost[/bold] session {report['session']} ({report['target']}, {report['status']})"
    )
    from rich.table import Table

    table = Table(show_edge=False)
    for col in ("item", "quantity", "unit", "USD"):
        table.add_column(col)
    for line in report["lines"]:
        table.add_row(line["item"], f"{line['quantity']:,.4f}", line["unit"], f"{line['usd']:.4f}")
    out.print(table)
    est = report["estimate_usd"]
    out.print(
        f"accrued ${report['accrued_usd']:.4f} · running ${report['running_usd_per_hour']:.4f}/h"
        + (f" · estimate ${est:.2f}" if est is not None else "")
    )
    if report["watchdog"]:
        out.print(f"watchdog: {report['watchdog']}", markup=False)


@app.command()
@handle_errors
def demo(output: OutputOpt = "table") -> None:
    """The whole lifecycle on the local simulator, narrated (runs what is built so far)."""
    from nimble_oke.services.demo import run_demo

    check_output_format(output)
    result = run_demo(echo=None if output == "json" else typer.echo)
    if output == "json":
        print_json(result)
    if not result["ok"]:
        err("demo failed: " + str(result.get("error") or "see the narration above"))
        raise typer.Exit(1)


_register_commands()


def main() -> None:
    """Console-script entry point."""
    app(prog_name="nimble")


if __name__ == "__main__":  # pragma: no cover
    main()
