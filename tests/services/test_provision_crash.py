"""A process killed at each journal step, then ``up`` again: it converges on exactly one
set of resources (the ones the dead run created are adopted, not duplicated), and
``down`` then leaves nothing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from provisioning_helpers import (
    ALL_STEPS,
    FULL_COUNTS,
    SESSION,
    TIME_SCALE,
    CrashingProvider,
    Rig,
    RigFactory,
    SimulatedCrash,
)

from nimble_oke.cloud.oci.provider import OciProvider
from nimble_oke.domain.cost import Meter
from nimble_oke.services.provision import Timeouts, teardown
from nimble_oke.state.store import StateStore

CRASH_RUN = Path(__file__).with_name("crash_run.py")


def converge_then_down(rig: Rig, crashed_steps: int) -> dict[str, str]:
    """``up`` on a fresh process (new provider and store connection), then ``down``."""
    provider, store = rig.provider(), rig.store()
    cfg = rig.config()
    prov = rig.provisioner(cfg, provider, store)
    result = prov.provision(rig.preflight(cfg, provider))

    assert dict(rig.live()) == FULL_COUNTS
    assert rig.ever() == FULL_COUNTS  # nothing was created twice, not even transiently
    assert len(prov.created_this_run) == len(ALL_STEPS) - crashed_steps
    assert [e.status for e in store.journal(SESSION)] == ["done"] * len(ALL_STEPS)
    live_in_store = {r.resource_id for r in store.resources(SESSION, live_only=True)}
    assert set(result.ids.values()) <= live_in_store

    down = teardown(SESSION, provider, store, timeouts=rig.timeouts, say=rig.say)
    assert down.failed == [] and down.remaining == []
    assert rig.live() == {}, rig.sim.inventory()
    assert store.resources(SESSION, live_only=True) == []
    return result.ids


@pytest.mark.parametrize("step", range(1, len(ALL_STEPS) + 1), ids=ALL_STEPS)
def test_killed_right_after_a_create_converges(make_rig: RigFactory, step: int) -> None:
    """The hardest point: the cloud has the resource, the journal does not know it."""
    rig = make_rig()
    dying = rig.provider(CrashingProvider, crash_after=step, at="after_create")
    store = rig.store()
    cfg = rig.config()
    with pytest.raises(SimulatedCrash):
        rig.provisioner(cfg, dying, store).provision(rig.preflight(cfg, dying))
    orphan = rig.live_ids(_SIM_KIND[step - 1])
    entry = store.journal_entry(SESSION, ALL_STEPS[step - 1])
    assert entry is not None and entry.status == "intent" and entry.resource_id is None

    ids = converge_then_down(rig, crashed_steps=step)

    assert set(orphan) <= set(ids.values())  # the dead run's resource was adopted


# simulator kind created by each step of ALL_STEPS
_SIM_KIND = [
    "vcn",
    "internetgateway",
    "natgateway",
    "servicegateway",
    "routetable",
    "routetable",
    "securitylist",
    "securitylist",
    "securitylist",
    "subnet",
    "subnet",
    "subnet",
    "cluster",
    "nodepool",
]


@pytest.mark.parametrize(
    ("step", "at"),
    [(1, "before_send"), (14, "before_send"), (13, "while_waiting"), (14, "while_waiting")],
    ids=["vcn-unsent", "pool-unsent", "cluster-waiting", "pool-waiting"],
)
def test_killed_before_sending_or_while_waiting_converges(
    make_rig: RigFactory, step: int, at: str
) -> None:
    rig = make_rig()
    dying = rig.provider(CrashingProvider, crash_after=step, at=at)
    store = rig.store()
    cfg = rig.config()
    with pytest.raises(SimulatedCrash):
        rig.provisioner(cfg, dying, store).provision(rig.preflight(cfg, dying))
    entry = store.journal_entry(SESSION, ALL_STEPS[step - 1])
    assert entry is not None
    assert entry.status == ("intent" if at == "before_send" else "sent")

    converge_then_down(rig, crashed_steps=step - 1 if at == "before_send" else step)


@pytest.mark.parametrize(
    ("step", "at"),
    [(6, "after_create"), (14, "while_waiting")],
    ids=["rt-private-created", "pool-waiting"],
)
def test_sigkilled_process_then_up_converges(
    make_rig: RigFactory, step: int, at: str, tmp_path: Path
) -> None:
    """A real ``kill -9`` of a process in the middle of ``up`` (no cleanup of any kind)."""
    rig = make_rig()
    args = {
        "oci_config": rig.sim.oci_config(),
        "compartment_id": rig.sim.compartment_id,
        "endpoint": rig.sim.endpoint,
        "home": str(rig.home),
        "session": SESSION,
        "config": {"cluster": {"name": SESSION}},
        "crash_after": step,
        "at": at,
    }
    child = subprocess.run(
        [sys.executable, str(CRASH_RUN), json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr
    assert "SIGKILL" in child.stdout

    converge_then_down(rig, crashed_steps=step)


class CrashingStore(StateStore):
    """A real store whose process dies right after it journals ``step`` as sent."""

    crash_step = ""

    def journal_update(self, session: str, step: str, *, status: str, **kw: str | None) -> None:
        super().journal_update(session, step, status=status, **kw)
        if step == self.crash_step and status == "sent":
            raise SimulatedCrash(f"after journaling {step} as sent")


def test_killed_between_journal_and_resource_record_still_accrues(
    make_rig: RigFactory,
) -> None:
    rig = make_rig()
    provider = rig.provider()
    store = CrashingStore(rig.home, now=rig.sim.clock.wall)
    store.crash_step = ALL_STEPS[-1]  # the GPU node pool: the expensive one
    cfg = rig.config()
    try:
        with pytest.raises(SimulatedCrash):
            rig.provisioner(cfg, provider, store).provision(rig.preflight(cfg, provider))
    finally:
        store.close()

    fresh = rig.store()
    result = rig.provisioner(cfg, rig.provider(), fresh).provision(rig.preflight(cfg, provider))

    assert dict(rig.live()) == FULL_COUNTS
    recorded = {r.resource_id: r for r in fresh.resources(SESSION)}
    assert result.ids["node_pool"] in recorded
    meters: tuple[Meter, ...] = recorded[result.ids["node_pool"]].meters
    assert any(m.price_key == "gpu.a10" for m in meters)


AD1_OUT_OF_CAPACITY = {
    "rules": [
        {
            "operation": "CreateNodePool",
            "kind": "out_of_host_capacity",
            "availability_domain": "AD-1",
        }
    ]
}


def test_killed_after_a_pool_create_that_then_fails_for_capacity_moves_down_the_ladder(
    make_rig: RigFactory,
) -> None:
    rig = make_rig(AD1_OUT_OF_CAPACITY, timeouts=Timeouts(20, 20, 1, 20))
    dying = rig.provider(CrashingProvider, crash_after=len(ALL_STEPS), at="after_create")
    store = rig.store()
    cfg = rig.config()
    with pytest.raises(SimulatedCrash):
        rig.provisioner(cfg, dying, store).provision(rig.preflight(cfg, dying))

    provider = rig.provider()
    result = rig.provisioner(cfg, provider, rig.store()).provision(rig.preflight(cfg, provider))

    assert result.placement is not None
    assert result.placement.availability_domain.endswith("AD-2")
    assert dict(rig.live()) == FULL_COUNTS


# Node terminations take 2 real seconds here, so the next run surely finds the pool
# still DELETING.
SLOW_DELETES = {"timings": {"node_delete_s": 2 * TIME_SCALE}}


class DiesAfterDeleting(OciProvider):
    """A real provider whose process dies right after it sent a delete of ``kind``."""

    dies_after_deleting = "node_pool"

    def delete(self, kind: str, resource_id: str) -> str | None:
        work_request = super().delete(kind, resource_id)
        if kind == self.dies_after_deleting:
            raise SimulatedCrash(f"after deleting {kind}")
        return work_request


def test_down_killed_after_sending_a_delete_can_be_finished_by_down(
    make_rig: RigFactory,
) -> None:
    rig = make_rig(SLOW_DELETES)
    provider, store = rig.provider(), rig.store()
    cfg = rig.config()
    rig.provisioner(cfg, provider, store).provision(rig.preflight(cfg, provider))
    with pytest.raises(SimulatedCrash):
        teardown(SESSION, rig.provider(DiesAfterDeleting), store, timeouts=rig.timeouts)

    down = teardown(SESSION, provider, rig.store(), timeouts=rig.timeouts)

    assert rig.live() == {}, rig.sim.inventory()
    assert down.failed == [] and down.remaining == []


def test_killed_while_discarding_a_failed_pool_then_up_moves_on(make_rig: RigFactory) -> None:
    rig = make_rig(AD1_OUT_OF_CAPACITY)
    store = rig.store()
    cfg = rig.config()
    dying = rig.provider(DiesAfterDeleting)
    with pytest.raises(SimulatedCrash):
        rig.provisioner(cfg, dying, store).provision(rig.preflight(cfg, dying))

    provider = rig.provider()
    result = rig.provisioner(cfg, provider, rig.store()).provision(rig.preflight(cfg, provider))

    assert result.placement is not None
    assert result.placement.availability_domain.endswith("AD-2")
    assert dict(rig.live()) == FULL_COUNTS
