"""The validity gate: did the client keep up, or is it reporting its own saturation?

Peers print latency even when their own CPU was the bottleneck (GuideLLM reported TTFT
854 ms against 69 ms at the server under Poisson 150 req/s, reference/bench.md). Here a
run is marked INVALID, with the reason, when any of these thresholds is crossed:

=============================  ==========  ==================================================
measurement                    INVALID if  why
=============================  ==========  ==================================================
event-loop lag p99             > 10 ms     every timestamp is taken on the loop: lag adds to
                                           TTFT/ITL directly (10 ms ≈ one ITL of a fast model)
client CPU / wall time         > 0.95      one process = one core: at 95 % work queues behind
                                           work and timestamps are taken late
send lag p99 (open loop)       > 10 ms     requests left later than the schedule said
achieved / scheduled rate      < 0.90      the offered load was not the one asked for
achieved / target concurrency  < 0.80      closed loop could not keep its workers busy
=============================  ==========  ==================================================

Softer signs (CPU > 0.80, loop-lag max > 50 ms, the in-flight cap reached) are warnings.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nimble_oke.bench.analysis import RequestTable, analyze
from nimble_oke.bench.result import BenchResult
from nimble_oke.bench.stats import in_flight_curve

LOOP_LAG_P99_MAX_MS = 10.0
LOOP_LAG_MAX_WARN_MS = 50.0
CPU_FRACTION_MAX = 0.95
CPU_FRACTION_WARN = 0.80
SEND_LAG_P99_MAX_MS = 10.0
RATE_RATIO_MIN = 0.90
CONCURRENCY_RATIO_MIN = 0.80

THRESHOLDS = {
    "loop_lag_p99_ms_max": LOOP_LAG_P99_MAX_MS,
    "client_cpu_fraction_max": CPU_FRACTION_MAX,
    "send_lag_p99_ms_max": SEND_LAG_P99_MAX_MS,
    "rate_ratio_min": RATE_RATIO_MIN,
    "concurrency_ratio_min": CONCURRENCY_RATIO_MIN,
}


def achieved_concurrency(table: RequestTable) -> float | None:
    """Time-weighted mean requests in flight between the first and the last send
    (before the final drain, which every closed-loop run has)."""
    sent = table.send_ms[~np.isnan(table.send_ms)]
    if sent.size < 2 or float(sent.max() - sent.min()) <= 0:
        return None
    lo, hi = float(sent.min()), float(sent.max())
    times, level = in_flight_curve(table.send_ms, table.end_ms)
    clipped = np.clip(times, lo, hi)
    area = float((np.diff(clipped) * level[:-1]).sum())
    return area / (hi - lo)


def assess(result: BenchResult) -> dict[str, Any]:
    """The ``validity`` object of every summary and export."""
    table = analyze(result)
    config = result.config
    health = result.health
    reasons: list[str] = []
    warnings: list[str] = []
    lags_ms = health.loop_lag_ns / 1e6
    lag_p99 = float(np.percentile(lags_ms, 99)) if lags_ms.size else 0.0
    lag_max = float(lags_ms.max()) if lags_ms.size else 0.0
    cpu_fraction = health.cpu_s / health.wall_s if health.wall_s > 0 else 0.0
    # Merged in-cluster results sum CPU over workers: compare per worker.
    cpu_fraction /= max(1, result.workers)
    sent = int((~np.isnan(table.send_ms)).sum())
    measures: dict[str, Any] = {
        "loop_lag_p99_ms": lag_p99,
        "loop_lag_max_ms": lag_max,
        "client_cpu_fraction": cpu_fraction,
        "client_cpu_ms_per_request": health.cpu_s * 1e3 / sent if sent else None,
    }
    if lag_p99 > LOOP_LAG_P99_MAX_MS:
        reasons.append(
            f"event-loop lag p99 {lag_p99:.1f} ms > {LOOP_LAG_P99_MAX_MS:g} ms: "
            "client timestamps are late by up to that much"
        )
    elif lag_max > LOOP_LAG_MAX_WARN_MS:
        warnings.append(f"event-loop stalled once for {lag_max:.0f} ms")
    if cpu_fraction > CPU_FRACTION_MAX:
        reasons.append(
            f"client CPU {cpu_fraction:.0%} of one core > {CPU_FRACTION_MAX:.0%}: "
            "the client, not the server, limited this run"
        )
    elif cpu_fraction > CPU_FRACTION_WARN:
        warnings.append(f"client CPU {cpu_fraction:.0%} of one core: close to saturation")

    _client_checks(result, measures, warnings)
    if config.rate is not None:
        _check_rate(table, config.rate, measures, reasons)
        if health.in_flight_waits:
            warnings.append(
                f"{health.in_flight_waits} sends waited for the in-flight cap "
                f"({config.max_in_flight}): latency from intended send includes it"
            )
    else:
        achieved = achieved_concurrency(table)
        target = config.concurrency  # a merged result carries the total
        measures["achieved_concurrency"] = achieved
        measures["target_concurrency"] = target
        if achieved is not None and sent > 2 * target and achieved < CONCURRENCY_RATIO_MIN * target:
            reasons.append(
                f"achieved concurrency {achieved:.1f} < {CONCURRENCY_RATIO_MIN:.0%} of "
                f"target {target}"
            )
    return {
        "valid": not reasons,
        "status": "VALID" if not reasons else "INVALID",
        "reasons": reasons,
        "warnings": warnings,
        "measurements": measures,
        "thresholds": THRESHOLDS,
    }


def _client_checks(result: BenchResult, measures: dict[str, Any], warnings: list[str]) -> None:
    """The collector's pauses and the connections opened while measuring."""
    gc = result.health.gc
    conns = result.health.connections
    if gc:
        measures["gc_collections"] = gc.get("collections", 0)
        measures["gc_pause_max_ms"] = gc.get("pause_max_ms", 0.0)
        if gc.get("pause_max_ms", 0.0) > LOOP_LAG_P99_MAX_MS:
            warnings.append(f"a garbage collection paused the client {gc['pause_max_ms']:.0f} ms")
    if conns:
        measures["connections_warmed"] = conns.get("warmed", 0)
        opened = conns.get("opened_during_run", 0)
        measures["connections_opened_during_run"] = opened
        if opened and conns.get("reuse", True) and result.config.rate is not None:
            warnings.append(
                f"{opened} connections were opened during the measured phase (their connect "
                "time is send lag): more in flight than the warm pool; raise --connections"
            )


