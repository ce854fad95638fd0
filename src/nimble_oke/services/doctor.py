"""``nimble doctor``: prerequisites for the chosen target, each pass / warn / fail with the
fix. Nothing is created; every check is read-only."""

from __future__ import annotations

import importlib
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nimble_oke.catalog import load_catalog
from nimble_oke.domain.config import NimbleConfig
from nimble_oke.errors import NimbleError
from nimble_oke.services.targets import Target, target_kind


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # pass | warn | fail
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


def check_python_deps() -> Check:
    missing = []
    for module in ("oci", "lightkube", "aiohttp", "yaml", "numpy", "helm_python"):
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    if missing:
        return Check(
            "python packages",
            "fail",
            f"missing: {', '.join(missing)}",
            "pip install -e '.[dev]' (or make setup)",
        )
    return Check(
        "python packages", "pass", "oci, lightkube, aiohttp, numpy, helm engine importable"
    )


def check_oci_config(cfg: NimbleConfig) -> Check:
    import configparser

    path = Path(os.path.expanduser(cfg.oci.config_file))
    fix = "create it with `oci setup config` or the console's API key page"
    if not path.exists():
        return Check("OCI config", "fail", f"{path} does not exist", fix)
    parser = configparser.ConfigParser()
    try:
        parser.read(path)
    except configparser.Error as exc:
        return Check("OCI config", "fail", f"{path} is not a valid INI file: {exc}", fix)
    profile = cfg.oci.profile
    if profile != "DEFAULT" and not parser.has_section(profile):
        return Check(
            "OCI config",
            "fail",
            f"profile [{profile}] is not in {path}",
            f"add [{profile}] or set oci.profile",
        )
    section = parser[profile] if profile != "DEFAULT" else parser.defaults()
    missing = [
        k for k in ("user", "tenancy", "fingerprint", "key_file", "region") if k not in section
    ]
    if missing:
        return Check("OCI config", "fail", f"[{profile}] lacks {', '.join(missing)}", fix)
    key = Path(os.path.expanduser(section["key_file"]))
    if not key.exists():
        return Check(
            "OCI config",
            "fail",
            f"key_file {key} does not exist",
            "point key_file at your API private key",
        )
    if key.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        return Check(
            "OCI config", "warn", f"key_file {key} is readable by others", f"chmod 600 {key}"
        )
    return Check("OCI config", "pass", f"{path} [{profile}], region {section['region']}")


def check_ngc_key(cfg: NimbleConfig, env: Mapping[str, str], *, simulated: bool) -> Check:
    from nimble_oke.ngc_keys import NGC_KEY_RE

    name = cfg.nim.ngc_api_key_env
    key = env.get(name, "")
    if not key:
        if simulated:
            return Check(
                "NGC API key",
                "warn",
                f"${name} not set: the sim target uses a simulated key",
                f"export {name}=nvapi-… before using --target oci",
            )
        return Check(
            "NGC API key",
            "fail",
            f"${name} is not set",
            f"export {name}=nvapi-… (ngc.nvidia.com → Setup → API Key)",
        )
    if not NGC_KEY_RE.match(key):
        return Check(
            "NGC API key",
            "fail",
            f"${name} does not look like an NGC key",
            "NGC keys start with nvapi- (regenerate it on ngc.nvidia.com)",
        )
    return Check("NGC API key", "pass", f"${name} is set and well-formed")


def check_ngc_access(
    cfg: NimbleConfig, env: Mapping[str, str], *, registry_url: str | None
) -> Check:
    """Correction C5: can this key pull the chosen model's image?"""
    from nimble_oke.nim.ngc import check_ngc_access as probe

    key = env.get(cfg.nim.ngc_api_key_env, "")
    if registry_url is None:
        return Check("NGC model access", "warn", "skipped on the sim target (no real registry)")
    if not key:
        return Check(
            "NGC model access",
            "fail",
            "no NGC key to check",
            f"export {cfg.nim.ngc_api_key_env}=nvapi-…",
        )
    model = load_catalog().model(cfg.nim.model)
    image = f"{cfg.nim.image_repository or model.image}:{cfg.nim.image_tag or model.tag}"
    result = probe(key, image, registry_url=registry_url)
    if result.ok:
        return Check("NGC model access", "pass", f"the key can pull {image}")
    return Check(
        "NGC model access",
        "fail",
        f"{image}: {result.detail}",
        "check the key's org/team entitlement for this NIM on ngc.nvidia.com",
    )


