"""The plan's cache warm-up off the GPU and the cache volume choice (issue 10)."""

from __future__ import annotations

import pytest

from nimble_oke.catalog import load_catalog
from nimble_oke.domain import timings as t
from nimble_oke.domain.cache_volume import VolumeCosts, option, trade_off, volume_options
from nimble_oke.domain.config import build_config
from nimble_oke.domain.plan import OFF_PATH, build_plan
from nimble_oke.errors import CatalogError

CAT = load_catalog()


def cfg(**flags: object):  # type: ignore[no-untyped-def]
    return build_config({}, {}, {"budget.max_hours": 1, **flags})


def phase(plan, name):  # type: ignore[no-untyped-def]
    return next(p for p in plan.timeline if p.name == name)


def test_warm_up_runs_beside_the_gpu_pool_and_is_not_gpu_billed() -> None:
    plan = build_plan(cfg(), CAT)
    assert plan.warm_up is not None and plan.warm_up.shape == CAT.cpu_shapes[0].name
    gpu, cpu = phase(plan, "gpu node pool"), phase(plan, "cpu node pool")
    assert cpu.start_s == gpu.start_s  # in parallel, both after the cluster
    for name in ("cpu node pool", "cpu image pull", "model download (cpu node)"):
        assert not phase(plan, name).gpu_billed
    assert "model download" not in {p.name for p in plan.timeline}
    # NIM starts when the image is on the GPU node and the volume is attached
    load = phase(plan, "model load")
    assert load.start_s == max(phase(plan, "image pull").end_s, phase(plan, "volume attach").end_s)
    assert plan.startup.download_s == 0


def test_warming_off_the_gpu_cuts_gpu_billed_minutes_versus_the_naive_path() -> None:
    config = cfg(**{"cache.size_gb": 200, "cache.vpus_per_gb": 10})
    warm_up, naive = build_plan(config, CAT), build_plan(config, CAT, warm_up=False)
    assert naive.warm_up is None and phase(naive, "model download").gpu_billed
    saved = naive.gpu_billed_s - warm_up.gpu_billed_s
    # the download on the GPU (15 GB at the volume's 96 MB/s) is gone, and the volume
    # attach overlaps the pre-pulled image instead of preceding the pull
    assert saved == pytest.approx(14.96e9 / 96e6 + t.VOLUME_ATTACH.typical, rel=0.01)
    assert warm_up.time_to_ready_s < naive.time_to_ready_s
    assert {line.price_key for line in warm_up.lines} >= {
        "compute.flex.ocpu",
        "compute.flex.memory",
    }
    assert warm_up.worst_case_usd >= warm_up.total_usd


def test_no_warm_up_when_there_is_nothing_to_warm() -> None:
    assert build_plan(cfg(), CAT, cache_warm=True).warm_up is None
    assert build_plan(cfg(**{"cache.warm_up": "gpu-node"}), CAT).warm_up is None
    assert build_plan(cfg(**{"cache.mode": "ngc"}), CAT).warm_up is None


def test_object_storage_hydrates_on_the_cpu_pool_and_the_gpu_path_loses_the_hydrate() -> None:
    config = cfg(
        **{
            "cache.mode": "object-storage",
            "cache.bucket": "nim-models",
            "cache.namespace": "ns",
            "cache.size_gb": 200,
            "cache.vpus_per_gb": 10,
        }
    )
    warm_up, naive = build_plan(config, CAT), build_plan(config, CAT, warm_up=False)
    assert warm_up.warm_up is not None and naive.warm_up is None
    names = {p.name for p in warm_up.timeline}
    assert "model hydrate (cpu node)" in names and "model hydrate" not in names
    assert not phase(warm_up, "model hydrate (cpu node)").gpu_billed
    assert phase(naive, "model hydrate").gpu_billed
    # the CPU node pulls nimble's tool image (≈150 MB), not NIM's
    assert phase(warm_up, "cpu image pull").seconds == pytest.approx(
        t.TOOLS_IMAGE_BYTES / t.IMAGE_PULL_BYTES_PER_S.typical
    )
    # the hydrate (15 GB at the volume's 96 MB/s) leaves the GPU's bill
    saved = naive.gpu_billed_s - warm_up.gpu_billed_s
    assert saved >= 14.96e9 / 96e6
    # the cache volume bills from the start of the fill, as in pvc mode
    assert warm_up.total_usd > 0 and warm_up.worst_case_usd >= warm_up.total_usd


