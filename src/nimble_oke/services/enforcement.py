"""What the in-cluster watchdog did, brought into the local journal's cost accounting.

The watchdog scales the GPU pool to zero and deletes the load balancers when the lease
ends, where the laptop cannot see it; the journal still holds the pool as a live resource
with its GPU meters, so ``status``/``cost``/``down`` would keep accruing GPU hours that the
cloud no longer bills. When ``up`` or ``down`` next reach the cluster they read the lease's
``enforced_at`` and bound the meters to it (``Meter.until``); when ``up`` scales the pool
back, the GPU meters start again from then (``Meter.since``).

``status`` and ``cost`` stay journal-only until the watchdog can have acted (the lease has
run out, or the journal's accrual has reached the budget: the watchdog's own estimate is
that accrual at install plus the running rate). From then on they read the lease too
(:func:`refresh_enforcement`), so a closed laptop does not come back to a bill the cloud
never charged.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nimble_oke.ports import CloudProvider
from nimble_oke.redact import redact
from nimble_oke.services.watchdog import Lease, lease_from_configmap
from nimble_oke.state.status import SessionStatus
from nimble_oke.state.store import ResourceRecord, SessionRecord, StateStore

if TYPE_CHECKING:
    from nimble_oke.services.targets import Target

# the watchdog's estimate and the journal's accrual drift by a rounding or a resource
# deleted after install; read the lease a little before the budget is reached
_BUDGET_MARGIN = 0.98
ENFORCED = "the watchdog scaled the GPU pool"  # how the journal's event says it


def record_enforcement(
    client: Any,
    namespace: str,
    provider: CloudProvider,
    store: StateStore,
    session: str,
    *,
    resumed_at: float | None = None,
) -> Lease | None:
    """Bound the node pools' meters at the watchdog's ``enforced_at`` (once) and mark the
    load balancers it deleted as gone then. ``resumed_at``: the pool was scaled back up
    (by ``up``) at that time, so its meters bill again from there. Returns the enforced
    lease, or None when the watchdog has not acted."""
    lease = lease_from_configmap(client, namespace)
    if lease is None or lease.enforced_at is None:
        return None
    at = lease.enforced_at
    for record in store.resources(session, live_only=True):
        if record.kind == "node_pool" and record.created_at < at:
            # the watchdog scales every pool of the session to zero
            _bound_pool(store, session, record, lease, resumed_at)
        elif (
            record.kind == "load_balancer"
            and provider.state("load_balancer", record.resource_id) is None
        ):
            store.record_deleted(session, "load_balancer", record.resource_id, deleted_at=at)
    return lease


def _bound_pool(
    store: StateStore,
    session: str,
    record: ResourceRecord,
    lease: Lease,
    resumed_at: float | None,
) -> None:
    """A pool's open meters end at ``enforced_at`` (once); a GPU pool ``up`` scales back
    bills again from ``resumed_at``."""
    at = lease.enforced_at
    assert at is not None
    if any(m.until == at for m in record.meters):
        return  # recorded by an earlier run
    open_meters = [m for m in record.meters if m.until is None]
    meters = [
        replace(m, until=at) if m.until is None and (m.since or 0) < at else m
        for m in record.meters
    ]
    gpu = any(m.price_key.startswith("gpu.") for m in record.meters)
    if resumed_at is not None and gpu:
        meters += [replace(m, since=resumed_at, until=None) for m in open_meters]
    store.set_meters(session, "node_pool", record.resource_id, meters)
    if not gpu:
        return
    if resumed_at is None:  # (up sets its own status as it scales the pool back)
        store.set_session_status(session, SessionStatus.ENFORCED, clear_endpoint=True)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at))
    store.event(
        session,
        "WARNING",
        f"{ENFORCED} {record.name or record.resource_id} to zero at {stamp} UTC "
        f"({lease.reason})" + ("; scaled back by up" if resumed_at is not None else ""),
    )


def enforcement_due(record: SessionRecord, accrued_usd: float, now: float) -> bool:
    """Whether the watchdog can have scaled the session's pool to zero by ``now``."""
    if record.lease_expires_at is not None and now >= record.lease_expires_at:
        return True
    return record.budget_usd is not None and accrued_usd >= record.budget_usd * _BUDGET_MARGIN


def gpu_pool_billing(store: StateStore, session: str) -> bool:
    """A live node pool whose meters are still open: what the watchdog would stop."""
    return any(
        r.kind == "node_pool" and any(m.until is None for m in r.meters)
        for r in store.resources(session, live_only=True)
    )


def reachable_target(home: Path, record: SessionRecord) -> Target | None:
    """The session's cloud, without starting anything: None for a stopped simulator (its
    clock is frozen, so its watchdog cannot have acted since it stopped)."""
    from nimble_oke.domain.config import build_config
    from nimble_oke.services.targets import reachable_target_for

    cfg = build_config(record.config, {}, source=f"session {record.name}")
    return reachable_target_for(home, record.target, cfg, os.environ)


def refresh_enforcement(
    store: StateStore,
    record: SessionRecord,
    *,
    target_for: Callable[[Path, SessionRecord], Target | None] = reachable_target,
) -> str:
    """Read the in-cluster lease into the journal. Returns "" when it was read (or there is
    no cluster to read it from), else why it could not be: ``status`` must answer even when
    the cloud does not, so this never raises."""
    from nimble_oke.domain.config import build_config
    from nimble_oke.kube.connect import client_for
    from nimble_oke.services.cloud_guard import record_guard_stop

    live = store.live_cluster(record.name)
    if live is None:
        return ""
    kubeconfig, cluster_id = live
    namespace = build_config(record.config, {}, source=f"session {record.name}").nim.namespace
    try:
        target = target_for(store.home, record)
        if target is None:
            return ""
        with contextlib.closing(target.provider):
            client = client_for(kubeconfig, target.token(cluster_id), namespace)
            try:
                lease = record_enforcement(client, namespace, target.provider, store, record.name)
            finally:
                client.close()
            if lease is None:  # the watchdog did not act: did the cloud guard?
                record_guard_stop(target.provider, store, record.name)
    except Exception as exc:  # noqa: BLE001 - advisory: any failure leaves the journal as it was
        return (
            f"the lease has run out but the cluster's lease could not be read "
            f"({redact(str(exc))}); "
            "the GPU pool is counted as running"
        )
    return ""


def enforcement_note(store: StateStore, session: str) -> str:
    """The journal's word that the GPU pool sits at zero by the watchdog, while it does."""
    pools = [r for r in store.resources(session, live_only=True) if r.kind == "node_pool"]
    if not pools or any(m.until is None for r in pools for m in r.meters):
        return ""
    said = [m for _at, _level, m in store.events(session) if m.startswith(ENFORCED)]
    return said[-1] if said else ""


def read_enforcement_when_due(
    store: StateStore,
    record: SessionRecord,
    accrued_usd: float,
    now: float,
    *,
    target_for: Callable[[Path, SessionRecord], Target | None] = reachable_target,
) -> tuple[bool, str]:
    """Once the watchdog can have acted, read its lease into the journal. Returns (whether
    the journal may have changed, what to tell the user)."""
    if not gpu_pool_billing(store, record.name) or not enforcement_due(record, accrued_usd, now):
        return False, enforcement_note(store, record.name)
    unread = refresh_enforcement(store, record, target_for=target_for)
    if unread:
        return False, unread
    return True, enforcement_note(store, record.name)
