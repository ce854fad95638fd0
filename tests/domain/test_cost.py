from __future__ import annotations

import pytest

from nimble_oke.catalog import load_catalog
from nimble_oke.domain.cost import (
    BilledWindow,
    Meter,
    ResourceUsage,
    accrue,
    cluster_meters,
    cost_lines,
    egress_usd,
    guard,
    load_balancer_meters,
    meter_usd,
    node_pool_meters,
    object_storage_meters,
    rerated_volume_meters,
    total,
    volume_meters,
)

CAT = load_catalog()
HOUR = 3600.0


def _cost(meters: tuple[Meter, ...], seconds: float) -> float:
    return total(cost_lines(CAT, [BilledWindow("r", meters, 0, seconds)]))


def test_gpu_node_on_demand_and_preemptible() -> None:
    shape = CAT.shape("VM.GPU.A10.2")
    on_demand = node_pool_meters(CAT, shape, 1, preemptible=False, boot_volume_gb=50)
    preempt = node_pool_meters(CAT, shape, 1, preemptible=True, boot_volume_gb=50)
    assert meter_usd(CAT, on_demand[0], 2 * HOUR)[0] == pytest.approx(8.0)  # 2 GPUs × $2 × 2 h
    assert meter_usd(CAT, preempt[0], 2 * HOUR)[0] == pytest.approx(4.0)  # 50% off


def test_bare_metal_h100_node_hour() -> None:
    shape = CAT.shape("BM.GPU.H100.8")
    gpu = node_pool_meters(CAT, shape, 1, preemptible=False, boot_volume_gb=200)[0]
    assert meter_usd(CAT, gpu, HOUR)[0] == pytest.approx(80.0)


def test_control_plane_basic_free_enhanced_ten_cents() -> None:
    assert _cost(cluster_meters("basic"), 5 * HOUR) == 0.0
    assert _cost(cluster_meters("enhanced"), 5 * HOUR) == pytest.approx(0.50)


def test_boot_volume_is_storage_plus_balanced_vpus() -> None:
    meters = node_pool_meters(
        CAT, CAT.shape("VM.GPU.A10.1"), 2, preemptible=False, boot_volume_gb=200
    )
    boot = meters[1:]
    month = 744 * HOUR
    # 400 GB × $0.0255 + 400 GB × 10 VPU × $0.0017 per month
    assert _cost(boot, month) == pytest.approx(400 * 0.0255 + 4000 * 0.0017)


def test_pvc_block_volume_storage_and_vpus() -> None:
    meters = volume_meters(CAT, 200, 20, item="cache")
    hours = 5
    expected = (200 * 0.0255 + 200 * 20 * 0.0017) * hours / 744
    assert _cost(meters, hours * HOUR) == pytest.approx(expected)
    lines = cost_lines(CAT, [BilledWindow("c", meters, 0, hours * HOUR)])
    assert [line.unit for line in lines] == ["GB-month", "VPU-GB-month"]


def test_block_volume_one_minute_minimum() -> None:
    meters = volume_meters(CAT, 744, 0, item="cache")
    # 744 GB for 1 s is billed as 60 s: 744 × 0.0255 × 60 / (744 × 3600)
    assert _cost(meters, 1.0) == pytest.approx(0.0255 * 60 / 3600)


def test_flexible_load_balancer_10_mbps_for_5_hours_costs_cents_not_6_25() -> None:
    usd = _cost(load_balancer_meters(10), 5 * HOUR)
    assert usd == pytest.approx(5 * (0.0113 + 10 * 0.0001))
    assert usd < 0.10  # correction C4: the source system charged $6.25


def test_object_storage_and_egress() -> None:
    assert _cost(object_storage_meters(15), 744 * HOUR) == pytest.approx(15 * 0.0255)
    assert egress_usd(CAT, 50).usd == 0.0  # inside the 10 TB free tier
    assert egress_usd(CAT, 10240 + 100).usd == pytest.approx(100 * 0.0085)


@pytest.mark.parametrize(
    ("worst", "budget", "threshold", "env", "yes", "tty", "action"),
    [
        (3.0, 10.0, 5.0, "dev", False, False, "proceed"),
        (12.0, 10.0, 5.0, "dev", True, True, "refuse"),  # --yes never overrides the budget
        (7.0, 10.0, 5.0, "dev", False, True, "confirm"),
        (7.0, 10.0, 5.0, "dev", True, False, "proceed"),
        (7.0, 10.0, 5.0, "dev", False, False, "refuse"),  # no TTY, no --yes
        (1.0, 10.0, 5.0, "production", False, True, "confirm"),
        (1.0, 10.0, 5.0, "production", False, False, "refuse"),
        (1.0, 10.0, 5.0, "production", True, False, "proceed"),
    ],
)
def test_guard_decisions(
    worst: float, budget: float, threshold: float, env: str, yes: bool, tty: bool, action: str
) -> None:
    decision = guard(
        worst_case_usd=worst,
        budget_usd=budget,
        confirm_above_usd=threshold,
        environment=env,
        yes=yes,
        interactive=tty,
    )
    assert decision.action == action
    assert decision.reason


def test_accrual_from_recorded_lifetimes() -> None:
    t0 = 1_000_000.0
    gpu = node_pool_meters(CAT, CAT.shape("VM.GPU.A10.1"), 1, preemptible=False, boot_volume_gb=200)
    usages = [
        ResourceUsage("pool", gpu, t0, t0 + 1800),  # deleted after 30 min
        ResourceUsage("lb", load_balancer_meters(10), t0, None),  # still running
    ]
    accrual = accrue(CAT, usages, now=t0 + 3600)
    gpu_usd = 2.0 * 0.5
    boot_usd = (200 * 0.0255 + 2000 * 0.0017) * 0.5 / 744
    lb_usd = 0.0113 + 0.001
    assert accrual.total_usd == pytest.approx(gpu_usd + boot_usd + lb_usd)
    assert accrual.running_usd_per_hour == pytest.approx(lb_usd)  # only the LB still bills
    assert accrual.per_resource["pool"] == pytest.approx(gpu_usd + boot_usd)


def test_volume_performance_changed_online_is_priced_per_level() -> None:
    t0 = 1_000_000.0
    meters = volume_meters(CAT, 100, 20, item="Cache")
    # at t0+1h the volume rests at Lower Cost (no VPU meter), at t0+3h it is raised to 120
    rested = rerated_volume_meters(meters, 0, t0 + HOUR)
    raised = rerated_volume_meters(rested, 120, t0 + 3 * HOUR)
    assert [(m.price_key, m.since, m.until) for m in raised] == [
        ("block.storage", None, None),
        ("block.vpu", None, t0 + HOUR),
        ("block.vpu", t0 + 3 * HOUR, None),
    ]
    accrual = accrue(CAT, [ResourceUsage("cache", raised, t0, None)], now=t0 + 4 * HOUR)
    month = CAT.hours_per_month
    storage = 100 * 0.0255 * 4 / month
    vpus = (100 * 20 * 0.0017 * 1 + 100 * 120 * 0.0017 * 1) / month
    assert accrual.total_usd == pytest.approx(storage + vpus)
    # what it costs per hour now: storage plus the 120-VPU level only
    assert accrual.running_usd_per_hour == pytest.approx((100 * 0.0255 + 12000 * 0.0017) / month)
    lines = {line.item: line.quantity for line in accrual.lines}
    assert set(lines) == {
        "Cache storage",
        "Cache performance (20 VPU/GB)",
        "Cache performance (120 VPU/GB)",
    }