NGC_METADATA_API = "https://api.ngc.nvidia.com/v2"  # nim/metadata_api.NGC_API (no aiohttp here)


def check_nim_profiles(cfg: NimbleConfig, *, metadata_url: str = NGC_METADATA_API) -> Check:
    """The NIM Metadata API (docs.nvidia.com/nim/metadata-api), when NGC publishes metadata
    for the configured image: does a profile fit the shape's GPUs, and is a pinned profile
    one of them? No credentials are sent."""
    model = load_catalog().model(cfg.nim.model)
    image = f"{cfg.nim.image_repository or model.image}:{cfg.nim.image_tag or model.tag}"
    return nim_profile_fit(
        image, cfg.gpu_pool.shape, cfg.nim.model_profile, metadata_url=metadata_url
    )


def nim_profile_fit(
    image: str, shape_name: str, pinned: str | None, *, metadata_url: str | None = None
) -> Check:
    """``image``'s profiles NGC says fit a node of ``shape_name`` (GPU-agnostic ones: the
    catalog knows no PCI ids). NIMs released before September 2026 publish no metadata:
    the catalog's fit rule (``nimble profiles``) is then all there is, which is fine."""
    import asyncio

    from nimble_oke.errors import EndpointError
    from nimble_oke.nim.metadata_api import fetch_metadata, fitting_profiles

    name, shape = "NIM profiles", load_catalog().shape(shape_name)
    try:
        meta = asyncio.run(fetch_metadata(image, base_url=metadata_url or NGC_METADATA_API))
    except (EndpointError, ValueError) as exc:
        return Check(name, "warn", f"{exc}; using the catalog's fit rule")
    if meta is None:
        return Check(
            name,
            "pass",
            f"NGC publishes no metadata for {image} (NIMs released before Sept 2026 lack it); "
            "using the catalog's fit rule",
        )
    fits = fitting_profiles(meta, gpu_memory_gb=shape.gpu_memory_gb, gpu_count=shape.gpu_count)
    names = [p.name for p in fits]
    node = f"{shape.name} ({shape.gpu_count}× {shape.gpu_memory_gb:g} GB)"
    if not fits:
        return Check(
            name,
            "warn",
            f"NGC lists no GPU-agnostic profile of {image} that fits {node}",
            "pick a larger shape or a smaller precision (nimble profiles MODEL --shape S)",
        )
    if pinned and pinned not in {p.profile_id for p in fits} | set(names):
        return Check(
            name,
            "warn",
            f"nim.model_profile {pinned} is not among the profiles NGC says fit {node}: "
            + ", ".join(names),
            "unset nim.model_profile (NIM selects) or pin one of those",
        )
    return Check(name, "pass", f"{len(fits)} profiles of {image} fit {node}: " + ", ".join(names))


def provider_checks(cfg: NimbleConfig, target: Target) -> list[Check]:
    out: list[Check] = []
    provider = target.provider
    try:
        tenancy = provider.check_credentials()
        out.append(Check("credentials", "pass", f"authenticated to tenancy {tenancy}"))
    except NimbleError as exc:
        out.append(Check("credentials", "fail", str(exc), "check user, fingerprint and key_file"))
        return out
    try:
        name = provider.compartment_name(provider.compartment_id)
        out.append(Check("compartment", "pass", name))
    except NimbleError as exc:
        out.append(
            Check(
                "compartment", "fail", str(exc), "set oci.compartment_id to an ACTIVE compartment"
            )
        )
    try:
        versions = provider.kubernetes_versions()
        version = cfg.cluster.kubernetes_version
        if version in versions:
            out.append(Check("Kubernetes version", "pass", f"{version} offered by OKE"))
        else:
            out.append(
                Check(
                    "Kubernetes version",
                    "fail",
                    f"{version} not offered; available: {', '.join(versions)}",
                    "set cluster.kubernetes_version",
                )
            )
    except NimbleError as exc:
        out.append(Check("Kubernetes version", "fail", str(exc)))
    shape = load_catalog().shape(cfg.gpu_pool.shape)
    need = shape.gpu_count * max(1, cfg.gpu_pool.nodes)
    try:
        facts = [
            provider.gpu_availability(shape.name, shape.limit_name, ad)
            for ad in provider.availability_domains()
        ]
    except NimbleError as exc:
        out.append(Check("GPU limits", "fail", str(exc)))
        return out
    usable = [
        f
        for f in facts
        if (f.limit_available is None or f.limit_available >= need)
        and f.capacity in ("AVAILABLE", "UNKNOWN")
    ]
    summary = ", ".join(
        f"{f.availability_domain.split(':')[-1]}: {f.limit_available if f.limit_available is not None else '?'} left, {f.capacity.lower()}"
        for f in facts
    )
    if usable:
        out.append(Check("GPU limits", "pass", f"{shape.limit_name} needs {need}: {summary}"))
    else:
        out.append(
            Check(
                "GPU limits",
                "fail",
                f"{shape.limit_name} needs {need}: {summary}",
                f"request a service limit increase for {shape.limit_name} in {provider.region}",
            )
        )
    return out


