"""GPU pool production settings against the OCI simulator through the real SDK: OKE's
Cluster Autoscaler add-on configured for the GPU pool, and a pool spread over ADs."""

from __future__ import annotations

from provisioning_helpers import SESSION, Rig

from nimble_oke.domain.node_autoscaling import addon_configurations, max_node_provision_minutes
from nimble_oke.services.preflight import Rung, spread_first


def test_cluster_autoscaler_add_on_manages_the_gpu_pool(rig: Rig) -> None:
    provider, store = rig.provider(), rig.store()
    cfg = rig.config(
        cluster={"name": SESSION, "type": "enhanced"},
        autoscaling={"enabled": True, "max_replicas": 3, "cluster_autoscaler": True},
    )
    result = rig.provisioner(cfg, provider, store).provision(rig.preflight(cfg, provider))
    pool = result.ids["node_pool"]
    addon = provider.addon(result.ids["cluster"], "ClusterAutoscaler")
    assert addon is not None and addon["state"] == "ACTIVE"
    settings = addon["configurations"]
    assert settings["nodes"] == f"1:3:{pool}"
    assert settings["authType"] == "workload"
    # a GPU VM takes up to 15 min to register: the autoscaler must not give up at its
    # default 15 min
    assert settings["maxNodeProvisionTime"] == "23m"
    assert any("cluster autoscaler: installed, GPU pool 1-3 nodes" in m for m in rig.messages)
    # a re-run finds it installed exactly so and changes nothing
    again = rig.provisioner(cfg, provider, store).provision(rig.preflight(cfg, provider))
    assert again.ids["node_pool"] == pool
    assert any("cluster autoscaler: already installed" in m for m in rig.messages)


def test_cluster_autoscaler_settings_follow_the_shape(rig: Rig) -> None:
    bm = rig.catalog.shape("BM.GPU.H100.8")
    vm = rig.catalog.shape("VM.GPU.A10.1")
    assert max_node_provision_minutes(bm) > max_node_provision_minutes(vm) >= 20
    cfg = rig.config(
        cluster={"name": SESSION, "type": "enhanced"},
        gpu_pool={"nodes": 2},
        autoscaling={"max_replicas": 5, "cluster_autoscaler": True},
    )
    assert addon_configurations(cfg, vm, "ocid1.nodepool.x")["nodes"] == "2:5:ocid1.nodepool.x"


def test_a_spread_pool_places_nodes_in_every_ad_with_capacity(rig: Rig) -> None:
    provider, store = rig.provider(), rig.store()
    cfg = rig.config(gpu_pool={"nodes": 3, "placement": "spread"})
    report = rig.preflight(cfg, provider)
    first = report.ladder[0]
    assert len(first.spread) == 3 and "across US-ASHBURN-AD-1+US-ASHBURN-AD-2+" in first.label
    result = rig.provisioner(cfg, provider, store).provision(report)
    placements = rig.wire(result.ids["node_pool"])["nodeConfigDetails"]["placementConfigs"]
    assert sorted(p["availabilityDomain"].rsplit("-", 1)[-1] for p in placements) == [
        "1",
        "2",
        "3",
    ]
    nodes = provider.node_pool_nodes(result.ids["node_pool"])
    assert len({n["availability_domain"] for n in nodes}) == 3


def test_spread_falls_back_to_one_ad_rungs_and_needs_two_ads() -> None:
    one = [Rung("VM.GPU.A10.1", "X:AD-1", False)]
    assert spread_first(one) == one
    two = [Rung("VM.GPU.A10.1", "X:AD-1", False), Rung("VM.GPU.A10.1", "X:AD-2", False)]
    ladder = spread_first(two)
    assert ladder[0].spread == ("X:AD-1", "X:AD-2") and ladder[1:] == two
    assert ladder[0].step != two[0].step
