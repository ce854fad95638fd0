"""``meta.k8s.io/v1 Table`` responses, which ``kubectl get`` asks for."""

from __future__ import annotations

from typing import Any

from .resources import ResourceType
from .store import Obj, parse_rfc3339


def _age(obj: Obj, now: float) -> str:
    created = obj["metadata"].get("creationTimestamp")
    if not created:
        return "<unknown>"
    seconds = max(0, int(now - parse_rfc3339(created)))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{(seconds % 3600) // 60}m"
    return f"{seconds // 86400}d"


def pod_status_text(pod: Obj) -> str:
    """What the STATUS column shows: a waiting/terminated reason beats the phase."""
    if pod["metadata"].get("deletionTimestamp"):
        return "Terminating"
    status = pod.get("status") or {}
    for cs in status.get("initContainerStatuses") or []:
        state = cs.get("state") or {}
        if "waiting" in state and state["waiting"].get("reason") not in (None, "PodInitializing"):
            return "Init:" + str(state["waiting"]["reason"])
        if "running" in state:
            return "Init:0/1"
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        if "waiting" in state and state["waiting"].get("reason"):
            return str(state["waiting"]["reason"])
        if "terminated" in state and state["terminated"].get("reason"):
            return str(state["terminated"]["reason"])
    return str(status.get("phase", "Pending"))


def _quantity(value: object) -> str:
    from .hpa_algorithm import format_milli, to_milli
    from .quantity import parse

    try:
        return format_milli(to_milli(float(parse(value))))
    except ValueError:
        return str(value)


def _hpa_target(spec: Obj, current: Obj | None) -> str:
    """One metric of the TARGETS column, as kubectl's HPA printer formats it."""
    kind = spec.get("type")
    if kind == "Pods":
        now = ((current or {}).get("pods") or {}).get("current", {}).get("averageValue")
        target = (spec.get("pods") or {}).get("target") or {}
        return f"{_quantity(now) if now is not None else '<unknown>'}/" + _quantity(
            target.get("averageValue", "0")
        )
    if kind == "Resource":
        resource = spec.get("resource") or {}
        target = resource.get("target") or {}
        got = ((current or {}).get("resource") or {}).get("current") or {}
        if target.get("averageValue") is not None:
            now = got.get("averageValue")
            shown = _quantity(now) if now is not None else "<unknown>"
            return f"{resource.get('name')}: {shown}/{_quantity(target['averageValue'])}"
        util = got.get("averageUtilization")
        shown = f"{util}%" if util is not None else "<unknown>"
        wanted = target.get("averageUtilization")
        return f"{resource.get('name')}: {shown}/{f'{wanted}%' if wanted is not None else '<auto>'}"
    return "<unknown type>"


def hpa_targets(specs: list[Obj], statuses: list[Obj]) -> str:
    """The TARGETS column: "current/target" per metric, at most two, then "+ N more..."."""
    if not specs:
        return "<none>"
    shown = [
        _hpa_target(spec, statuses[i] if i < len(statuses) else None)
        for i, spec in enumerate(specs)
    ]
    text = ", ".join(shown[:2])
    return f"{text} + {len(shown) - 2} more..." if len(shown) > 2 else text


Column = tuple[str, Any, int]  # name, cell, priority (1: only with -o wide)
AGE = "Age"


def _pod_template_columns(template: Obj, selector: Obj | None) -> list[Column]:
    containers = (template.get("spec") or {}).get("containers") or []
    out: list[Column] = [
        ("Containers", ",".join(c.get("name", "") for c in containers), 1),
        ("Images", ",".join(c.get("image", "") for c in containers), 1),
    ]
    if selector is not None:
        labels = selector.get("matchLabels") or {}
        out.append(("Selector", ",".join(f"{k}={v}" for k, v in labels.items()), 1))
    return out


def _pod_columns(obj: Obj) -> list[Column]:
    status, spec = obj.get("status") or {}, obj.get("spec") or {}
    css = status.get("containerStatuses") or []
    ready = sum(1 for c in css if c.get("ready"))
    restarts = sum(int(c.get("restartCount", 0)) for c in css)
    gates = spec.get("readinessGates") or []
    return [
        ("Ready", f"{ready}/{len(spec.get('containers') or [])}", 0),
        ("Status", pod_status_text(obj), 0),
        ("Restarts", str(restarts), 0),
        (AGE, None, 0),
        ("IP", status.get("podIP") or "<none>", 1),
        ("Node", spec.get("nodeName") or "<none>", 1),
        ("Nominated Node", status.get("nominatedNodeName") or "<none>", 1),
        ("Readiness Gates", f"0/{len(gates)}" if gates else "<none>", 1),
    ]


def _node_columns(obj: Obj) -> list[Column]:
    status, spec = obj.get("status") or {}, obj.get("spec") or {}
    conds = {c["type"]: c["status"] for c in status.get("conditions") or []}
    text = "Ready" if conds.get("Ready") == "True" else "NotReady"
    if spec.get("unschedulable"):
        text += ",SchedulingDisabled"
    labels = obj["metadata"].get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    info = status.get("nodeInfo") or {}
    return [
        ("Status", text, 0),
        ("Roles", ",".join(roles) or "<none>", 0),
        (AGE, None, 0),
        ("Version", info.get("kubeletVersion", ""), 0),
        ("Internal-IP", addresses.get("InternalIP") or "<none>", 1),
        ("External-IP", addresses.get("ExternalIP") or "<none>", 1),
        ("OS-Image", info.get("osImage", "<unknown>"), 1),
        ("Kernel-Version", info.get("kernelVersion", "<unknown>"), 1),
        ("Container-Runtime", info.get("containerRuntimeVersion", "<unknown>"), 1),
    ]


def _service_columns(obj: Obj) -> list[Column]:
    status, spec = obj.get("status") or {}, obj.get("spec") or {}
    ingress = (status.get("loadBalancer") or {}).get("ingress") or []
    external = (
        ",".join(i.get("ip") or i.get("hostname", "") for i in ingress)
        if ingress
        else ("<pending>" if spec.get("type") == "LoadBalancer" else "<none>")
    )
    ports = ",".join(
        f"{p.get('port')}{':' + str(p['nodePort']) if p.get('nodePort') else ''}"
        f"/{p.get('protocol', 'TCP')}"
        for p in spec.get("ports") or []
    )
    selector = spec.get("selector") or {}
    return [
        ("Type", spec.get("type", ""), 0),
        ("Cluster-IP", spec.get("clusterIP", ""), 0),
        ("External-IP", external, 0),
        ("Port(s)", ports or "<none>", 0),
        (AGE, None, 0),
        ("Selector", ",".join(f"{k}={v}" for k, v in selector.items()) or "<none>", 1),
    ]


def _workload_columns(rt: ResourceType, obj: Obj) -> list[Column]:
    status, spec = obj.get("status") or {}, obj.get("spec") or {}
    template = spec.get("template") or {}
    wide = _pod_template_columns(template, spec.get("selector"))
    desired = spec.get("replicas", 0)
    if rt.kind == "Deployment":
        head = [
            ("Ready", f"{status.get('readyReplicas', 0)}/{desired}", 0),
            ("Up-to-date", str(status.get("updatedReplicas", 0)), 0),
            ("Available", str(status.get("availableReplicas", 0)), 0),
        ]
    elif rt.kind == "ReplicaSet":
        head = [
            ("Desired", str(desired), 0),
            ("Current", str(status.get("replicas", 0)), 0),
            ("Ready", str(status.get("readyReplicas", 0)), 0),
        ]
    else:  # StatefulSet
        head = [("Ready", f"{status.get('readyReplicas', 0)}/{desired}", 0)]
        wide = wide[:2]
    return [*head, (AGE, None, 0), *wide]


def _columns(rt: ResourceType, obj: Obj) -> list[Column]:
    """The columns after Name, in upstream's order (``Age`` where upstream puts it)."""
    status = obj.get("status") or {}
    spec = obj.get("spec") or {}
    if rt.kind == "Pod":
        return _pod_columns(obj)
    if rt.kind == "Node":
        return _node_columns(obj)
    if rt.kind in ("Deployment", "StatefulSet", "ReplicaSet"):
        return _workload_columns(rt, obj)
    if rt.kind == "Service":
        return _service_columns(obj)
    if rt.kind in ("PersistentVolumeClaim", "PersistentVolume"):
        return [
            ("Status", status.get("phase", ""), 0),
            (
                "Capacity",
                (status.get("capacity") or spec.get("capacity") or {}).get("storage", ""),
                0,
            ),
        ]
    if rt.kind == "Namespace":
        return [("Status", status.get("phase", ""), 0)]
    if rt.kind == "Job":
        template = spec.get("template") or {}
        return [
            ("Completions", f"{status.get('succeeded', 0)}/{spec.get('completions', 1)}", 0),
            (AGE, None, 0),
            *_pod_template_columns(template, spec.get("selector")),
        ]
    if rt.kind == "HorizontalPodAutoscaler":
        ref = spec.get("scaleTargetRef") or {}
        return [
            ("Reference", f"{ref.get('kind', '')}/{ref.get('name', '')}", 0),
            (
                "Targets",
                hpa_targets(spec.get("metrics") or [], status.get("currentMetrics") or []),
                0,
            ),
            ("MinPods", str(spec.get("minReplicas", "<unset>")), 0),
            ("MaxPods", str(spec.get("maxReplicas", "")), 0),
            ("Replicas", str(status.get("currentReplicas", 0)), 0),
        ]
    if rt.kind == "Event":
        return [
            ("Type", obj.get("type", ""), 0),
            ("Reason", obj.get("reason", ""), 0),
            ("Message", obj.get("message", ""), 0),
        ]
    return []


def _with_age(columns: list[Column]) -> list[Column]:
    return columns if any(c[0] == AGE for c in columns) else [*columns, (AGE, None, 0)]


def table(rt: ResourceType, items: list[Obj], now: float) -> Obj:
    """A Table whose priority-1 columns kubectl shows only with ``-o wide``."""
    template = _with_age(_columns(rt, items[0] if items else {"metadata": {}}))
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": [
            {
                "name": name,
                "type": "string",
                "format": "name" if name == "Name" else "",
                "description": name,
                "priority": priority,
            }
            for name, _, priority in [("Name", None, 0), *template]
        ],
        "rows": [
            {
                "cells": [
                    o["metadata"]["name"],
                    *[
                        _age(o, now) if name == AGE else value
                        for name, value, _ in _with_age(_columns(rt, o))
                    ],
                ],
                "object": o,
            }
            for o in items
        ],
    }
