"""Render, lint and roll back the chart for a config or a session.

The values linter flags what users of other NIM charts get wrong: unknown keys (the
schema), a metrics path other than ``/v1/metrics``, a startup budget shorter than the one
nimble computes for the model (correction C3), a model that cannot fit the node's GPUs,
an unpinned (``latest``) image.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nimble_oke.catalog import load_catalog
from nimble_oke.domain.catalog import memory_fit
from nimble_oke.domain.config import NimbleConfig
from nimble_oke.domain.plan import Plan, build_plan
from nimble_oke.errors import ConfigError
from nimble_oke.services.values import chart_values


def session_values(cfg: NimbleConfig) -> tuple[Plan, dict[str, Any]]:
    plan = build_plan(cfg, load_catalog())
    return plan, chart_values(cfg, plan, session=cfg.session_name)


def render(cfg: NimbleConfig, *, output_dir: Path | None = None) -> str | list[Path]:
    from nimble_oke.kube.render import render_chart, to_yaml

    _, values = session_values(cfg)
    manifests = render_chart(values, release=cfg.session_name, namespace=cfg.nim.namespace)
    if output_dir is None:
        return to_yaml(manifests)
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for index, manifest in enumerate(manifests):
        name = f"{index:02d}-{manifest['kind'].lower()}-{manifest['metadata']['name']}.yaml"
        path = output_dir / name
        path.write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
        written.append(path)
    return written


@dataclass(frozen=True)
class LintIssue:
    severity: str  # error | warning
    key: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"severity": self.severity, "key": self.key, "message": self.message}


def _get(values: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


# NIM 2.x's environment variable reference (docs.nvidia.com/nim/large-language-models/2.0.x
# reference/environment-variables and its index): what a 2.x container reads. NIM 1.x's other
# NIM_* variables were removed ("replaced by natively supported vLLM engine arguments",
# 1.x→2.0 migration guide); in 2.x they go in nim.passthroughArgs.
NIM2_VARIABLES = frozenset(
    {
        "NIM_CACHE_PATH",
        "NIM_CACHE_PROBE_TIMEOUT",
        "NIM_CAPTURE_ARGS",
        "NIM_CAPTURE_ENABLE",
        "NIM_CORS_ALLOW_HEADERS",
        "NIM_CORS_ALLOW_METHODS",
        "NIM_CORS_ALLOW_ORIGINS",
        "NIM_CORS_EXPOSE_HEADERS",
        "NIM_CORS_MAX_AGE",
        "NIM_DISABLE_CUDA_GRAPH",
        "NIM_DISABLE_MODEL_DOWNLOAD",
        "NIM_DRAFT_MODEL_PATH",
        "NIM_ENABLE_OTEL",
        "NIM_HEALTH_PORT",
        "NIM_JSONL_LOGGING",
        "NIM_LOG_LEVEL",
        "NIM_MAX_MODEL_LEN",
        "NIM_MIDDLEWARE_CONFIG_PATH",
        "NIM_MODEL_PATH",
        "NIM_MODEL_PROFILE",
        "NIM_NGINX_DIR",
        "NIM_NUM_COMPUTE_NODES",
        "NIM_PASSTHROUGH_ARGS",
        "NIM_PEFT_API_TIMEOUT_SECS",
        "NIM_PEFT_REFRESH_INTERVAL",
        "NIM_PEFT_SOURCE",
        "NIM_PIPELINE_PARALLEL_SIZE",
        "NIM_REPOSITORY_OVERRIDE",
        "NIM_SAGEMAKER_MODE",
        "NIM_SERVED_MODEL_NAME",
        "NIM_SERVER_PORT",
        "NIM_TRUST_CUSTOM_CODE",
    }
)
# Variables NIM 2.x introduced (assumption: not read by 1.x; not in NIM 1.x's docs).
NIM2_ONLY_VARIABLES = frozenset({"NIM_PASSTHROUGH_ARGS", "NIM_HEALTH_PORT"})


def nim_major(values: Mapping[str, Any]) -> int:
    """The NIM major version of the chart values' image (as the chart decides it)."""
    pinned = str(_get(values, "nim.majorVersion", "auto"))
    if pinned in ("1", "2"):
        return int(pinned)
    return 1 if str(_get(values, "image.tag", "")).startswith("1.") else 2


