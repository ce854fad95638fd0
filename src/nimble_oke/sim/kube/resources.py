"""The table of resource types the simulated API server serves (one registry, data only).

Every handler in :mod:`.server` is generic: it looks the type up here by URL
(``group/version/plural``) or by ``apiVersion``/``kind`` and treats the object as a dict.
"""

from __future__ import annotations

from dataclasses import dataclass

_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
# Connect subresources of pods and the options kind discovery names for each.
_CONNECT = {
    "attach": "PodAttachOptions",
    "exec": "PodExecOptions",
    "portforward": "PodPortForwardOptions",
}
# The kinds whose storage declares the "all" category (kubectl get all).
_ALL_CATEGORY = frozenset(
    {
        "Pod",
        "Service",
        "DaemonSet",
        "Deployment",
        "ReplicaSet",
        "StatefulSet",
        "Job",
        "CronJob",
        "HorizontalPodAutoscaler",
    }
)


@dataclass(frozen=True)
class ResourceType:
    """One served resource: where it lives in the URL space and how it is scoped."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()  # empty: every verb; ("create",) for the reviews

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """Storage key: one per group and plural (versions share storage)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    def discovery(self) -> list[dict[str, object]]:
        """APIResource entries for ``/api/v1`` or ``/apis/<group>/<version>``."""
        main: dict[str, object] = {
            "name": self.plural,
            "singularName": self.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs) or _VERBS,
        }
        if self.short_names:
            main["shortNames"] = list(self.short_names)
        if self.kind in _ALL_CATEGORY:
            main["categories"] = ["all"]
        entries = [main]
        for sub in self.subresources:
            verbs = ["get"] if sub == "log" else ["get", "patch", "update"]
            if sub in _CONNECT:
                verbs = ["create", "get"]
            kind = {"log": "Pod", "scale": "Scale", **_CONNECT}.get(sub, self.kind)
            entry: dict[str, object] = {}
            if sub == "scale":
                entry = {"group": "autoscaling", "version": "v1"}
            entries.append(
                {
                    **entry,
                    "name": f"{self.plural}/{sub}",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": kind,
                    "verbs": verbs,
                }
            )
        return entries


def _core(
    kind: str, plural: str, ns: bool = True, short: tuple[str, ...] = (), sub: str = ""
) -> ResourceType:
    subs = tuple(s for s in sub.split(",") if s)
    return ResourceType("", "v1", kind, plural, ns, short, subs)


REGISTRY: tuple[ResourceType, ...] = (
    _core("Namespace", "namespaces", False, ("ns",), "status"),
    _core("Node", "nodes", False, ("no",), "status"),
    _core("Pod", "pods", True, ("po",), "status,log,exec,attach,portforward"),
    _core("Service", "services", True, ("svc",), "status"),
    _core("Endpoints", "endpoints", True, ("ep",)),
    _core("ConfigMap", "configmaps", True, ("cm",)),
    _core("Secret", "secrets", True),
    _core("PersistentVolumeClaim", "persistentvolumeclaims", True, ("pvc",), "status"),
    _core("PersistentVolume", "persistentvolumes", False, ("pv",), "status"),
    _core("ServiceAccount", "serviceaccounts", True, ("sa",)),
    _core("Event", "events", True, ("ev",)),
    ResourceType("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, ("sc",)),
    ResourceType("apps", "v1", "Deployment", "deployments", True, ("deploy",), ("status", "scale")),
    ResourceType("apps", "v1", "StatefulSet", "statefulsets", True, ("sts",), ("status", "scale")),
    ResourceType("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), ("status",)),
    ResourceType("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), ("status", "scale")),
    ResourceType("batch", "v1", "Job", "jobs", True, (), ("status",)),
    ResourceType("batch", "v1", "CronJob", "cronjobs", True, ("cj",), ("status",)),
    ResourceType(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        True,
        ("hpa",),
        ("status",),
    ),
    ResourceType(  # served too; stored as v2 (versions.py converts)
        "autoscaling",
        "v1",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        True,
        ("hpa",),
        ("status",),
    ),
    ResourceType("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, ("netpol",)),
    ResourceType(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        True,
        ("pdb",),
        ("status",),
    ),
    ResourceType(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        False,
        verbs=("create",),
    ),
    ResourceType(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        False,
        verbs=("create",),
    ),
    ResourceType(
        "authentication.k8s.io",
        "v1",
        "SelfSubjectReview",
        "selfsubjectreviews",
        False,
        verbs=("create",),
    ),
    ResourceType("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    ResourceType(
        "rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False
    ),
    ResourceType(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        False,
        ("crd",),
        ("status",),
    ),
    ResourceType("monitoring.coreos.com", "v1", "ServiceMonitor", "servicemonitors", True),
    ResourceType("monitoring.coreos.com", "v1", "PrometheusRule", "prometheusrules", True),
    ResourceType(
        "keda.sh", "v1alpha1", "ScaledObject", "scaledobjects", True, ("so",), ("status",)
    ),
    ResourceType(
        "argoproj.io", "v1alpha1", "Application", "applications", True, ("app",), ("status",)
    ),
)

_BY_PATH = {(rt.group, rt.version, rt.plural): rt for rt in REGISTRY}
_BY_KIND = {(rt.api_version, rt.kind): rt for rt in REGISTRY}
_BY_KEY = {rt.key: rt for rt in reversed(REGISTRY)}  # the first (storage) version wins


def by_path(group: str, version: str, plural: str) -> ResourceType | None:
    return _BY_PATH.get((group, version, plural))


def by_kind(api_version: str, kind: str) -> ResourceType | None:
    return _BY_KIND.get((api_version, kind))


def by_name(name: str) -> ResourceType:
    """Look up by kind, plural or ``plural.group`` (what the simulator's Python API accepts)."""
    for rt in REGISTRY:
        if name in (rt.kind, rt.plural, rt.key, rt.kind.lower()):
            return rt
    raise KeyError(f"unknown resource type {name!r}")


def by_key(key: str) -> ResourceType:
    return _BY_KEY[key]


def storage_types() -> list[ResourceType]:
    """One type per storage key (a kind served in two versions is stored once)."""
    return list(dict.fromkeys(_BY_KEY[rt.key] for rt in REGISTRY))


def groups() -> dict[str, list[str]]:
    """Group name -> served versions, in registry order (core group excluded)."""
    out: dict[str, list[str]] = {}
    for rt in REGISTRY:
        if rt.group and rt.version not in out.setdefault(rt.group, []):
            out[rt.group].append(rt.version)
    return out


def in_group_version(group: str, version: str) -> list[ResourceType]:
    return [rt for rt in REGISTRY if rt.group == group and rt.version == version]
