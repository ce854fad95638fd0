"""Capacity, service limits, throttling and failed work requests, injected by the
simulator's fault plan and observed through the real OCI SDK."""

from __future__ import annotations

import pytest
from provisioning_helpers import FULL_COUNTS, NETWORK_COUNTS, SESSION, Rig, RigFactory

from nimble_oke.errors import CapacityError, ProviderError
from nimble_oke.services.provision import teardown

OUT_OF_CAPACITY_AD1 = {
    "rules": [
        {
            "operation": "CreateNodePool",
            "kind": "out_of_host_capacity",
            "shape": "VM.GPU.A10.1",
            "availability_domain": "AD-1",
        }
    ]
}


def test_out_of_host_capacity_in_ad1_lands_the_pool_in_ad2(make_rig: RigFactory) -> None:
    rig = make_rig(OUT_OF_CAPACITY_AD1)
    provider, store = rig.provider(), rig.store()
    cfg = rig.config()
    report = rig.preflight(cfg, provider)
    # the capacity report does not know (as in OCI, it is a hint): AD-1 is still first
    assert report.ladder[0].availability_domain.endswith("AD-1")
    prov = rig.provisioner(cfg, provider, store)
    network = prov.network()
    cluster_id = prov.cluster(network)

    pool_id, rung, attempts = prov.node_pool(cluster_id, network, report)

    assert rung.availability_domain.endswith("AD-2")
    assert "out of host capacity" in attempts[0].lower() and attempts[1].endswith(": ok")
    assert rig.wire(cluster_id)["lifecycleState"] == "ACTIVE"  # the cluster survived
    pools = [r for r in rig.sim.billing() if r["kind"] == "node"]
    assert pools, "the AD-2 node is billed"
    assert rig.live_ids("nodepool") == [pool_id]  # the failed AD-1 pool was deleted
    assert rig.ever()["nodepool"] == 2
    nodes = [r for r in rig.sim.inventory() if r["kind"] == "node"]
    assert len(nodes) == 1
    assert rig.wire(nodes[0]["id"])["availabilityDomain"].endswith("AD-2")
    ad1 = store.journal_entry(SESSION, report.ladder[0].step)
    assert ad1 is not None and ad1.status == "rolled_back"
    # the failed pool's lifetime is closed in the store (it stops accruing)
    failed = [r for r in store.resources(SESSION) if r.kind == "node_pool" and r.deleted_at]
    assert [r.resource_id for r in failed] == [ad1.resource_id]
    assert dict(rig.live()) == FULL_COUNTS


def test_a_rerun_after_capacity_fallback_keeps_the_ad2_pool(make_rig: RigFactory) -> None:
    rig = make_rig(OUT_OF_CAPACITY_AD1)
    provider, store = rig.provider(), rig.store()
    cfg = rig.config()
    report = rig.preflight(cfg, provider)
    first = rig.provisioner(cfg, provider, store).provision(report)
    again = rig.provisioner(cfg, provider, rig.store()).provision(report)
    assert again.ids == first.ids
    assert again.placement == first.placement
    assert rig.ever()["nodepool"] == 2  # no third attempt
    teardown(SESSION, provider, store, timeouts=rig.timeouts)
    assert rig.live() == {}


def test_capacity_report_out_of_capacity_skips_the_ad_in_preflight(make_rig: RigFactory) -> None:
    rig = make_rig({"capacity": {"VM.GPU.A10.1": {"AD-1": 0}}})
    report = rig.preflight(rig.config(), rig.provider())
    assert [r.availability_domain.split("-")[-1] for r in report.ladder] == ["2", "3"]
    assert any("AD-1" in s and "OUT_OF_HOST_CAPACITY" in s for s in report.skipped)


def test_gpu_limit_zero_everywhere_stops_before_any_resource(make_rig: RigFactory) -> None:
    rig = make_rig({"limits": {"gpu-a10-count": {"AD-1": 0, "AD-2": 0, "AD-3": 0}}})
    provider = rig.provider()
    cfg = rig.config(gpu_pool={"fallback_shapes": ["VM.GPU.A10.2"]})
    with pytest.raises(CapacityError) as caught:
        rig.preflight(cfg, provider)
    message = str(caught.value)
    assert "gpu-a10-count" in message
    assert "limit increase" in message
    assert provider.region in message
    for ad in ("AD-1", "AD-2", "AD-3"):
        assert ad in message  # says what was tried
    assert "VM.GPU.A10.2" in message
    assert rig.live() == {}  # nothing exists, nothing is billed
    assert rig.sim.billing() == []


