"""Hibernate (pure): which shapes may hibernate, the time back to ready across the start-time
assumption, and hibernate vs standby vs cold for the gap between sessions."""

from __future__ import annotations

import pytest

from nimble_oke.catalog import load_catalog
from nimble_oke.domain import hibernate as h
from nimble_oke.domain.config import build_config
from nimble_oke.domain.plan import build_plan

CAT = load_catalog()


def cfg(**flags: object):  # type: ignore[no-untyped-def]
    return build_config({}, {}, flags)


@pytest.mark.parametrize(
    ("name", "gpus", "bare_metal", "billed"),
    [
        ("VM.GPU.A10.1", 1, False, False),
        ("VM.GPU.A10.2", 2, False, False),
        ("BM.GPU.A10.4", 4, True, True),  # A10, but bare metal
        ("VM.GPU3.1", 1, False, True),  # a VM, but not the A10 series
        ("VM.GPU2.1", 1, False, True),
        ("BM.GPU.H100.8", 8, True, True),
        ("VM.Standard.E5.Flex", 0, False, False),
        ("VM.DenseIO.E4.Flex", 0, False, True),  # NVMe kept
        ("BM.HPC2.36", 0, True, True),
        ("VM.Optimized3.Flex", 0, False, False),
        ("BM.Optimized3.36", 0, True, True),
    ],
)
def test_the_documented_rule_per_shape(
    name: str, gpus: int, bare_metal: bool, billed: bool
) -> None:
    assert h.documented_billed_when_stopped(name, gpus, bare_metal) is billed


def test_every_catalog_gpu_shape_but_the_a10_vms_bills_while_stopped() -> None:
    billed = {
        s.name: h.documented_billed_when_stopped(s.name, s.gpu_count, s.is_bare_metal)
        for s in CAT.shapes.values()
    }
    assert {n for n, b in billed.items() if not b} == {"VM.GPU.A10.1", "VM.GPU.A10.2"}


def test_may_hibernate_decides_from_what_the_api_reports() -> None:
    ok = h.may_hibernate("VM.GPU.A10.1", False)
    assert ok.allowed and "storage" in ok.reason
    for shape in ("BM.GPU.A10.4", "VM.GPU3.1"):
        no = h.may_hibernate(shape, True)
        assert not no.allowed
        assert shape in no.reason  # the shape
        assert "is_billed_for_stopped_instance=true" in no.reason  # the rule, as the API says
        assert "VM.GPU.A10 series" in no.reason
        assert "--keep-cluster" in no.reason and "--keep-node-image" in no.reason
    # the API's answer wins over the documented rule
    assert not h.may_hibernate("VM.GPU.A10.1", True).allowed
    unknown = h.may_hibernate("VM.GPU.A10.1", None)
    assert not unknown.allowed and "did not report" in unknown.reason
    spot = h.may_hibernate("VM.GPU.A10.1", False, preemptible=True)
    assert not spot.allowed and "preemptible" in spot.reason


def test_wake_on_a10_is_ready_within_five_minutes_typically_and_pulls_nothing() -> None:
    session = build_plan(cfg(), CAT).config  # the planner's cache volume
    assert session is not None
    typical = h.hibernate_wake(session, CAT)
    assert typical.ready_s <= 5 * 60
    assert typical.node_ready_s == h.INSTANCE_START.typical + h.NODE_REJOIN.typical
    # GPU billing resumes at START: the whole wake is GPU-billed, nothing else
    assert typical.gpu_billed_s == typical.ready_s
    model = CAT.model(session.nim.model)
    gb_per_s = model.weights_for(session.nim.precision) / typical.load_s
    assert gb_per_s > 0.05  # a volume read, not a download or an image pull


def test_the_wake_moves_across_the_start_time_range() -> None:
    session = build_plan(cfg(), CAT).config
    assert session is not None
    best, typical, worst = (h.hibernate_wake(session, CAT, c) for c in h.CASES)
    assert best.ready_s < typical.ready_s < worst.ready_s
    assert worst.start_s == h.INSTANCE_START.worst and best.start_s == h.INSTANCE_START.best
    assert worst.ready_s - typical.ready_s >= h.INSTANCE_START.worst - h.INSTANCE_START.typical
    assert "assumption" in h.INSTANCE_START.source
    assert h.INSTANCE_START.span.typical == h.INSTANCE_START.typical


