"""Sweep of what a crashed run left, teardown of what Kubernetes created (load balancer,
volumes, the kept model cache), and the preemptible ↔ on-demand fallback ladder."""

from __future__ import annotations

import shutil
from collections import Counter

import pytest
from provisioning_helpers import (
    ALL_STEPS,
    FULL_COUNTS,
    NETWORK_COUNTS,
    SESSION,
    CrashingProvider,
    Rig,
    RigFactory,
    SimulatedCrash,
)

from nimble_oke.errors import CapacityError, ProviderError
from nimble_oke.services.provision import (
    CREATOR,
    ROLE_CACHE,
    TAG_CREATOR,
    TAG_ROLE,
    TAG_SESSION,
    Keep,
    delete_in_order,
    sweep_candidates,
    teardown,
)

# provider kinds of one full session (nodes go with their pool; search does not list them)
SESSION_KINDS = {
    "vcn": 1,
    "internet_gateway": 1,
    "nat_gateway": 1,
    "service_gateway": 1,
    "route_table": 2,
    "security_list": 3,
    "subnet": 3,
    "cluster": 1,
    "node_pool": 1,
}


def test_sweep_removes_what_a_crashed_run_left_after_its_state_was_lost(rig: Rig) -> None:
    cfg = rig.config()
    # another session's network, which a session-scoped sweep must not touch
    other_store = rig.store(rig.home / "other")
    rig.provisioner(cfg, rig.provider(), other_store, session="other").network()
    # session t1 dies while its GPU pool is still being created...
    dying = rig.provider(CrashingProvider, crash_after=len(ALL_STEPS), at="while_waiting")
    store = rig.store()
    with pytest.raises(SimulatedCrash):
        rig.provisioner(cfg, dying, store).provision(rig.preflight(cfg, dying))
    # ...and its state store is lost with it
    store.close()
    shutil.rmtree(rig.home / "sessions", ignore_errors=True)
    (rig.home / "state.db").unlink()

    provider = rig.provider()
    mine = sweep_candidates(provider, SESSION)
    assert Counter(f.kind for f in mine) == SESSION_KINDS
    assert {f.tags[TAG_SESSION] for f in mine} == {SESSION}
    everything = sweep_candidates(provider, None)
    assert len(everything) == len(mine) + sum(NETWORK_COUNTS.values())
    assert {f.tags[TAG_CREATOR] for f in everything} == {CREATOR}

    removed, failed = delete_in_order(provider, None, None, mine, rig.timeouts, rig.say)

    assert failed == [] and len(removed) == len(mine)
    assert dict(rig.live()) == NETWORK_COUNTS  # only the other session is left
    assert sweep_candidates(provider, SESSION) == []
    rest = sweep_candidates(provider, None)
    delete_in_order(provider, None, None, rest, rig.timeouts, rig.say)
    assert rig.live() == {}


def test_sweep_ignores_resources_not_created_by_nimble(rig: Rig) -> None:
    provider = rig.provider()
    rig.sim.api.create_volume(50, display_name="someone-elses", freeform_tags={"team": "x"})
    rig.sim.api.create_volume(
        50, display_name="same-session-name", freeform_tags={TAG_SESSION: SESSION}
    )
    assert sweep_candidates(provider, None) == []
    assert sweep_candidates(provider, SESSION) == []


def test_down_deletes_kubernetes_created_load_balancer_and_keeps_the_cache(rig: Rig) -> None:
    provider, store = rig.provider(), rig.store()
    cfg = rig.config()
    result = rig.provisioner(cfg, provider, store).provision(rig.preflight(cfg, provider))
    tags = {TAG_SESSION: SESSION, TAG_CREATOR: CREATOR}
    # what OKE's cloud controller and CSI driver create for the Service and the PVCs
    lb = rig.sim.api.create_load_balancer(
        "nim", subnet_ids=[result.ids["subnet/lb"]], freeform_tags=tags
    )
    scratch = rig.sim.api.create_volume(100, display_name="scratch", freeform_tags=tags)
    cache = rig.sim.api.create_volume(
        200, display_name="model-cache", freeform_tags={**tags, TAG_ROLE: ROLE_CACHE}
    )

    down = teardown(SESSION, provider, store, keep=Keep(cache=True), timeouts=rig.timeouts)

    assert down.failed == [] and down.remaining == []
    assert down.kept == [cache]
    assert lb in down.removed and scratch in down.removed
    assert rig.live_ids("volume") == [cache]
    assert rig.live() == {"volume": 1}
    kept = [r for r in store.resources(SESSION) if r.kept]
    assert [r.resource_id for r in kept] == [cache]

    # the next `down` without --keep-cache removes it
    teardown(SESSION, provider, store, timeouts=rig.timeouts)
    assert rig.live() == {}


# -- the fallback ladder: preemptible first, then on-demand; never preemptible on BM ------


def _ladder(rig: Rig, **gpu_pool: object) -> list[tuple[str, str, bool]]:
    report = rig.preflight(rig.config(gpu_pool=gpu_pool), rig.provider())
    return [(r.shape, r.availability_domain[-4:], r.preemptible) for r in report.ladder]