def test_gpu_limit_zero_in_one_ad_only_skips_that_ad(make_rig: RigFactory) -> None:
    rig = make_rig({"limits": {"gpu-a10-count": {"AD-1": 0}}})
    report = rig.preflight(rig.config(), rig.provider())
    assert [r.availability_domain[-4:] for r in report.ladder] == ["AD-2", "AD-3"]
    assert any("gpu-a10-count" in s for s in report.skipped)


BURSTS = {
    "seed": 7,
    "rules": [
        {"operation": op, "error": error, "nth": [1, 2, 3]}
        for op, error in [
            ("CreateVcn", "TooManyRequests"),
            ("CreateSubnet", "ServiceUnavailable"),
            ("CreateRouteTable", "TooManyRequests"),
            ("CreateSecurityList", "ServiceUnavailable"),
            ("CreateCluster", "TooManyRequests"),
            ("CreateNodePool", "ServiceUnavailable"),
            ("DeleteNodePool", "TooManyRequests"),
            ("DeleteVcn", "ServiceUnavailable"),
        ]
    ]
    + [
        {"operation": "GetWorkRequest", "error": "ServiceUnavailable", "rate": 0.2},
        {"operation": "SearchResources", "error": "TooManyRequests", "nth": [2, 3]},
    ],
}


def test_429_and_503_bursts_are_survived_without_duplicates(make_rig: RigFactory) -> None:
    rig = make_rig(BURSTS)
    provider, store = rig.provider(), rig.store()
    cfg = rig.config()
    rig.provisioner(cfg, provider, store).provision(rig.preflight(cfg, provider))
    assert dict(rig.live()) == FULL_COUNTS
    # no resource was ever created twice (not even one deleted again)
    assert rig.ever() == {**FULL_COUNTS}
    result = teardown(SESSION, provider, store, timeouts=rig.timeouts)
    assert result.failed == [] and rig.live() == {}


def test_a_burst_longer_than_the_retry_budget_is_a_clear_error(make_rig: RigFactory) -> None:
    rig = make_rig(
        {
            "rules": [
                {"operation": "CreateVcn", "error": "TooManyRequests", "nth": list(range(1, 20))}
            ]
        }
    )
    provider, store = rig.provider(), rig.store()
    cfg = rig.config()
    with pytest.raises(ProviderError) as caught:
        rig.provisioner(cfg, provider, store).network()
    assert "429" in str(caught.value) and "TooManyRequests" in str(caught.value)
    assert "VCN" in str(caught.value)
    assert rig.live() == {}


def test_a_resent_create_with_the_same_retry_token_returns_the_same_resource(rig: Rig) -> None:
    """What makes a blind resend after a lost response safe (opc-retry-token)."""
    provider = rig.provider()
    spec = {"name": "t1-vcn", "cidr": "10.0.0.0/16", "dns_label": "t1", "tags": {}}
    first = provider.create("vcn", spec, retry_token="nimble-token-1")
    second = provider.create("vcn", spec, retry_token="nimble-token-1")
    other = provider.create("vcn", spec, retry_token="nimble-token-2")
    assert first.resource_id == second.resource_id != other.resource_id
    assert rig.live()["vcn"] == 2


def test_a_failed_node_pool_rolls_back_the_network_and_cluster(make_rig: RigFactory) -> None:
    rig = make_rig(
        {
            "rules": [
                {
                    "operation": "CreateNodePool",
                    "kind": "work_request_fail",
                    "message": "Internal error occurred while launching instances",
                }
            ]
        }
    )
    provider, store = rig.provider(), rig.store()
    cfg = rig.config()
    prov = rig.provisioner(cfg, provider, store)
    with pytest.raises(ProviderError) as caught:
        prov.provision(rig.preflight(cfg, provider))
    assert not isinstance(caught.value, CapacityError)
    assert "Internal error" in str(caught.value)
    assert rig.ever()["nodepool"] == 1  # not a capacity problem: no other rung tried

    removed, failed = prov.rollback()

    assert failed == []
    assert rig.live() == {}, rig.sim.inventory()
    assert len(removed) == sum(FULL_COUNTS.values()) - FULL_COUNTS["node"]
    assert store.resources(SESSION, live_only=True) == []
    assert {e.status for e in store.journal(SESSION)} == {"rolled_back"}


