"""The Compute API over OKE worker nodes, through the real OCI SDK: a node pool's node IS a
compute instance (GetInstance / ListInstances by the node's OCID), and InstanceAction
SOFTSTOP / STOP / START walk OCI's lifecycle states on the simulated clock, refusing actions
in the wrong state with OCI's 409s."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import oci
from hibernate_helpers import (
    NODE_ACTIVE_S,
    RUNNING_AFTER_S,
    STOPPED_AFTER_S,
    Clients,
    active_node,
    error,
    launch_pool,
    start,
    start_sim,
    state,
    stop,
)
from ocisim_helpers import settle

from nimble_oke.sim.oci import FaultPlan, FaultRule, OciSimulator
from nimble_oke.sim.oci.services import power
from nimble_oke.sim.oci.services.power import BUSY_MESSAGE

C = oci.core.models


def test_a_pool_node_is_the_instance_the_compute_api_serves(
    sim: OciSimulator, clients: Any
) -> None:
    ce, compute, comp = clients["ce"], clients["compute"], sim.compartment_id
    pool_id, node_id = launch_pool(sim, clients)
    pool = ce.get_node_pool(pool_id).data
    node = pool.nodes[0]
    inst = compute.get_instance(node_id).data
    assert isinstance(inst, C.Instance)
    assert inst.id == node.id and inst.id.startswith("ocid1.instance.oc1.iad.")
    assert inst.lifecycle_state == "PROVISIONING"
    assert (inst.shape, inst.availability_domain, inst.fault_domain) == (
        "VM.GPU.A10.1",
        node.availability_domain,
        node.fault_domain,
    )
    assert inst.compartment_id == comp and inst.region == "iad"
    assert inst.display_name.startswith("oke-c") and inst.display_name.endswith("-0")
    assert inst.image_id == pool.node_image_id == inst.source_details.image_id
    assert isinstance(inst.source_details, C.InstanceSourceViaImageDetails)
    assert inst.source_details.boot_volume_size_in_gbs == 200
    assert (inst.shape_config.gpus, inst.shape_config.ocpus) == (1, 15.0)
    assert inst.freeform_tags == {"nimble-session": "t1"}
    assert inst.launch_mode == "PARAVIRTUALIZED" and inst.preemptible_instance_config is None

    busy = error(lambda: compute.instance_action(node_id, "STOP"))
    assert (busy.status, busy.code) == (409, "Conflict")
    assert busy.message == BUSY_MESSAGE.format(id=node_id)
    settle(sim, 120)  # the instance runs while OKE bootstraps it: the node is not ACTIVE yet
    assert state(clients, node_id) == "RUNNING"
    assert ce.get_node_pool(pool_id).data.nodes[0].lifecycle_state == "CREATING"
    assert error(lambda: compute.instance_action(node_id, "STOP")).status == 409
    settle(sim, NODE_ACTIVE_S)

    listed = compute.list_instances(comp).data
    assert [i.id for i in listed] == [node_id]
    by_state = compute.list_instances(comp, lifecycle_state="RUNNING").data
    assert [i.id for i in by_state] == [node_id]
    assert compute.list_instances(comp, lifecycle_state="STOPPED").data == []
    other_ad = sim.world.ads()[1]
    assert compute.list_instances(comp, availability_domain=other_ad).data == []
    named = compute.list_instances(comp, display_name=inst.display_name).data
    assert [i.id for i in named] == [node_id]
    missing = error(lambda: compute.get_instance("ocid1.instance.oc1.iad.aaaaaaaanosuch"))
    assert (missing.status, missing.code) == (404, "NotAuthorizedOrNotFound")
    nowhere = error(lambda: compute.list_instances("ocid1.compartment.oc1..aaaaaaaanosuch"))
    assert nowhere.status == 404


def test_softstop_then_start_walks_ocis_lifecycle(sim: OciSimulator, clients: Any) -> None:
    ce, compute = clients["ce"], clients["compute"]
    pool_id, node_id = active_node(sim, clients)
    before = compute.get_instance(node_id)
    already = error(lambda: compute.instance_action(node_id, "START"))
    assert (already.status, already.code) == (409, "IncorrectState")
    assert "RUNNING" in already.message

    resp = compute.instance_action(node_id, "softstop")  # the API takes either case
    assert resp.status == 200 and resp.data.lifecycle_state == "STOPPING"
    # the API returns the instance, no work request (InstanceActionResponse has none)
    assert "opc-work-request-id" not in resp.headers
    assert resp.headers["etag"] != before.headers["etag"]
    for action in ("STOP", "SOFTSTOP", "START"):  # every action waits for STOPPED
        busy = error(lambda a=action: compute.instance_action(node_id, a))
        assert (busy.status, busy.code, busy.message) == (
            409,
            "Conflict",
            BUSY_MESSAGE.format(id=node_id),
        )
    settle(sim, 25)  # the OS shuts down in 30 s - 2 min (assumed)
    assert state(clients, node_id) == "STOPPING"
    settle(sim, 100)
    assert state(clients, node_id) == "STOPPED"
    for action in ("STOP", "SOFTSTOP"):
        wrong = error(lambda a=action: compute.instance_action(node_id, a))
        assert (wrong.status, wrong.code) == (409, "IncorrectState")
    # OKE does not replace a stopped node: it stays in the pool, ACTIVE
    pool = ce.get_node_pool(pool_id).data
    assert [(n.id, n.lifecycle_state) for n in pool.nodes] == [(node_id, "ACTIVE")]

    stale = compute.get_instance(node_id).headers["etag"]
    assert compute.instance_action(node_id, "START").data.lifecycle_state == "STARTING"
    mismatch = error(lambda: compute.instance_action(node_id, "STOP", if_match=stale))
    assert mismatch.status in (409, 412)  # STARTING refuses first; an old etag never passes
    settle(sim, 40)  # START takes 45 s - 5 min (assumed)
    assert state(clients, node_id) == "STARTING"
    settle(sim, RUNNING_AFTER_S)
    assert state(clients, node_id) == "RUNNING"
    etag = compute.get_instance(node_id).headers["etag"]
    assert error(lambda: compute.instance_action(node_id, "STOP", if_match="0" * 32)).status == 412
    assert compute.instance_action(node_id, "STOP", if_match=etag).status == 200


def test_hard_stop_and_the_actions_the_simulator_refuses(sim: OciSimulator, clients: Any) -> None:
    compute = clients["compute"]
    _, node_id = active_node(sim, clients)
    unknown = error(lambda: compute.instance_action(node_id, "FLY"))
    assert (unknown.status, unknown.code) == (400, "InvalidParameter")
    assert "SOFTSTOP" in unknown.message
    reset = error(lambda: compute.instance_action(node_id, "RESET"))
    assert reset.status == 400 and "not supported by this simulator" in reset.message
    stop(sim, clients, node_id, "STOP")
    start(sim, clients, node_id)


def test_a_hung_os_is_powered_off_at_softstops_15_minute_timeout(
    tmp_path: Path, hibernate_identity: Path
) -> None:
    plan = FaultPlan(rules=[FaultRule(operation="InstanceAction", kind="os_shutdown_hang")])
    sim = start_sim(tmp_path / "state", hibernate_identity, faults=plan)
    clients = Clients(sim)
    try:
        _, node_id = active_node(sim, clients)
        assert clients["compute"].instance_action(node_id, "SOFTSTOP").status == 200
        settle(sim, 14 * 60)
        assert state(clients, node_id) == "STOPPING"
        # a STOP cannot cut it short: OCI refuses every action while the instance stops
        assert error(lambda: clients["compute"].instance_action(node_id, "STOP")).status == 409
        settle(sim, 61)
        assert state(clients, node_id) == "STOPPED"
    finally:
        clients.close()
        sim.stop()


def test_preemptible_and_terminated_instances_refuse_power_actions(
    sim: OciSimulator, clients: Any
) -> None:
    ce, compute = clients["ce"], clients["compute"]
    pool_id, node_id = active_node(sim, clients, preemptible=True)
    inst = compute.get_instance(node_id).data
    assert inst.preemptible_instance_config.preemption_action.type == "TERMINATE"
    refused = error(lambda: compute.instance_action(node_id, "STOP"))
    assert (refused.status, refused.code) == (409, "IncorrectState")
    assert "preemptible" in refused.message

    ce.delete_node_pool(pool_id)
    settle(sim, 5)
    assert state(clients, node_id) == "TERMINATING"
    assert error(lambda: compute.instance_action(node_id, "STOP")).status == 409
    settle(sim, STOPPED_AFTER_S)
    assert state(clients, node_id) == "TERMINATED"
    gone = error(lambda: compute.instance_action(node_id, "START"))
    assert (gone.status, gone.code) == (409, "IncorrectState")


def test_the_kubelet_is_down_from_power_off_until_the_node_rejoins(
    tmp_path: Path, hibernate_identity: Path
) -> None:
    """Pinned timings (a fault plan's ``timings``) make each step observable; the kubelet
    flag is what a replay into Kubernetes follows (``nodes.kubelet_up``)."""
    timings = {"os_shutdown_s": 30, "instance_start_s": 60, "node_rejoin_s": 60}
    sim = start_sim(tmp_path / "state", hibernate_identity, faults=FaultPlan(timings=timings))
    clients = Clients(sim)
    try:
        _, node_id = active_node(sim, clients)
        node = sim.world.resources[node_id]
        clients["compute"].instance_action(node_id, "SOFTSTOP")
        settle(sim, 25)
        assert (state(clients, node_id), power.kubelet_up(node)) == ("STOPPING", True)
        settle(sim, 10)
        assert (state(clients, node_id), power.kubelet_up(node)) == ("STOPPED", False)
        clients["compute"].instance_action(node_id, "START")
        settle(sim, 65)
        assert (state(clients, node_id), power.kubelet_up(node)) == ("RUNNING", False)
        settle(sim, 60)
        assert (state(clients, node_id), power.kubelet_up(node)) == ("RUNNING", True)
    finally:
        clients.close()
        sim.stop()


def test_a_retry_token_reused_for_another_action_is_refused(
    sim: OciSimulator, clients: Any
) -> None:
    """InstanceAction's action is in the query string: a retry token sent with STOP and
    again with START is another request, not a replay (OCI answers 409
    InvalidatedRetryToken), and the instance is not started by it."""
    _, node_id = launch_pool(sim, clients)
    settle(sim, NODE_ACTIVE_S)
    compute = clients["compute"]
    compute.instance_action(node_id, "STOP", opc_retry_token="power-1")
    settle(sim, STOPPED_AFTER_S)
    refused = error(lambda: compute.instance_action(node_id, "START", opc_retry_token="power-1"))
    assert (refused.status, refused.code) == (409, "InvalidatedRetryToken")
    assert state(clients, node_id) == "STOPPED"
