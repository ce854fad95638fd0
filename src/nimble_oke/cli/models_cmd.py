"""``nimble models``: the model repository in OCI Object Storage (push, list, promote,
replicate) and ``hydrate``, the command the chart's init container runs (docs/chart.md)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nimble_oke.cli.common import (
    OPTIONS,
    check_flag,
    check_output_format,
    handle_errors,
    print_json,
)

if TYPE_CHECKING:
    from nimble_oke.domain.config import NimbleConfig
    from nimble_oke.services.models import Reader, Storage
    from nimble_oke.services.targets import TargetKind

models_app = typer.Typer(
    help="Model repository in OCI Object Storage: push, list, promote, replicate, hydrate.",
    no_args_is_help=True,
)

ConfigOpt = Annotated[str | None, typer.Option("--config", "-c", help="Config file.")]
TargetOpt = Annotated[str | None, typer.Option(help="sim or oci.")]
OutputOpt = Annotated[str, typer.Option("--output", "-o", help="table or json.")]
BucketOpt = Annotated[str, typer.Option("--bucket", "-b", help="Bucket name.")]
ModelOpt = Annotated[
    str | None, typer.Option(help="Model name (default: the only model in the bucket).")
]
PAR_ENV = "NIMBLE_PAR_URL"


def check_bucket_flags(
    bucket: str | None, region: str | None = None, to_region: str | None = None
) -> None:
    """Refuse a bad --bucket/--region/--to before the simulator or the SDK is started."""
    from nimble_oke.domain.config import bucket_name, region_name

    check_flag("--bucket", bucket, bucket_name)
    check_flag("--region", region, region_name)
    check_flag("--to", to_region, region_name)


def _target(config: str | None, target: str | None) -> tuple[NimbleConfig, TargetKind]:
    from nimble_oke.config_file import load_config
    from nimble_oke.services.targets import target_kind

    cfg, _ = load_config(config or OPTIONS.config, {"target": target})
    return cfg, target_kind(cfg.target)


def open_storage(config: str | None, target: str | None) -> Storage:
    """The target's Object Storage (the target registry knows how each reaches it)."""
    cfg, kind = _target(config, target)
    return kind.model_storage(cfg)


@models_app.command("push")
@handle_errors
def push_cmd(
    directory: Annotated[str, typer.Argument(help="Model cache directory to upload.")],
    bucket: BucketOpt,
    version: Annotated[str, typer.Option(help="Version name (immutable once pushed).")],
    region: Annotated[str | None, typer.Option(help="Bucket region (default: config's).")] = None,
    model: Annotated[str | None, typer.Option(help="Model name (default: directory name).")] = None,
    parallelism: Annotated[int, typer.Option(min=1, max=64, help="Parallel uploads.")] = 8,
    part_size_mib: Annotated[int, typer.Option(min=1, max=5120, help="Multipart part size.")] = 64,
    target: TargetOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = "table",
) -> None:
    """Upload a model directory as a new version (parallel multipart, manifest last)."""
    from nimble_oke.services.models import MiB, push

    check_output_format(output)
    check_bucket_flags(bucket, region)
    with open_storage(config, target) as storage:
        result = push(
            storage,
            directory,
            bucket,
            version,
            region,
            model=model,
            part_size=part_size_mib * MiB,
            parallelism=parallelism,
        )
    if output == "json":
        print_json(vars(result))
        return
    typer.echo(
        f"pushed {result.model} {result.version}: {result.files} files, {result.links} links, "
        f"{result.bytes / MiB:.1f} MiB in {result.seconds:.1f} s → {bucket}/{result.prefix}/"
    )


@models_app.command("list")
@handle_errors
def list_cmd(
    bucket: BucketOpt,
    region: Annotated[str | None, typer.Option(help="Bucket region.")] = None,
    target: TargetOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = "table",
) -> None:
    """Complete versions in the bucket with size, file count and labels."""
    from nimble_oke.services.models import MiB, list_versions

    check_output_format(output)
    check_bucket_flags(bucket, region)
    with open_storage(config, target) as storage:
        versions = list_versions(storage, bucket, region=region)
    if output == "json":
        print_json([v.as_dict() for v in versions])
        return
    if not versions:
        typer.echo(f"no model versions in {bucket}")
    for v in versions:
        labels = ", ".join(v.labels) or "-"
        typer.echo(
            f"{v.model:<28} {v.version:<14} {v.size_bytes / MiB:>10.1f} MiB "
            f"{v.files:>5} files  {v.created:<26} {labels}"
        )


