"""The cloud-side guard against the OCI simulator, driven by the real OCI SDK: Resource
Scheduler refuses what OCI refuses, finds a session's GPU nodes by the defined tag their
pool puts on them, stops them, and what a stopped node bills depends on its shape."""

from __future__ import annotations

from typing import Any

import oci
import pytest
from provisioning_helpers import SESSION, Rig, RigFactory

from nimble_oke.cloud.oci.provider import OciProvider
from nimble_oke.errors import ProviderError
from nimble_oke.services.cloud_guard import (
    GRACE_S,
    TAG_KEY,
    TAG_NAMESPACE,
    defined_tags,
    schedule_spec,
    stop_ends_billing,
)
from nimble_oke.services.provision import Keep, session_tags, teardown


def _guarded_pool(rig: Rig, shape: str = "VM.GPU.A10.1") -> tuple[OciProvider, Any, str]:
    provider, store = rig.provider(), rig.store()
    cfg = rig.config(gpu_pool={"shape": shape, "preemptible": False})
    provider.ensure_defined_tag(TAG_NAMESPACE, TAG_KEY)
    prov = rig.provisioner(cfg, provider, store)
    prov.node_defined_tags = defined_tags(SESSION)
    result = prov.provision(rig.preflight(cfg, provider))
    return provider, store, result.ids["node_pool"]


def _settle(rig: Rig, seconds: float) -> None:
    rig.sim.clock.advance(seconds)
    rig.sim.step()


def _gpu_rows(rig: Rig) -> list[dict[str, Any]]:
    return [r for r in rig.sim.billing() if str(r["price_key"]).startswith("gpu.")]


def test_the_tag_namespace_is_made_once_and_refusals_are_the_services(rig: Rig) -> None:
    provider = rig.provider()
    spec = schedule_spec(SESSION, rig.sim.clock.wall() + 3600, session_tags(SESSION))
    with pytest.raises(ProviderError, match="defined tag nimble-oke.session does not exist"):
        provider.create("schedule", spec, retry_token="no-tag-yet")
    provider.ensure_defined_tag(TAG_NAMESPACE, TAG_KEY)
    provider.ensure_defined_tag(TAG_NAMESPACE, TAG_KEY)  # idempotent
    identity = provider.identity
    (ns,) = identity.list_tag_namespaces(provider.tenancy_id).data or [None]
    assert ns is not None and ns.name == TAG_NAMESPACE
    assert [t.name for t in identity.list_tags(ns.id).data] == [TAG_KEY]
    m = oci.resource_scheduler.models
    with pytest.raises(oci.exceptions.ServiceError) as no_target:
        provider.scheduler.create_schedule(
            m.CreateScheduleDetails(
                compartment_id=rig.sim.compartment_id,
                action="STOP_RESOURCE",
                recurrence_type="CRON",
                recurrence_details="0 * * * *",
            )
        )
    assert no_target.value.status == 400
    assert "either resources or resourceFilters" in no_target.value.message
    with pytest.raises(oci.exceptions.ServiceError) as bad_cron:
        provider.scheduler.create_schedule(
            m.CreateScheduleDetails(
                compartment_id=rig.sim.compartment_id,
                action="STOP_RESOURCE",
                recurrence_type="CRON",
                recurrence_details="every hour",
                resources=[m.Resource(id="ocid1.instance.oc1..x")],
            )
        )
    assert bad_cron.value.status == 400 and "recurrenceDetails" in bad_cron.value.message


def test_the_schedule_stops_a_tagged_a10_node_and_its_gpu_bill(rig: Rig) -> None:
    provider, _store, pool_id = _guarded_pool(rig)
    (node,) = provider.node_pool_nodes(pool_id)
    instance = provider.compute.get_instance(node["id"]).data
    assert instance.defined_tags == {TAG_NAMESPACE: {TAG_KEY: SESSION}}  # from the pool
    lease_end = rig.sim.clock.wall() + 1800
    schedule = provider.create(
        "schedule", {**schedule_spec(SESSION, lease_end, session_tags(SESSION))}, retry_token="g1"
    )
    provider.await_ready("schedule", schedule, timeout_s=10)
    _settle(rig, 1800 + GRACE_S + 120)

    assert provider.instance_state(node["id"]) == "STOPPED"
    runs = provider.schedule_runs(schedule.resource_id)
    assert runs is not None and runs["last_status"] == "SUCCEEDED"
    stopped_at = runs["starts"]
    assert stopped_at is not None and -60 < stopped_at - (lease_end + GRACE_S) <= 0
    # the A10 VM's GPU line ends at the stop; its boot volume keeps billing
    gpu_end = max(r["end"] for r in _gpu_rows(rig))
    _settle(rig, 3600)
    assert max(r["end"] for r in _gpu_rows(rig)) == gpu_end
    boot = [
        r for r in rig.sim.billing() if r["kind"] == "node" and r["price_key"] == "block.storage"
    ]
    assert any(r["end"] > gpu_end + 3000 for r in boot)

    # up brings it back: START, the node registers again and bills its GPU
    provider.start_instance(node["id"])
    _settle(rig, 600)
    assert provider.instance_state(node["id"]) == "RUNNING"
    _settle(rig, 600)
    assert max(r["end"] for r in _gpu_rows(rig)) > gpu_end + 500


