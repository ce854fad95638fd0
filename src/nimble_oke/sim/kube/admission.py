"""Defaulting and validation on create/update, the subset real API servers do that
clients notice (422 Invalid with field causes, defaults that controllers rely on)."""

from __future__ import annotations

import base64
import re
from typing import Any

from . import apierrors, quantity
from .resources import ResourceType

Obj = dict[str, Any]

_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAME_KINDS = {"Namespace", "Service"}
_NON_DNS_KINDS = {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}

Cause = tuple[str, str, str]


def _name_causes(rt: ResourceType, name: str) -> list[Cause]:
    if not name:
        return [
            (
                "metadata.name",
                "FieldValueRequired",
                "Required value: name or generateName is required",
            )
        ]
    if rt.kind in _NON_DNS_KINDS:
        return []
    if rt.kind in _LABEL_NAME_KINDS:
        ok, what, limit = bool(_DNS1123_LABEL.match(name)), "RFC 1123 label", 63
    else:
        ok, what, limit = bool(_DNS1123_SUBDOMAIN.match(name)), "RFC 1123 subdomain", 253
    if ok and len(name) <= limit:
        return []
    return [
        (
            "metadata.name",
            "FieldValueInvalid",
            f'Invalid value: "{name}": a lowercase {what} must consist of lower case '
            "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
            "character",
        )
    ]


def _container_causes(prefix: str, containers: Any) -> list[Cause]:
    causes: list[Cause] = []
    if not isinstance(containers, list) or not containers:
        return [(f"{prefix}.containers", "FieldValueRequired", "Required value")]
    seen: set[str] = set()
    for i, c in enumerate(containers):
        field = f"{prefix}.containers[{i}]"
        if not c.get("name"):
            causes.append((f"{field}.name", "FieldValueRequired", "Required value"))
        elif c["name"] in seen:
            causes.append(
                (f"{field}.name", "FieldValueDuplicate", f'Duplicate value: "{c["name"]}"')
            )
        seen.add(c.get("name", ""))
        if not c.get("image"):
            causes.append((f"{field}.image", "FieldValueRequired", "Required value"))
    return causes


def _port_cause(field: str, value: Any, low: int = 1, high: int = 65535) -> list[Cause]:
    if isinstance(value, int) and not low <= value <= high:
        return [
            (
                field,
                "FieldValueInvalid",
                f"Invalid value: {value}: must be between {low} and {high}, inclusive",
            )
        ]
    return []


def _resource_causes(field: str, resources: Any) -> list[Cause]:
    """Negative quantities; requests above limits (ValidateResourceRequirements)."""
    if not isinstance(resources, dict):
        return []
    causes: list[Cause] = []
    limits = resources.get("limits") or {}
    requests = resources.get("requests") or {}
    for part, values in (("limits", limits), ("requests", requests)):
        for name, value in (values or {}).items():
            try:
                if quantity.parse(value) < 0:
                    causes.append(
                        (
                            f"{field}.{part}[{name}]",
                            "FieldValueInvalid",
                            f'Invalid value: "{value}": must be greater than or equal to 0',
                        )
                    )
            except (ValueError, TypeError):
                continue
    for name, value in requests.items():
        if name not in limits:
            continue
        try:
            above = quantity.parse(value) > quantity.parse(limits[name])
        except (ValueError, TypeError):
            continue
        if above:
            causes.append(
                (
                    f"{field}.requests",
                    "FieldValueInvalid",
                    f'Invalid value: "{value}": must be less than or equal to {name} limit '
                    f"of {limits[name]}",
                )
            )
    return causes


def _pod_spec_causes(prefix: str, spec: Any) -> list[Cause]:
    """Containers (required fields, ports, resources) of a pod spec at ``prefix``."""
    spec = spec if isinstance(spec, dict) else {}
    causes = _container_causes(prefix, spec.get("containers"))
    for group in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(group) or []):
            if not isinstance(c, dict):
                continue
            field = f"{prefix}.{group}[{i}]"
            for j, port in enumerate(c.get("ports") or []):
                causes += _port_cause(
                    f"{field}.ports[{j}].containerPort", port.get("containerPort")
                )
                if port.get("hostPort"):
                    causes += _port_cause(f"{field}.ports[{j}].hostPort", port.get("hostPort"))
            causes += _resource_causes(f"{field}.resources", c.get("resources"))
    return causes


def _service_causes(spec: Obj) -> list[Cause]:
    causes: list[Cause] = []
    if (
        spec.get("type") != "ExternalName"
        and not spec.get("ports")
        and spec.get("clusterIP") != "None"
    ):
        causes.append(("spec.ports", "FieldValueRequired", "Required value"))
    for i, port in enumerate(spec.get("ports") or []):
        field = f"spec.ports[{i}]"
        causes += _port_cause(f"{field}.port", port.get("port"))
        target = port.get("targetPort")
        if isinstance(target, int) and target != 0:
            causes += _port_cause(f"{field}.targetPort", target)
        node_port = port.get("nodePort")
        if isinstance(node_port, int) and node_port and not 30000 <= node_port <= 32767:
            causes.append(
                (
                    f"{field}.nodePort",
                    "FieldValueInvalid",
                    f"Invalid value: {node_port}: provided port is not in the valid range. "
                    "The range of valid ports is 30000-32767",
                )
            )
    return causes


