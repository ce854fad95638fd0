"""The session watchdog: a time limit and a budget enforced where the resources are.

A closed laptop must not leave GPUs running. ``nimble up`` stores the session's *lease*
in the cluster (ConfigMap ``nimble-lease``): when it expires, the GPU node pool's id, the
budget and the session's burn rate. A CronJob in the cluster runs :func:`enforce` every
few minutes; when the lease has expired or the accrued cost reached the budget, it scales
the GPU node pool to zero and deletes the session's load balancers (the two things that
keep billing), then records why in the ConfigMap. ``nimble extend`` renews the lease.

The decision is pure (:func:`decide`); enforcement goes through the CloudProvider port,
so the same code runs against OCI (workload identity / instance principal) and against the
simulators (tested with a compressed clock).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from nimble_oke.ports import CloudProvider

AWAKE, HIBERNATED = "awake", "hibernated"
LEASE_CONFIGMAP = "nimble-lease"
LEASE_KEY = "lease.json"


@dataclass(frozen=True)
class Lease:
    session: str
    node_pool_id: str  # "" when the lease is written before the GPU pool exists
    started_at: float  # the clock the cloud bills with (simulated time on the sim target)
    expires_at: float
    budget_usd: float
    usd_per_hour: float  # burn rate of the session's running resources (from the plan)
    accrued_before_usd: float = 0.0  # cost accrued before started_at (e.g. provisioning)
    enforced_at: float | None = None
    reason: str | None = None
    # "hibernated" (down --hibernate): the session's GPU instances are stopped and nothing
    # bills but storage; a watchdog that runs at all then runs on a node someone started
    # outside nimble, and stops it (``instance_ids``: the nodes' Compute instances).
    mode: str = AWAKE
    instance_ids: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Lease:
        data = json.loads(text)
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        fields["instance_ids"] = tuple(fields.get("instance_ids") or ())
        return cls(**fields)


@dataclass(frozen=True)
class Decision:
    enforce: bool
    reason: str
    accrued_usd: float


def decide(lease: Lease, now: float, period_s: float = 0.0) -> Decision:
    """Enforce when the lease ends or the projected accrual reaches the budget before the
    next check (``period_s`` from now): the GPU pool is at zero *by* the lease's end."""
    hours = max(0.0, now - lease.started_at) / 3600
    accrued = lease.accrued_before_usd + hours * lease.usd_per_hour
    at_next = accrued + period_s / 3600 * lease.usd_per_hour
    if lease.enforced_at is not None:
        return Decision(False, f"already enforced: {lease.reason}", accrued)
    if lease.mode == HIBERNATED:
        # this pod runs, so a node of the hibernated session runs: started outside nimble
        return Decision(True, "a node was started outside nimble while hibernated", 0.0)
    if now >= lease.expires_at:
        return Decision(True, "lease expired", accrued)
    if now + period_s >= lease.expires_at:
        left = (lease.expires_at - now) / 60
        return Decision(True, f"lease ends in {left:.0f} min, before the next check", accrued)
    if at_next >= lease.budget_usd:
        return Decision(
            True, f"budget reached (${at_next:.2f} of ${lease.budget_usd:.2f})", accrued
        )
    return Decision(
        False,
        f"{(lease.expires_at - now) / 60:.0f} min left, ${accrued:.2f} of ${lease.budget_usd:.2f}",
        accrued,
    )


def enforce(
    provider: CloudProvider,
    lease: Lease,
    now: float,
    *,
    say: Callable[[str], None] = lambda _m: None,
) -> tuple[Decision, Lease]:
    """Check the lease and, if it is over, stop what bills: every node pool of the session
    (the GPU pool, and a warm-up CPU pool if one is left — found by the session tag, so a
    pool created after the lease was written is found too) and its load balancers."""
    from nimble_oke.services.provision import TAG_SESSION

    decision = decide(lease, now, PERIOD_S)
    if not decision.enforce:
        say(f"watchdog: ok — {decision.reason}")
        return decision, lease
    if lease.mode == HIBERNATED:
        return decision, _stop_hibernated(provider, lease, now, decision, say)
    say(f"watchdog: {decision.reason} — scaling the node pools to zero and deleting load balancers")
    found = provider.find_tagged({TAG_SESSION: lease.session})
    pools = {f.resource_id for f in found if f.kind == "node_pool"}
    if lease.node_pool_id:
        pools.add(lease.node_pool_id)
    for pool in sorted(pools):
        if provider.state("node_pool", pool) is not None:
            provider.scale_node_pool(pool, 0)
    for item in found:
        if item.kind == "load_balancer":
            provider.delete(item.kind, item.resource_id)
    updated = Lease(**{**asdict(lease), "enforced_at": now, "reason": decision.reason})
    return decision, updated


def _stop_hibernated(
    provider: CloudProvider,
    lease: Lease,
    now: float,
    decision: Decision,
    say: Callable[[str], None],
) -> Lease:
    """SOFTSTOP the hibernated session's running instances (this pod's own node among
    them: the API answers STOPPING before the OS goes down, and OCI powers the instance
    off within 15 minutes by itself). The lease stays hibernated: the journal never
    counted these GPU minutes, so nothing is bounded; the reason is kept for ``status``."""
    say(f"watchdog: {decision.reason} — stopping the session's instances again")
    for instance_id in lease.instance_ids:
        info = provider.instance_info(instance_id)
        if info is not None and info.state == "RUNNING":
            provider.instance_action(
                instance_id, "SOFTSTOP", retry_token=f"wd-{instance_id[-16:]}-{int(now)}"
            )
    return replace(lease, reason=f"{decision.reason} (stopped again at {now:.0f})")


