# mypy: disable-error-code="union-attr,index,operator,arg-type,attr-defined"
# (lightkube models type every field Optional; the servers always set them. Run from here,
# mypy takes the sibling tests/sim/oci directory for the untyped ``oci`` SDK package.)
"""A CPU node pool on a flexible shape, through the real OCI SDK against the joined
simulators: its nodes register in Kubernetes with OKE's labels (no GPU label or taint) and
the pool's OCPUs/memory, and the OCI meter bills them per OCPU-hour and GB-hour."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import oci
import pytest
from lightkube import Client, KubeConfig
from lightkube.resources.core_v1 import Node
from ocisim_helpers import client_kwargs, create_active_cluster, make_network

from nimble_oke.catalog import load_catalog
from nimble_oke.sim.oci.billing import priced_usd
from nimble_oke.sim.stack import SimStack
from polling import wait_for

M = oci.container_engine.models
C = oci.core.models
# 3000 simulated seconds per real second: a CPU node (5-7 min) is ACTIVE in ≈0.15 s.
SCALE = 3000.0
FLEX = "VM.Standard.E5.Flex"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[SimStack]:
    with SimStack(tmp_path / "sim", time_scale=SCALE, seed=7) as s:
        yield s


def _clients(stack: SimStack) -> tuple[Any, Any]:
    kwargs = client_kwargs(stack.oci)
    config = stack.oci.oci_config()
    return (
        oci.container_engine.ContainerEngineClient(config, **kwargs),
        oci.core.VirtualNetworkClient(config, **kwargs),
    )


def _cluster(stack: SimStack, ce: Any, vn: Any) -> tuple[str, str]:
    """(cluster id, worker subnet id) of an ACTIVE basic cluster."""
    net = make_network(stack.oci, vn)
    return create_active_cluster(stack.oci, ce, net), net["workers"]


def _cpu_image(stack: SimStack, ce: Any) -> str:
    opts = ce.get_node_pool_options(
        "all", compartment_id=stack.oci.compartment_id, node_pool_k8s_version="v1.35.2"
    ).data
    plain = [
        s for s in opts.sources if "-GPU-" not in s.source_name and "aarch64" not in s.source_name
    ]
    return str(sorted(plain, key=lambda s: s.source_name)[-1].image_id)


def test_flex_pool_nodes_register_as_cpu_nodes_and_bill_per_ocpu_and_gb(
    stack: SimStack,
) -> None:
    ce, vn = _clients(stack)
    try:
        cluster_id, subnet = _cluster(stack, ce, vn)
        ad = stack.oci.world.ads()[1]
        resp = ce.create_node_pool(
            M.CreateNodePoolDetails(
                compartment_id=stack.oci.compartment_id,
                cluster_id=cluster_id,
                name="cache-warmer",
                kubernetes_version="v1.35.2",
                node_shape=FLEX,
                # not the shape's default (2 OCPUs / 16 GB): the pool's size must win
                node_shape_config=M.CreateNodeShapeConfigDetails(ocpus=3.0, memory_in_gbs=24.0),
                node_source_details=M.NodeSourceViaImageDetails(
                    source_type="IMAGE", image_id=_cpu_image(stack, ce)
                ),
                node_config_details=M.CreateNodePoolNodeConfigDetails(
                    size=1,
                    placement_configs=[
                        M.NodePoolPlacementConfigDetails(availability_domain=ad, subnet_id=subnet)
                    ],
                ),
                initial_node_labels=[M.KeyValue(key="nimble/role", value="cache-warmer")],
            )
        )
        pool_id = ce.get_work_request(resp.headers["opc-work-request-id"]).data.resources[0]
        pool = ce.get_node_pool(pool_id.identifier).data
        assert pool.node_shape_config.ocpus == 3.0
        assert pool.node_shape_config.memory_in_gbs == 24.0

        with Client(KubeConfig.from_file(str(stack.kubeconfig_path)), field_manager="t") as kc:
            nodes = wait_for(
                lambda: list(kc.list(Node)), timeout=20.0, what="the CPU node in Kubernetes"
            )
            node = nodes[0]
            labels = node.metadata.labels
            zone = ad.split(":")[-1]
            assert labels["node.kubernetes.io/instance-type"] == FLEX
            assert labels["oke.oraclecloud.com/pool.name"] == "cache-warmer"
            assert labels["topology.kubernetes.io/zone"] == zone
            assert labels["topology.kubernetes.io/region"] == stack.oci.world.home_region
            assert labels["oci.oraclecloud.com/fault-domain"].startswith("FAULT-DOMAIN-")
            assert labels["nimble/role"] == "cache-warmer"
            assert "nvidia.com/gpu" not in labels
            assert not node.spec.taints
            assert node.status.capacity["cpu"] == "6000m"  # 3 OCPUs = 6 vCPUs
            assert node.status.capacity["memory"] == "24576Mi"
            assert node.status.allocatable["cpu"] == "5700m"
            assert node.status.allocatable["memory"] == f"{round(24 * 455 / 480 * 1024)}Mi"
            assert "nvidia.com/gpu" not in node.status.allocatable

        node_ocid = ce.get_node_pool(pool_id.identifier).data.nodes[0].id
        rows = [r for r in stack.oci.billing() if r["id"] == node_ocid]
        quantities = {r["price_key"]: r["quantity"] for r in rows}
        assert quantities["compute.ocpu"] == 3.0
        assert quantities["compute.memory"] == 24.0
        assert not any(key.startswith("gpu.") for key in quantities)
        compute = [r for r in rows if r["price_key"].startswith("compute.")]
        seconds = compute[0]["seconds"]
        assert seconds > 0
        usd, gpu_seconds = priced_usd(compute)
        prices = load_catalog().prices  # per OCPU-hour and per GB-hour (flex shapes)
        hourly = 3 * prices["compute.flex.ocpu"].usd + 24 * prices["compute.flex.memory"].usd
        assert usd == pytest.approx(hourly * seconds / 3600, rel=0.01)
        assert gpu_seconds == 0
    finally:
        ce.base_client.session.close()
        vn.base_client.session.close()
