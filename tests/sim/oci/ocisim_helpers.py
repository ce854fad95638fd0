"""Helpers shared by the OCI simulator tests (real SDK models, no mocks)."""

from __future__ import annotations

from typing import Any

import oci

from nimble_oke.sim.oci import OciSimulator
from polling import wait_for

M = oci.container_engine.models
C = oci.core.models


def client_kwargs(sim: OciSimulator, **extra: Any) -> dict[str, Any]:
    """No SDK retries and no circuit breaker unless a test asks for them."""
    return {
        "service_endpoint": sim.endpoint,
        "retry_strategy": oci.retry.NoneRetryStrategy(),
        "circuit_breaker_strategy": oci.circuit_breaker.NoCircuitBreakerStrategy(),
        **extra,
    }


def settle(sim: OciSimulator, sim_seconds: float) -> None:
    """Jump simulated time forward and apply every event that became due."""
    sim.clock.advance(sim_seconds)
    sim.step()


def make_network(sim: OciSimulator, vn: Any) -> dict[str, str]:
    comp = sim.compartment_id
    vcn = vn.create_vcn(
        C.CreateVcnDetails(
            cidr_block="10.0.0.0/16", compartment_id=comp, display_name="nimble", dns_label="nimble"
        )
    ).data
    ig = vn.create_internet_gateway(
        C.CreateInternetGatewayDetails(compartment_id=comp, vcn_id=vcn.id, is_enabled=True)
    ).data
    rt = vn.create_route_table(
        C.CreateRouteTableDetails(
            compartment_id=comp,
            vcn_id=vcn.id,
            route_rules=[C.RouteRule(destination="0.0.0.0/0", network_entity_id=ig.id)],
        )
    ).data
    api = vn.create_subnet(
        C.CreateSubnetDetails(
            cidr_block="10.0.0.0/29", compartment_id=comp, vcn_id=vcn.id, route_table_id=rt.id
        )
    ).data
    workers = vn.create_subnet(
        C.CreateSubnetDetails(
            cidr_block="10.0.1.0/24",
            compartment_id=comp,
            vcn_id=vcn.id,
            prohibit_public_ip_on_vnic=True,
        )
    ).data
    return {"vcn": vcn.id, "ig": ig.id, "rt": rt.id, "api": api.id, "workers": workers.id}


def _request_cluster(sim: OciSimulator, ce: Any, net: dict[str, str], ctype: str) -> str:
    """Send CreateCluster; returns its work request id."""
    resp = ce.create_cluster(
        M.CreateClusterDetails(
            name="nimble",
            compartment_id=sim.compartment_id,
            vcn_id=net["vcn"],
            kubernetes_version="v1.35.2",
            type=ctype,
            endpoint_config=M.CreateClusterEndpointConfigDetails(
                subnet_id=net["api"], is_public_ip_enabled=True
            ),
            freeform_tags={"nimble-session": "t1"},
        )
    )
    return str(resp.headers["opc-work-request-id"])


def create_cluster(
    sim: OciSimulator, ce: Any, net: dict[str, str], ctype: str = "BASIC_CLUSTER"
) -> str:
    wr = ce.get_work_request(_request_cluster(sim, ce, net, ctype)).data
    settle(sim, 600)
    return str(wr.resources[0].identifier)


def create_active_cluster(sim: OciSimulator, ce: Any, net: dict[str, str]) -> str:
    """:func:`create_cluster` on a running stack: wait (real seconds) for the cluster to be
    ACTIVE instead of jumping the clock the Kubernetes side also runs on."""
    wr_id = _request_cluster(sim, ce, net, "BASIC_CLUSTER")
    wait_for(
        lambda: ce.get_work_request(wr_id).data.status == "SUCCEEDED", timeout=20.0, what="cluster"
    )
    return str(ce.get_work_request(wr_id).data.resources[0].identifier)


def gpu_image(sim: OciSimulator, ce: Any, version: str = "v1.35.2") -> str:
    opts = ce.get_node_pool_options(
        "all", compartment_id=sim.compartment_id, node_pool_k8s_version=version
    ).data
    gpu = [s for s in opts.sources if "-Gen2-GPU-" in s.source_name]
    return str(sorted(gpu, key=lambda s: s.source_name)[-1].image_id)


def pool_details(
    sim: OciSimulator,
    ce: Any,
    cluster_id: str,
    subnet: str,
    size: int = 1,
    shape: str = "VM.GPU.A10.1",
    ad_index: int = 0,
    preemptible: bool = False,
) -> Any:
    preempt = (
        M.PreemptibleNodeConfigDetails(
            preemption_action=M.TerminatePreemptionAction(is_preserve_boot_volume=False)
        )
        if preemptible
        else None
    )
    return M.CreateNodePoolDetails(
        compartment_id=sim.compartment_id,
        cluster_id=cluster_id,
        name="gpu",
        kubernetes_version="v1.35.2",
        node_shape=shape,
        node_source_details=M.NodeSourceViaImageDetails(
            source_type="IMAGE", image_id=gpu_image(sim, ce), boot_volume_size_in_gbs=200
        ),
        node_config_details=M.CreateNodePoolNodeConfigDetails(
            size=size,
            placement_configs=[
                M.NodePoolPlacementConfigDetails(
                    availability_domain=sim.world.ads()[ad_index],
                    subnet_id=subnet,
                    preemptible_node_config=preempt,
                )
            ],
            freeform_tags={"nimble-session": "t1"},
        ),
        node_eviction_node_pool_settings=M.NodeEvictionNodePoolSettings(
            eviction_grace_duration="PT0M", is_force_delete_after_grace_duration=True
        ),
        initial_node_labels=[M.KeyValue(key="nimble/pool", value="gpu")],
    )
