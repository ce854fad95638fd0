"""The scheduler: filters (unschedulable, taints, node selector/affinity, resources, PVCs),
bound volumes' node affinity (a block volume lives in one availability domain),
least-allocated scoring, binding, and ``FailedScheduling`` events worded like the real
kube-scheduler's (calibration.md, "Kubernetes/OKE strings for realism")."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from . import quantity
from .cluster import NODES, PODS, PVCS, PVS, STORAGE_CLASSES, Cluster
from .isolation import Isolated
from .store import Obj

Resources = dict[str, Decimal]
_TERMINAL = ("Succeeded", "Failed")
# Kubelet default max pods per node.
MAX_PODS = 110
# The VolumeBinding plugin's reason (kube-scheduler, ErrReasonNodeConflict).
VOLUME_NODE_CONFLICT = "node(s) had volume node affinity conflict"


def pod_requests(spec: Obj) -> Resources:
    """Sum of container requests (limits stand in for missing requests), at least the
    largest init container's."""

    def of(containers: list[Obj]) -> list[Resources]:
        out = []
        for c in containers:
            res = c.get("resources") or {}
            merged = {**(res.get("limits") or {}), **(res.get("requests") or {})}
            out.append({k: quantity.parse(v) for k, v in merged.items()})
        return out

    total: Resources = {}
    for r in of(spec.get("containers") or []):
        for k, v in r.items():
            total[k] = total.get(k, Decimal(0)) + v
    for r in of(spec.get("initContainers") or []):
        for k, v in r.items():
            total[k] = max(total.get(k, Decimal(0)), v)
    return total


def tolerates(tolerations: list[Obj], taint: Obj) -> bool:
    for t in tolerations:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        op = t.get("operator", "Equal")
        if not t.get("key") and op == "Exists":
            return True
        if t.get("key") != taint.get("key"):
            continue
        if op == "Exists" or t.get("value", "") == taint.get("value", ""):
            return True
    return False


def _match_expr(expr: Obj, labels: dict[str, str]) -> bool:
    key, op, values = expr["key"], expr["operator"], expr.get("values") or []
    present = key in labels
    if op == "In":
        return present and labels[key] in values
    if op == "NotIn":
        return not present or labels[key] not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present:
        try:
            a, b = int(labels[key]), int(values[0])
        except (ValueError, IndexError):
            return False
        return a > b if op == "Gt" else a < b
    return False


def selector_terms_match(terms: list[Obj], node: Obj) -> bool:
    """Whether ``node`` satisfies any of the (ORed) node selector terms; none = any node."""
    if not terms:
        return True
    labels = node["metadata"].get("labels") or {}
    fields = {"metadata.name": node["metadata"]["name"]}
    return any(
        all(_match_expr(e, labels) for e in term.get("matchExpressions") or [])
        and all(_match_expr(e, fields) for e in term.get("matchFields") or [])
        for term in terms
    )


