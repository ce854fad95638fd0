from __future__ import annotations

import pytest

from nimble_oke.catalog import load_catalog
from nimble_oke.domain.config import build_config
from nimble_oke.domain.plan import build_plan
from nimble_oke.errors import CatalogError

CAT = load_catalog()


def plan(**flags: object):  # type: ignore[no-untyped-def]
    return build_plan(build_config({}, {}, flags), CAT)


def test_worst_case_is_never_below_the_estimate() -> None:
    for flags in (
        {},
        {"gpu_pool.preemptible": True},
        {"budget.max_hours": 0.1},
        {"budget.max_hours": 8, "cluster.type": "enhanced"},
        {"gpu_pool.shape": "BM.GPU.H100.8", "nim.precision": "fp8"},
    ):
        p = plan(**flags)
        assert p.worst_case_usd >= p.total_usd > 0, flags


def test_estimate_covers_every_billed_line() -> None:
    p = plan(**{"budget.max_hours": 2, "cluster.type": "enhanced"})
    keys = {line.price_key for line in p.lines}
    assert keys >= {
        "gpu.a10",
        "oke.enhanced",
        "block.storage",
        "block.vpu",
        "lb.flexible.base",
        "lb.flexible.bandwidth",
        "egress",
    }
    assert sum(p.by_phase.values()) == pytest.approx(p.total_usd, rel=0.02)


def test_gpu_hours_follow_the_lease() -> None:
    one, two = plan(**{"budget.max_hours": 1}), plan(**{"budget.max_hours": 2})
    gpu = lambda p: next(line for line in p.lines if line.price_key == "gpu.a10")  # noqa: E731
    assert gpu(two).quantity - gpu(one).quantity == pytest.approx(1.0)


def test_preemptible_worst_case_assumes_on_demand_fallback() -> None:
    p = plan(**{"gpu_pool.preemptible": True})
    est = next(line for line in p.lines if line.price_key == "gpu.a10")
    worst = next(line for line in p.worst_lines if line.price_key == "gpu.a10")
    assert est.usd / est.quantity == pytest.approx(1.0)  # $2 × 50%
    assert worst.usd / worst.quantity == pytest.approx(2.0)


def test_startup_budget_is_computed_from_model_and_volume() -> None:
    small = plan(**{"cache.size_gb": 200, "cache.vpus_per_gb": 10})
    fast = plan(**{"cache.size_gb": 1000, "cache.vpus_per_gb": 10})
    assert small.startup.computed
    # 200 GB Balanced reads ≈96 MB/s; 1 TB ≈480 MB/s: loading 15 GB is 5× faster
    assert small.startup.load_s == pytest.approx(14.96e9 / 96e6, rel=0.01)
    assert fast.startup.load_s == pytest.approx(14.96e9 / 480e6, rel=0.01)
    assert small.startup.budget_s > fast.startup.budget_s
    assert small.startup.failure_threshold * small.startup.period_s == small.startup.budget_s
    assert small.startup.budget_s >= 300


def test_warm_cache_skips_download() -> None:
    cfg = build_config()
    cold, warm = build_plan(cfg, CAT, warm_up=False), build_plan(cfg, CAT, cache_warm=True)
    assert cold.startup.download_s > 0 and warm.startup.download_s == 0
    assert "model download" not in [p.name for p in warm.timeline]
    assert warm.time_to_ready_s < cold.time_to_ready_s


def test_explicit_probes() -> None:
    cfg = build_config(
        {"probes": {"mode": "explicit", "startup_failure_threshold": 36, "startup_period_s": 5}}
    )
    p = build_plan(cfg, CAT)
    assert not p.startup.computed and p.startup.budget_s == 180


def test_plan_refuses_impossible_model() -> None:
    with pytest.raises(CatalogError):
        plan(**{"nim.model": "meta/llama-3.3-70b-instruct"})


def test_plan_json_shape() -> None:
    d = plan().as_dict()
    assert isinstance(d["total_usd"], float)
    for line in d["lines"]:
        assert {"item", "quantity", "unit", "usd"} <= set(line)
    assert [p["phase"] for p in d["timeline"]][:3] == ["network", "cluster", "gpu node pool"]


def test_resources_say_what_is_created_and_what_a_kept_session_reuses() -> None:
    cfg = build_config({"cluster": {"name": "k"}})
    cold = build_plan(cfg, load_catalog())
    assert {r.action for r in cold.resources} == {"create"}
    warm = build_plan(cfg, load_catalog(), cache_warm=True, standby=True, node_image=True)
    actions = {r.kind: r.action for r in warm.resources}
    assert actions["vcn"] == actions["subnet"] == actions["cluster"] == "reuse"
    assert actions["block-volume"] == "reuse"  # the kept cache volume
    assert actions["node-pool"] == actions["load-balancer"] == "create"
    (pool,) = [r for r in warm.resources if r.kind == "node-pool"]
    assert "kept node image" in pool.detail
    listed = warm.as_dict()["resources"]
    assert isinstance(listed, list)
    assert [r["action"] for r in listed] == [r.action for r in warm.resources]


def test_a_given_vcn_is_reused_not_created() -> None:
    given = {
        "name": "v",
        "vcn_id": "ocid1.vcn.oc1..given",
        **{f"{s}_subnet_id": f"ocid1.subnet.oc1..{s}" for s in ("api", "worker", "lb")},
    }
    cfg = build_config({"cluster": given})
    (vcn,) = [r for r in build_plan(cfg, load_catalog()).resources if r.kind == "vcn"]
    assert (vcn.name, vcn.action) == ("ocid1.vcn.oc1..given", "reuse")
