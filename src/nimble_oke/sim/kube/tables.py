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


def _columns(rt: ResourceType, obj: Obj) -> list[tuple[str, Any]]:
    status = obj.get("status") or {}
    spec = obj.get("spec") or {}
    if rt.kind == "Pod":
        css = status.get("containerStatuses") or []
        ready = sum(1 for c in css if c.get("ready"))
        restarts = sum(int(c.get("restartCount", 0)) for c in css)
        return [
            ("Ready", f"{ready}/{len(spec.get('containers') or [])}"),
            ("Status", pod_status_text(obj)),
            ("Restarts", str(restarts)),
        ]
    if rt.kind == "Node":
        conds = {c["type"]: c["status"] for c in status.get("conditions") or []}
        text = "Ready" if conds.get("Ready") == "True" else "NotReady"
        if spec.get("unschedulable"):
            text += ",SchedulingDisabled"
        return [("Status", text), ("Version", status.get("nodeInfo", {}).get("kubeletVersion", ""))]
    if rt.kind in ("Deployment", "StatefulSet", "ReplicaSet"):
        return [("Ready", f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}")]
    if rt.kind == "Service":
        ingress = (status.get("loadBalancer") or {}).get("ingress") or []
        external = (
            ingress[0].get("ip", "")
            if ingress
            else ("<pending>" if spec.get("type") == "LoadBalancer" else "<none>")
        )
        ports = ",".join(
            f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or []
        )
        return [
            ("Type", spec.get("type", "")),
            ("Cluster-IP", spec.get("clusterIP", "")),
            ("External-IP", external),
            ("Port(s)", ports),
        ]
    if rt.kind in ("PersistentVolumeClaim", "PersistentVolume"):
        return [
            ("Status", status.get("phase", "")),
            ("Capacity", (status.get("capacity") or spec.get("capacity") or {}).get("storage", "")),
        ]
    if rt.kind == "Namespace":
        return [("Status", status.get("phase", ""))]
    if rt.kind == "Job":
        return [("Completions", f"{status.get('succeeded', 0)}/{spec.get('completions', 1)}")]
    if rt.kind == "HorizontalPodAutoscaler":
        ref = spec.get("scaleTargetRef") or {}
        return [
            ("Reference", f"{ref.get('kind', '')}/{ref.get('name', '')}"),
            ("Targets", hpa_targets(spec.get("metrics") or [], status.get("currentMetrics") or [])),
            ("MinPods", str(spec.get("minReplicas", "<unset>"))),
            ("MaxPods", str(spec.get("maxReplicas", ""))),
            ("Replicas", str(status.get("currentReplicas", 0))),
        ]
    if rt.kind == "Event":
        return [
            ("Type", obj.get("type", "")),
            ("Reason", obj.get("reason", "")),
            ("Message", obj.get("message", "")),
        ]
    return []


def table(rt: ResourceType, items: list[Obj], now: float) -> Obj:
    extra = _columns(rt, items[0]) if items else _columns(rt, {"metadata": {}})
    names = ["Name", *[c for c, _ in extra], "Age"]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": [
            {
                "name": n,
                "type": "string",
                "format": "name" if n == "Name" else "",
                "description": n,
                "priority": 0,
            }
            for n in names
        ],
        "rows": [
            {
                "cells": [o["metadata"]["name"], *[v for _, v in _columns(rt, o)], _age(o, now)],
                "object": o,
            }
            for o in items
        ],
    }
