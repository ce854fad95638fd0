"""The cloud-side guard: an OCI Resource Scheduler schedule that stops the session's GPU
instances at the lease's end, whatever happens to the laptop or the cluster.

Why this and not something else (checked against the SDK, ``oci.resource_scheduler``, and
Oracle's Resource Scheduler docs):

- Resource Scheduler acts on compute instances (also instance pools, Autonomous
  Databases, functions) with START_RESOURCE / STOP_RESOURCE (and BACKUP_RESOURCE); it
  cannot terminate or delete. OKE managed nodes are compute instances, so it can stop the
  GPU nodes; it cannot scale or delete the node pool.
- A schedule selects resources at each run by *defined* tags (not freeform ones),
  compartment, type, state or creation time — so it finds GPU nodes launched after it was
  made: the node pool puts the defined tag ``nimble-oke.session = <session>`` on every
  instance it launches (``node_config_details.defined_tags``). The tag namespace is
  created once per tenancy (needs "manage tag-namespaces in tenancy"); without it the
  guard is unavailable and ``up`` says so (the in-cluster watchdog still enforces).
- What a stop does to the bill depends on the shape (reference/calibration.md, OCI
  "Resource Billing for Stopped Instances"): VM.GPU.A10.x instances stop billing their
  GPUs; every other GPU shape (bare metal A10, A100, H100, L40S, ...) keeps billing while
  stopped, because the GPU stays reserved. The boot volume always bills. So for A10 VMs
  the guard is a real backstop; for the other shapes it only stops the workload, and the
  watchdog (which scales the pool to zero) is what stops the bill — said in ``up``.

The schedule is a backstop: it first runs ``GRACE_S`` after the lease's end, then every
hour (a node OKE relaunched is stopped again). The watchdog acts first — at its last check
before the lease ends — and the schedule then finds nothing running; it stops the nodes
only when the watchdog could not act (no cluster, no OCI access, no schedulable node).
When only the guard acted, the journal learns it from the schedule's last run
(:func:`record_guard_stop`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from nimble_oke.errors import ProviderError
from nimble_oke.ports import CloudProvider
from nimble_oke.state.status import SessionStatus
from nimble_oke.state.store import StateStore

TAG_NAMESPACE = "nimble-oke"
TAG_KEY = "session"
KIND = "schedule"
STEP = "cloud-guard/stop-schedule"
GUARD_STOPPED = "the cloud guard stopped the GPU nodes"  # how the journal's event says it
GRACE_S = 600.0  # two watchdog periods: the watchdog acts first when it can


def defined_tags(session: str) -> dict[str, dict[str, str]]:
    return {TAG_NAMESPACE: {TAG_KEY: session}}


def stop_ends_billing(shape: str) -> bool:
    """Whether stopping an instance of this shape stops its GPU (compute) billing."""
    return shape.startswith("VM.GPU.A10") or "GPU" not in shape


def schedule_spec(session: str, lease_end: float, tags: dict[str, str]) -> dict[str, Any]:
    """A STOP schedule for the session's tagged instances: first ``GRACE_S`` after the
    lease's end (to the minute), then hourly."""
    from datetime import UTC, datetime

    minute = int((lease_end + GRACE_S) // 60) * 60
    return {
        "name": f"{session}-gpu-stop",
        "description": f"nimble-oke: stop session {session}'s nodes when its lease ends",
        "action": "STOP_RESOURCE",
        "cron": f"{time.gmtime(minute).tm_min} * * * *",
        "starts": datetime.fromtimestamp(minute, UTC),
        "select_defined_tags": defined_tags(session),
        "tags": tags,
    }


def guard_note(shape: str, *, preemptible: bool = False) -> str:
    if preemptible:
        # OCI's preemptible-instance limitations: once created it cannot be started, stopped
        # or rebooted — only terminated (the pool to zero, which is the watchdog's action)
        return (
            f"stops on-demand GPU nodes {GRACE_S / 60:.0f} min after the lease's end; a "
            f"preemptible {shape} cannot be stopped (OCI only terminates preemptible "
            "instances): for it the in-cluster watchdog alone stops the bill"
        )
    if stop_ends_billing(shape):
        return (
            f"GPU nodes stop {GRACE_S / 60:.0f} min after the lease's end even without the "
            f"cluster ({shape} stops billing when stopped)"
        )
    return (
        f"GPU nodes stop {GRACE_S / 60:.0f} min after the lease's end, but {shape} keeps "
        "billing while stopped: "
        "only the in-cluster watchdog (pool to zero) stops its bill"
    )


def record_guard_stop(
    provider: CloudProvider,
    store: StateStore,
    session: str,
    say: Callable[[str], None] = lambda _m: None,
    *,
    resumed_at: float | None = None,
) -> bool:
    """When the guard (not the watchdog) stopped the GPU nodes: bound the GPU pools'
    meters at the schedule's first run — for shapes whose stop ends the GPU bill — so the
    journal bills what the cloud bills; ``resumed_at``: ``up`` starts them again then.
    Returns whether it did."""
    schedules = [r for r in store.resources(session, live_only=True) if r.kind == KIND]
    if not schedules:
        return False
    runs = provider.schedule_runs(schedules[-1].resource_id)
    if not runs or runs.get("last_run") is None or runs.get("starts") is None:
        return False
    at = float(runs["starts"])
    bounded = False
    for pool in store.resources(session, live_only=True):
        if pool.kind != "node_pool" or pool.created_at >= at:
            continue
        nodes = provider.node_pool_nodes(pool.resource_id)
        if not nodes or any(provider.instance_state(n["id"]) != "STOPPED" for n in nodes):
            continue  # not stopped (or already gone): nothing the guard did
        gpu = [m for m in pool.meters if m.price_key.startswith("gpu.") and m.until is None]
        shape = next((m.item for m in gpu), "")
        if not gpu or not stop_ends_billing(_shape_of(shape)):
            continue
        meters = [
            replace(m, until=at) if m.price_key.startswith("gpu.") and m.until is None else m
            for m in pool.meters
        ]
        if resumed_at is not None:
            meters += [replace(m, since=resumed_at, until=None) for m in gpu]
        store.set_meters(session, "node_pool", pool.resource_id, meters)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at))
        store.event(session, "WARNING", f"{GUARD_STOPPED} of {pool.name} at {stamp} UTC")
        bounded = True
    if bounded and resumed_at is None:
        store.set_session_status(session, SessionStatus.ENFORCED, clear_endpoint=True)
        say(f"{GUARD_STOPPED} at the lease's end")
    return bounded


