"""``nimble troubleshoot``: read pods, events, logs, PVCs, nodes and services of a
deployment and name the cause with the fix.

The rules are ordered from "nothing can run" to "it runs but is unhealthy"; each returns a
:class:`Finding` (cause, evidence, fix). Collection talks to the API; matching is pure, so
each pattern is tested by producing it for real in the Kubernetes simulator.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from nimble_oke.kube.podstate import UNSCHEDULABLE_EVENT, containers, is_ready, is_scheduled
from nimble_oke.nim_logformat import (
    DOWNLOAD_COMPLETE,
    DOWNLOAD_PROGRESS_RE,
    FOUND_IN_CACHE,
    download_percent,
)

# Messages the kubelet, scheduler, CSI driver and NIM print (calibration.md, nim.md).
CUDA_OOM = re.compile(r"CUDA out of memory|torch\.OutOfMemoryError|cudaErrorMemoryAllocation", re.I)
# vLLM (inside NIM) when the KV cache cannot hold one sequence of the max model length, or
# nothing is left for it at all once the weights are loaded.
KV_CACHE = re.compile(
    r"max seq len \(\d+\) is larger than the maximum number of tokens that can be stored in "
    r"KV cache|No available memory for the cache blocks",
    re.I,
)
# NIM's profile selector ("Could not find a profile that is currently runnable with the
# detected hardware") and CUDA's own error for kernels built for another architecture.
NO_KERNEL = re.compile(
    r"no kernel image is available for execution on the device|"
    r"could not find a profile that is currently runnable|"
    r"profile .* (is )?(not compatible|incompatible)|(requires|needs) compute capability",
    re.I,
)
DOWNLOAD_PROGRESS = DOWNLOAD_PROGRESS_RE  # the old name (nimble_oke.nim_logformat)
PULL_AUTH = re.compile(
    r"401 Unauthorized|unauthorized|insufficient_scope|authentication required", re.I
)


@dataclass(frozen=True)
class Finding:
    cause: str
    evidence: str
    fix: str
    severity: str = "error"  # error | warning

    def as_dict(self) -> dict[str, str]:
        return {
            "cause": self.cause,
            "evidence": self.evidence,
            "fix": self.fix,
            "severity": self.severity,
        }


@dataclass
class Snapshot:
    """What troubleshoot looked at (plain dicts, as the API returns them)."""

    namespace: str
    pods: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    logs: dict[str, list[str]] = field(default_factory=dict)  # pod → last lines (incl. previous)
    pvcs: list[dict[str, Any]] = field(default_factory=list)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    services: list[dict[str, Any]] = field(default_factory=list)
    storage_classes: list[str] = field(default_factory=list)
    daemonsets: list[dict[str, Any]] = field(default_factory=list)


def _events(snap: Snapshot, reason: str) -> list[dict[str, Any]]:
    return [e for e in snap.events if e.get("reason") == reason]


def _gpu_allocatable(snap: Snapshot) -> int:
    total = 0
    for node in snap.nodes:
        alloc = (node.get("status") or {}).get("allocatable") or {}
        total += int(str(alloc.get("nvidia.com/gpu", "0")) or 0)
    return total


def rule_no_gpu_nodes(snap: Snapshot) -> Finding | None:
    if _gpu_allocatable(snap) > 0:
        return None
    if not snap.nodes:
        return Finding(
            "no nodes in the cluster",
            "the node list is empty",
            "the GPU node pool has no ACTIVE nodes: check `nimble status` (capacity, preemption) and the node pool's work request",
        )
    plugin = [d for d in snap.daemonsets if "gpu" in d.get("metadata", {}).get("name", "")]
    return Finding(
        "no node advertises nvidia.com/gpu" + ("" if plugin else " (GPU device plugin missing)"),
        f"{len(snap.nodes)} node(s), none with nvidia.com/gpu allocatable",
        "install the NvidiaGpuPlugin add-on (enhanced clusters) or the NVIDIA device plugin DaemonSet; "
        "check that the node pool uses a GPU shape and an OKE GPU image",
    )


def _unscheduled(snap: Snapshot) -> set[str]:
    return {p.get("metadata", {}).get("name", "") for p in snap.pods if not is_scheduled(p)}


def rule_scheduling(snap: Snapshot) -> Finding | None:
    pending = _unscheduled(snap)
    events = [
        e
        for e in _events(snap, UNSCHEDULABLE_EVENT)
        if e.get("involvedObject", {}).get("name") in pending
    ]
    for event in reversed(events):  # the newest explanation first
        message = str(event.get("message", ""))
        if "untolerated taint" in message:
            return Finding(
                "the GPU nodes' taint is not tolerated",
                message,
                "add the toleration nvidia.com/gpu=present:NoSchedule (the nimble-nim chart has it; "
                "check scheduling.extraTolerations and any overrides)",
            )
        if "Insufficient nvidia.com/gpu" in message:
            return Finding(
                "not enough free GPUs",
                message,
                "lower resources.gpu or replicas, or add GPU nodes (gpu_pool.nodes / a larger shape)",
            )
        if (
            "didn't match Pod's node affinity/selector" in message
            or "node(s) didn't match" in message
        ):
            return Finding(
                "no node matches the pod's node selector",
                message,
                "the chart selects nvidia.com/gpu=true and, when pinned, the shape's instance type: "
                "check gpu_pool.shape matches the node pool's shape",
            )
        if "Insufficient memory" in message or "Insufficient cpu" in message:
            return Finding(
                "the pod requests more CPU/memory than a node has",
                message,
                "lower resources.requests or use a larger shape",
            )
        if "persistentvolumeclaim" in message.lower():
            return Finding("the pod waits for its volume", message, "see the PVC findings below")
    return None


def rule_pvc(snap: Snapshot) -> Finding | None:
    known = set(snap.storage_classes)
    for pvc in snap.pvcs:
        phase = (pvc.get("status") or {}).get("phase")
        if phase == "Bound":
            continue
        name = pvc.get("metadata", {}).get("name")
        sc = (pvc.get("spec") or {}).get("storageClassName")
        if sc and sc not in known:
            return Finding(
                f"PVC {name} is {phase}: StorageClass {sc} does not exist",
                f"storage classes present: {', '.join(sorted(known)) or 'none'}",
                "use cache.storage_class oci-bv (OKE's block volume class) or let the chart create its class",
            )
        failed = [
            e
            for e in _events(snap, "ProvisioningFailed")
            if e.get("involvedObject", {}).get("name") == name
        ]
        evidence = failed[-1].get("message", "") if failed else f"PVC {name} is {phase}"
        if failed:
            return Finding(
                f"PVC {name} cannot be provisioned",
                str(evidence),
                "check the block volume quota/limit and the StorageClass parameters (vpusPerGB)",
            )
    return None


def rule_image_pull(snap: Snapshot) -> Finding | None:
    for pod in snap.pods:
        for cs in containers(pod):
            if not cs.image_pull_failed:
                continue
            pulls = [
                e.get("message", "")
                for e in _events(snap, "Failed")
                if "pull" in str(e.get("message", "")).lower()
            ]
            evidence = cs.waiting_message or (pulls[-1] if pulls else cs.waiting_reason)
            if PULL_AUTH.search(evidence) or any(PULL_AUTH.search(str(p)) for p in pulls):
                return Finding(
                    "nvcr.io refused the image pull (NGC credentials)",
                    str(evidence),
                    "the pull Secret ngc-secret must hold user $oauthtoken and a valid NGC key with access "
                    "to this NIM (nimble doctor checks the key's entitlement); re-run nimble up after fixing NGC_API_KEY",
                )
            return Finding(
                "the image cannot be pulled",
                str(evidence),
                "check the image repository and tag (nim.image_repository / nim.image_tag) and node egress to nvcr.io",
            )
    return None


def _log_finding(lines: list[str]) -> Finding | None:
    """A NIM start-up error named in the log (current and previous container)."""
    patterns: tuple[tuple[re.Pattern[str], str, str], ...] = (
        (
            CUDA_OOM,
            "CUDA out of memory on the GPU",
            "use a shape with more GPU memory, a smaller precision (fp8/int4 where the GPU "
            "supports it), or a shorter max model length",
        ),
        (
            KV_CACHE,
            "the GPU memory left after the weights cannot hold the KV cache for the max model "
            "length",
            "lower NIM_MAX_MODEL_LEN (nim.extraEnv), or use a shape with more GPU memory or a "
            "smaller precision",
        ),
        (
            NO_KERNEL,
            "the NIM model profile does not match this GPU",
            "unset nim.model_profile or pick one built for this GPU (`nimble profiles MODEL "
            "--shape S`); fp8 needs compute capability ≥ 8.9",
        ),
    )
    for pattern, cause, fix in patterns:
        line = next((x for x in reversed(lines) if pattern.search(x)), None)
        if line is not None:
            return Finding(cause, line.strip(), fix)
    return None


def _still_downloading(lines: list[str]) -> bool:
    """The last download progress line is below 100% and no completion follows it."""
    percent: int | None = None
    for line in lines:
        found = download_percent(line)
        if found is not None:
            percent = found
        elif DOWNLOAD_COMPLETE in line or FOUND_IN_CACHE in line:
            percent = None
    return percent is not None and percent < 100


def rule_crashes(snap: Snapshot) -> Finding | None:
    """Why a pod crashes or restarts. Pods that are not Ready are looked at first; for a pod
    that is Ready again the cause is history (previous container), so only a warning."""
    for pod in sorted(snap.pods, key=is_ready):
        finding = _crash_cause(snap, pod)
        if finding is None:
            continue
        if is_ready(pod):
            return replace(
                finding,
                evidence=finding.evidence + " (earlier; the pod is Ready now)",
                severity="warning",
            )
        return finding
    return None


def _crash_cause(snap: Snapshot, pod: dict[str, Any]) -> Finding | None:
    name = pod.get("metadata", {}).get("name", "")
    lines = snap.logs.get(name, [])
    for cs in containers(pod):
        if cs.oom_killed:
            return Finding(
                "the NIM container was OOMKilled (host memory)",
                f"container {cs.name} restarted {cs.restarts}× after OOMKilled",
                "raise resources.limits.memory (weights are staged through host memory: ≥ 1.5× the weights)",
            )
    from_log = _log_finding(lines)
    if from_log is not None:
        return from_log
    # A failing startup probe is normal while NIM downloads and loads; only the kubelet
    # killing the container for it means the budget ran out.
    killed = [
        e
        for e in snap.events
        if e.get("reason") == "Killing"
        and "startup probe" in str(e.get("message", "")).lower()
        and e.get("involvedObject", {}).get("name") == name
    ]
    if killed:
        return Finding(
            "the startup probe budget ran out before NIM was ready (correction C3)",
            str(killed[-1].get("message", ""))
            + (" — the model was still downloading" if _still_downloading(lines) else ""),
            "let nimble compute the budget (probes.mode: computed) or raise "
            "probes.startup_failure_threshold; keep the model cache volume so restarts resume warm",
        )
    for cs in containers(pod):
        if cs.crash_looping:
            tail = lines[-1].strip() if lines else "no log"
            return Finding(
                "the NIM container keeps crashing",
                f"CrashLoopBackOff; last log line: {tail}",
                "read `nimble troubleshoot --logs` and the NIM error above it",
            )
    return None


def rule_lb_pending(snap: Snapshot) -> Finding | None:
    for svc in snap.services:
        if (svc.get("spec") or {}).get("type") != "LoadBalancer":
            continue
        ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress")
        if not ingress:
            name = svc.get("metadata", {}).get("name")
            events = [
                e.get("message", "")
                for e in snap.events
                if e.get("involvedObject", {}).get("name") == name
                and e.get("involvedObject", {}).get("kind") == "Service"
            ]
            return Finding(
                f"load balancer for service {name} is pending",
                events[-1] if events else "no external IP yet",
                "OCI needs 1-2 minutes; if it stays pending check the LB subnet, the flexible shape "
                "annotations and the load balancer service limit",
                severity="warning",
            )
    return None


RULES: tuple[Callable[[Snapshot], Finding | None], ...] = (
    rule_no_gpu_nodes,
    rule_scheduling,
    rule_pvc,
    rule_image_pull,
    rule_crashes,
    rule_lb_pending,
)


def diagnose(snap: Snapshot) -> list[Finding]:
    findings = []
    for rule in RULES:
        finding = rule(snap)
        if finding is not None:
            findings.append(finding)
    return findings


def collect(client: Any, namespace: str, *, log_lines: int = 60) -> Snapshot:
    """Read everything the rules need through the Kubernetes API (lightkube client)."""
    from lightkube.core.exceptions import ApiError
    from lightkube.resources.apps_v1 import DaemonSet
    from lightkube.resources.core_v1 import Event, Node, PersistentVolumeClaim, Pod, Service
    from lightkube.resources.storage_v1 import StorageClass

    def dump(objs: Any) -> list[dict[str, Any]]:
        return [o.to_dict() for o in objs]

    snap = Snapshot(namespace)
    snap.pods = dump(client.list(Pod, namespace=namespace))
    snap.events = dump(client.list(Event, namespace=namespace))
    snap.pvcs = dump(client.list(PersistentVolumeClaim, namespace=namespace))
    snap.nodes = dump(client.list(Node))
    snap.services = dump(client.list(Service, namespace=namespace))
    snap.storage_classes = [sc.metadata.name for sc in client.list(StorageClass)]
    snap.daemonsets = dump(client.list(DaemonSet, namespace="kube-system"))

    def read_log(name: str, previous: bool) -> list[str]:
        try:
            if previous:
                return _previous_log(client, name, namespace, log_lines)
            lines = client.log(name, namespace=namespace, tail_lines=log_lines)
            return [line.rstrip("\n") for line in lines]
        except ApiError:  # no log yet (container creating) or no previous container
            return []

    # The kubelet's Killing event can come before the pod's restartCount moves on.
    killed = {
        e.get("involvedObject", {}).get("name") for e in snap.events if e.get("reason") == "Killing"
    }
    for pod in snap.pods:
        name = pod["metadata"]["name"]
        restarted = name in killed or any(cs.restarts for cs in containers(pod))
        # A restarted container's cause is in the previous container's log.
        previous = read_log(name, previous=True) if restarted else []
        snap.logs[name] = previous + read_log(name, previous=False)
    return snap


def _previous_log(client: Any, name: str, namespace: str, tail_lines: int) -> list[str]:
    """``kubectl logs --previous``: lightkube 1.0's ``Client.log`` has no ``previous``
    parameter, so the same PodLog request is built with it (as ``Client.log`` does)."""
    from lightkube.resources.core_v1 import PodLog

    inner = getattr(client, "_client", None)
    if inner is None:  # not a lightkube Client: no previous log to read
        return []
    request = inner.prepare_request(
        "get",
        PodLog,
        name=name,
        namespace=namespace,
        params={"previous": True, "tailLines": tail_lines},
    )
    response = inner.send(inner.build_adapter_request(request))
    inner.raise_for_status(response)
    return [str(line) for line in response.iter_lines()]
