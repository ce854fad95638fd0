"""The deploy engine: NGC secrets, server-side apply with pruning, revisions.

- Apply: every rendered object is server-side applied through lightkube with field manager
  ``nimble-oke`` (force: nimble owns these fields). Objects carry the label
  ``nimble-oke/session`` (the chart puts it everywhere).
- Prune: objects of the session (by that label) of the kinds the chart can render that are
  no longer rendered are deleted — so switching a feature off removes its objects.
- Secrets: the NGC API key Secret and the nvcr.io pull Secret are created here directly,
  never through chart values, so the key never lands in rendered files or revisions.
- Revisions: each applied manifest set is recorded (hash + non-secret values) so a
  previous revision can be re-applied (``nimble rollback``).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nimble_oke.errors import KubeError

FIELD_MANAGER = "nimble-oke"
SESSION_LABEL = "nimble-oke/session"

NOT_CHART = frozenset({"nimble-watchdog", "nimble-cache"})
# Kinds the chart can render, for pruning: (apiVersion, kind, namespaced).
PRUNABLE: tuple[tuple[str, str, bool], ...] = (
    ("v1", "Service", True),
    ("v1", "ServiceAccount", True),
    ("v1", "ConfigMap", True),
    ("v1", "PersistentVolumeClaim", True),
    ("apps/v1", "Deployment", True),
    ("apps/v1", "StatefulSet", True),
    ("apps/v1", "DaemonSet", True),
    ("autoscaling/v2", "HorizontalPodAutoscaler", True),
    ("policy/v1", "PodDisruptionBudget", True),
    ("networking.k8s.io/v1", "NetworkPolicy", True),
    ("storage.k8s.io/v1", "StorageClass", False),
    ("monitoring.coreos.com/v1", "ServiceMonitor", True),
    ("monitoring.coreos.com/v1", "PrometheusRule", True),
    ("keda.sh/v1alpha1", "ScaledObject", True),
)
_GENERIC = {
    ("monitoring.coreos.com", "v1", "ServiceMonitor", "servicemonitors"),
    ("monitoring.coreos.com", "v1", "PrometheusRule", "prometheusrules"),
    ("keda.sh", "v1alpha1", "ScaledObject", "scaledobjects"),
}


def _register_generic() -> None:
    from lightkube.generic_resource import create_namespaced_resource

    for group, version, kind, plural in _GENERIC:
        create_namespaced_resource(group, version, kind, plural)


def kube_client(kubeconfig: Path, namespace: str = "default") -> Any:
    """A lightkube client from a kubeconfig file (one clear error when it is unusable)."""
    from lightkube import Client, KubeConfig
    from lightkube.core.exceptions import ConfigError as LightkubeConfigError

    try:
        config = KubeConfig.from_file(str(kubeconfig))
        return Client(config=config, namespace=namespace, field_manager=FIELD_MANAGER)
    except (LightkubeConfigError, OSError, ValueError, KeyError, TypeError) as exc:
        raise KubeError(f"kubeconfig {kubeconfig} is unusable: {exc}") from None


def manifest_hash(manifests: Iterable[Mapping[str, Any]]) -> str:
    text = json.dumps(list(manifests), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class ApplyResult:
    applied: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    manifest_hash: str = ""


def _resource_class(api_version: str, kind: str) -> Any:
    """lightkube's class for a kind (built-in, or a generic resource registered above)."""
    from lightkube.codecs import resource_registry

    return resource_registry.load(api_version, kind)