def test_a_faster_cache_volume_shortens_the_wake() -> None:
    slow = h.hibernate_wake(cfg(**{"cache.size_gb": 200, "cache.vpus_per_gb": 10}), CAT)
    fast = h.hibernate_wake(cfg(**{"cache.size_gb": 200, "cache.vpus_per_gb": 120}), CAT)
    assert fast.load_s < slow.load_s and fast.ready_s < slow.ready_s


def test_hibernate_bills_storage_only_on_a10_and_comes_back_first() -> None:
    comparison = h.compare_sleep_options(cfg(), CAT, gap_hours=16)
    hib = comparison.option("hibernate")
    assert hib.available
    billed = {line.price_key: line.usd for line in hib.asleep_lines}
    assert set(billed) == {"oke.basic", "block.storage", "block.vpu"}
    assert billed["oke.basic"] == 0.0  # a basic cluster's control plane is free
    session = build_plan(cfg(), CAT).config
    assert session is not None
    boot_gb, cache_gb = session.gpu_pool.boot_volume_gb, session.cache.size_gb
    per_gb_day = lambda usd: usd / 744 * 24  # noqa: E731 - per GB-month → per day
    expected = boot_gb * per_gb_day(0.0255 + 10 * 0.0017) + cache_gb * per_gb_day(0.0255)
    assert hib.asleep_usd_per_day == pytest.approx(expected, rel=1e-6)  # cache rests at 0 VPU
    names = [o.name for o in sorted(comparison.options, key=lambda o: o.ready_s)]
    assert names == ["hibernate", "standby + node image", "standby", "cold"]
    assert hib.ready_range_s is not None
    assert hib.ready_range_s[0] < hib.ready_s < hib.ready_range_s[1]
    assert hib.wake_usd < comparison.option("standby + node image").wake_usd
    assert comparison.option("cold").asleep_usd_per_day == 0.0


def test_the_cheapest_option_depends_on_the_gap() -> None:
    short = h.compare_sleep_options(cfg(), CAT, gap_hours=1)
    assert short.recommended.name == "hibernate"
    hib, image = short.option("hibernate"), short.option("standby + node image")
    gap = h.breakeven_hours(hib, image)
    assert gap is not None and gap > 1
    assert hib.usd_for_gap(gap) == pytest.approx(image.usd_for_gap(gap))
    week = h.compare_sleep_options(cfg(), CAT, gap_hours=7 * 24)
    assert week.recommended.name != "hibernate"  # a week of storage outweighs the faster wake
    with pytest.raises(ValueError, match="≥ 0 hours"):
        h.compare_sleep_options(cfg(), CAT, gap_hours=-1)


@pytest.mark.parametrize("shape", ["BM.GPU.A10.4", "BM.GPU.L40S.4"])
def test_shapes_billed_while_stopped_cannot_hibernate(shape: str) -> None:
    """(VM.GPU3.1 cannot run a catalog model at all — no fp16 weights for a V100 — so the
    planner refuses it before hibernate comes up; may_hibernate's test covers its reason.)"""
    comparison = h.compare_sleep_options(cfg(**{"gpu_pool.shape": shape}), CAT, gap_hours=16)
    hib = comparison.option("hibernate")
    assert not hib.available and shape in hib.note
    # what it would cost shows why: the GPUs keep billing while stopped
    assert any(line.price_key.startswith("gpu.") for line in hib.asleep_lines)
    assert comparison.recommended.name != "hibernate"
    reported = h.compare_sleep_options(
        cfg(**{"gpu_pool.shape": shape}), CAT, gap_hours=16, billed_when_stopped=False
    )
    assert reported.option("hibernate").available  # the API's answer decides


def test_the_comparison_serialises_for_the_plan() -> None:
    comparison = h.compare_sleep_options(cfg(), CAT, gap_hours=8)
    rows = [o.as_dict(comparison.gap_hours) for o in comparison.options]
    assert [r["name"] for r in rows] == ["hibernate", "standby + node image", "standby", "cold"]
    assert rows[0]["ready_range_s"] is not None and rows[3]["ready_range_s"] is None
    assert all(float(str(r["usd_for_gap"])) >= 0 for r in rows)
