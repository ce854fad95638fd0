"""Shared pieces of the workload controllers: ownership, pod creation, status writes."""

from __future__ import annotations

import copy
import hashlib
import json
import math
from typing import Any

from .cluster import PODS, Cluster
from .store import Obj, parse_rfc3339, random_suffix

_SAFE = "bcdfghjklmnpqrstvwxz2456789"
TERMINAL = ("Succeeded", "Failed")


def comparable_template(template: Obj) -> Any:
    """A pod template as the controllers compare it (EqualIgnoreHash): without the
    pod-template-hash label and without nulls (``creationTimestamp: null`` is the zero
    time, the same template as one without it)."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    out = strip(template)
    labels = (out.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop("pod-template-hash", None)
    return out


def template_hash(template: Obj) -> str:
    """A stable 10-character pod-template-hash (same alphabet as the real one)."""
    canonical = json.dumps(comparable_template(template), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    return "".join(_SAFE[b % len(_SAFE)] for b in digest[:10])


def is_ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def ready_since(pod: Obj) -> float | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready" and c.get("status") == "True":
            return parse_rfc3339(c["lastTransitionTime"])
    return None


def is_active(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") not in TERMINAL and not pod["metadata"].get(
        "deletionTimestamp"
    )


def scaled(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        raw = float(value[:-1]) * total / 100
        return math.ceil(raw) if round_up else math.floor(raw)
    return int(value or 0)


def newest_first(timestamp: str) -> str:
    """Sort key that puts newer timestamps first."""
    return "".join(chr(0x10FFFF - ord(ch)) for ch in timestamp)


class WorkloadController:
    """Base: ``kind`` is the resource type reconciled, ``sync(obj)`` handles one object."""

    kind: Any = None

    def __init__(self, cluster: Cluster) -> None:
        self.c = cluster

    def sync(self, obj: Obj) -> None:
        raise NotImplementedError

    def owned(self, kind: Any, owner: Obj) -> list[Obj]:
        return [
            o
            for o in self.c.store.list(kind, owner["metadata"]["namespace"])
            if self.c.owned_by(o, owner)
        ]

    def available(self, pod: Obj, min_ready: int) -> bool:
        since = ready_since(pod)
        return since is not None and self.c.clock.wall() - since >= min_ready

    def new_pod(
        self,
        owner: Obj,
        template: Obj,
        name: str | None = None,
        extra_labels: dict[str, str] | None = None,
    ) -> Obj:
        meta = copy.deepcopy(template.get("metadata") or {})
        labels = {**(meta.get("labels") or {}), **(extra_labels or {})}
        pod_meta: Obj = {
            "namespace": owner["metadata"]["namespace"],
            "labels": labels,
            "ownerReferences": [self.c.owner_ref(owner)],
        }
        if meta.get("annotations"):
            pod_meta["annotations"] = meta["annotations"]
        if name:
            pod_meta["name"] = name
        else:
            pod_meta["name"] = f"{owner['metadata']['name']}-{random_suffix()}"
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": pod_meta,
            "spec": copy.deepcopy(template.get("spec") or {}),
            "status": {"phase": "Pending"},
        }
        created = self.c.store.create(PODS, pod)
        self.c.events.record(
            owner,
            "SuccessfulCreate",
            f"Created pod: {pod_meta['name']}",
            component=f"{owner['kind'].lower()}-controller",
        )
        return created

    def delete_pod(self, owner: Obj, pod: Obj) -> None:
        meta = pod["metadata"]
        self.c.api.delete(PODS, meta["namespace"], meta["name"])
        self.c.events.record(
            owner,
            "SuccessfulDelete",
            f"Deleted pod: {meta['name']}",
            component=f"{owner['kind'].lower()}-controller",
        )

    def write_status(self, kind: Any, obj: Obj, status: Obj) -> None:
        def write(o: Obj) -> None:
            merged = {**(o.get("status") or {}), **status}
            o["status"] = {k: v for k, v in merged.items() if v is not None}

        self.c.store.mutate(kind, obj["metadata"]["namespace"], obj["metadata"]["name"], write)

    def condition(self, obj: Obj, kind: str, ok: bool, reason: str, message: str) -> Obj:
        now = self.c.store.now_iso()
        value = "True" if ok else "False"
        old = next(
            (c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == kind),
            None,
        )
        transition = old["lastTransitionTime"] if old and old.get("status") == value else now
        update = old.get("lastUpdateTime", now) if old and old.get("reason") == reason else now
        return {
            "type": kind,
            "status": value,
            "lastUpdateTime": update,
            "lastTransitionTime": transition,
            "reason": reason,
            "message": message,
        }