def cluster_checks(client_factory: Callable[[], Any] | None) -> list[Check]:
    """Kubeconfig reachable and the GPU device plugin present (a session's cluster)."""
    if client_factory is None:
        return [Check("cluster", "warn", "no running session: cluster checks skipped")]
    from lightkube.core.exceptions import ApiError
    from lightkube.resources.apps_v1 import DaemonSet
    from lightkube.resources.core_v1 import Node

    errors: tuple[type[BaseException], ...] = (NimbleError, ApiError, OSError, *_transport_errors())
    client = None
    try:
        client = client_factory()
        nodes = list(client.list(Node))
    except errors as exc:
        if client is not None:
            client.close()
        return [
            Check(
                "kubeconfig",
                "fail",
                f"cannot reach the cluster: {exc}",
                "nimble status; re-run nimble up",
            )
        ]
    out = [Check("kubeconfig", "pass", f"cluster reachable, {len(nodes)} node(s)")]
    gpus = 0
    for node in nodes:
        alloc = (node.status.allocatable or {}) if node.status else {}
        gpus += int(alloc.get("nvidia.com/gpu", "0") or 0)
    plugin = [
        d
        for d in client.list(DaemonSet, namespace="kube-system")
        if "gpu" in (d.metadata.name or "")
    ]
    client.close()
    if gpus > 0:
        out.append(Check("GPU device plugin", "pass", f"{gpus} nvidia.com/gpu allocatable"))
    elif plugin:
        out.append(Check("GPU device plugin", "warn", "plugin present but no GPU allocatable yet"))
    else:
        out.append(
            Check(
                "GPU device plugin",
                "fail",
                "no node advertises nvidia.com/gpu",
                "install the NvidiaGpuPlugin cluster add-on (enhanced clusters) or the NVIDIA device plugin",
            )
        )
    return out


def _transport_errors() -> tuple[type[BaseException], ...]:
    """lightkube's HTTP library's errors (httpx2 in lightkube ≥ 1.0, httpx before)."""
    try:
        import httpx2

        return (httpx2.HTTPError,)
    except ImportError:  # pragma: no cover - older lightkube
        import httpx

        return (httpx.HTTPError,)


def run_doctor(
    cfg: NimbleConfig,
    target: Target | None,
    env: Mapping[str, str],
    *,
    client_factory: Callable[[], Any] | None = None,
    registry_url: str | None = "https://nvcr.io",
    metadata_url: str = NGC_METADATA_API,
) -> list[Check]:
    kind = target_kind(cfg.target)
    checks = [check_python_deps()]
    if kind.oci_profile:
        checks.append(check_oci_config(cfg))
    checks.append(check_ngc_key(cfg, env, simulated=not kind.real_registry))
    registry = registry_url if kind.real_registry else None
    checks.append(check_ngc_access(cfg, env, registry_url=registry))
    if kind.real_registry:  # the sim stack serves no Metadata API (yet): no check there
        checks.append(check_nim_profiles(cfg, metadata_url=metadata_url))
    if target is not None:
        checks += provider_checks(cfg, target)
    checks += cluster_checks(client_factory)
    return checks
