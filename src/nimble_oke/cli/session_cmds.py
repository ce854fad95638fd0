"""``nimble up``, ``down``, ``status``, ``extend`` (registered by app.py)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import typer

from nimble_oke.cli.common import (
    OPTIONS,
    check_kubeconfig,
    check_namespace,
    check_output_format,
    check_session_name,
    err,
    handle_errors,
    print_json,
    stdin_is_interactive,
    unreachable_as,
)
from nimble_oke.cli.flags import session_flags

OutputOpt = Annotated[str, typer.Option("--output", "-o", help="table or json.")]
ConfigOpt = Annotated[str | None, typer.Option("--config", "-c", help="Config file.")]


def _say(output: str) -> Callable[[str], None]:
    if output == "json":
        return lambda _m: None
    return typer.echo


@contextlib.contextmanager
def _progress(
    command: str, output: str, session: str | None = None
) -> Iterator[tuple[Callable[[str], None], Callable[[str], bool]]]:
    """The ``say`` and ``confirm`` a lifecycle command runs with: a live progress display on
    a terminal, plain lines otherwise, nothing with ``--output json`` (cli/progress.py)."""
    from nimble_oke.cli.progress import for_command

    def confirm(question: str) -> bool:
        return typer.confirm(question, default=False)

    display = for_command(command, output, session)
    if display is None:
        yield _say(output), confirm
        return
    with display.open():
        yield display.say, lambda q: display.ask(q, confirm)


def _session_name(name: str | None, config: str | None) -> str:
    if name:
        return check_session_name(name) or name
    from nimble_oke.config_file import load_config

    cfg, _ = load_config(config or OPTIONS.config)
    return cfg.session_name


@handle_errors
def up_cmd(
    config: ConfigOpt = None,
    target: Annotated[str | None, typer.Option(help="sim or oci.")] = None,
    name: Annotated[str | None, typer.Option(help="Session name (default: cluster name).")] = None,
    model: Annotated[str | None, typer.Option(help="NIM model.")] = None,
    shape: Annotated[str | None, typer.Option(help="GPU shape.")] = None,
    nodes: Annotated[int | None, typer.Option(help="GPU nodes.")] = None,
    preemptible: Annotated[bool | None, typer.Option("--preemptible/--on-demand")] = None,
    hours: Annotated[float | None, typer.Option(help="Session time box (lease) in hours.")] = None,
    budget: Annotated[float | None, typer.Option(help="Budget in USD.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Confirm without asking.")] = False,
    bench: Annotated[bool, typer.Option("--bench/--no-bench", help="Run the benchmark.")] = True,
    down_after: Annotated[bool, typer.Option("--down-after", help="Tear down at the end.")] = False,
    keep_on_failure: Annotated[
        bool, typer.Option("--keep-on-failure", help="Do not roll back on failure.")
    ] = False,
    output: OutputOpt = "table",
) -> None:
    """Provision, deploy, smoke-test and benchmark a NIM session (idempotent)."""
    from nimble_oke.services.sessions import run_up

    check_output_format(output)
    flags = session_flags(target, name, shape, nodes, preemptible, model, None, hours, budget)
    with _progress("up", output, name) as (say, ask):
        result = run_up(
            config or OPTIONS.config,
            flags,
            yes=yes,
            interactive=stdin_is_interactive(),
            bench=bench,
            down_after=down_after,
            keep_on_failure=keep_on_failure,
            say=say,
            confirm=ask,
        )
    if output == "json":
        print_json({k: v for k, v in result.items() if k != "exception"})
    elif result["ok"]:
        typer.echo(
            f"ready: {result['endpoint']} · next: nimble bench --endpoint {result['endpoint']} · "
            f"nimble down --name {result['session']}"
        )
    if not result["ok"]:
        err(up_failure_line(result))
        raise typer.Exit(up_exit_code(result))


def up_failure_line(result: dict[str, Any]) -> str:
    """The one line a failed ``up`` leaves on stderr: what failed and what is left, the
    resources named as the user knows them ("node pool try1-gpu", not an OCID)."""
    line = f"up failed: {result.get('error') or 'unknown error'}"
    left = result.get("rollback_failed") or []
    if left:
        return (
            f"{line} · could not remove {_count(left, 'resource')} ({_names(left)}): "
            f"nimble down --name {result['session']}"
        )
    if result.get("rolled_back"):
        done = result["rolled_back"]
        return f"{line} · rolled back {_count(done, 'resource')} this run created ({_names(done)})"
    return line


def _count(items: list[str], noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _names(items: list[str], shown: int = 4) -> str:
    """The first few names (an undo that failed reads "node pool x: why": the name only)."""
    names = [str(item).split(": ", 1)[0] for item in items]
    more = f", +{len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def up_exit_code(result: dict[str, Any]) -> int:
    """The README's exit code for a failed ``up``: from the error's kind when the result
    carries it (``exit_code``, ``error_kind`` or ``exception``), else from the two failures
    today's lifecycle reports only as words (smoke test → endpoint 7, Ctrl-C → 130)."""
    from nimble_oke.errors import EXIT_CODES, error_exit_code

    code = error_exit_code(result)
    if code != 1 or result.get("error_kind"):
        return code
    words = str(result.get("error") or "")
    if words.startswith("smoke test failed"):
        return EXIT_CODES["endpoint"]
    if words == "interrupted":
        return EXIT_CODES["interrupted"]
    return code


