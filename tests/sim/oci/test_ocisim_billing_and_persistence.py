"""Billing meter, block volumes, load balancers, persistence and the serve() process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import oci
import pytest
from ocisim_helpers import C, client_kwargs, create_cluster, make_network, settle

from nimble_oke.sim.oci import OciSimulator


def _lines(sim: OciSimulator, ident: str) -> dict[str, dict[str, Any]]:
    return {row["price_key"]: row for row in sim.billing() if row["id"] == ident}


def test_block_volumes_backups_clones_and_billing(
    clients: dict[str, Any], sim: OciSimulator
) -> None:
    bs = clients["bs"]
    ad = sim.world.ads()[0]
    vol = bs.create_volume(
        C.CreateVolumeDetails(
            compartment_id=sim.compartment_id,
            availability_domain=ad,
            size_in_gbs=200,
            vpus_per_gb=20,
            display_name="cache",
            freeform_tags={"nimble-session": "t1"},
        )
    ).data
    assert vol.lifecycle_state == "PROVISIONING"
    settle(sim, 30)
    assert bs.get_volume(vol.id).data.lifecycle_state == "AVAILABLE"
    backup = bs.create_volume_backup(C.CreateVolumeBackupDetails(volume_id=vol.id)).data
    settle(sim, 120)
    assert bs.get_volume_backup(backup.id).data.lifecycle_state == "AVAILABLE"
    clone = bs.create_volume(
        C.CreateVolumeDetails(
            compartment_id=sim.compartment_id,
            availability_domain=ad,
            source_details=C.VolumeSourceFromVolumeBackupDetails(id=backup.id),
        )
    ).data
    assert clone.size_in_gbs == 200 and clone.source_details.id == backup.id
    settle(sim, 3600 - 150)
    lines = _lines(sim, vol.id)
    assert lines["block.storage"]["quantity"] == 200
    assert lines["block.vpu"]["quantity"] == 200 * 20
    assert lines["block.storage"]["seconds"] == pytest.approx(3600, abs=60)
    bs.delete_volume(vol.id)
    settle(sim, 3600)
    assert bs.get_volume(vol.id).data.lifecycle_state == "TERMINATED"
    assert _lines(sim, vol.id)["block.storage"]["seconds"] == pytest.approx(3605, abs=60)
    assert not _lines(sim, vol.id)["block.storage"]["live"]


def test_load_balancer_via_sdk_and_python_api(clients: dict[str, Any], sim: OciSimulator) -> None:
    lbc = clients["lb"]
    net = make_network(sim, clients["vn"])
    resp = lbc.create_load_balancer(
        oci.load_balancer.models.CreateLoadBalancerDetails(
            compartment_id=sim.compartment_id,
            display_name="nim",
            shape_name="flexible",
            shape_details=oci.load_balancer.models.ShapeDetails(
                minimum_bandwidth_in_mbps=10, maximum_bandwidth_in_mbps=100
            ),
            subnet_ids=[net["api"]],
        )
    )
    wr_id = resp.headers["opc-work-request-id"]
    wr = lbc.get_work_request(wr_id).data
    assert wr.lifecycle_state == "ACCEPTED"
    settle(sim, 150)  # LB external IP: 1-2 min
    assert lbc.get_work_request(wr_id).data.lifecycle_state == "SUCCEEDED"
    lb = lbc.get_load_balancer(wr.load_balancer_id).data
    assert lb.lifecycle_state == "ACTIVE" and lb.ip_addresses[0].is_public
    # the Kubernetes side (cloud controller) creates one through the Python API
    lb2 = sim.api.create_load_balancer(
        "svc-nim", min_mbps=10, max_mbps=10, freeform_tags={"nimble-session": "t1"}
    )
    assert sim.api.load_balancer_ip(lb2) is None
    settle(sim, 150)
    assert sim.api.load_balancer_ip(lb2)
    assert {lb.id, lb2} <= {x.id for x in lbc.list_load_balancers(sim.compartment_id).data}
    lines = _lines(sim, lb2)
    assert lines["lb.flexible.base"]["quantity"] == 1
    assert lines["lb.flexible.bandwidth"]["quantity"] == 10
    sim.api.delete_load_balancer(lb2)
    settle(sim, 60)
    assert lbc.get_load_balancer(lb2).data.lifecycle_state == "DELETED"
    # and a PVC volume through the CSI-facing API
    vol = sim.api.create_volume(200, freeform_tags={"nimble-session": "t1"})
    assert sim.api.get_volume(vol)["sizeInGBs"] == 200
    sim.api.delete_volume(vol)


def test_billing_meter_for_a_gpu_session(clients: dict[str, Any], sim: OciSimulator) -> None:
    from ocisim_helpers import pool_details

    ce = clients["ce"]
    net = make_network(sim, clients["vn"])
    cluster_id = create_cluster(sim, ce, net, ctype="ENHANCED_CLUSTER")
    resp = ce.create_node_pool(
        pool_details(sim, ce, cluster_id, net["workers"], size=1, preemptible=True)
    )
    pool_id = ce.get_work_request(resp.headers["opc-work-request-id"]).data.resources[0].identifier
    settle(sim, 3600)
    ce.delete_node_pool(pool_id)
    settle(sim, 600)
    rows = sim.billing()
    gpu = [r for r in rows if r["price_key"] == "gpu.A10"]
    assert len(gpu) == 1 and gpu[0]["quantity"] == 1 and gpu[0]["preemptible"]
    # billed from launch until terminated: the hour plus a 1-2 min termination
    assert 3600 + 60 <= gpu[0]["seconds"] <= 3600 + 120 + 60
    oke = [r for r in rows if r["price_key"] == "oke.enhanced"]
    assert oke[0]["seconds"] >= 4200 and oke[0]["live"]


def test_state_persists_across_simulator_processes(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with OciSimulator(state_dir=state, seed=1) as sim:
        vn = oci.core.VirtualNetworkClient(sim.oci_config(), **client_kwargs(sim))
        ce = oci.container_engine.ContainerEngineClient(sim.oci_config(), **client_kwargs(sim))
        net = make_network(sim, vn)
        resp = ce.create_cluster(
            oci.container_engine.models.CreateClusterDetails(
                name="c",
                compartment_id=sim.compartment_id,
                vcn_id=net["vcn"],
                kubernetes_version="v1.35.2",
            )
        )
        wr_id = resp.headers["opc-work-request-id"]
        compartment = sim.compartment_id
        vn.base_client.session.close()
        ce.base_client.session.close()
    assert (state / "oci-state.json").exists()
    assert oct((state / "oci" / "oci_api_key.pem").stat().st_mode & 0o777) == "0o600"
    with OciSimulator(state_dir=state, seed=1) as sim2:
        assert sim2.compartment_id == compartment
        vn = oci.core.VirtualNetworkClient(sim2.oci_config(), **client_kwargs(sim2))
        ce = oci.container_engine.ContainerEngineClient(sim2.oci_config(), **client_kwargs(sim2))
        try:
            assert vn.get_vcn(net["vcn"]).data.cidr_block == "10.0.0.0/16"
            assert ce.get_work_request(wr_id).data.status in ("ACCEPTED", "IN_PROGRESS")
            settle(sim2, 600)  # the create in flight when the first process stopped completes
            assert ce.get_work_request(wr_id).data.status == "SUCCEEDED"
            new_vcn = vn.create_vcn(
                C.CreateVcnDetails(cidr_block="10.5.0.0/16", compartment_id=compartment)
            ).data
            assert new_vcn.id not in net.values()
        finally:
            vn.base_client.session.close()
            ce.base_client.session.close()


def test_serve_process_writes_endpoints_and_config(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "endpoints.json").write_text(json.dumps({"kube": "http://127.0.0.1:1"}))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nimble_oke.sim.oci.serve",
            str(state),
            "--time-scale",
            "600",
            "--seed",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    try:
        deadline = time.monotonic() + 20
        data: dict[str, Any] = {}
        while time.monotonic() < deadline:
            path = state / "endpoints.json"
            data = json.loads(path.read_text())
            if "oci" in data:
                break
            time.sleep(0.1)
        assert data["kube"] == "http://127.0.0.1:1"  # merged, not overwritten
        assert set(data["oci_regions"]) == {"us-ashburn-1", "us-phoenix-1"}
        config = oci.config.from_file(str(state / "oci" / "config"), "DEFAULT")
        idc = oci.identity.IdentityClient(
            config, service_endpoint=data["oci"], retry_strategy=oci.retry.NoneRetryStrategy()
        )
        try:
            comps = idc.list_compartments(config["tenancy"]).data
            assert [c.name for c in comps] == ["nimble-sim"]
        finally:
            idc.base_client.session.close()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "oci http://127.0.0.1:" in out
        assert (state / "oci-state.json").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
