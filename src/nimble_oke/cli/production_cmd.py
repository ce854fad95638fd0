"""Production-path commands: ``nimble profiles``, ``nimble export``, ``nimble monitoring``.

Registered in cli/app.py's ``_register_commands``:

    app.command("profiles")(profiles)
    app.add_typer(export_app, name="export")
    app.add_typer(monitoring_app, name="monitoring")
"""

from __future__ import annotations

from typing import Annotated

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
    unreachable_as,
)

ConfigOpt = Annotated[
    str | None,
    typer.Option("--config", "-c", help="Config file (default: $NIMBLE_CONFIG or ./nimble.yaml)."),
]
SessionOpt = Annotated[
    str | None,
    typer.Option("--name", help="A recorded session (default: the config file's settings)."),
]
OutputOpt = Annotated[str, typer.Option("--output", "-o", help="table or json.")]

export_app = typer.Typer(
    help="GitOps: the chart values nimble would apply, and Argo CD objects (no secrets).",
    no_args_is_help=True,
)
monitoring_app = typer.Typer(
    help="Grafana dashboards, PrometheusRule alerts and prometheus-adapter rules for NIM.",
    no_args_is_help=True,
)


@handle_errors
def profiles(
    model: Annotated[str, typer.Argument(help="NIM model, e.g. meta/llama-3.1-8b-instruct.")],
    shape: Annotated[str, typer.Option("--shape", "-s", help="GPU shape, e.g. VM.GPU.A10.2.")],
    ngc: Annotated[
        bool,
        typer.Option(
            "--ngc/--no-ngc",
            help="Also ask NGC's NIM Metadata API which profiles fit (no credentials sent).",
        ),
    ] = False,
    image_tag: Annotated[
        str | None, typer.Option(help="NIM image tag for --ngc (default: the catalog's).")
    ] = None,
    metadata_url: Annotated[
        str | None,
        typer.Option(help="NIM Metadata API base URL for --ngc (default: NGC's; a mirror)."),
    ] = None,
    output: OutputOpt = "table",
) -> None:
    """NIM profiles (engine × precision × tensor parallelism) for a model on a GPU shape:
    fits yes/no, why, and the KV-cache tokens left."""
    from nimble_oke.catalog import load_catalog
    from nimble_oke.domain.profiles import list_profiles

    check_output_format(output)
    catalog = load_catalog()
    options = list_profiles(catalog, model, shape)
    published = None
    if ngc:
        from nimble_oke.services.doctor import nim_profile_fit

        spec = catalog.model(model)
        image = f"{spec.image}:{image_tag or spec.tag}"
        published = nim_profile_fit(image, shape, None, metadata_url=metadata_url)
    if output == "json":
        ngc_fit = published.as_dict() if published is not None else None
        profiles_json = [o.as_dict() for o in options]
        print_json(
            {"model": model, "shape": shape, "profiles": profiles_json}
            | ({"ngc_metadata": ngc_fit} if ngc else {})
        )
        return
    from rich.table import Table

    from nimble_oke.cli.render import console

    table = Table(show_edge=False, title=f"{model} on {shape}")
    table.add_column("profile", no_wrap=True)
    for col in ("engine", "precision", "tp", "fits", "KV tokens", "why"):
        table.add_column(col)
    for o in options:
        mark = "★ yes" if o.recommended else ("yes" if o.fits else "no")
        table.add_row(
            o.spec.name,
            o.spec.engine,
            o.spec.precision,
            str(o.spec.tensor_parallel),
            mark,
            f"{o.kv_tokens:,}" if o.fits else "-",
            o.reason,
        )
    console().print(table)
    if published is not None:
        console().print(f"NGC metadata ({published.status}): {published.detail}")
    if not any(o.fits for o in options):
        err(f"no profile of {model} fits {shape} (the table says why; try a larger shape)")
        raise typer.Exit(1)


