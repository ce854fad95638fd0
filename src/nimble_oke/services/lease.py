"""The session's lease and budget: when a lease still runs, what this ``up`` may still cost,
the burn rate to enforce before the GPU pool exists, and writing the lease and the watchdog
CronJob into the cluster.

A session's lease is set by the ``up`` that opens it and never extended by a re-up (only
``nimble extend``); its budget covers every ``up`` of the session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nimble_oke.domain.catalog import Catalog
from nimble_oke.domain.config import NimbleConfig
from nimble_oke.domain.plan import Plan
from nimble_oke.services.preflight import Rung
from nimble_oke.state.status import SessionStatus
from nimble_oke.state.store import SessionRecord, StateStore

if TYPE_CHECKING:
    from nimble_oke.services.targets import Target


# A lease still runs in these states; any other (down, standby, rolled back, stopped by the
# watchdog) means the next up opens a new one.
LEASED = frozenset(
    {
        SessionStatus.PROVISIONING,
        SessionStatus.DEPLOYING,
        SessionStatus.READY,
        SessionStatus.FAILED,
        SessionStatus.TEARING_DOWN,
    }
)


def open_lease(record: SessionRecord | None, now: float) -> float | None:
    """When the session's running lease ends, or None when this up opens a new one. A
    re-up never extends a lease (``nimble extend`` does)."""
    if record is None or record.lease_expires_at is None or record.lease_expires_at <= now:
        return None
    return record.lease_expires_at if SessionStatus.of(record.status) in LEASED else None


def worst_case_for(cfg: NimbleConfig, plan: Plan, catalog: Catalog, hours: float) -> float:
    """The plan's worst case when the lease leaves its hours; for a shorter remaining lease,
    the worst case of a plan for those hours (planned cold: never below what it costs)."""
    from nimble_oke.domain.plan import build_plan

    if hours >= plan.hours:
        return plan.worst_case_usd
    budget = cfg.budget.model_copy(update={"max_hours": max(hours, 0.01)})
    shorter = build_plan(cfg.model_copy(update={"budget": budget}), catalog)
    return min(plan.worst_case_usd, shorter.worst_case_usd)


def planned_rate(cfg: NimbleConfig, catalog: Catalog, rungs: list[Rung]) -> float:
    """The hourly burn the session will have once its GPU pool runs, at the dearest rung
    of the ladder (the watchdog's budget check must not wait for the pool to exist)."""
    from nimble_oke.domain.cost import (
        Meter,
        load_balancer_meters,
        meter_usd,
        node_pool_meters,
        volume_meters,
    )

    def hourly(meters: tuple[Meter, ...]) -> float:
        return sum(meter_usd(catalog, m, 3600)[0] for m in meters)

    pool = max(
        (
            hourly(
                node_pool_meters(
                    catalog,
                    catalog.shape(r.shape),
                    cfg.gpu_pool.nodes,
                    preemptible=r.preemptible,
                    boot_volume_gb=cfg.gpu_pool.boot_volume_gb,
                )
            )
            for r in rungs
        ),
        default=0.0,
    )
    cache = hourly(volume_meters(catalog, cfg.cache.size_gb, cfg.cache.vpus_per_gb, item="cache"))
    lb = (
        hourly(load_balancer_meters(cfg.service.lb_max_mbps))
        if cfg.service.type == "LoadBalancer"
        else 0.0
    )
    return pool + cache + lb


def install_watchdog(
    client: Any,
    cfg: NimbleConfig,
    target: Target,
    store: StateStore,
    session: str,
    node_pool_id: str,
    *,
    usd_per_hour: float | None = None,
) -> None:
    """Put the session's lease into the cluster and the CronJob that enforces it.
    ``usd_per_hour``: the burn rate to enforce the budget with (default: what the journal
    has running now)."""
    from nimble_oke.kube.deploy import apply_manifests
    from nimble_oke.services import watchdog
    from nimble_oke.services.costs import session_accrual

    now = store.now()
    record = store.session(session)
    expires = (
        record.lease_expires_at
        if record and record.lease_expires_at
        else now + cfg.budget.max_hours * 3600
    )
    accrual = session_accrual(store, session, now=now, read_lease=False).accrual
    lease = watchdog.Lease(
        session=session,
        node_pool_id=node_pool_id,
        started_at=now,
        expires_at=expires,
        budget_usd=cfg.budget.max_usd,
        usd_per_hour=max(accrual.running_usd_per_hour, usd_per_hour or 0.0),
        accrued_before_usd=accrual.total_usd,
    )
    env = {
        "NIMBLE_OCI_AUTH": "workload_identity"
        if cfg.cluster.type == "enhanced"
        else "instance_principal",
        "OCI_RESOURCE_PRINCIPAL_REGION": str(target.oci_config.get("region", "")),
        "NIMBLE_COMPARTMENT_ID": target.provider.compartment_id,
    }
    apply_manifests(
        client,
        watchdog.manifests(cfg.nim.namespace, session, env=env),
        session=session,
        namespace=cfg.nim.namespace,
        prune=False,
    )
    watchdog.write_lease(client, cfg.nim.namespace, lease)
