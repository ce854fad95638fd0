"""StatefulSets (ordered pods with stable names and per-pod claims) and DaemonSets
(one pod per eligible node)."""

from __future__ import annotations

import copy

from .cluster import DAEMONSETS, NODES, PODS, PVCS, STATEFULSETS
from .scheduler import node_matches, untolerated_taint
from .store import Obj
from .workload_base import TERMINAL, WorkloadController, is_active, is_ready, template_hash


class StatefulSetController(WorkloadController):
    kind = STATEFULSETS

    def sync(self, sts: Obj) -> None:
        meta, spec = sts["metadata"], sts["spec"]
        name = meta["name"]
        replicas = int(spec.get("replicas", 1))
        revision = f"{name}-{template_hash(spec['template'])}"
        ordered = spec.get("podManagementPolicy", "OrderedReady") == "OrderedReady"
        pods = {p["metadata"]["name"]: p for p in self.owned(PODS, sts)}
        for p in list(pods.values()):
            if (p.get("status") or {}).get("phase") in TERMINAL and not p["metadata"].get(
                "deletionTimestamp"
            ):
                self.delete_pod(sts, p)
        for i in range(replicas):
            pod_name = f"{name}-{i}"
            pod = pods.get(pod_name)
            if pod is None:
                self._create_sts_pod(sts, i, revision)
                if ordered:
                    break
                continue
            if ordered and not is_ready(pod):
                break
        extra = sorted(
            (p for n, p in pods.items() if _ordinal(n, name) >= replicas),
            key=lambda p: -_ordinal(p["metadata"]["name"], name),
        )
        for p in extra[:1] if ordered else extra:
            if not p["metadata"].get("deletionTimestamp"):
                self.delete_pod(sts, p)
        current = [p for p in pods.values() if _ordinal(p["metadata"]["name"], name) < replicas]
        if len(current) == replicas and all(is_ready(p) for p in current):
            stale = [
                p
                for p in current
                if (p["metadata"].get("labels") or {}).get("controller-revision-hash") != revision
                and not p["metadata"].get("deletionTimestamp")
            ]
            if stale:
                self.delete_pod(
                    sts, max(stale, key=lambda p: _ordinal(p["metadata"]["name"], name))
                )
        live = [p for p in current if is_active(p)]
        updated = sum(
            1
            for p in live
            if (p["metadata"].get("labels") or {}).get("controller-revision-hash") == revision
        )
        self.write_status(
            STATEFULSETS,
            sts,
            {
                "observedGeneration": meta.get("generation", 1),
                "replicas": len(live),
                "readyReplicas": sum(1 for p in live if is_ready(p)),
                "availableReplicas": sum(1 for p in live if is_ready(p)),
                "currentReplicas": updated,
                "updatedReplicas": updated,
                "currentRevision": revision,
                "updateRevision": revision,
                "collisionCount": 0,
            },
        )

    def _create_sts_pod(self, sts: Obj, index: int, revision: str) -> None:
        meta, spec = sts["metadata"], sts["spec"]
        ns, name = meta["namespace"], meta["name"]
        template = copy.deepcopy(spec["template"])
        pod_spec = template.setdefault("spec", {})
        pod_spec["hostname"] = f"{name}-{index}"
        if spec.get("serviceName"):
            pod_spec["subdomain"] = spec["serviceName"]
        volumes = pod_spec.setdefault("volumes", [])
        for tmpl in spec.get("volumeClaimTemplates") or []:
            claim = f"{tmpl['metadata']['name']}-{name}-{index}"
            if self.c.store.get(PVCS, ns, claim) is None:
                pvc = {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {
                        "name": claim,
                        "namespace": ns,
                        "labels": dict(spec["selector"].get("matchLabels") or {}),
                    },
                    "spec": copy.deepcopy(tmpl.get("spec") or {}),
                }
                self.c.api.create(PVCS, ns, pvc, manager="statefulset-controller")
                self.c.events.record(
                    sts,
                    "SuccessfulCreate",
                    f"create Claim {claim} Pod {name}-{index} in StatefulSet {name} success",
                    component="statefulset-controller",
                )
            if not any(v.get("name") == tmpl["metadata"]["name"] for v in volumes):
                volumes.append(
                    {
                        "name": tmpl["metadata"]["name"],
                        "persistentVolumeClaim": {"claimName": claim},
                    }
                )
        self.new_pod(
            sts,
            template,
            name=f"{name}-{index}",
            extra_labels={
                "controller-revision-hash": revision,
                "statefulset.kubernetes.io/pod-name": f"{name}-{index}",
                "apps.kubernetes.io/pod-index": str(index),
            },
        )


class DaemonSetController(WorkloadController):
    kind = DAEMONSETS

    def sync(self, ds: Obj) -> None:
        spec = ds["spec"]
        template = spec["template"]
        phash = template_hash(template)
        pod_spec = template.get("spec") or {}
        eligible = [
            n["metadata"]["name"]
            for n in self.c.store.list(NODES)
            if node_matches(pod_spec, n) and untolerated_taint(pod_spec, n) is None
        ]
        pods = [p for p in self.owned(PODS, ds) if is_active(p)]
        by_node: dict[str, list[Obj]] = {}
        for p in pods:
            by_node.setdefault(p["spec"].get("nodeName", ""), []).append(p)
        for node in eligible:
            if node not in by_node:
                tmpl = copy.deepcopy(template)
                tmpl.setdefault("spec", {})["nodeName"] = node
                by_node[node] = [
                    self.new_pod(
                        ds,
                        tmpl,
                        extra_labels={
                            "controller-revision-hash": phash,
                            "pod-template-generation": str(ds["metadata"].get("generation", 1)),
                        },
                    )
                ]
        for node, node_pods in by_node.items():
            if node not in eligible:
                for p in node_pods:
                    self.delete_pod(ds, p)
        stale = [
            p
            for p in pods
            if (p["metadata"].get("labels") or {}).get("controller-revision-hash") != phash
        ]
        if stale and all(is_ready(p) for p in pods if p not in stale):
            self.delete_pod(ds, stale[0])
        scheduled = [p for n, ps in by_node.items() if n in eligible for p in ps]
        self.write_status(
            DAEMONSETS,
            ds,
            {
                "observedGeneration": ds["metadata"].get("generation", 1),
                "desiredNumberScheduled": len(eligible),
                "currentNumberScheduled": len(scheduled),
                "numberReady": sum(1 for p in scheduled if is_ready(p)),
                "numberAvailable": sum(1 for p in scheduled if is_ready(p)),
                "updatedNumberScheduled": sum(
                    1
                    for p in scheduled
                    if (p["metadata"].get("labels") or {}).get("controller-revision-hash") == phash
                ),
                "numberMisscheduled": 0,
            },
        )


def _ordinal(pod_name: str, set_name: str) -> int:
    suffix = pod_name[len(set_name) + 1 :]
    return int(suffix) if suffix.isdigit() else -1
