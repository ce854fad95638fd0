"""Render and lint the nimble-nim Helm chart in-process (Helm v4 engine, no binary).

`helm-python-sdk` binds Helm's Go SDK through a C ABI: the chart is rendered exactly as
`helm template` would render it, including `values.schema.json` validation and `fail`
checks in the templates. It is imported lazily because the CLI must start fast.

Rendered manifests come back parsed and sorted in an order a server-side apply can walk
front to back (Namespace before everything, StorageClass before the claim that names it,
Service and NetworkPolicy before the pods they front and fence).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nimble_oke.errors import NimbleError
from nimble_oke.redact import redact

CHART_NAME = "nimble-nim"

# libyaml's safe loader when available (≈10× faster than the pure-Python one).
_SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# OKE's current Kubernetes version (reference/oke.md: 1.35.2, 2026-04-28).
DEFAULT_KUBE_VERSION = "v1.35.2"

# Apply order by kind; unknown kinds (other CRDs) go after the known ones, test pods last.
# NetworkPolicy is applied before the workloads so a pod is never up without its fence.
_APPLY_RANK: dict[str, int] = {
    "Namespace": 0,
    "CustomResourceDefinition": 1,
    "StorageClass": 2,
    "PriorityClass": 2,
    "ServiceAccount": 3,
    "ClusterRole": 4,
    "Role": 4,
    "ClusterRoleBinding": 5,
    "RoleBinding": 5,
    "Secret": 6,
    "ConfigMap": 6,
    "PersistentVolumeClaim": 7,
    "Service": 8,
    "NetworkPolicy": 9,
    "DaemonSet": 10,
    "Deployment": 10,
    "StatefulSet": 10,
    "Job": 11,
    "HorizontalPodAutoscaler": 12,
    "ScaledObject": 12,
    "PodDisruptionBudget": 13,
    "ServiceMonitor": 14,
    "PodMonitor": 14,
    "PrometheusRule": 14,
}
_UNKNOWN_RANK = 15
_HOOK_RANK = 16

_SCHEMA_ERROR = re.compile(r"at '(?P<path>[^']*)': (?P<reason>[^\n]+)")
_ADDITIONAL = re.compile(r"additional propert(?:y|ies) (?P<names>'[^\n]+?') not allowed")
_FAIL_MESSAGE = re.compile(r"execution error at \([^)]*\): (?P<message>.+)", re.S)
_KEY_PREFIX = re.compile(r"^(?P<key>[A-Za-z][A-Za-z0-9_.\-]*): ")


class ChartError(NimbleError):
    """The chart refused the values (schema, template check) or could not be rendered.

    ``keys`` names the offending value paths (dotted, e.g. ``cache.size``), first one in
    ``key``; the message never contains a secret.
    """

    exit_code = 2

    def __init__(self, message: str, *, keys: Iterable[str] = (), hint: str | None = None) -> None:
        super().__init__(redact(message), hint=hint)
        self.keys: tuple[str, ...] = tuple(keys)

    @property
    def key(self) -> str | None:
        """The first offending value path, if known."""
        return self.keys[0] if self.keys else None


@dataclass(frozen=True)
class LintMessage:
    """One `helm lint` finding."""

    severity: str  # "info" | "warning" | "error"
    path: str
    text: str


@dataclass(frozen=True)
class LintReport:
    """Result of `helm lint`; findings are data, not exceptions."""

    strict: bool
    messages: tuple[LintMessage, ...] = field(default_factory=tuple)

    @property
    def errors(self) -> list[LintMessage]:
        return [m for m in self.messages if m.severity == "error"]

    @property
    def warnings(self) -> list[LintMessage]:
        return [m for m in self.messages if m.severity == "warning"]

    @property
    def ok(self) -> bool:
        """No errors (and, in strict mode, no warnings either)."""
        return not self.errors and not (self.strict and self.warnings)


# --- locating the chart -----------------------------------------------------------


def chart_path() -> Path:
    """The chart directory: the repository's `charts/nimble-nim` when running from a
    checkout, otherwise the copy shipped as package data (`nimble_oke/data/charts/...`)."""
    package_dir = Path(__file__).resolve().parent.parent  # .../nimble_oke
    candidates = (
        package_dir.parent.parent / "charts" / CHART_NAME,  # repo: src/nimble_oke/../../charts
        package_dir / "data" / "charts" / CHART_NAME,  # installed wheel
    )
    for candidate in candidates:
        if (candidate / "Chart.yaml").is_file():
            return candidate
    raise ChartError(
        f"the {CHART_NAME} chart was not found",
        hint="looked in " + ", ".join(str(c) for c in candidates),
    )


# --- rendering --------------------------------------------------------------------


def render_chart(
    values: Mapping[str, Any],
    *,
    release: str,
    namespace: str,
    chart_dir: Path | None = None,
    include_tests: bool = False,
) -> list[dict[str, Any]]:
    """Render the chart with ``values`` (merged over the chart defaults by Helm).

    Returns parsed manifests, blank templates dropped, sorted for apply (see module
    docstring). Helm test hooks are left out unless ``include_tests``; they sort last.

    Raises:
        ChartError: values rejected by the schema or a template check (naming the key),
            values carrying a secret, or a template that does not render.
    """
    import helm_python as helm

    _refuse_secrets(values)
    directory = chart_dir or chart_path()
    try:
        helm.validate_release_name(release)
        with helm.Chart.load(directory) as chart:
            rendered = chart.render(dict(values), name=release, namespace=namespace)
    except helm.HelmValuesError as exc:
        raise _schema_error(str(exc)) from None
    except helm.HelmRenderError as exc:
        raise _render_error(str(exc)) from None
    except helm.HelmChartLoadError as exc:
        raise ChartError(f"cannot load chart {directory}: {exc}") from None
    except helm.HelmError as exc:  # e.g. an invalid release name
        raise ChartError(f"chart render failed: {exc}") from None
    manifests = _parse(rendered)
    if not include_tests:
        manifests = [m for m in manifests if not _is_test_hook(m)]
    return sort_for_apply(manifests)


def validate_values(values: Mapping[str, Any], *, chart_dir: Path | None = None) -> None:
    """Check ``values`` against `values.schema.json` without rendering.

    Raises:
        ChartError: naming every offending key.
    """
    import helm_python as helm

    _refuse_secrets(values)
    with helm.Chart.load(chart_dir or chart_path()) as chart:
        try:
            chart.validate_schema(chart.merge_values(dict(values)))
        except helm.HelmValuesError as exc:
            raise _schema_error(str(exc)) from None


def default_values(chart_dir: Path | None = None) -> dict[str, Any]:
    """The chart's `values.yaml` as a dictionary."""
    import helm_python as helm

    with helm.Chart.load(chart_dir or chart_path()) as chart:
        return chart.values