def read_lease(data: Mapping[str, Any] | None) -> Lease | None:
    if not data or LEASE_KEY not in data:
        return None
    return Lease.from_json(str(data[LEASE_KEY]))


# --- in the cluster ----------------------------------------------------------------------

WATCHDOG_NAME = "nimble-watchdog"
TOOLS_IMAGE = "ghcr.io/nimble-oke/nimble-tools:0.2.0"
SCHEDULE = "*/5 * * * *"
PERIOD_S = 300.0  # how often the CronJob checks (SCHEDULE)


def lease_from_configmap(client: Any, namespace: str) -> Lease | None:
    from lightkube.core.exceptions import ApiError
    from lightkube.resources.core_v1 import ConfigMap

    try:
        cm = client.get(ConfigMap, LEASE_CONFIGMAP, namespace=namespace)
    except ApiError as exc:
        if exc.status.code == 404:
            return None
        raise
    return read_lease(cm.data)


def write_lease(client: Any, namespace: str, lease: Lease) -> None:
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import ConfigMap

    cm = ConfigMap(
        metadata=ObjectMeta(
            name=LEASE_CONFIGMAP,
            namespace=namespace,
            labels={"nimble-oke/session": lease.session, "app.kubernetes.io/name": WATCHDOG_NAME},
        ),
        data={LEASE_KEY: lease.to_json()},
    )
    client.apply(cm, field_manager="nimble-oke", force=True)


def run_once(
    provider: CloudProvider,
    client: Any,
    namespace: str,
    now: float,
    *,
    say: Callable[[str], None] = lambda _m: None,
) -> Decision | None:
    """One watchdog pass (what the CronJob's pod runs)."""
    lease = lease_from_configmap(client, namespace)
    if lease is None:
        say(f"watchdog: no lease in {namespace}/{LEASE_CONFIGMAP}; nothing to do")
        return None
    decision, updated = enforce(provider, lease, now, say=say)
    if updated is not lease:
        write_lease(client, namespace, updated)
    return decision


def manifests(
    namespace: str, session: str, *, env: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """ServiceAccount + least-privilege Role (read/update only the lease ConfigMap) +
    RoleBinding + CronJob. OCI access comes from workload identity (enhanced clusters) or
    the node's instance principal — never from a key in the cluster."""
    labels = {"app.kubernetes.io/name": WATCHDOG_NAME, "nimble-oke/session": session}
    meta = {"name": WATCHDOG_NAME, "namespace": namespace, "labels": labels}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta,
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "resourceNames": [LEASE_CONFIGMAP],
                    "verbs": ["get", "update", "patch"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": WATCHDOG_NAME,
            },
            "subjects": [{"kind": "ServiceAccount", "name": WATCHDOG_NAME, "namespace": namespace}],
        },
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": meta,
            "spec": {
                "schedule": SCHEDULE,
                "concurrencyPolicy": "Forbid",
                "successfulJobsHistoryLimit": 1,
                "failedJobsHistoryLimit": 3,
                "jobTemplate": {
                    "spec": {
                        "backoffLimit": 2,
                        "template": {
                            "metadata": {"labels": labels},
                            "spec": _pod_spec(namespace, env or {}),
                        },
                    }
                },
            },
        },
    ]


# A session's cluster may have only GPU nodes (and they may be preemptible): run there too;
# and on a cordoned node (a session waking from hibernation is cordoned between START and
# uncordon: the woken node must be watched from its first minute — the scheduler's
# NodeUnschedulable filter lets a pod that tolerates this taint through).
TOLERATIONS = [
    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "oci.oraclecloud.com/oke-is-preemptible", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]


def _pod_spec(namespace: str, env: Mapping[str, str]) -> dict[str, Any]:
    """The watchdog's pod: non-root, no privilege, small, on any node of the session."""
    return {
        "serviceAccountName": WATCHDOG_NAME,
        "restartPolicy": "OnFailure",
        "tolerations": TOLERATIONS,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "watchdog",
                "image": TOOLS_IMAGE,
                "command": ["nimble", "watchdog", "run", "--namespace", namespace],
                "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
                "resources": {
                    "requests": {"cpu": "50m", "memory": "128Mi"},
                    "limits": {"cpu": "500m", "memory": "256Mi"},
                },
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
    }


def run_in_cluster(namespace: str, say: Callable[[str], None] = print) -> Decision | None:
    """``nimble watchdog run`` in a real OKE cluster: in-cluster Kubernetes credentials
    (the CronJob's service account) and an OCI signer from workload identity (enhanced
    clusters) or the node's instance principal (basic clusters)."""
    import os
    import time

    import oci
    from lightkube import Client, KubeConfig

    from nimble_oke.cloud.oci.provider import OciProvider

    mode = os.environ.get("NIMBLE_OCI_AUTH", "instance_principal")
    if mode == "workload_identity":
        signer = oci.auth.signers.get_oke_workload_identity_resource_principal_signer()
    else:
        signer = oci.auth.signers.InstancePrincipalsSecurityTokenSigner()
    region = os.environ.get("OCI_RESOURCE_PRINCIPAL_REGION") or signer.region
    provider = OciProvider(
        {"region": region}, compartment_id=os.environ.get("NIMBLE_COMPARTMENT_ID"), signer=signer
    )
    client = Client(config=KubeConfig.from_service_account(), namespace=namespace)
    try:
        return run_once(provider, client, namespace, time.time(), say=say)
    finally:
        client.close()
        provider.close()