def apply_manifests(
    client: Any,
    manifests: list[dict[str, Any]],
    *,
    session: str,
    namespace: str,
    prune: bool = True,
) -> ApplyResult:
    """Server-side apply every manifest, then prune what the session no longer renders."""
    from lightkube import codecs
    from lightkube.core.exceptions import ApiError

    _register_generic()
    result = ApplyResult(manifest_hash=manifest_hash(manifests))
    rendered: set[tuple[str, str, str]] = set()
    for manifest in manifests:
        meta = manifest.get("metadata", {})
        labels = meta.setdefault("labels", {})
        labels.setdefault(SESSION_LABEL, session)
        obj = codecs.from_dict(manifest)
        ns = meta.get("namespace") or (namespace if _namespaced(manifest) else None)
        try:
            client.apply(obj, namespace=ns, field_manager=FIELD_MANAGER, force=True)
        except ApiError as exc:
            raise KubeError(
                f"applying {manifest['kind']}/{meta.get('name')}: {exc.status.message}"
            ) from None
        rendered.add((manifest["kind"], ns or "", meta["name"]))
        result.applied.append(f"{manifest['kind']}/{meta['name']}")
    for api_version, kind, namespaced in PRUNABLE if prune else ():
        res = _resource_class(api_version, kind)
        try:
            existing = list(
                client.list(
                    res,
                    namespace=namespace if namespaced else None,
                    labels={SESSION_LABEL: session},
                )
            )
        except ApiError as exc:
            if exc.status.code == 404:  # the API (e.g. a CRD) is not installed
                continue
            raise KubeError(f"listing {kind} for pruning: {exc.status.message}") from None
        for obj in existing:
            name = obj.metadata.name
            ns = obj.metadata.namespace or ""
            if (kind, ns, name) in rendered:
                continue
            annotations = obj.metadata.annotations or {}
            if annotations.get("helm.sh/resource-policy") == "keep":
                continue
            if (obj.metadata.labels or {}).get("app.kubernetes.io/name") in NOT_CHART:
                continue  # installed by nimble beside the chart (the watchdog), not rendered
            try:
                client.delete(res, name, namespace=ns or None)
            except ApiError as exc:
                if exc.status.code != 404:
                    raise KubeError(f"pruning {kind}/{name}: {exc.status.message}") from None
            result.pruned.append(f"{kind}/{name}")
    return result


def _namespaced(manifest: Mapping[str, Any]) -> bool:
    return manifest.get("kind") not in {
        "Namespace",
        "StorageClass",
        "ClusterRole",
        "ClusterRoleBinding",
        "PersistentVolume",
    }


def ensure_namespace(client: Any, namespace: str, session: str) -> None:
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import Namespace

    labels = {
        SESSION_LABEL: session,
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/audit": "restricted",
        "pod-security.kubernetes.io/warn": "restricted",
    }
    client.apply(
        Namespace(metadata=ObjectMeta(name=namespace, labels=labels)),
        field_manager=FIELD_MANAGER,
        force=True,
    )


def ensure_ngc_secrets(
    client: Any,
    namespace: str,
    api_key: str,
    *,
    session: str,
    api_secret: str = "ngc-api",  # noqa: S107 - a Secret's name, not its value
    pull_secret: str = "ngc-secret",  # noqa: S107 - a Secret's name, not its value
    registry: str = "nvcr.io",
) -> None:
    """Create/update the NGC key Secret and the nvcr.io pull Secret (user ``$oauthtoken``).

    The key goes straight to the API server; it is never logged, rendered or stored.
    """
    from lightkube.core.exceptions import ApiError
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import Secret

    auth = base64.b64encode(f"$oauthtoken:{api_key}".encode()).decode()
    docker = {"auths": {registry: {"username": "$oauthtoken", "password": api_key, "auth": auth}}}
    labels = {SESSION_LABEL: session}
    secrets = [
        Secret(
            metadata=ObjectMeta(name=api_secret, namespace=namespace, labels=labels),
            type="Opaque",
            stringData={"NGC_API_KEY": api_key},
        ),
        Secret(
            metadata=ObjectMeta(name=pull_secret, namespace=namespace, labels=labels),
            type="kubernetes.io/dockerconfigjson",
            stringData={".dockerconfigjson": json.dumps(docker)},
        ),
    ]
    for secret in secrets:
        try:
            client.apply(secret, field_manager=FIELD_MANAGER, force=True)
        except ApiError as exc:
            name = secret.metadata.name if secret.metadata else "?"
            raise KubeError(f"creating Secret {name}: {exc.status.message}") from None


def delete_namespace(client: Any, namespace: str) -> bool:
    """Delete the deployment's namespace (everything in it goes with it)."""
    from lightkube.core.exceptions import ApiError
    from lightkube.resources.core_v1 import Namespace

    try:
        client.delete(Namespace, namespace)
    except ApiError as exc:
        if exc.status.code == 404:
            return False
        raise KubeError(f"deleting namespace {namespace}: {exc.status.message}") from None
    return True
