"""Container Engine's timed actions, one outcome each, seen through the OCI SDK: a cluster
update, an add-on disabled, a cluster create that fails, a node pool whose node never
registers (NEEDS_ATTENTION) and a node pool whose work request fails (FAILED). They pin
what the cluster, node pool and work request say at the end of each path."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import oci
import pytest
from ocisim_helpers import M, client_kwargs, create_cluster, make_network, pool_details, settle

from nimble_oke.sim.oci import FaultPlan, FaultRule, OciSimulator

MESSAGE = "simulated control plane failure"


def _clients(sim: OciSimulator) -> tuple[Any, Any]:
    ce = oci.container_engine.ContainerEngineClient(sim.oci_config(), **client_kwargs(sim))
    vn = oci.core.VirtualNetworkClient(sim.oci_config(), **client_kwargs(sim))
    return ce, vn


@pytest.fixture
def faulty(tmp_path: Path, tenancy_identity: Path) -> Iterator[Any]:
    """A simulator with the given fault rules, and its CE and VN clients."""
    opened: list[tuple[OciSimulator, Any, Any]] = []

    def make(*rules: FaultRule, **timings: float) -> tuple[OciSimulator, Any, Any]:
        state = tmp_path / f"state{len(opened)}"
        shutil.copytree(tenancy_identity, state / "oci")
        plan = FaultPlan(rules=list(rules), timings=dict(timings))
        sim = OciSimulator(state_dir=state, faults=plan, time_scale=60, seed=1).__enter__()
        ce, vn = _clients(sim)
        opened.append((sim, ce, vn))
        return sim, ce, vn

    yield make
    for sim, ce, vn in opened:
        ce.base_client.session.close()
        vn.base_client.session.close()
        sim.__exit__(None, None, None)


def _errors(ce: Any, sim: OciSimulator, wr_id: str) -> list[tuple[str, str]]:
    return [
        (e.code, e.message) for e in ce.list_work_request_errors(sim.compartment_id, wr_id).data
    ]


def test_cluster_update_finishes_as_updated(clients: dict[str, Any], sim: OciSimulator) -> None:
    ce = clients["ce"]
    cluster_id = create_cluster(sim, ce, make_network(sim, clients["vn"]))
    resp = ce.update_cluster(cluster_id, M.UpdateClusterDetails(name="renamed"))
    assert ce.get_cluster(cluster_id).data.lifecycle_state == "UPDATING"
    settle(sim, 61)
    wr = ce.get_work_request(resp.headers["opc-work-request-id"]).data
    assert (wr.operation_type, wr.status) == ("CLUSTER_UPDATE", "SUCCEEDED")
    assert wr.resources[0].action_type == "UPDATED"
    cluster = ce.get_cluster(cluster_id).data
    assert (cluster.name, cluster.lifecycle_state, cluster.lifecycle_details) == (
        "renamed",
        "ACTIVE",
        "",
    )
    assert cluster.endpoints.kubernetes


def test_disabled_addon_is_removed(clients: dict[str, Any], sim: OciSimulator) -> None:
    ce = clients["ce"]
    cluster_id = create_cluster(sim, ce, make_network(sim, clients["vn"]), ctype="ENHANCED_CLUSTER")
    ce.install_addon(cluster_id, M.InstallAddonDetails(addon_name="NvidiaGpuPlugin"))
    settle(sim, 120)
    addon = ce.get_addon(cluster_id, "NvidiaGpuPlugin").data
    assert addon.lifecycle_state == "ACTIVE"
    assert addon.current_installed_version == addon.version
    resp = ce.disable_addon(cluster_id, "NvidiaGpuPlugin", is_remove_existing_add_on=True)
    assert ce.get_addon(cluster_id, "NvidiaGpuPlugin").data.lifecycle_state == "DELETING"
    settle(sim, 31)
    assert ce.list_addons(cluster_id).data == []
    wr = ce.get_work_request(resp.headers["opc-work-request-id"]).data
    assert (wr.operation_type, wr.status) == ("DISABLE_ADDON", "SUCCEEDED")
    assert wr.resources[0].action_type == "DELETED"


def test_failed_cluster_create_names_the_failure(faulty: Any) -> None:
    rule = FaultRule(operation="CreateCluster", kind="work_request_fail", message=MESSAGE)
    sim, ce, vn = faulty(rule)
    net = make_network(sim, vn)
    resp = ce.create_cluster(
        M.CreateClusterDetails(
            name="c",
            compartment_id=sim.compartment_id,
            vcn_id=net["vcn"],
            kubernetes_version="v1.35.2",
        )
    )
    wr_id = resp.headers["opc-work-request-id"]
    settle(sim, 600)
    wr = ce.get_work_request(wr_id).data
    assert (wr.status, wr.resources[0].action_type) == ("FAILED", "FAILED")
    assert _errors(ce, sim, wr_id) == [("InternalError", MESSAGE)]
    cluster = ce.get_cluster(wr.resources[0].identifier).data
    assert (cluster.lifecycle_state, cluster.lifecycle_details) == ("FAILED", MESSAGE)


def test_node_pool_with_an_unregistered_node_needs_attention(faulty: Any) -> None:
    sim, ce, vn = faulty(
        FaultRule(operation="CreateNodePool", kind="node_never_active"),
        node_registration_timeout_s=1500,
    )
    net = make_network(sim, vn)
    cluster_id = create_cluster(sim, ce, net)
    resp = ce.create_node_pool(pool_details(sim, ce, cluster_id, net["workers"], size=1))
    wr_id = resp.headers["opc-work-request-id"]
    settle(sim, 30 * 60)
    wr = ce.get_work_request(wr_id).data
    assert (wr.status, wr.resources[0].action_type) == ("FAILED", "FAILED")
    pool = ce.get_node_pool(wr.resources[0].identifier).data
    details = pool.nodes[0].lifecycle_details
    assert "has not been seen in k8s nodes" in details
    assert (pool.lifecycle_state, pool.lifecycle_details) == ("NEEDS_ATTENTION", details)
    assert _errors(ce, sim, wr_id) == [("NodeRegistrationTimeout", details)]


def test_failed_node_pool_work_request_fails_its_creating_nodes(faulty: Any) -> None:
    sim, ce, vn = faulty(
        FaultRule(operation="CreateNodePool", kind="work_request_fail", message=MESSAGE)
    )
    net = make_network(sim, vn)
    cluster_id = create_cluster(sim, ce, net)
    resp = ce.create_node_pool(pool_details(sim, ce, cluster_id, net["workers"], size=1))
    wr_id = resp.headers["opc-work-request-id"]
    pool_id = ce.get_work_request(wr_id).data.resources[0].identifier
    node_id = ce.get_node_pool(pool_id).data.nodes[0].id
    settle(sim, 13 * 60)
    wr = ce.get_work_request(wr_id).data
    assert (wr.status, wr.resources[0].action_type) == ("FAILED", "FAILED")
    assert _errors(ce, sim, wr_id) == [("InternalError", MESSAGE)]
    pool = ce.get_node_pool(pool_id).data
    assert (pool.lifecycle_state, pool.lifecycle_details) == ("FAILED", MESSAGE)
    [node] = pool.nodes  # a FAILING node is still listed, with the error that failed it
    assert (node.id, node.lifecycle_state) == (node_id, "FAILING")
    assert (node.node_error.code, node.node_error.message) == ("InternalError", MESSAGE)
    assert node.node_error.status == "500"
