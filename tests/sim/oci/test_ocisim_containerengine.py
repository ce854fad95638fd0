"""Container Engine: clusters, node pools, work requests, kubeconfig, add-ons."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import oci
import pytest
import yaml
from ocisim_helpers import M, client_kwargs, create_cluster, make_network, pool_details, settle

from nimble_oke.sim.oci import OciSimulator


@pytest.mark.parametrize("scale", [600, 3000])
def test_composite_waiters_at_high_time_scales(tmp_path: Path, scale: float) -> None:
    with OciSimulator(state_dir=tmp_path, time_scale=scale, seed=1) as sim:
        ce = oci.container_engine.ContainerEngineClient(sim.oci_config(), **client_kwargs(sim))
        vn = oci.core.VirtualNetworkClient(sim.oci_config(), **client_kwargs(sim))
        try:
            _waiters(sim, ce, vn, scale)
        finally:
            ce.base_client.session.close()
            vn.base_client.session.close()


def _waiters(sim: OciSimulator, ce: Any, vn: Any, scale: float) -> None:
    net = make_network(sim, vn)
    ops = oci.container_engine.ContainerEngineClientCompositeOperations(ce)
    started = time.monotonic()
    done = ops.create_cluster_and_wait_for_state(
        M.CreateClusterDetails(
            name="c",
            compartment_id=sim.compartment_id,
            vcn_id=net["vcn"],
            kubernetes_version="v1.35.2",
            type="ENHANCED_CLUSTER",
        ),
        wait_for_states=["SUCCEEDED", "FAILED"],
        waiter_kwargs={"max_interval_seconds": 0.2, "max_wait_seconds": 30},
    )
    # cluster create is 6-8 simulated minutes (calibration.md): ~0.6-0.8 s at scale 600
    assert done.data.status == "SUCCEEDED"
    assert 360 / scale * 0.9 < time.monotonic() - started < 10
    cluster_id = done.data.resources[0].identifier
    assert done.data.resources[0].action_type == "CREATED"
    cluster = ce.get_cluster(cluster_id).data
    assert cluster.lifecycle_state == "ACTIVE" and cluster.type == "ENHANCED_CLUSTER"
    pool = ops.create_node_pool_and_wait_for_state(
        pool_details(sim, ce, cluster_id, net["workers"], size=1),
        wait_for_states=["SUCCEEDED", "FAILED"],
        waiter_kwargs={"max_interval_seconds": 0.2, "max_wait_seconds": 30},
    )
    assert pool.data.status == "SUCCEEDED"
    active = oci.wait_until(
        ce, ce.get_cluster(cluster_id), "lifecycle_state", "ACTIVE", max_wait_seconds=5
    )
    assert active.data.id == cluster_id


def test_node_pool_lifecycle_scale_and_delete(clients: dict[str, Any], sim: OciSimulator) -> None:
    ce = clients["ce"]
    net = make_network(sim, clients["vn"])
    cluster_id = create_cluster(sim, ce, net)
    resp = ce.create_node_pool(
        pool_details(sim, ce, cluster_id, net["workers"], size=2, preemptible=True)
    )
    assert resp.status == 202 and resp.data is None
    wr_id = resp.headers["opc-work-request-id"]
    assert ce.get_work_request(wr_id).data.status in ("ACCEPTED", "IN_PROGRESS")
    pool_id = ce.get_work_request(wr_id).data.resources[0].identifier
    creating = ce.get_node_pool(pool_id).data
    assert creating.lifecycle_state == "CREATING"
    assert {n.lifecycle_state for n in creating.nodes} == {"CREATING"}
    settle(sim, 11 * 60)
    assert ce.get_work_request(wr_id).data.status == "IN_PROGRESS"  # VM GPU nodes: 10-12 min
    settle(sim, 2 * 60)
    wr = ce.get_work_request(wr_id).data
    assert wr.status == "SUCCEEDED" and wr.resources[0].action_type == "CREATED"
    pool = ce.get_node_pool(pool_id).data
    assert pool.lifecycle_state == "ACTIVE"
    assert [n.name for n in pool.nodes] == ["10.0.1.3", "10.0.1.4"]
    assert {n.fault_domain for n in pool.nodes} == {"FAULT-DOMAIN-1", "FAULT-DOMAIN-2"}
    assert pool.node_config_details.placement_configs[0].preemptible_node_config is not None
    assert pool.node_eviction_node_pool_settings.eviction_grace_duration == "PT0M"
    logs = ce.list_work_request_logs(sim.compartment_id, wr_id).data
    assert any("ACTIVE" in entry.message for entry in logs)
    assert ce.list_work_request_errors(sim.compartment_id, wr_id).data == []

    scale = ce.update_node_pool(
        pool_id,
        M.UpdateNodePoolDetails(node_config_details=M.UpdateNodePoolNodeConfigDetails(size=0)),
    )
    assert ce.get_node_pool(pool_id).data.lifecycle_state == "UPDATING"
    settle(sim, 3 * 60)
    assert ce.get_work_request(scale.headers["opc-work-request-id"]).data.status == "SUCCEEDED"
    pool = ce.get_node_pool(pool_id).data
    assert pool.lifecycle_state == "ACTIVE" and pool.nodes == []
    assert pool.node_config_details.size == 0

    delete = ce.delete_node_pool(pool_id)
    settle(sim, 3 * 60)
    assert ce.get_work_request(delete.headers["opc-work-request-id"]).data.status == "SUCCEEDED"
    assert ce.get_node_pool(pool_id).data.lifecycle_state == "DELETED"
    kinds = {
        w.operation_type
        for w in ce.list_work_requests(sim.compartment_id, cluster_id=cluster_id).data
    }
    assert {"NODEPOOL_CREATE", "NODEPOOL_UPDATE", "NODEPOOL_DELETE"} <= kinds


def test_cluster_delete_takes_node_pools_with_it(
    clients: dict[str, Any], sim: OciSimulator
) -> None:
    ce = clients["ce"]
    net = make_network(sim, clients["vn"])
    cluster_id = create_cluster(sim, ce, net)
    ce.create_node_pool(pool_details(sim, ce, cluster_id, net["workers"], size=1))
    settle(sim, 15 * 60)
    resp = ce.delete_cluster(cluster_id)
    assert ce.get_cluster(cluster_id).data.lifecycle_state == "DELETING"
    settle(sim, 5 * 60)
    settle(sim, 60)
    assert ce.get_cluster(cluster_id).data.lifecycle_state == "DELETED"
    assert ce.get_work_request(resp.headers["opc-work-request-id"]).data.status == "SUCCEEDED"
    assert not [r for r in sim.inventory() if r["kind"] in ("cluster", "nodepool", "node")]
    # OKE leaves the network behind: teardown must delete it
    assert any(r["kind"] == "vcn" for r in sim.inventory())


def test_node_pool_validation(clients: dict[str, Any], sim: OciSimulator) -> None:
    ce = clients["ce"]
    net = make_network(sim, clients["vn"])
    cluster_id = create_cluster(sim, ce, net)
    bm = pool_details(sim, ce, cluster_id, net["workers"], shape="BM.GPU.A10.4", preemptible=True)
    with pytest.raises(oci.exceptions.ServiceError) as info:
        ce.create_node_pool(bm)
    assert info.value.status == 400  # preemptible is VM-only (oci.md)
    wrong_image = pool_details(sim, ce, cluster_id, net["workers"])
    opts = ce.get_node_pool_options("all", node_pool_k8s_version="v1.34.10").data
    wrong_image.node_source_details.image_id = opts.sources[0].image_id
    with pytest.raises(oci.exceptions.ServiceError) as info:
        ce.create_node_pool(wrong_image)
    assert info.value.code == "InvalidParameter"


def test_node_pool_options_offer_gpu_images(clients: dict[str, Any], sim: OciSimulator) -> None:
    opts = clients["ce"].get_node_pool_options("all", compartment_id=sim.compartment_id).data
    assert opts.kubernetes_versions == ["v1.34.10", "v1.35.2", "v1.36.1"]
    names = [s.source_name for s in opts.sources]
    assert "Oracle-Linux-8.10-Gen2-GPU-2026.06.15-0-OKE-1.35.2-1505" in names
    assert all(
        s.source_type == "IMAGE" and s.image_id.startswith("ocid1.image.") for s in opts.sources
    )


def test_kubeconfig_and_kube_attachment(clients: dict[str, Any], sim: OciSimulator) -> None:
    ce = clients["ce"]
    net = make_network(sim, clients["vn"])
    cluster_id = create_cluster(sim, ce, net)
    doc = yaml.safe_load(
        ce.create_kubeconfig(
            cluster_id,
            create_cluster_kubeconfig_content_details=M.CreateClusterKubeconfigContentDetails(
                token_version="2.0.0", endpoint="PUBLIC_ENDPOINT"
            ),
        ).data.content
    )
    assert doc["clusters"][0]["cluster"]["server"].startswith("https://")
    exec_ = doc["users"][0]["user"]["exec"]
    assert exec_["command"] == "oci"
    assert exec_["args"][:5] == ["ce", "cluster", "generate-token", "--cluster-id", cluster_id]

    class Recorder:
        def __init__(self) -> None:
            self.ready: list[tuple[str, dict[str, Any]]] = []
            self.removed: list[tuple[str, str]] = []
            self.event = threading.Event()

        def node_ready(self, cid: str, node: dict[str, Any]) -> None:
            self.ready.append((cid, node))
            self.event.set()

        def node_removed(self, cid: str, name: str) -> None:
            self.removed.append((cid, name))
            self.event.set()

    hooks = Recorder()
    sim.attach_kube("http://127.0.0.1:6443", hooks)
    doc = yaml.safe_load(ce.create_kubeconfig(cluster_id).data.content)
    assert doc["clusters"][0]["cluster"]["server"] == "http://127.0.0.1:6443"
    resp = ce.create_node_pool(
        pool_details(sim, ce, cluster_id, net["workers"], size=1, preemptible=True)
    )
    pool_id = ce.get_work_request(resp.headers["opc-work-request-id"]).data.resources[0].identifier
    settle(sim, 13 * 60)
    assert hooks.event.wait(5)
    cid, node = hooks.ready[0]
    assert cid == cluster_id and node["name"] == "10.0.1.3" and node["gpus"] == 1
    assert node["node_pool_id"] == pool_id and node["preemptible"] is True
    assert node["labels"]["nvidia.com/gpu"] == "true"
    assert node["labels"]["oci.oraclecloud.com/oke-is-preemptible"] == "true"
    assert node["labels"]["nimble/pool"] == "gpu"
    hooks.event.clear()
    ce.delete_node_pool(pool_id)
    settle(sim, 3 * 60)
    assert hooks.event.wait(5)
    assert hooks.removed == [(cluster_id, "10.0.1.3")]


def test_addons_need_an_enhanced_cluster(clients: dict[str, Any], sim: OciSimulator) -> None:
    ce = clients["ce"]
    net = make_network(sim, clients["vn"])
    basic = create_cluster(sim, ce, net)
    details = M.InstallAddonDetails(addon_name="NvidiaGpuPlugin")
    with pytest.raises(oci.exceptions.ServiceError) as info:
        ce.install_addon(basic, details)
    assert info.value.status == 400
    enhanced = create_cluster(sim, ce, net, ctype="ENHANCED_CLUSTER")
    assert ce.list_addons(enhanced).data == []
    ce.install_addon(enhanced, details)
    settle(sim, 120)
    addons = ce.list_addons(enhanced).data
    assert [(a.name, a.lifecycle_state) for a in addons] == [("NvidiaGpuPlugin", "ACTIVE")]


def _cluster_token(sim: OciSimulator, cluster_id: str) -> str:
    """The bearer token exactly as `oci ce cluster generate-token` builds it (oke.md)."""
    import base64
    import urllib.parse

    from oci._vendor import requests

    url = f"https://containerengine.{sim.region}.oraclecloud.com/cluster_request/{cluster_id}"
    signer = oci.signer.Signer.from_config(sim.oci_config())
    req = signer.do_request_sign(requests.Request("GET", url).prepare())
    query = urllib.parse.urlencode(
        {"authorization": req.headers["authorization"], "date": req.headers["date"]}
    )
    return base64.urlsafe_b64encode(f"{url}?{query}".encode()).decode()


def test_cluster_token_verification(clients: dict[str, Any], sim: OciSimulator) -> None:
    net = make_network(sim, clients["vn"])
    cluster_id = create_cluster(sim, clients["ce"], net)
    token = _cluster_token(sim, cluster_id)
    assert sim.verify_cluster_token(token) == cluster_id
    forged = _cluster_token(sim, cluster_id.replace("aaaa", "bbbb", 1))
    with pytest.raises(PermissionError):
        sim.verify_cluster_token(forged)  # signature fine, cluster unknown
    raw = base64_decode(token).replace(cluster_id, cluster_id[:-1] + "x")
    with pytest.raises(PermissionError):
        sim.verify_cluster_token(base64_encode(raw))  # path changed after signing


def base64_decode(token: str) -> str:
    import base64

    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()


def base64_encode(text: str) -> str:
    import base64

    return base64.urlsafe_b64encode(text.encode()).decode()


def test_preempted_node_is_replaced(clients: dict[str, Any], sim: OciSimulator) -> None:
    ce = clients["ce"]
    net = make_network(sim, clients["vn"])
    cluster_id = create_cluster(sim, ce, net)
    resp = ce.create_node_pool(
        pool_details(sim, ce, cluster_id, net["workers"], size=1, preemptible=True)
    )
    pool_id = ce.get_work_request(resp.headers["opc-work-request-id"]).data.resources[0].identifier
    settle(sim, 13 * 60)
    first = ce.get_node_pool(pool_id).data.nodes[0]
    assert first.lifecycle_state == "ACTIVE"
    sim.api.preempt_node(first.id)
    settle(sim, 130)
    nodes = ce.get_node_pool(pool_id).data.nodes
    # the preempted node is gone (DELETED nodes are not listed); its replacement launches
    assert [n.lifecycle_state for n in nodes] == ["CREATING"] and nodes[0].id != first.id
    settle(sim, 13 * 60)
    live = [n for n in ce.get_node_pool(pool_id).data.nodes if n.lifecycle_state == "ACTIVE"]
    assert len(live) == 1 and live[0].id != first.id
    reconcile = ce.list_work_requests(sim.compartment_id, resource_id=pool_id).data
    assert "NODEPOOL_RECONCILE" in {w.operation_type for w in reconcile}
    gpu_rows = [r for r in sim.billing() if r["price_key"] == "gpu.A10"]
    assert len(gpu_rows) == 2 and sum(1 for r in gpu_rows if r["live"]) == 1