HIBERNATE_HELP = (
    "Hibernate (VM.GPU.A10 shapes only): keep the network, cluster, node pool and volumes, "
    "delete the load balancer and stop the GPU node; only storage bills until nimble up "
    "wakes it in minutes. Refused for shapes OCI bills while stopped."
)


@handle_errors
def down_cmd(
    name: Annotated[str | None, typer.Option(help="Session name (default: config's).")] = None,
    config: ConfigOpt = None,
    keep_cache: Annotated[
        bool, typer.Option("--keep-cache", help="Keep the model-cache volume for the next up.")
    ] = False,
    keep_cluster: Annotated[
        bool,
        typer.Option(
            "--keep-cluster",
            help=(
                "Standby: keep the network and the cluster (a basic cluster's control plane "
                "is free) so the next up only waits for a GPU node pool."
            ),
        ),
    ] = False,
    keep_node_image: Annotated[
        bool,
        typer.Option(
            "--keep-node-image",
            help=(
                "Keep a GPU worker image with the NIM image in it (captured from the GPU "
                "node, stored at Object Storage rates) so the next up skips the image pull."
            ),
        ),
    ] = False,
    hibernate: Annotated[bool, typer.Option("--hibernate", help=HIBERNATE_HELP)] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    output: OutputOpt = "table",
) -> None:
    """Remove the deployment and every cloud resource of the session, then verify."""
    from nimble_oke.services.sessions import run_down

    check_output_format(output)
    session = _session_name(name, config)
    if (
        not yes
        and stdin_is_interactive()
        and not typer.confirm(
            f"{'Hibernate' if hibernate else 'Delete everything of'} session '{session}'?",
            default=False,
        )
    ):
        raise typer.Exit(1)
    with _progress("down", output, session) as (say, _ask):
        result = run_down(
            session,
            keep_cache=keep_cache,
            keep_cluster=keep_cluster,
            keep_node_image=keep_node_image,
            hibernate=hibernate,
            say=say,
        )
    if output == "json":
        print_json(result)
    elif result.get("hibernated"):
        typer.echo(result["summary"])
    else:
        kept = (
            f" · kept {len(result['kept'])} (cache volume / node image)" if result["kept"] else ""
        )
        if result["standby"]:
            kept += f" · standby: kept the network and cluster ({len(result['standby'])})"
        left = len(result["remaining"])
        typer.echo(
            f"down        {result['removed']} resources deleted{kept} · "
            f"{left} left {'✓' if not left else '✗'} · accrued ${result['accrued_usd']:.4f}"
        )
        for line in result["failed"]:
            typer.echo(f"  could not delete: {line}")
    if result["failed"] or result["remaining"]:
        from nimble_oke.errors import ProviderError

        left = len(result["remaining"]) or len(result["failed"])
        err(
            f"down left {left} resources of session '{session}' "
            "(run nimble down again; nimble sweep --session lists them)"
        )
        raise typer.Exit(ProviderError.exit_code)


@handle_errors
def status_cmd(
    name: Annotated[str | None, typer.Option(help="Only this session.")] = None,
    output: OutputOpt = "table",
) -> None:
    """Sessions and their state, endpoint, live resources, time left, cost so far."""
    from nimble_oke.services.sessions import run_status

    check_output_format(output)
    rows = run_status(check_session_name(name))
    if output == "json":
        print_json(rows)
        return
    if not rows:
        typer.echo("no sessions (start one with: nimble up, or try: nimble demo)")
        return
    for row in rows:
        left = row["lease_seconds_left"]
        lease = "-" if left is None else time.strftime("%H:%M:%S", time.gmtime(left))
        typer.echo(
            f"{row['session']}: {row['status']} ({row['target']}) · endpoint {row['endpoint'] or '-'}"
            f" · lease left {lease} · accrued ${row['accrued_usd']:.4f}"
            f" (${row['running_usd_per_hour']:.3f}/h now)"
        )
        if row["watchdog"]:
            typer.echo(f"    watchdog: {row['watchdog']}")
        for res in row["live_resources"]:
            typer.echo(
                f"    {res['kind']:<16} {res['name'] or ''} {'(kept)' if res['kept'] else ''}"
            )