def test_unknown_warm_up_shape_is_refused_with_the_allowed_ones() -> None:
    with pytest.raises(CatalogError, match="allowed: auto, VM.Standard.E4.Flex"):
        build_plan(cfg(**{"cache.warm_up_shape": "VM.GPU.A10.1"}), CAT)


def test_slow_cpu_side_makes_the_gpu_wait_and_the_plan_shows_it() -> None:
    # a 50 GB Balanced volume fills at 24 MB/s: 10 min, longer than the GPU side's slack
    plan = build_plan(cfg(**{"cache.size_gb": 50, "cache.vpus_per_gb": 10}), CAT)
    warm_done = phase(plan, "model download (cpu node)").end_s
    assert warm_done > phase(plan, "image pull").end_s
    assert phase(plan, "volume attach").start_s == warm_done
    ready = max(p.end_s for p in plan.timeline if p.name not in OFF_PATH)
    assert plan.time_to_ready_s == ready


def test_planner_fills_in_volume_size_and_vpus_and_the_user_wins() -> None:
    chosen = build_plan(cfg(), CAT)
    assert chosen.volume_chosen is not None and chosen.config is not None
    assert chosen.config.cache.size_gb == chosen.volume_chosen.size_gb
    assert chosen.config.cache.vpus_per_gb == chosen.volume_chosen.vpus_per_gb
    assert chosen.volume_chosen in chosen.volume_options
    fixed = build_plan(cfg(**{"cache.size_gb": 300, "cache.vpus_per_gb": 20}), CAT)
    assert fixed.volume_chosen is None and fixed.config is not None
    assert (fixed.config.cache.size_gb, fixed.config.cache.vpus_per_gb) == (300, 20)
    size_only = build_plan(cfg(**{"cache.size_gb": 1000}), CAT)
    assert size_only.config is not None and size_only.config.cache.size_gb == 1000


def test_longer_sessions_and_a_pricier_gpu_buy_faster_volumes() -> None:
    costs = VolumeCosts(0.0255, 0.0017, 744, gpu_usd_per_hour=2.0, session_hours=1, keep_months=0)
    cheap_gpu = VolumeCosts(0.0255, 0.0017, 744, 0.01, session_hours=200, keep_months=0)
    fast = volume_options(weights_gb=15, source_bytes_per_s=250e6, fill_slack_s=None, costs=costs)
    slow = volume_options(
        weights_gb=15, source_bytes_per_s=250e6, fill_slack_s=None, costs=cheap_gpu
    )
    assert fast[0].gpu_wait_s < slow[0].gpu_wait_s
    assert fast == sorted(fast, key=lambda o: round(o.total_usd, 4))


def test_option_arithmetic_follows_the_volume_tiers() -> None:
    costs = VolumeCosts(0.0255, 0.0017, 744, gpu_usd_per_hour=2.0, session_hours=744, keep_months=0)
    o = option(200, 10, weights_gb=15, source_bytes_per_s=250e6, fill_slack_s=None, costs=costs)
    assert o.mb_per_s == pytest.approx(96)
    assert o.load_s == pytest.approx(15e9 / 96e6)
    assert o.gpu_wait_s == pytest.approx(2 * 15e9 / 96e6)  # fill and load on the GPU
    assert o.volume_usd == pytest.approx(200 * (0.0255 + 10 * 0.0017))  # one month
    warmed = option(200, 10, weights_gb=15, source_bytes_per_s=250e6, fill_slack_s=1e9, costs=costs)
    assert warmed.gpu_wait_s == pytest.approx(warmed.load_s)
    assert t.volume_throughput_bytes_per_s(1000, 120) == pytest.approx(1800e6)


def test_trade_off_keeps_the_choice_and_only_efficient_options() -> None:
    costs = VolumeCosts(0.0255, 0.0017, 744, gpu_usd_per_hour=2.0, session_hours=4, keep_months=0)
    options = volume_options(
        weights_gb=15, source_bytes_per_s=250e6, fill_slack_s=None, costs=costs
    )
    shown = trade_off(options, options[0])
    assert options[0] in shown and len(shown) <= 5
    waits = [o.gpu_wait_s for o in shown]
    assert waits == sorted(waits, reverse=True)
    dollars = [o.volume_usd for o in shown]
    assert dollars == sorted(dollars)  # faster costs more: otherwise it would not be shown