ALL_OUT_OF_CAPACITY = {"rules": [{"operation": "CreateNodePool", "kind": "out_of_host_capacity"}]}


def test_every_rung_out_of_capacity_stops_with_what_was_tried(make_rig: RigFactory) -> None:
    rig = make_rig(ALL_OUT_OF_CAPACITY)
    provider, store = rig.provider(), rig.store()
    cfg = rig.config()
    prov = rig.provisioner(cfg, provider, store)
    with pytest.raises(CapacityError) as caught:
        prov.provision(rig.preflight(cfg, provider))
    message = str(caught.value)
    assert message.lower().count("out of host capacity") == 3  # one per AD tried
    for ad in ("AD-1", "AD-2", "AD-3"):
        assert ad in message
    assert rig.ever()["nodepool"] == 3
    assert rig.live_ids("nodepool") == []  # each failed pool was already deleted
    assert rig.live()["cluster"] == 1
    assert rig.live()["node"] == 0


def test_every_rung_out_of_capacity_then_rollback_is_clean(make_rig: RigFactory) -> None:
    rig = make_rig(ALL_OUT_OF_CAPACITY)
    provider, store = rig.provider(), rig.store()
    cfg = rig.config()
    prov = rig.provisioner(cfg, provider, store)
    with pytest.raises(CapacityError):
        prov.provision(rig.preflight(cfg, provider))

    _removed, failed = prov.rollback()

    assert rig.live() == {}
    assert store.resources(SESSION, live_only=True) == []
    assert failed == []


def test_rollback_keeps_what_an_earlier_run_created(make_rig: RigFactory) -> None:
    rig = make_rig({"rules": [{"operation": "CreateNodePool", "kind": "work_request_fail"}]})
    provider, store = rig.provider(), rig.store()
    cfg = rig.config()
    earlier = rig.provisioner(cfg, provider, store)
    earlier.network()  # an earlier `up` got this far, then stopped cleanly
    prov = rig.provisioner(cfg, provider, rig.store())
    with pytest.raises(ProviderError):
        prov.provision(rig.preflight(cfg, provider))

    prov.rollback()

    assert dict(rig.live()) == NETWORK_COUNTS
    teardown(SESSION, provider, store, timeouts=rig.timeouts)
    assert rig.live() == {}


def test_a_failed_cluster_rolls_back_the_network(make_rig: RigFactory) -> None:
    rig = make_rig(
        {
            "rules": [
                {
                    "operation": "CreateCluster",
                    "kind": "work_request_fail",
                    "message": "Internal error occurred while creating the control plane",
                }
            ]
        }
    )
    provider, store = rig.provider(), rig.store()
    cfg = rig.config()
    prov = rig.provisioner(cfg, provider, store)
    with pytest.raises(ProviderError) as caught:
        prov.provision(rig.preflight(cfg, provider))
    assert "control plane" in str(caught.value)
    assert rig.ever()["nodepool"] == 0

    _removed, failed = prov.rollback()

    assert failed == [] and rig.live() == {}
    assert store.resources(SESSION, live_only=True) == []


def test_a_reused_network_is_neither_created_nor_deleted(rig: Rig) -> None:
    provider = rig.provider()
    owner = rig.provisioner(rig.config(), provider, rig.store(rig.home / "owner"), "shared")
    net = owner.network()  # someone else's VCN and subnets
    cfg = rig.config(
        cluster={
            "name": SESSION,
            "vcn_id": net["vcn"],
            "api_subnet_id": net["subnet/api"],
            "worker_subnet_id": net["subnet/workers"],
            "lb_subnet_id": net["subnet/lb"],
        }
    )
    store = rig.store()
    result = rig.provisioner(cfg, provider, store).provision(rig.preflight(cfg, provider))
    assert result.ids["vcn"] == net["vcn"]
    assert dict(rig.live()) == FULL_COUNTS  # only the cluster and pool were added
    assert rig.wire(result.ids["cluster"])["vcnId"] == net["vcn"]

    down = teardown(SESSION, provider, store, timeouts=rig.timeouts)

    assert down.failed == []
    assert dict(rig.live()) == NETWORK_COUNTS