def _template_causes(obj: Obj, rt: ResourceType) -> list[Cause]:
    spec = obj.get("spec") or {}
    template = spec.get("template") or {}
    causes = _pod_spec_causes("spec.template.spec", template.get("spec"))
    selector = spec.get("selector")
    if rt.kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"):
        if not selector:
            causes.append(("spec.selector", "FieldValueRequired", "Required value"))
        else:
            from .selectors import match_label_selector

            labels = (template.get("metadata") or {}).get("labels") or {}
            if not match_label_selector(selector, labels):
                causes.append(
                    (
                        "spec.template.metadata.labels",
                        "FieldValueInvalid",
                        f"Invalid value: {labels!r}: `selector` does not match template `labels`",
                    )
                )
    replicas = spec.get("replicas")
    if isinstance(replicas, int) and replicas < 0:
        causes.append(
            (
                "spec.replicas",
                "FieldValueInvalid",
                f"Invalid value: {replicas}: must be greater than or equal to 0",
            )
        )
    return causes


def validate(rt: ResourceType, obj: Obj) -> None:
    meta = obj.get("metadata") or {}
    name = meta.get("name", "")
    causes = _name_causes(rt, name)
    spec = obj.get("spec") or {}
    if rt.kind == "Pod":
        causes += _pod_spec_causes("spec", spec)
    elif rt.kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        causes += _template_causes(obj, rt)
    elif rt.kind == "Service":
        causes += _service_causes(spec)
    elif rt.kind == "PersistentVolumeClaim":
        storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
        if not storage and not spec.get("volumeName"):
            causes.append(("spec.resources[storage]", "FieldValueRequired", "Required value"))
        if not spec.get("accessModes"):
            causes.append(
                (
                    "spec.accessModes",
                    "FieldValueRequired",
                    "Required value: at least 1 access mode is required",
                )
            )
    elif rt.kind == "CronJob" and not spec.get("schedule"):
        causes.append(("spec.schedule", "FieldValueRequired", "Required value"))
    if causes:
        raise apierrors.invalid(rt.kind, name, causes, rt.group)


def _default_pod_spec(spec: Obj) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", spec.get("serviceAccount", "default"))
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        image = c.get("image", "")
        latest = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
        c.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("resources", {})
        for port in c.get("ports") or []:
            port.setdefault("protocol", "TCP")


def default(rt: ResourceType, obj: Obj) -> None:
    """Fill in defaults (called before validation on create and on update)."""
    spec = obj.get("spec")
    kind = rt.kind
    if kind == "Namespace":
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        obj.setdefault("status", {"phase": "Active"})
        labels = obj["metadata"].setdefault("labels", {})
        labels["kubernetes.io/metadata.name"] = obj["metadata"].get("name", "")
    elif kind == "Pod" and isinstance(spec, dict):
        _default_pod_spec(spec)
        obj.setdefault("status", {"phase": "Pending", "qosClass": qos_class(spec)})
    elif kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job") and isinstance(
        spec, dict
    ):
        pod_spec = spec.setdefault("template", {}).setdefault("spec", {})
        if kind == "Job":
            pod_spec.setdefault("restartPolicy", "Never")
        _default_pod_spec(pod_spec)
        if kind not in ("DaemonSet", "Job"):
            spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        if kind == "Deployment":
            spec.setdefault("progressDeadlineSeconds", 600)
            strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
            if strategy.get("type", "RollingUpdate") == "RollingUpdate":
                strategy.setdefault("type", "RollingUpdate")
                strategy.setdefault("rollingUpdate", {"maxSurge": "25%", "maxUnavailable": "25%"})
        if kind == "StatefulSet":
            spec.setdefault("podManagementPolicy", "OrderedReady")
            spec.setdefault(
                "updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
            )
        if kind == "Job":
            spec.pop("revisionHistoryLimit", None)
            spec.setdefault("completions", 1)
            spec.setdefault("parallelism", 1)
            spec.setdefault("backoffLimit", 6)
            spec.setdefault("completionMode", "NonIndexed")
    elif kind == "CronJob" and isinstance(spec, dict):
        spec.setdefault("concurrencyPolicy", "Allow")
        spec.setdefault("suspend", False)
        spec.setdefault("successfulJobsHistoryLimit", 3)
        spec.setdefault("failedJobsHistoryLimit", 1)
    elif kind == "Service" and isinstance(spec, dict):
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
    elif kind == "PersistentVolumeClaim" and isinstance(spec, dict):
        spec.setdefault("volumeMode", "Filesystem")
        obj.setdefault("status", {"phase": "Pending"})
    elif kind == "Secret":
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None) or {}
        data = obj.setdefault("data", {})
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v).encode()).decode()
        if not data:
            obj.pop("data")


# The storage-object-in-use-protection admission plugin's finalizer: a PVC a pod still
# uses stays Terminating until that pod is gone.
PVC_PROTECTION = "kubernetes.io/pvc-protection"


def on_create(rt: ResourceType, obj: Obj) -> None:
    """Mutations real admission plugins make on create only."""
    if rt.kind == "PersistentVolumeClaim":
        finalizers = obj["metadata"].setdefault("finalizers", [])
        if PVC_PROTECTION not in finalizers:
            finalizers.append(PVC_PROTECTION)


def qos_class(spec: Obj) -> str:
    """Guaranteed (limits = requests for cpu and memory everywhere), Burstable, BestEffort."""
    guaranteed = True
    any_set = False
    for c in spec.get("containers") or []:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        any_set = any_set or bool(req or lim)
        for name in ("cpu", "memory"):
            if name not in lim or (
                name in req and quantity.parse(req[name]) != quantity.parse(lim[name])
            ):
                guaranteed = False
    if guaranteed and any_set:
        return "Guaranteed"
    return "Burstable" if any_set else "BestEffort"