def test_a_pending_schedule_run_is_a_scheduled_timer_not_an_activity(rig: Rig) -> None:
    """A schedule waiting for its next run is not provisioning: on the event clock it must
    not make time jump (as an activity it fast-forwarded every idle session's lease, and
    `nimble sim advance` overshot: found by the closed-laptop test), but the clock still stops
    at it when advanced, so the run happens at its time."""
    provider, _store, pool_id = _guarded_pool(rig)
    _settle(rig, 600)  # the pool's own lifecycle events are done
    before = rig.sim.clock.pending()
    lease_end = rig.sim.clock.wall() + 3600
    schedule = provider.create(
        "schedule", {**schedule_spec(SESSION, lease_end, session_tags(SESSION))}, retry_token="g2"
    )
    provider.await_ready("schedule", schedule, timeout_s=10)
    after = rig.sim.clock.pending()
    assert after["scheduled"] == before["scheduled"] + 1, (before, after)
    assert after["activity"] == before["activity"], (before, after)
    (node,) = provider.node_pool_nodes(pool_id)
    _settle(rig, 3600 + GRACE_S + 120)
    assert provider.instance_state(node["id"]) == "STOPPED"


def test_a_bare_metal_gpu_keeps_billing_while_stopped(make_rig: RigFactory) -> None:
    assert not stop_ends_billing("BM.GPU.A10.4") and stop_ends_billing("VM.GPU.A10.2")
    rig = make_rig()
    provider, _store, pool_id = _guarded_pool(rig, "BM.GPU.A10.4")
    schedule = provider.create(
        "schedule",
        schedule_spec(SESSION, rig.sim.clock.wall(), session_tags(SESSION)),
        retry_token="g2",
    )
    provider.await_ready("schedule", schedule, timeout_s=10)
    _settle(rig, GRACE_S + 120)
    (node,) = provider.node_pool_nodes(pool_id)
    assert provider.instance_state(node["id"]) == "STOPPED"
    before = max(r["end"] for r in _gpu_rows(rig))
    _settle(rig, 3600)
    assert max(r["end"] for r in _gpu_rows(rig)) >= before + 3600  # still billing


def test_down_finds_the_schedule_by_its_tags_and_deletes_it(rig: Rig) -> None:
    provider, store, _pool = _guarded_pool(rig)
    spec = schedule_spec(SESSION, rig.sim.clock.wall() + 3600, session_tags(SESSION))
    schedule = provider.create("schedule", spec, retry_token="g3")  # not in the journal
    found = {f.resource_id: f.kind for f in provider.find_tagged(session_tags(SESSION))}
    assert found[schedule.resource_id] == "schedule"

    down = teardown(SESSION, provider, store, keep=Keep(), timeouts=rig.timeouts)

    assert down.failed == [] and down.remaining == []
    assert provider.state("schedule", schedule.resource_id) is None
    assert rig.live() == {}


@pytest.mark.parametrize(
    ("shape", "preemptible", "says"),
    [
        ("VM.GPU.A10.1", False, "stops billing when stopped"),
        ("BM.GPU.A10.4", False, "only the in-cluster watchdog (pool to zero) stops its bill"),
        ("VM.GPU.A10.1", True, "cannot be stopped (OCI only terminates preemptible instances)"),
    ],
)
def test_up_says_what_the_guard_can_do_for_the_pool_it_creates(
    shape: str, preemptible: bool, says: str
) -> None:
    """OCI stops billing a stopped VM.GPU.A10 only, and cannot stop a preemptible instance at
    all (it can only be terminated): the line `up` prints must not promise more."""
    from nimble_oke.services.cloud_guard import guard_note

    assert says in guard_note(shape, preemptible=preemptible)
