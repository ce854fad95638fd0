"""The monitoring bundle (``deploy/monitoring/``) as Kubernetes objects, and its install.

The bundle assumes kube-prometheus-stack (Prometheus Operator + Grafana with the dashboard
sidecar) and prometheus-adapter in the cluster; it installs:

- one ConfigMap per Grafana dashboard, labelled ``grafana_dashboard: "1"`` — the label
  kube-prometheus-stack's Grafana sidecar watches (``sidecar.dashboards.label``);
- the PrometheusRule (recording rules for GPU cost, alerts on NIM latency/queue/KV cache and
  DCGM GPU health);
- ConfigMap ``nimble-prometheus-adapter-rules`` (key ``config.yaml``) for prometheus-adapter
  (``rules.existing``), serving the HPA's custom metrics.

Install is server-side apply with field manager ``nimble-oke``; re-running converges.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nimble_oke.errors import ConfigError, KubeError

PART_OF = {"app.kubernetes.io/part-of": "nimble-oke-monitoring"}
DASHBOARD_LABEL = ("grafana_dashboard", "1")
ADAPTER_CONFIGMAP = "nimble-prometheus-adapter-rules"
DEFAULT_NAMESPACE = "monitoring"


@dataclass(frozen=True)
class MonitoringBundle:
    dashboards: Mapping[str, dict[str, Any]]  # file stem → dashboard JSON
    prometheus_rule: dict[str, Any]
    adapter_rules: dict[str, Any]


@dataclass
class InstallResult:
    namespace: str
    applied: list[str] = field(default_factory=list)


def bundle_dir() -> Path:
    """``deploy/monitoring`` in a checkout, else the copy shipped as package data."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "deploy" / "monitoring"
        if (candidate / "prometheus-rules.yaml").is_file():
            return candidate
    packaged = here.parent.parent / "data" / "monitoring"
    if packaged.is_dir():
        return packaged
    raise ConfigError("the monitoring bundle (deploy/monitoring) is not installed")


def load_bundle(directory: Path | None = None) -> MonitoringBundle:
    base = directory or bundle_dir()
    try:
        dashboards = {
            path.stem: json.loads(path.read_text(encoding="utf-8"))
            for path in sorted((base / "dashboards").glob("*.json"))
        }
        rule = yaml.safe_load((base / "prometheus-rules.yaml").read_text(encoding="utf-8"))
        adapter = yaml.safe_load(
            (base / "prometheus-adapter-rules.yaml").read_text(encoding="utf-8")
        )
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"monitoring bundle {base}: {exc}") from None
    if not dashboards:
        raise ConfigError(f"monitoring bundle {base}: no dashboards/*.json")
    return MonitoringBundle(dashboards, rule, adapter)


def monitoring_manifests(
    bundle: MonitoringBundle,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    rule_labels: Mapping[str, str] | None = None,
    create_namespace: bool = True,
) -> list[dict[str, Any]]:
    """The objects to apply, in apply order (Namespace, ConfigMaps, PrometheusRule)."""
    out: list[dict[str, Any]] = []
    if create_namespace:
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": namespace, "labels": dict(PART_OF)},
            }
        )
    for stem, dashboard in bundle.dashboards.items():
        out.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": f"nimble-dashboard-{stem}",
                    "namespace": namespace,
                    "labels": {**PART_OF, DASHBOARD_LABEL[0]: DASHBOARD_LABEL[1]},
                },
                "data": {f"{stem}.json": json.dumps(dashboard, indent=2)},
            }
        )
    out.append(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": ADAPTER_CONFIGMAP,
                "namespace": namespace,
                "labels": dict(PART_OF),
            },
            "data": {"config.yaml": yaml.safe_dump(bundle.adapter_rules, sort_keys=False)},
        }
    )
    rule = json.loads(json.dumps(bundle.prometheus_rule))  # a deep copy
    meta = rule.setdefault("metadata", {})
    meta["namespace"] = namespace
    meta["labels"] = {**meta.get("labels", {}), **PART_OF, **dict(rule_labels or {})}
    out.append(rule)
    return out


def install(client: Any, manifests: list[dict[str, Any]]) -> InstallResult:
    """Server-side apply each object (lightkube client; field manager ``nimble-oke``)."""
    from lightkube import codecs
    from lightkube.core.exceptions import ApiError
    from lightkube.generic_resource import create_namespaced_resource

    from nimble_oke.kube.deploy import FIELD_MANAGER

    create_namespaced_resource("monitoring.coreos.com", "v1", "PrometheusRule", "prometheusrules")
    namespace = next(
        (m["metadata"]["namespace"] for m in manifests if "namespace" in m["metadata"]),
        DEFAULT_NAMESPACE,
    )
    result = InstallResult(namespace)
    for manifest in manifests:
        meta = manifest["metadata"]
        try:
            client.apply(
                codecs.from_dict(manifest),
                namespace=meta.get("namespace"),
                field_manager=FIELD_MANAGER,
                force=True,
            )
        except ApiError as exc:
            hint = (
                " (is the Prometheus Operator installed? kube-prometheus-stack provides the CRD)"
                if manifest["kind"] == "PrometheusRule" and exc.status.code == 404
                else ""
            )
            raise KubeError(
                f"applying {manifest['kind']}/{meta['name']}: {exc.status.message}{hint}"
            ) from None
        result.applied.append(f"{manifest['kind']}/{meta['name']}")
    return result


def install_from_kubeconfig(
    kubeconfig: Path,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    rule_labels: Mapping[str, str] | None = None,
    bundle: MonitoringBundle | None = None,
) -> InstallResult:
    """Load the bundle and apply it to the cluster of ``kubeconfig``."""
    from nimble_oke.kube.deploy import kube_client

    manifests = monitoring_manifests(
        bundle or load_bundle(), namespace=namespace, rule_labels=rule_labels
    )
    client = kube_client(kubeconfig, namespace)
    try:
        return install(client, manifests)
    finally:
        client.close()


def install_for_session(
    session: str,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    rule_labels: Mapping[str, str] | None = None,
) -> InstallResult:
    """Apply the bundle to a live session's cluster (its kubeconfig + a computed token)."""
    import contextlib

    from nimble_oke.kube.connect import client_for
    from nimble_oke.services.sessions import resolve_target, session_config
    from nimble_oke.state.store import StateStore

    with StateStore() as store:
        cfg = session_config(store, session)
        live = store.live_cluster(session)
    if live is None:
        raise KubeError(f"session '{session}' has no live cluster (nimble status)")
    path, cluster_id = live
    manifests = monitoring_manifests(load_bundle(), namespace=namespace, rule_labels=rule_labels)
    target = resolve_target(cfg)
    with contextlib.closing(target.provider):
        client = client_for(path, target.token(cluster_id), namespace)
    try:
        return install(client, manifests)
    finally:
        client.close()