@handle_errors
def extend_cmd(
    hours: Annotated[float, typer.Option(help="Hours to add to the lease.")],
    name: Annotated[str | None, typer.Option(help="Session name.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Renew the session's lease."""
    from nimble_oke.services.sessions import run_extend

    session = _session_name(name, config)
    expires = run_extend(session, hours)
    typer.echo(
        f"lease of {session} now ends at {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(expires))} UTC"
    )


@handle_errors
def sweep_cmd(
    target: Annotated[str | None, typer.Option(help="sim or oci.")] = None,
    session: Annotated[str | None, typer.Option(help="Only this session's resources.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
    config: ConfigOpt = None,
    output: OutputOpt = "table",
) -> None:
    """Find everything tagged by nimble (or one session) with its running cost; delete it."""
    from nimble_oke.services.sessions import run_sweep

    check_output_format(output)
    check_session_name(session, "--session")

    def confirm(rows: list[dict[str, object]]) -> bool:
        if yes:
            return True
        if not stdin_is_interactive():
            typer.echo("not deleting: pass --yes (no terminal to confirm)", err=True)
            return False
        return typer.confirm(f"Delete these {len(rows)} resources?", default=False)

    def show(rows: list[dict[str, object]]) -> None:
        if output == "table":
            for row in rows:
                typer.echo(
                    f"  {row['kind']:<16} {row['name'] or '':<28} {row['session'] or '-':<12} "
                    f"${float(row['usd_per_hour']):.4f}/h  {row['id']}"  # type: ignore[arg-type]
                )

    def show_and_confirm(rows: list[dict[str, object]]) -> bool:
        show(rows)
        return confirm(rows)

    result = run_sweep(
        config or OPTIONS.config,
        {"target": target},
        session=session,
        dry_run=dry_run,
        confirm=show_and_confirm,
        say=_say(output),
    )
    if output == "json":
        print_json(result)
        return
    if not result["resources"]:
        typer.echo("nothing tagged by nimble-oke found ✓")
    elif dry_run:
        show(result["resources"])
        typer.echo(f"{len(result['resources'])} resources (dry run: nothing deleted)")
    else:
        typer.echo(f"deleted {len(result['deleted'])} · failed {len(result['failed'])}")
    if result["failed"]:
        from nimble_oke.errors import ProviderError

        err(f"sweep could not delete {len(result['failed'])} resources (run it again)")
        raise typer.Exit(ProviderError.exit_code)


@handle_errors
def doctor_cmd(
    config: ConfigOpt = None,
    target: Annotated[str | None, typer.Option(help="sim or oci.")] = None,
    name: Annotated[str | None, typer.Option(help="Also check this session's cluster.")] = None,
    output: OutputOpt = "table",
) -> None:
    """Check prerequisites for the target: each line pass/warn/fail with the fix."""
    import os

    from nimble_oke.config_file import load_config
    from nimble_oke.services.doctor import run_doctor
    from nimble_oke.services.sessions import doctor_context

    check_output_format(output)
    cfg, _ = load_config(config or OPTIONS.config, {"target": target})
    tgt, factory, problems = doctor_context(cfg, check_session_name(name))
    checks = problems + run_doctor(cfg, tgt, os.environ, client_factory=factory)
    if tgt is not None:
        tgt.provider.close()
    if output == "json":
        print_json([c.as_dict() for c in checks])
    else:
        marks = {"pass": "✓", "warn": "!", "fail": "✗"}
        for c in checks:
            typer.echo(f"{marks[c.status]} {c.name:<20} {c.detail}")
            if c.fix and c.status != "pass":
                typer.echo(f"  {'':<20} fix: {c.fix}")
    failed = [c.name for c in checks if c.status == "fail"]
    if failed:
        err(f"doctor: {len(failed)} checks failed ({', '.join(failed)}); each line says the fix")
        raise typer.Exit(1)


@handle_errors
def troubleshoot_cmd(
    name: Annotated[str | None, typer.Option(help="Session name (default: config's).")] = None,
    kubeconfig: Annotated[
        str | None, typer.Option(help="Inspect this cluster instead of a session's.")
    ] = None,
    namespace: Annotated[
        str | None, typer.Option(help="Namespace (default: nim.namespace).")
    ] = None,
    config: ConfigOpt = None,
    output: OutputOpt = "table",
) -> None:
    """Read pods, events, logs, PVCs, nodes and services; name the cause and the fix."""
    from nimble_oke.errors import KubeError
    from nimble_oke.services.sessions import run_troubleshoot

    check_output_format(output)
    if namespace is not None:
        check_namespace(namespace)
    if kubeconfig is not None:
        check_kubeconfig(kubeconfig)
    with unreachable_as(KubeError, "the Kubernetes API"):
        report = run_troubleshoot(
            check_session_name(name),
            kubeconfig=kubeconfig,
            namespace=namespace,
            config_file=config or OPTIONS.config,
        )
    if output == "json":
        print_json(report)
    else:
        for pod in report["pods"]:
            typer.echo(f"pod {pod['name']}: {pod['phase']} · restarts {pod['restarts']}")
        if not report["findings"]:
            typer.echo("no problem found ✓")
        for f in report["findings"]:
            typer.echo(f"{'✗' if f['severity'] == 'error' else '!'} {f['cause']}")
            typer.echo(f"    evidence: {f['evidence']}")
            typer.echo(f"    fix:      {f['fix']}")
    errors = [f for f in report["findings"] if f["severity"] == "error"]
    if errors:
        err(f"troubleshoot: {len(errors)} problems found: {errors[0]['cause']}")
        raise typer.Exit(1)


@handle_errors
def render_cmd(
    config: ConfigOpt = None,
    output_dir: Annotated[str | None, typer.Option(help="Write one file per object here.")] = None,
) -> None:
    """Render the NIM chart for the config (no secrets: Secret names only)."""
    from pathlib import Path

    from nimble_oke.config_file import load_config
    from nimble_oke.services.chart_ops import render

    cfg, _ = load_config(config or OPTIONS.config)
    result = render(cfg, output_dir=Path(output_dir) if output_dir else None)
    if isinstance(result, str):
        typer.echo(result.rstrip())
    else:
        typer.echo(f"wrote {len(result)} manifests to {output_dir}")


@handle_errors
def lint_cmd(
    values: Annotated[str, typer.Argument(help="A values file for the nimble-nim chart.")],
    config: ConfigOpt = None,
    output: OutputOpt = "table",
) -> None:
    """Lint chart values: unknown keys, metrics path, startup budget, GPU fit, pinned image."""
    from nimble_oke.config_file import load_config
    from nimble_oke.errors import ConfigError
    from nimble_oke.services.chart_ops import lint_values
    from nimble_oke.user_files import VALUES_LIMITS, read_user_yaml

    check_output_format(output)
    cfg, _ = load_config(config or OPTIONS.config)
    user_values = read_user_yaml(values, what="values file", limits=VALUES_LIMITS)
    if user_values is None:
        user_values = {}
    if not isinstance(user_values, dict):
        raise ConfigError(f"values file {values}: the top level must be a mapping of values")
    issues = lint_values(cfg, user_values)
    if output == "json":
        print_json([i.as_dict() for i in issues])
    elif not issues:
        typer.echo(f"{values}: no problems ✓")
    else:
        for issue in issues:
            typer.echo(f"{'✗' if issue.severity == 'error' else '!'} {issue.key}: {issue.message}")
    errors = [i for i in issues if i.severity == "error"]
    if errors:
        err(f"{values}: {len(errors)} errors in the values ({errors[0].key}: {errors[0].message})")
        raise typer.Exit(2)


@handle_errors
def rollback_cmd(
    name: Annotated[str | None, typer.Option(help="Session name.")] = None,
    revision: Annotated[
        int | None, typer.Option(help="Revision to re-apply (default: previous).")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Re-apply an earlier chart revision of the session."""
    from nimble_oke.errors import KubeError
    from nimble_oke.services.sessions import run_rollback

    session = _session_name(name, config)
    with unreachable_as(KubeError, "the Kubernetes API"):
        run_rollback(session, revision, say=typer.echo)


watchdog_app = typer.Typer(
    help="The in-cluster lease watchdog (runs as a CronJob).", no_args_is_help=True
)


@watchdog_app.command("run")
@handle_errors
def watchdog_run_cmd(
    namespace: Annotated[str, typer.Option(help="Namespace holding the nimble-lease ConfigMap.")],
) -> None:
    """One watchdog pass inside the cluster (service account + OCI instance/workload identity)."""
    from nimble_oke.services.watchdog import run_in_cluster

    check_namespace(namespace)
    run_in_cluster(namespace, say=typer.echo)