def test_ladder_tries_preemptible_first_then_on_demand_and_never_preemptible_bm(
    rig: Rig,
) -> None:
    ladder = _ladder(rig, preemptible=True, fallback_shapes=["BM.GPU.A10.4"])
    vm, bm = "VM.GPU.A10.1", "BM.GPU.A10.4"
    ads = ["AD-1", "AD-2", "AD-3"]
    assert ladder == (
        [(vm, ad, True) for ad in ads]
        + [(vm, ad, False) for ad in ads]
        + [(bm, ad, False) for ad in ads]
    )


def test_ladder_without_on_demand_fallback_is_preemptible_only(rig: Rig) -> None:
    ladder = _ladder(rig, preemptible=True, allow_on_demand_fallback=False)
    assert ladder and all(preemptible for _, _, preemptible in ladder)
    assert _ladder(rig, preemptible=False) == [
        ("VM.GPU.A10.1", ad, False) for ad in ("AD-1", "AD-2", "AD-3")
    ]


def test_bare_metal_is_never_preemptible(rig: Rig) -> None:
    ladder = _ladder(rig, shape="BM.GPU.A10.4", preemptible=True)
    assert ladder and not any(preemptible for _, _, preemptible in ladder)
    with pytest.raises(CapacityError) as caught:
        _ladder(rig, shape="BM.GPU.A10.4", preemptible=True, allow_on_demand_fallback=False)
    assert "bare metal" in str(caught.value)


def test_preemptible_out_of_capacity_falls_back_to_on_demand(make_rig: RigFactory) -> None:
    rig = make_rig(
        {
            "rules": [
                {
                    "operation": "CreateNodePool",
                    "kind": "out_of_host_capacity",
                    "availability_domain": "AD-1",
                    "times": 1,  # the preemptible attempt only
                }
            ]
        }
    )
    provider, store = rig.provider(), rig.store()
    cfg = rig.config(gpu_pool={"preemptible": True, "availability_domains": ["AD-1"]})
    report = rig.preflight(cfg, provider)
    assert [r.preemptible for r in report.ladder] == [True, False]

    result = rig.provisioner(cfg, provider, store).provision(report)

    assert result.placement is not None and not result.placement.preemptible
    assert "preemptible" in result.ladder_attempts[0]
    pools = rig.ever()["nodepool"]
    assert pools == 2 and dict(rig.live()) == FULL_COUNTS
    placement = rig.wire(result.ids["node_pool"])["nodeConfigDetails"]["placementConfigs"][0]
    assert placement.get("preemptibleNodeConfig") is None
    gpu_rows = [r for r in rig.sim.billing() if r["price_key"].startswith("gpu.")]
    assert [r["preemptible"] for r in gpu_rows] == [False]


def test_a_preemptible_pool_is_placed_and_billed_as_preemptible(rig: Rig) -> None:
    provider, store = rig.provider(), rig.store()
    cfg = rig.config(gpu_pool={"preemptible": True})
    result = rig.provisioner(cfg, provider, store).provision(rig.preflight(cfg, provider))
    assert result.placement is not None and result.placement.preemptible
    placement = rig.wire(result.ids["node_pool"])["nodeConfigDetails"]["placementConfigs"][0]
    assert placement["preemptibleNodeConfig"]["preemptionAction"]["type"] == "TERMINATE"
    gpu_rows = [r for r in rig.sim.billing() if r["price_key"].startswith("gpu.")]
    assert [r["preemptible"] for r in gpu_rows] == [True]
    pool = next(r for r in store.resources(SESSION) if r.kind == "node_pool")
    gpu_meter = next(m for m in pool.meters if m.price_key == "gpu.a10")
    assert gpu_meter.multiplier == rig.catalog.preemptible_discount


def test_preflight_names_what_is_offered_when_the_kubernetes_version_is_not(rig: Rig) -> None:
    cfg = rig.config(cluster={"name": SESSION, "kubernetes_version": "1.30.1"})
    with pytest.raises(ProviderError) as caught:
        rig.preflight(cfg, rig.provider())
    assert "1.30.1" in str(caught.value) and "1.35.2" in str(caught.value)
    assert rig.live() == {}


def test_preflight_rejects_an_unknown_availability_domain(rig: Rig) -> None:
    with pytest.raises(ProviderError) as caught:
        _ladder(rig, availability_domains=["AD-9"])
    assert "AD-9" in str(caught.value) and "AD-1" in str(caught.value)


def test_preflight_skips_shapes_too_small_for_the_model(rig: Rig) -> None:
    cfg = rig.config(
        nim={"model": "meta/llama-3.3-70b-instruct"},
        gpu_pool={"shape": "VM.GPU.A10.1", "fallback_shapes": ["BM.GPU.A100-v2.8"]},
    )
    report = rig.preflight(cfg, rig.provider())
    assert {r.shape for r in report.ladder} == {"BM.GPU.A100-v2.8"}
    assert any(s.startswith("VM.GPU.A10.1: does not fit") for s in report.skipped)