def _check_rate(
    table: RequestTable, rate: float, measures: dict[str, Any], reasons: list[str]
) -> None:
    sent = ~np.isnan(table.send_ms)
    lag = (table.send_ms - table.intended_ms)[sent]
    lag_p99 = float(np.percentile(lag, 99)) if lag.size else 0.0
    measures["send_lag_p99_ms"] = lag_p99
    measures["target_rate"] = rate
    if lag_p99 > SEND_LAG_P99_MAX_MS:
        reasons.append(
            f"send lag p99 {lag_p99:.1f} ms > {SEND_LAG_P99_MAX_MS:g} ms: requests left "
            "later than scheduled"
        )
    intended = table.intended_ms[sent]
    sends = table.send_ms[sent]
    if sends.size >= 10:
        sched_span = float(intended.max() - intended.min())
        real_span = float(sends.max() - sends.min())
        scheduled_rate = (sends.size - 1) / (sched_span / 1e3) if sched_span > 0 else None
        achieved_rate = (sends.size - 1) / (real_span / 1e3) if real_span > 0 else None
        measures["scheduled_rate"] = scheduled_rate
        measures["achieved_rate"] = achieved_rate
        if scheduled_rate and achieved_rate and achieved_rate < RATE_RATIO_MIN * scheduled_rate:
            reasons.append(
                f"achieved rate {achieved_rate:.1f}/s < {RATE_RATIO_MIN:.0%} of the "
                f"scheduled {scheduled_rate:.1f}/s"
            )
