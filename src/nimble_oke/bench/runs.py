"""Runs made of runs: one run, sweeps, repeats, and the SLO capacity search."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nimble_oke.bench.analysis import analyze
from nimble_oke.bench.config import BenchConfig
from nimble_oke.bench.engine import Observer, new_session, run_async, run_sync
from nimble_oke.bench.result import BenchResult
from nimble_oke.bench.slo import DEFAULT_ATTAINMENT, good_mask
from nimble_oke.bench.stats import variation
from nimble_oke.bench.summary import summarize
from nimble_oke.bench.validity import assess

MAX_CAPACITY_STEPS = 8


def run(config: BenchConfig, *, observer: Observer | None = None) -> BenchResult:
    """Run one benchmark synchronously (its own event loop, uvloop where available)."""
    result: BenchResult = run_sync(lambda: run_async(config, observer=observer))
    return result


async def sweep_async(
    config: BenchConfig, levels: list[int], *, observer: Observer | None = None
) -> list[BenchResult]:
    """One run per concurrency level (closed loop), or per rate if ``config.rate`` is set
    (then ``levels`` are requests/s), all on one HTTP session."""
    async with new_session(config) as session:
        results = []
        for level in levels:
            step = (
                config.replace(concurrency=level)
                if config.rate is None
                else config.replace(rate=float(level))
            )
            results.append(await run_async(step, session, observer=observer))
        return results


async def repeats_async(
    config: BenchConfig, k: int, *, observer: Observer | None = None
) -> list[BenchResult]:
    """The same run ``k`` times with seeds ``seed, seed+1, …`` (between-run variation)."""
    async with new_session(config) as session:
        return [
            await run_async(config.replace(seed=config.seed + i), session, observer=observer)
            for i in range(k)
        ]


REPEAT_FIGURES = (
    ("time_to_first_token", "p50"),
    ("time_to_first_token", "p99"),
    ("inter_token_latency", "p50"),
    ("request_latency", "p50"),
    ("output_token_throughput", "avg"),
    ("request_throughput", "avg"),
)


def repeat_variation(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean, sd and CV across repeats of the headline figures."""
    out: dict[str, Any] = {"repeats": len(summaries)}
    for metric, stat in REPEAT_FIGURES:
        values = [s[metric][stat] for s in summaries if s[metric].get(stat) is not None]
        out[f"{metric}.{stat}"] = variation(values)
    return out


def meets_slo(result: BenchResult, attainment: float = DEFAULT_ATTAINMENT) -> bool:
    """The run is valid and at least ``attainment`` of its requests met every SLO."""
    table = analyze(result)
    if not assess(result)["valid"] or table.ok.size == 0:
        return False
    return float(good_mask(table, result.config.slo_ms).sum()) / table.ok.size >= attainment


@dataclass
class CapacityResult:
    """Highest load level meeting the SLO (``None`` if even the first level fails)."""

    mode: str
    capacity: float | None
    steps: list[dict[str, Any]] = field(default_factory=list)
    results: list[BenchResult] = field(default_factory=list)


async def find_capacity_async(
    config: BenchConfig,
    attainment: float = DEFAULT_ATTAINMENT,
    max_steps: int = MAX_CAPACITY_STEPS,
    *,
    observer: Observer | None = None,
) -> CapacityResult:
    """Double the load (concurrency, or rate when set) until the SLO fails, then bisect
    between the last passing and first failing level; at most ``max_steps`` runs."""
    if not config.slo_ms:
        raise ValueError("find_capacity needs an SLO (slo_ms)")
    rate_mode = config.rate is not None
    start = config.rate if rate_mode else float(config.concurrency)
    assert start is not None
    out = CapacityResult(mode="rate" if rate_mode else "concurrency", capacity=None)
    async with new_session(config) as session:

        async def probe(level: float) -> bool:
            step = (
                config.replace(rate=level)
                if rate_mode
                else config.replace(concurrency=max(1, round(level)))
            )
            result = await run_async(step, session, observer=observer)
            passed = meets_slo(result, attainment)
            summary = summarize(result)
            out.results.append(result)
            out.steps.append(
                {
                    "level": level,
                    "meets_slo": passed,
                    "attainment": summary["slo"].get("attainment"),
                    "valid": summary["validity"]["valid"],
                }
            )
            return passed

        low: float | None = None
        high: float | None = None
        level = start
        while len(out.steps) < max_steps:
            if await probe(level):
                low = level
                level = level * 2
            else:
                high = level
                break
        while low is not None and high is not None and len(out.steps) < max_steps:
            mid = (low + high) / 2 if rate_mode else float((int(low) + int(high)) // 2)
            if (not rate_mode and mid <= low) or (rate_mode and high - low < 0.05 * low):
                break
            if await probe(mid):
                low = mid
            else:
                high = mid
        out.capacity = low
    return out


def sweep(
    config: BenchConfig, levels: list[int], *, observer: Observer | None = None
) -> list[BenchResult]:
    """Synchronous :func:`sweep_async`."""
    results: list[BenchResult] = run_sync(lambda: sweep_async(config, levels, observer=observer))
    return results


def repeats(config: BenchConfig, k: int, *, observer: Observer | None = None) -> list[BenchResult]:
    """Synchronous :func:`repeats_async`."""
    results: list[BenchResult] = run_sync(lambda: repeats_async(config, k, observer=observer))
    return results


def find_capacity(
    config: BenchConfig,
    attainment: float = DEFAULT_ATTAINMENT,
    *,
    observer: Observer | None = None,
) -> CapacityResult:
    """Synchronous :func:`find_capacity_async`."""
    result: CapacityResult = run_sync(
        lambda: find_capacity_async(config, attainment, observer=observer)
    )
    return result


__all__ = [
    "CapacityResult",
    "find_capacity",
    "find_capacity_async",
    "meets_slo",
    "repeat_variation",
    "repeats",
    "repeats_async",
    "run",
    "sweep",
    "sweep_async",
]