def _shape_of(item: str) -> str:
    """The shape named in a GPU meter's label ("GPU nodes (VM.GPU.A10.1 ×1)")."""
    inside = item.split("(", 1)[-1]
    return inside.split(" ", 1)[0]


class CloudGuard:
    """Up's step: the defined tag and the stop schedule, before any GPU pool exists."""

    name, phase = "cloud guard", "provision"

    def do(self, run: Any) -> None:
        provider, session = run.target.provider, run.session
        try:
            provider.ensure_defined_tag(TAG_NAMESPACE, TAG_KEY)
        except ProviderError as exc:
            run.say(
                f"cloud guard unavailable ({exc.message}); the in-cluster watchdog alone "
                "enforces the lease"
            )
            run.store.event(session, "WARNING", f"cloud guard unavailable: {exc.message}")
            return
        from nimble_oke.services.provision import session_tags

        spec = schedule_spec(session, run.lease_expires_at, session_tags(session))
        entry = run.store.journal_entry(session, STEP)
        schedule_id = run.provisioner.ensure(
            STEP,
            KIND,
            lambda: dict(spec),
            timeout_s=run.target.timeouts.network_s,
            name=spec["name"],
        )
        if entry is not None and entry.resource_id == schedule_id:
            provider.update_schedule(schedule_id, spec)  # an earlier run's: the lease may be new
        run.provisioner.node_defined_tags = defined_tags(session)
        first = run.report.ladder[0] if run.report and run.report.ladder else None
        shape, preemptible = (first.shape, first.preemptible) if first else ("", False)
        run.say(f"cloud guard {guard_note(shape, preemptible=preemptible)}")

    def undo(self, run: Any) -> None:
        run.remove_owned((KIND,))
