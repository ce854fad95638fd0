"""Clean up → down, idempotent re-runs and cost accrual, against the OCI simulator."""

from __future__ import annotations

import pytest
from provisioning_helpers import (
    COST_SCALE,
    FULL_COUNTS,
    SESSION,
    Rig,
    RigFactory,
    sim_billed_usd,
    store_accrued_usd,
)

from nimble_oke.services.provision import TAG_CREATOR, TAG_SESSION, TAG_STEP, teardown


def test_clean_provision_creates_one_network_cluster_and_pool(rig: Rig) -> None:
    provider, store = rig.provider(), rig.store()
    cfg = rig.config()
    report = rig.preflight(cfg, provider)
    result = rig.provisioner(cfg, provider, store).provision(report)

    assert dict(rig.live()) == FULL_COUNTS
    # every id the run reports is a distinct live resource of the right kind
    assert len(set(result.ids.values())) == len(result.ids)
    assert (
        rig.wire(result.ids["rt/private"])["routeRules"]
        != rig.wire(result.ids["rt/public"])["routeRules"]
    )
    pool = rig.wire(result.ids["node_pool"])
    assert pool["lifecycleState"] == "ACTIVE"
    assert pool["clusterId"] == result.ids["cluster"]
    placement = pool["nodeConfigDetails"]["placementConfigs"][0]
    assert placement["subnetId"] == result.ids["subnet/workers"]
    assert result.placement is not None and result.placement.availability_domain.endswith("AD-1")
    # tags that let down and sweep find everything without the local state
    for resource in rig.sim.inventory():
        if resource["kind"] in ("node",) or resource["default"]:
            continue
        if resource["kind"] in ("compartment", "dhcpoptions"):
            continue
        tags = resource["freeform_tags"]
        assert tags[TAG_SESSION] == SESSION and tags[TAG_CREATOR] == "nimble-oke"
        assert TAG_STEP in tags
    # the journal says every step is done, each with its resource
    journal = store.journal(SESSION)
    assert [e.status for e in journal] == ["done"] * len(journal)
    assert {e.resource_id for e in journal} == set(result.ids.values())
    assert result.kubeconfig_path is not None
    assert result.ids["cluster"].split(".")[-1][-11:] in result.kubeconfig_path.read_text()


def test_up_then_down_leaves_nothing_and_cost_matches_billing(make_rig: RigFactory) -> None:
    rig = make_rig(time_scale=COST_SCALE)
    provider, store = rig.provider(), rig.store()
    cfg = rig.config(cluster={"name": SESSION, "type": "enhanced"})
    rig.provisioner(cfg, provider, store).provision(rig.preflight(cfg, provider))
    # the session runs for three simulated hours, then `down`
    rig.sim.clock.advance(3 * 3600)
    result = teardown(SESSION, provider, store, timeouts=rig.timeouts, say=rig.say)

    assert result.failed == [] and result.remaining == []
    assert rig.live() == {}, rig.sim.inventory()
    assert store.resources(SESSION, live_only=True) == []
    assert store.journal(SESSION) == []
    billed = sim_billed_usd(rig)
    accrued = store_accrued_usd(rig, store)
    # GPU 3 h x $2 + enhanced control plane + boot volume: a few dollars
    assert billed > 6.0
    assert accrued == pytest.approx(billed, rel=0.01)
    # `down` again: nothing to do, nothing fails, no cost added
    again = teardown(SESSION, provider, store, timeouts=rig.timeouts)
    assert again.removed == [] and again.failed == [] and again.remaining == []
    assert store_accrued_usd(rig, store) == pytest.approx(accrued)


def test_second_provisioner_adopts_everything_and_creates_nothing(rig: Rig) -> None:
    provider, store = rig.provider(), rig.store()
    cfg = rig.config()
    report = rig.preflight(cfg, provider)
    first = rig.provisioner(cfg, provider, store).provision(report)
    created = rig.ever()

    again = rig.provisioner(cfg, rig.provider(), rig.store())
    second = again.provision(report)

    assert second.ids == first.ids
    assert second.placement == first.placement
    assert again.created_this_run == []
    assert rig.ever() == created  # not even a create that was deleted again
    assert dict(rig.live()) == FULL_COUNTS


def test_up_again_after_down_of_the_same_session(rig: Rig) -> None:
    provider, store = rig.provider(), rig.store()
    cfg = rig.config()
    report = rig.preflight(cfg, provider)
    first = rig.provisioner(cfg, provider, store).provision(report)
    teardown(SESSION, provider, store, timeouts=rig.timeouts)
    assert rig.live() == {}

    second = rig.provisioner(cfg, provider, store).provision(report)

    assert dict(rig.live()) == FULL_COUNTS
    assert set(second.ids.values()).isdisjoint(first.ids.values())