@models_app.command("promote")
@handle_errors
def promote_cmd(
    version: Annotated[str, typer.Argument(help="Version to point the label at.")],
    bucket: BucketOpt,
    to: Annotated[str, typer.Option("--to", help="Label, e.g. prod.")],
    model: ModelOpt = None,
    region: Annotated[str | None, typer.Option(help="Bucket region.")] = None,
    target: TargetOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = "table",
) -> None:
    """Point a label at a version (roll back by promoting the previous one)."""
    from nimble_oke.services.models import promote

    check_output_format(output)
    check_bucket_flags(bucket, region)
    with open_storage(config, target) as storage:
        pointer = promote(storage, version, bucket, to, model=model, region=region)
    if output == "json":
        print_json(pointer)
        return
    previous = pointer["previous"] or "none"
    typer.echo(
        f"{pointer['model']} {to} → {version} (was {previous}; "
        f"roll back: nimble models promote {previous} --bucket {bucket} --to {to})"
    )


@models_app.command("replicate")
@handle_errors
def replicate_cmd(
    bucket: BucketOpt,
    to: Annotated[str, typer.Option("--to", help="Destination region.")],
    model: ModelOpt = None,
    region: Annotated[str | None, typer.Option(help="Source bucket region.")] = None,
    deep: Annotated[
        bool, typer.Option("--deep", help="Download and sha256 every replica object.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the replica.")] = 1800.0,
    target: TargetOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = "table",
) -> None:
    """Replicate the bucket to another region; wait for the latest version and verify it."""
    from nimble_oke.services.models import replicate

    check_output_format(output)
    check_bucket_flags(bucket, region, to)
    cfg, kind = _target(config, target)
    with kind.model_storage(cfg) as storage:
        poll_s = kind.storage_poll_s
        result = replicate(
            storage, bucket, to, model=model, region=region, deep=deep, timeout_s=timeout,
            poll_s=poll_s,
        )  # fmt: skip
    if output == "json":
        print_json(vars(result))
        return
    typer.echo(
        f"replica {result.destination_region}/{result.destination_bucket} complete: "
        f"{result.model} {result.version}, {result.objects} objects, checksums ({result.verified}) "
        f"match the manifest ({result.seconds:.1f} s)"
    )


def _hydrate_reader(
    auth: str, source: Any, region: str | None, config: str | None, target: str | None
) -> tuple[Reader, Storage | None]:
    from nimble_oke.errors import ConfigError
    from nimble_oke.services.models import ParReader, Storage

    if auth == "par":
        url = os.environ.get(PAR_ENV, "")
        if not url:
            raise ConfigError(f"--auth par needs the PAR URL in ${PAR_ENV}")
        return ParReader(url), None
    if auth == "workload-identity":
        region = region or os.environ.get("OCI_RESOURCE_PRINCIPAL_REGION")
        if not region:
            raise ConfigError("--auth workload-identity needs --region")
        storage = Storage.with_workload_identity(region)
    elif auth == "config":
        storage = open_storage(config, target)
    else:
        raise ConfigError(f"--auth {auth!r}: allowed values are par, workload-identity, config")
    storage.namespace_name = source.namespace  # the source names it; no extra call
    return storage.reader(source.bucket, region), storage


@models_app.command("hydrate")
@handle_errors
def hydrate_cmd(
    source: Annotated[str, typer.Option(help="oci://<bucket>@<namespace>/<model prefix>")],
    dest: Annotated[str, typer.Option(help="Destination directory (NIM_CACHE_PATH).")],
    version: Annotated[str | None, typer.Option(help="Version or label (default: latest).")] = None,
    auth: Annotated[
        str, typer.Option(help="par ($NIMBLE_PAR_URL), workload-identity or config.")
    ] = "par",
    region: Annotated[str | None, typer.Option(help="Bucket region.")] = None,
    parallelism: Annotated[int, typer.Option(min=1, max=64, help="Parallel ranged GETs.")] = 8,
    part_size_mib: Annotated[int, typer.Option(min=1, max=5120, help="Range size.")] = 64,
    skip_if_manifest_matches: Annotated[
        bool,
        typer.Option(
            "--skip-if-manifest-matches/--always",
            help="Exit at once when dest/.nimble/manifest.json matches the source.",
        ),
    ] = True,
    target: TargetOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = "table",
) -> None:
    """Download a model version into a directory, verified; a warm cache returns at once."""
    from nimble_oke.services.models import MiB, Source, hydrate

    check_output_format(output)
    src = Source.parse(source)
    reader, storage = _hydrate_reader(auth, src, region, config, target)
    try:
        result = hydrate(
            reader,
            src,
            dest,
            version,
            parallelism=parallelism,
            part_size=part_size_mib * MiB,
            skip_if_manifest_matches=skip_if_manifest_matches,
        )
    finally:
        if storage is not None:
            storage.close()
    if output == "json":
        print_json(vars(result))
        return
    if result.skipped:
        typer.echo(f"{src} {result.version}: cache already matches, nothing downloaded")
    else:
        typer.echo(
            f"{src} {result.version}: {result.files} files, "
            f"{result.bytes_downloaded / MiB:.1f} MiB verified in {result.seconds:.1f} s → {dest}"
        )