@export_app.command("values")
@handle_errors
def export_values_cmd(
    name: SessionOpt = None,
    config: ConfigOpt = None,
    output_file: Annotated[
        str | None, typer.Option("--output-file", "-f", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """The chart values nimble would apply (Secret names only, never their contents)."""
    from pathlib import Path

    import yaml

    from nimble_oke.services.export import export_values, load_export_config

    check_session_name(name)
    cfg = load_export_config(name, config or OPTIONS.config)
    values = export_values(cfg, session=name)
    text = yaml.safe_dump(values, sort_keys=False)
    if output_file:
        Path(output_file).write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output_file}")
    else:
        typer.echo(text.rstrip())


@export_app.command("argocd")
@handle_errors
def export_argocd_cmd(
    name: SessionOpt = None,
    config: ConfigOpt = None,
    output_dir: Annotated[str, typer.Option(help="Directory to write into.")] = "argocd",
    environments: Annotated[
        str | None,
        typer.Option(help="Comma-separated environments (e.g. dev,prod) → an ApplicationSet."),
    ] = None,
    repo_url: Annotated[str | None, typer.Option(help="Git repository holding the chart.")] = None,
    chart_path: Annotated[str | None, typer.Option(help="Chart path in that repository.")] = None,
    revision: Annotated[str | None, typer.Option(help="Git revision (targetRevision).")] = None,
    project: Annotated[str, typer.Option(help="Argo CD project.")] = "default",
    argocd_namespace: Annotated[str, typer.Option(help="Namespace of Argo CD.")] = "argocd",
    server: Annotated[
        str, typer.Option(help="Destination cluster API server.")
    ] = "https://kubernetes.default.svc",
    auto_sync: Annotated[
        bool, typer.Option("--auto-sync/--manual-sync", help="Automated sync (prune, selfHeal).")
    ] = True,
) -> None:
    """Write an Argo CD Application (or an ApplicationSet for several environments) for the
    chart with this session's values inline; Secrets are referenced by name, never inlined."""
    from pathlib import Path

    from nimble_oke.services.export import (
        ArgoTarget,
        GitSource,
        load_export_config,
        write_argocd,
    )

    check_session_name(name)
    check_namespace(argocd_namespace, "--argocd-namespace")
    cfg = load_export_config(name, config or OPTIONS.config)
    default = GitSource()
    source = GitSource(
        repo_url or default.repo_url,
        chart_path or default.path,
        revision or default.target_revision,
    )
    target = ArgoTarget(project, argocd_namespace, server, auto_sync)
    envs = [e for e in (environments or "").split(",") if e.strip()]
    written = write_argocd(
        cfg, Path(output_dir), session=name, environments=envs, source=source, target=target
    )
    for path in written:
        typer.echo(f"wrote {path}")


@monitoring_app.command("install")
@handle_errors
def monitoring_install_cmd(
    kubeconfig: Annotated[
        str | None, typer.Option(help="Kubeconfig of the cluster (default: the session's).")
    ] = None,
    name: SessionOpt = None,
    config: ConfigOpt = None,
    namespace: Annotated[str, typer.Option(help="Namespace of Prometheus/Grafana.")] = "monitoring",
    release_label: Annotated[
        str, typer.Option(help="`release` label your Prometheus selects rules by.")
    ] = "prometheus",
    output: OutputOpt = "table",
) -> None:
    """Apply the dashboards (ConfigMaps labelled grafana_dashboard), the PrometheusRule and the
    prometheus-adapter rules (server-side apply; kube-prometheus-stack assumed)."""
    from pathlib import Path

    from nimble_oke.errors import KubeError
    from nimble_oke.services import monitoring

    check_output_format(output)
    check_namespace(namespace)
    check_session_name(name)
    check_kubeconfig(kubeconfig)
    labels = {"release": release_label}
    with unreachable_as(KubeError, "the Kubernetes API"):
        if kubeconfig:
            result = monitoring.install_from_kubeconfig(
                Path(kubeconfig), namespace=namespace, rule_labels=labels
            )
        else:
            from nimble_oke.config_file import load_config

            session = name
            if session is None:
                cfg, _ = load_config(config or OPTIONS.config)
                session = cfg.session_name
            result = monitoring.install_for_session(
                session, namespace=namespace, rule_labels=labels
            )
    if output == "json":
        print_json({"namespace": result.namespace, "applied": result.applied})
        return
    for item in result.applied:
        typer.echo(f"applied {item}")
    typer.echo(
        f"monitoring bundle installed in {result.namespace}: point prometheus-adapter at "
        "rules.existing=nimble-prometheus-adapter-rules"
    )


@monitoring_app.command("show")
@handle_errors
def monitoring_show_cmd(
    namespace: Annotated[str, typer.Option(help="Namespace of Prometheus/Grafana.")] = "monitoring",
) -> None:
    """Print the objects `install` would apply (multi-document YAML)."""
    import yaml

    from nimble_oke.services.monitoring import load_bundle, monitoring_manifests

    check_namespace(namespace)
    manifests = monitoring_manifests(load_bundle(), namespace=namespace)
    typer.echo(yaml.safe_dump_all(manifests, sort_keys=False).rstrip())