def lint_chart(
    values: Mapping[str, Any] | None = None,
    *,
    chart_dir: Path | None = None,
    strict: bool = True,
    kube_version: str = DEFAULT_KUBE_VERSION,
    namespace: str | None = None,
) -> LintReport:
    """Run `helm lint` (in-process) on the chart with optional ``values``."""
    import helm_python as helm

    if values is not None:
        _refuse_secrets(values)
    report = helm.lint(
        str(chart_dir or chart_path()),
        dict(values) if values is not None else None,
        strict=strict,
        kube_version=kube_version,
        namespace=namespace,
    )
    severities = {0: "info", 1: "info", 2: "warning", 3: "error"}
    messages = [
        LintMessage(severities.get(int(m.get("severity", 3)), "error"), m["path"], m["error"])
        for m in report.get("messages") or []
    ]
    messages += [LintMessage("error", "", text) for text in report.get("errors") or []]
    return LintReport(strict=strict, messages=tuple(messages))


def startup_probe_values(
    budget_seconds: int, *, computed_by: str, period_seconds: int = 10
) -> dict[str, Any]:
    """Chart values for a startup budget computed elsewhere (correction C3).

    The kubelet gives a container ``periodSeconds × failureThreshold`` to pass its startup
    probe; the threshold is rounded up so the budget is never cut short.
    """
    if budget_seconds <= 0 or period_seconds <= 0:
        raise ChartError(
            "probes.startup: budget and period must be positive", keys=["probes.startup"]
        )
    failures = -(-budget_seconds // period_seconds)  # ceiling division
    return {
        "probes": {
            "startup": {
                "periodSeconds": period_seconds,
                "failureThreshold": failures,
                "budgetSeconds": failures * period_seconds,
                "computedBy": computed_by,
            }
        }
    }


def to_yaml(manifests: Iterable[Mapping[str, Any]]) -> str:
    """Manifests as one multi-document YAML stream (for GitOps export or `kubectl`)."""
    return "".join(
        "---\n" + yaml.safe_dump(dict(m), sort_keys=False, default_flow_style=False)
        for m in manifests
    )


def sort_for_apply(manifests: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stable sort by apply rank (see `_APPLY_RANK`), keeping render order within a kind."""
    return sorted(manifests, key=apply_rank)


def apply_rank(manifest: Mapping[str, Any]) -> int:
    """Position of a manifest's kind in the apply order (lower goes first)."""
    if _is_test_hook(manifest):
        return _HOOK_RANK
    return _APPLY_RANK.get(str(manifest.get("kind", "")), _UNKNOWN_RANK)


class HelmChartRenderer:
    """The `ChartRenderer` port implemented with the in-process Helm engine."""

    def __init__(self, chart_dir: Path | None = None) -> None:
        self.chart_dir = chart_dir or chart_path()

    def render(
        self, values: Mapping[str, Any], *, release: str, namespace: str
    ) -> list[dict[str, Any]]:
        return render_chart(values, release=release, namespace=namespace, chart_dir=self.chart_dir)


# --- helpers ----------------------------------------------------------------------


def _parse(rendered: Mapping[str, str]) -> list[dict[str, Any]]:
    manifests: list[dict[str, Any]] = []
    for path in sorted(rendered):
        if path.endswith("NOTES.txt") or not rendered[path].strip():
            continue
        try:
            documents = list(yaml.load_all(rendered[path], Loader=_SAFE_LOADER))
        except yaml.YAMLError as exc:
            raise ChartError(f"{path} rendered invalid YAML: {exc}") from None
        for document in documents:
            if document is None:
                continue
            if not isinstance(document, dict) or "kind" not in document:
                raise ChartError(f"{path} rendered something that is not a Kubernetes object")
            manifests.append(document)
    return manifests


def _is_test_hook(manifest: Mapping[str, Any]) -> bool:
    annotations = (manifest.get("metadata") or {}).get("annotations") or {}
    hooks = str(annotations.get("helm.sh/hook", ""))
    return "test" in {h.strip() for h in hooks.split(",")}


def _schema_error(text: str) -> ChartError:
    """Turn Helm's schema report into a message naming each bad key."""
    problems: list[str] = []
    keys: list[str] = []
    for match in _SCHEMA_ERROR.finditer(text):
        base = match.group("path").strip("/").replace("/", ".")
        reason = match.group("reason").strip()
        if reason == "validation failed":  # an aggregate; its causes follow, indented
            continue
        extra = _ADDITIONAL.search(reason)
        if extra:
            for name in re.findall(r"'([^']+)'", extra.group("names")):
                key = f"{base}.{name}" if base else name
                keys.append(key)
                problems.append(f"{key}: unknown key")
        else:
            key = base or "(values)"
            keys.append(key)
            problems.append(f"{key}: {reason}")
    if not problems:
        return ChartError(f"chart values rejected: {text.strip()}")
    keys = list(dict.fromkeys(keys))
    return ChartError(
        "chart values rejected: " + "; ".join(problems),
        keys=keys,
        hint="see charts/nimble-nim/values.schema.json or docs/chart.md for the allowed keys",
    )


def _render_error(text: str) -> ChartError:
    match = _FAIL_MESSAGE.search(text)
    if not match:
        return ChartError(f"chart failed to render: {text.strip()}")
    message = match.group("message").strip()
    key = _KEY_PREFIX.match(message)
    return ChartError(f"chart values rejected: {message}", keys=[key.group("key")] if key else [])


def _refuse_secrets(values: Mapping[str, Any]) -> None:
    """Secrets belong in Kubernetes Secrets referenced by name, never in chart values
    (values end up in the Helm release record and in GitOps repositories)."""
    for path, value in _walk(values, ""):
        if isinstance(value, str) and redact(value) != value:
            raise ChartError(
                f"chart value {path} looks like a secret (NGC key, PAR URL, token or key)",
                keys=[path],
                hint="store it in a Kubernetes Secret and reference the Secret by name",
            )


def _walk(value: Any, path: str) -> Iterable[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")
    else:
        yield path, value
