"""Kinds served in more than one version share one stored form (the storage version),
converted at the API boundary as the real server converts through its internal version.

Only ``autoscaling/v1`` HorizontalPodAutoscaler needs it here: stored as ``autoscaling/v2``
(what the HPA controller reads); v1's ``targetCPUUtilizationPercentage`` is v2's cpu
Resource metric with an Utilization target, and back (upstream's conversion, without the
annotation in which v1 keeps the v2-only fields)."""

from __future__ import annotations

import copy
from typing import Any

from .resources import ResourceType, by_kind

Obj = dict[str, Any]

_STORAGE = {("autoscaling", "HorizontalPodAutoscaler"): "v2"}


def storage(rt: ResourceType) -> ResourceType:
    version = _STORAGE.get((rt.group, rt.kind))
    if version is None or version == rt.version:
        return rt
    stored = by_kind(f"{rt.group}/{version}", rt.kind)
    assert stored is not None
    return stored


def converted(rt: ResourceType) -> bool:
    return storage(rt) is not rt


def to_storage(rt: ResourceType, obj: Obj) -> Obj:
    if not converted(rt):
        return obj
    out = copy.deepcopy(obj)
    out["apiVersion"] = storage(rt).api_version
    spec = out.get("spec")
    if isinstance(spec, dict):
        percent = spec.pop("targetCPUUtilizationPercentage", None)
        if percent is not None:
            spec["metrics"] = [_cpu_metric({"type": "Utilization", "averageUtilization": percent})]
    status = out.get("status")
    if isinstance(status, dict):
        current = status.pop("currentCPUUtilizationPercentage", None)
        if current is not None:
            status["currentMetrics"] = [_cpu_metric({"averageUtilization": current}, "current")]
    return out


def from_storage(rt: ResourceType, obj: Obj) -> Obj:
    if not converted(rt):
        return obj
    out = copy.deepcopy(obj)
    out["apiVersion"] = rt.api_version
    spec = out.get("spec")
    if isinstance(spec, dict):
        target = _cpu_utilization(spec.pop("metrics", None) or [], "target")
        if target is not None:
            spec["targetCPUUtilizationPercentage"] = target
    status = out.get("status")
    if isinstance(status, dict):
        current = _cpu_utilization(status.pop("currentMetrics", None) or [], "current")
        status.pop("conditions", None)
        if current is not None:
            status["currentCPUUtilizationPercentage"] = current
    return out


def _cpu_metric(value: Obj, key: str = "target") -> Obj:
    return {"type": "Resource", "resource": {"name": "cpu", key: value}}


def _cpu_utilization(metrics: list[Obj], key: str) -> Any:
    for metric in metrics:
        resource = metric.get("resource") or {}
        if metric.get("type") == "Resource" and resource.get("name") == "cpu":
            return (resource.get(key) or {}).get("averageUtilization")
    return None
