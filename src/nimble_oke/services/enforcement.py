"""What the in-cluster watchdog did, brought into the local journal's cost accounting.

The watchdog scales the GPU pool to zero and deletes the load balancers when the lease
ends, where the laptop cannot see it; the journal still holds the pool as a live resource
with its GPU meters, so ``status``/``cost``/``down`` would keep accruing GPU hours that the
cloud no longer bills. When ``up`` or ``down`` next reach the cluster they read the lease's
``enforced_at`` and bound the meters to it (``Meter.until``); when ``up`` scales the pool
back, the GPU meters start again from then (``Meter.since``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from nimble_oke.ports import CloudProvider
from nimble_oke.services.watchdog import lease_from_configmap
from nimble_oke.state.store import StateStore


def record_enforcement(
    client: Any,
    namespace: str,
    provider: CloudProvider,
    store: StateStore,
    session: str,
    *,
    resumed_at: float | None = None,
) -> float | None:
    """Bound the node pools' meters at the watchdog's ``enforced_at`` (once) and mark the
    load balancers it deleted as gone then. ``resumed_at``: the pool was scaled back up
    (by ``up``) at that time, so its meters bill again from there. Returns enforced_at."""
    lease = lease_from_configmap(client, namespace)
    if lease is None or lease.enforced_at is None:
        return None
    at = lease.enforced_at
    for record in store.resources(session, live_only=True):
        if record.kind == "node_pool" and record.resource_id == lease.node_pool_id:
            if any(m.until == at for m in record.meters):
                continue  # recorded by an earlier run
            open_meters = [m for m in record.meters if m.until is None]
            meters = [
                replace(m, until=at) if m.until is None and (m.since or 0) < at else m
                for m in record.meters
            ]
            if resumed_at is not None:
                meters += [replace(m, since=resumed_at, until=None) for m in open_meters]
            store.set_meters(session, "node_pool", record.resource_id, meters)
            store.event(
                session,
                "WARNING",
                f"the watchdog scaled node pool {record.resource_id} to zero ({lease.reason})"
                + ("; scaled back by up" if resumed_at is not None else ""),
            )
        elif (
            record.kind == "load_balancer"
            and provider.state("load_balancer", record.resource_id) is None
        ):
            store.record_deleted(session, "load_balancer", record.resource_id, deleted_at=at)
    return at