def node_matches(spec: Obj, node: Obj) -> bool:
    labels = node["metadata"].get("labels") or {}
    for k, v in (spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    return selector_terms_match(required.get("nodeSelectorTerms") or [], node)


def untolerated_taint(spec: Obj, node: Obj) -> Obj | None:
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(
            spec.get("tolerations") or [], taint
        ):
            return taint  # type: ignore[no-any-return]
    return None


def node_allocatable(node: Obj) -> Resources:
    alloc = (node.get("status") or {}).get("allocatable") or {}
    return {k: quantity.parse(v) for k, v in alloc.items()}


class Scheduler:
    def __init__(self, cluster: Cluster) -> None:
        self.c = cluster
        self._last_message: dict[str, tuple[str, float]] = {}
        self._isolated = Isolated("Scheduler")

    def usage(self) -> dict[str, tuple[Resources, int]]:
        """Requested resources and pod count per node (non-terminal pods)."""
        used: dict[str, tuple[Resources, int]] = {}
        for pod in self.c.store.list(PODS):
            node = pod["spec"].get("nodeName")
            if not node or (pod.get("status") or {}).get("phase") in _TERMINAL:
                continue
            res, count = used.get(node, ({}, 0))
            for k, v in pod_requests(pod["spec"]).items():
                res[k] = res.get(k, Decimal(0)) + v
            used[node] = (res, count + 1)
        return used

    def reconcile(self) -> None:
        pending = [
            p
            for p in self.c.store.list(PODS)
            if not p["spec"].get("nodeName")
            and not p["metadata"].get("deletionTimestamp")
            and p["spec"].get("schedulerName", "default-scheduler") == "default-scheduler"
        ]
        if not pending:
            return
        nodes = self.c.store.list(NODES)
        used = self.usage()
        for pod in pending:
            self._isolated.run(pod, lambda p: self._schedule(p, nodes, used))

    def _reasons(
        self,
        pod: Obj,
        node: Obj,
        used: dict[str, tuple[Resources, int]],
        volume_terms: list[list[Obj]] | None = None,
    ) -> tuple[list[str], bool]:
        """Why ``pod`` does not fit ``node`` ([] = fits), and whether preemption could help."""
        spec = pod["spec"]
        if (node.get("spec") or {}).get("unschedulable"):
            return ["node(s) were unschedulable"], False
        taint = untolerated_taint(spec, node)
        if taint is not None:
            return [
                f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value', '')}}}"
            ], False
        if not node_matches(spec, node):
            return ["node(s) didn't match Pod's node affinity/selector"], False
        alloc = node_allocatable(node)
        res, count = used.get(node["metadata"]["name"], ({}, 0))
        reasons = []
        if count + 1 > int(alloc.get("pods", MAX_PODS)):
            reasons.append("Too many pods")
        for name, amount in sorted(pod_requests(spec).items()):
            if amount <= 0:
                continue
            if res.get(name, Decimal(0)) + amount > alloc.get(name, Decimal(0)):
                reasons.append(f"Insufficient {name}")
        if reasons:
            return reasons, True
        # VolumeBinding runs after NodeResourcesFit; its conflict is unresolvable
        if any(not selector_terms_match(terms, node) for terms in volume_terms or []):
            return [VOLUME_NODE_CONFLICT], False
        return [], True

    def _bound_volume_terms(self, pod: Obj) -> list[list[Obj]]:
        """The required node selector terms of every PV bound to the pod's claims."""
        ns = pod["metadata"]["namespace"]
        out: list[list[Obj]] = []
        for vol in pod["spec"].get("volumes") or []:
            claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
            pvc = self.c.store.get(PVCS, ns, claim) if claim else None
            pv_name = (pvc or {}).get("spec", {}).get("volumeName")
            pv = self.c.store.get(PVS, "", pv_name) if pv_name else None
            required = ((pv or {}).get("spec", {}).get("nodeAffinity") or {}).get("required")
            terms = (required or {}).get("nodeSelectorTerms") or []
            if terms:
                out.append(terms)
        return out

    def _waits_for_consumer(self, pvc: Obj) -> bool:
        name = pvc["spec"].get("storageClassName")
        if name is None:
            classes = [
                sc
                for sc in self.c.store.list(STORAGE_CLASSES)
                if (sc["metadata"].get("annotations") or {}).get(
                    "storageclass.kubernetes.io/is-default-class"
                )
                == "true"
            ]
            sc = classes[0] if classes else None
        else:
            sc = self.c.store.get(STORAGE_CLASSES, "", name) if name else None
        return bool(sc and sc.get("volumeBindingMode") == "WaitForFirstConsumer")

    def _volume_problem(self, pod: Obj) -> str | None:
        ns = pod["metadata"]["namespace"]
        for vol in pod["spec"].get("volumes") or []:
            claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
            if not claim:
                continue
            pvc = self.c.store.get(PVCS, ns, claim)
            if pvc is None:
                return f'persistentvolumeclaim "{claim}" not found'
            if pvc["metadata"].get("deletionTimestamp"):
                return f'persistentvolumeclaim "{claim}" is being deleted'
            if (pvc.get("status") or {}).get("phase") != "Bound" and not self._waits_for_consumer(
                pvc
            ):
                return "pod has unbound immediate PersistentVolumeClaims"
        return None

    def _schedule(self, pod: Obj, nodes: list[Obj], used: dict[str, tuple[Resources, int]]) -> None:
        problem = self._volume_problem(pod)
        if problem is not None:
            self._unschedulable(
                pod,
                f"0/{len(nodes)} nodes are available: {problem}. "
                f"preemption: 0/{len(nodes)} nodes are available: "
                f"{len(nodes)} Preemption is not helpful for scheduling..",
            )
            return
        fits: list[Obj] = []
        counts: Counter[str] = Counter()
        preempt: Counter[str] = Counter()
        volume_terms = self._bound_volume_terms(pod)
        for node in nodes:
            reasons, resource_only = self._reasons(pod, node, used, volume_terms)
            if not reasons:
                fits.append(node)
                continue
            counts.update(reasons)
            preempt[
                "No preemption victims found for incoming pod"
                if resource_only
                else "Preemption is not helpful for scheduling"
            ] += 1
        if not fits:
            if not nodes:
                message = "no nodes available to schedule pods"
            else:
                n = len(nodes)
                main = ", ".join(f"{counts[r]} {r}" for r in sorted(counts))
                pre = ", ".join(f"{preempt[r]} {r}" for r in sorted(preempt))
                message = (
                    f"0/{n} nodes are available: {main}. preemption: 0/{n} nodes are "
                    f"available: {pre}.."
                )
            self._unschedulable(pod, message)
            return
        node = min(fits, key=lambda n: self._score(pod, n, used))
        self._bind(pod, node, used)

    def _score(
        self, pod: Obj, node: Obj, used: dict[str, tuple[Resources, int]]
    ) -> tuple[Any, ...]:
        """Least allocated first (fraction of cpu+memory requested), then name."""
        alloc = node_allocatable(node)
        res, _ = used.get(node["metadata"]["name"], ({}, 0))
        frac = Decimal(0)
        for name in ("cpu", "memory"):
            if alloc.get(name):
                frac += res.get(name, Decimal(0)) / alloc[name]
        return (frac, node["metadata"]["name"])

    def _unschedulable(self, pod: Obj, message: str) -> None:
        uid = pod["metadata"]["uid"]
        now = self.c.clock.now()
        last = self._last_message.get(uid)
        # The real scheduler retries with back-off; re-report the same message at most
        # once a minute (simulated) so the event count grows like it does on a cluster.
        if last and last[0] == message and now - last[1] < 60:
            return
        self._last_message[uid] = (message, now)

        def mark(p: Obj) -> None:
            status = p.setdefault("status", {})
            status["phase"] = "Pending"
            status["conditions"] = [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": message,
                    "lastProbeTime": None,
                    "lastTransitionTime": self.c.store.now_iso(),
                }
            ]

        self.c.store.mutate(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"], mark)
        self.c.events.record(
            pod, "FailedScheduling", message, type_="Warning", component="default-scheduler"
        )

    def _bind(self, pod: Obj, node: Obj, used: dict[str, tuple[Resources, int]]) -> None:
        name = node["metadata"]["name"]
        ns = pod["metadata"]["namespace"]

        def bind(p: Obj) -> None:
            p["spec"]["nodeName"] = name
            status = p.setdefault("status", {})
            status["phase"] = "Pending"
            status["conditions"] = [
                {
                    "type": "PodScheduled",
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": self.c.store.now_iso(),
                }
            ]

        self.c.store.mutate(PODS, ns, pod["metadata"]["name"], bind)
        self._last_message.pop(pod["metadata"]["uid"], None)
        res, count = used.get(name, ({}, 0))
        for k, v in pod_requests(pod["spec"]).items():
            res[k] = res.get(k, Decimal(0)) + v
        used[name] = (res, count + 1)
        self.c.events.record(
            pod,
            "Scheduled",
            f"Successfully assigned {ns}/{pod['metadata']['name']} to {name}",
            component="default-scheduler",
        )
