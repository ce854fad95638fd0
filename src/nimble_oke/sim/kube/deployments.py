"""Deployment -> ReplicaSet -> Pods: rolling update (maxSurge/maxUnavailable) or recreate,
revision history, and the status/conditions clients wait on."""

from __future__ import annotations

import copy
from typing import Any

from .cluster import DEPLOYMENTS, PODS, REPLICASETS, Cluster
from .store import Obj
from .workload_base import (
    WorkloadController,
    comparable_template,
    is_active,
    is_ready,
    newest_first,
    scaled,
    template_hash,
)


class DeploymentController(WorkloadController):
    kind = DEPLOYMENTS

    def __init__(self, cluster: Cluster) -> None:
        super().__init__(cluster)
        self._progress: dict[str, tuple[Any, float]] = {}

    def sync(self, d: Obj) -> None:
        spec = d["spec"]
        replicas = int(spec.get("replicas", 1))
        template = spec["template"]
        phash = template_hash(template)
        rss = sorted(self.owned(REPLICASETS, d), key=lambda r: r["metadata"]["creationTimestamp"])
        wanted = comparable_template(template)
        new = next(
            (r for r in rss if comparable_template(r["spec"]["template"]) == wanted),
            None,
        )
        olds = [r for r in rss if r is not new]
        revisions = [_revision(r) for r in rss]
        if new is None:
            new = self._create_rs(d, phash, max(revisions, default=0) + 1)
        elif olds and _revision(new) < max(revisions):
            new = self._bump_revision(d, new, max(revisions) + 1)  # a rollback: reused
        strategy = (spec.get("strategy") or {}).get("type", "RollingUpdate")
        old_total = sum(int(r["spec"].get("replicas", 0)) for r in olds)
        new_spec = int(new["spec"].get("replicas", 0))
        if strategy == "Recreate":
            if old_total > 0:
                for r in olds:
                    self._scale_rs(d, r, 0)
            elif not any(self.owned(PODS, r) for r in olds) and new_spec != replicas:
                self._scale_rs(d, new, replicas)
        else:
            rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
            surge = scaled(rolling.get("maxSurge", "25%"), replicas, True)
            unavailable = scaled(rolling.get("maxUnavailable", "25%"), replicas, False)
            if surge == 0 and unavailable == 0:
                unavailable = 1
            if new_spec < replicas:
                allowed = replicas + surge - (old_total + new_spec)
                target = min(replicas, new_spec + max(0, allowed))
                if target != new_spec:
                    self._scale_rs(d, new, target)
            elif new_spec > replicas:
                self._scale_rs(d, new, replicas)
            if olds:
                available = sum(
                    int((r.get("status") or {}).get("availableReplicas", 0)) for r in [*olds, new]
                )
                budget = available - (replicas - unavailable)
                for r in olds:
                    cur = int(r["spec"].get("replicas", 0))
                    if cur == 0:
                        continue
                    unhealthy = cur - int((r.get("status") or {}).get("availableReplicas", 0))
                    take = min(cur, max(0, unhealthy) + max(0, budget))
                    if take > 0:
                        budget -= max(0, take - max(0, unhealthy))
                        self._scale_rs(d, r, cur - take)
        self._cleanup_history(d, olds)
        self._deployment_status(d, new, olds, replicas)

    def _create_rs(self, d: Obj, phash: str, revision: int) -> Obj:
        template = copy.deepcopy(d["spec"]["template"])
        template.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = phash
        selector = copy.deepcopy(d["spec"]["selector"])
        selector.setdefault("matchLabels", {})["pod-template-hash"] = phash
        name = f"{d['metadata']['name']}-{phash}"
        rs = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "namespace": d["metadata"]["namespace"],
                "labels": dict(template["metadata"]["labels"]),
                "annotations": {
                    "deployment.kubernetes.io/revision": str(revision),
                    "deployment.kubernetes.io/desired-replicas": str(d["spec"].get("replicas", 1)),
                },
                "ownerReferences": [self.c.owner_ref(d)],
            },
            "spec": {
                "replicas": 0,
                "selector": selector,
                "template": template,
                "minReadySeconds": d["spec"].get("minReadySeconds", 0),
            },
            "status": {"replicas": 0},
        }
        return self.c.store.create(REPLICASETS, rs)

    def _bump_revision(self, _d: Obj, rs: Obj, revision: int) -> Obj:
        """An old ReplicaSet whose template came back (rollout undo, helm rollback) becomes
        the newest revision again, as the real deployment controller does."""

        def bump(o: Obj) -> None:
            o["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/revision"] = str(
                revision
            )

        meta = rs["metadata"]
        updated = self.c.store.mutate(REPLICASETS, meta["namespace"], meta["name"], bump)
        return updated or rs

    def _scale_rs(self, d: Obj, rs: Obj, replicas: int) -> None:
        current = int(rs["spec"].get("replicas", 0))
        if current == replicas:
            return

        def scale(o: Obj) -> None:
            o["spec"]["replicas"] = replicas

        self.c.store.mutate(REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"], scale)
        direction = "up" if replicas > current else "down"
        self.c.events.record(
            d,
            "ScalingReplicaSet",
            f"Scaled {direction} replica set {rs['metadata']['name']} from {current} to {replicas}",
            component="deployment-controller",
        )

    def _cleanup_history(self, d: Obj, olds: list[Obj]) -> None:
        limit = int(d["spec"].get("revisionHistoryLimit", 10))
        idle = [
            r
            for r in olds
            if int(r["spec"].get("replicas", 0)) == 0
            and int((r.get("status") or {}).get("replicas", 0)) == 0
        ]
        for r in idle[: max(0, len(idle) - limit)]:
            self.c.api.delete(REPLICASETS, r["metadata"]["namespace"], r["metadata"]["name"])

    def _deployment_status(self, d: Obj, new: Obj, olds: list[Obj], replicas: int) -> None:
        all_rs = [new, *olds]

        def total(field: str, rss: list[Obj]) -> int:
            return sum(int((r.get("status") or {}).get(field, 0)) for r in rss)

        ready, available = total("readyReplicas", all_rs), total("availableReplicas", all_rs)
        updated = total("replicas", [new])
        rolling = (d["spec"].get("strategy") or {}).get("rollingUpdate") or {}
        unavailable_ok = scaled(rolling.get("maxUnavailable", "25%"), replicas, False)
        new_name = new["metadata"]["name"]
        complete = (
            updated == replicas
            and total("availableReplicas", [new]) == replicas
            and total("replicas", olds) == 0
        )
        now = self.c.clock.now()
        signature = (updated, ready, available, new_name)
        last = self._progress.get(d["metadata"]["uid"])
        if last is None or last[0] != signature:
            last = (signature, now)
            self._progress[d["metadata"]["uid"]] = last
        deadline = float(d["spec"].get("progressDeadlineSeconds", 600))
        if complete:
            progressing = self.condition(
                d,
                "Progressing",
                True,
                "NewReplicaSetAvailable",
                f'ReplicaSet "{new_name}" has successfully progressed.',
            )
        elif now - last[1] > deadline:
            progressing = self.condition(
                d,
                "Progressing",
                False,
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{new_name}" has timed out progressing.',
            )
        else:
            progressing = self.condition(
                d,
                "Progressing",
                True,
                "ReplicaSetUpdated",
                f'ReplicaSet "{new_name}" is progressing.',
            )
        if available >= replicas - unavailable_ok:
            availability = self.condition(
                d,
                "Available",
                True,
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
            )
        else:
            availability = self.condition(
                d,
                "Available",
                False,
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )
        self.write_status(
            DEPLOYMENTS,
            d,
            {
                "observedGeneration": d["metadata"].get("generation", 1),
                "replicas": total("replicas", all_rs),
                "updatedReplicas": updated,
                "readyReplicas": ready,
                "availableReplicas": available,
                "unavailableReplicas": max(0, total("replicas", all_rs) - available) or None,
                "conditions": [availability, progressing],
            },
        )


class ReplicaSetController(WorkloadController):
    kind = REPLICASETS

    def sync(self, rs: Obj) -> None:
        replicas = int(rs["spec"].get("replicas", 1))
        pods = self.owned(PODS, rs)
        active = [p for p in pods if is_active(p)]
        if len(active) < replicas:
            for _ in range(replicas - len(active)):
                active.append(self.new_pod(rs, rs["spec"]["template"]))
        elif len(active) > replicas:

            def rank(p: Obj) -> tuple[int, int, int, str]:
                return (
                    1 if p["spec"].get("nodeName") else 0,
                    1 if (p.get("status") or {}).get("phase") == "Running" else 0,
                    1 if is_ready(p) else 0,
                    newest_first(p["metadata"].get("creationTimestamp", "")),
                )

            for p in sorted(active, key=rank)[: len(active) - replicas]:
                self.delete_pod(rs, p)
                active.remove(p)
        min_ready = int(rs["spec"].get("minReadySeconds", 0))
        self.write_status(
            REPLICASETS,
            rs,
            {
                "replicas": len(active),
                "fullyLabeledReplicas": len(active),
                "readyReplicas": sum(1 for p in active if is_ready(p)),
                "availableReplicas": sum(1 for p in active if self.available(p, min_ready)),
                "observedGeneration": rs["metadata"].get("generation", 1),
            },
        )


def _revision(rs: Obj) -> int:
    annotations = rs["metadata"].get("annotations") or {}
    return int(annotations.get("deployment.kubernetes.io/revision", 0))