def version_issues(values: Mapping[str, Any]) -> list[LintIssue]:
    """Settings of one NIM major used with an image of the other (the chart itself refuses
    its own keys of the wrong major when it renders)."""
    major = nim_major(values)
    tag = _get(values, "image.tag", "?")
    issues = []
    for index, item in enumerate(_get(values, "nim.extraEnv", []) or []):
        name = str(item.get("name", "")) if isinstance(item, Mapping) else ""
        key = f"nim.extraEnv[{index}]"
        if major >= 2 and name.startswith("NIM_") and name not in NIM2_VARIABLES:
            issues.append(
                LintIssue(
                    "error",
                    key,
                    f"{name} is not read by NIM 2.x (image tag {tag}): NIM 1.x variables "
                    "were replaced by vLLM engine arguments; put them in nim.passthroughArgs",
                )
            )
        elif major == 1 and name in NIM2_ONLY_VARIABLES:
            issues.append(
                LintIssue("error", key, f"{name} is a NIM 2.x variable; image tag {tag} is NIM 1.x")
            )
    return issues


def lint_values(cfg: NimbleConfig, user_values: Mapping[str, Any]) -> list[LintIssue]:
    """Lint a values file for the nimble-nim chart against the session's config."""
    from nimble_oke.kube.render import ChartError, default_values, render_chart, validate_values

    issues: list[LintIssue] = []
    try:
        validate_values(user_values)
    except ChartError as exc:
        for key in exc.keys or ("values",):
            issues.append(LintIssue("error", key, exc.message))
        return issues
    plan, computed = session_values(cfg)
    merged = _merge(default_values(), user_values)
    catalog = load_catalog()
    tag = str(_get(merged, "image.tag", ""))
    if tag in ("", "latest"):
        issues.append(
            LintIssue("error", "image.tag", "pin a NIM version; 'latest' is not reproducible")
        )
    issues += version_issues(merged)
    period = int(_get(merged, "probes.startup.periodSeconds", 10))
    threshold = int(_get(merged, "probes.startup.failureThreshold", 1))
    enabled = bool(_get(merged, "probes.startup.enabled", True))
    need = plan.startup.budget_s
    if not enabled:
        issues.append(
            LintIssue(
                "warning",
                "probes.startup.enabled",
                "no startup probe: liveness may kill a loading model",
            )
        )
    elif period * threshold < need:
        issues.append(
            LintIssue(
                "error",
                "probes.startup.failureThreshold",
                f"startup budget {period * threshold}s is shorter than the {need:.0f}s nimble computes for "
                f"{plan.model.name} (download + load + engine start × safety): NIM would be killed mid-start "
                f"(correction C3); use failureThreshold ≥ {int(-(-need // period))}",
            )
        )
    gpus = int(_get(merged, "resources.gpu", 1))
    shape_name = str(_get(merged, "scheduling.shape", "") or cfg.gpu_pool.shape)
    shape = catalog.shapes.get(shape_name)
    if shape is not None:
        per_gpu = shape.gpu_memory_gb
        from dataclasses import replace

        sized = replace(shape, gpu_count=min(gpus, shape.gpu_count))
        fit = memory_fit(plan.model, cfg.nim.precision, sized)
        if not fit.fits:
            issues.append(
                LintIssue("error", "resources.gpu", f"{gpus}× {per_gpu:g} GB: {fit.reason}")
            )
        if gpus > shape.gpu_count:
            issues.append(
                LintIssue(
                    "error", "resources.gpu", f"{shape.name} has only {shape.gpu_count} GPU(s)"
                )
            )
    try:
        manifests = render_chart(merged, release=cfg.session_name, namespace=cfg.nim.namespace)
    except ChartError as exc:
        issues.append(LintIssue("error", exc.key or "values", exc.message))
        return issues
    for manifest in manifests:
        if manifest.get("kind") == "ServiceMonitor":
            for endpoint in manifest.get("spec", {}).get("endpoints", []):
                if endpoint.get("path") != "/v1/metrics":
                    issues.append(
                        LintIssue(
                            "error",
                            "monitoring.serviceMonitor",
                            f"scrapes {endpoint.get('path')!r}: NIM serves metrics at /v1/metrics",
                        )
                    )
    del computed
    return issues


def _merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def read_values_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"values file {path}: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"values file {path}: the top level must be a mapping")
    return data


def revision_values(
    revisions: list[dict[str, Any]], revision: int | None
) -> tuple[int, dict[str, Any]]:
    if not revisions:
        raise ConfigError("this session has no applied revisions")
    if revision is None:
        if len(revisions) < 2:
            raise ConfigError("only one revision applied: nothing to roll back to")
        chosen = revisions[-2]
    else:
        matching = [r for r in revisions if r["revision"] == revision]
        if not matching:
            known = ", ".join(str(r["revision"]) for r in revisions)
            raise ConfigError(f"no revision {revision}; applied revisions: {known}")
        chosen = matching[0]
    values: dict[str, Any] = json.loads(chosen["values_json"])
    return int(chosen["revision"]), values
