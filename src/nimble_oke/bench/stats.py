"""Statistics: AIPerf-shaped distributions, bootstrap CIs, steady state, tests.

numpy only (no scipy): percentiles use numpy's default linear interpolation, the same as
AIPerf and GenAI-Perf, so figures are directly comparable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
PERCENTILES: tuple[int, ...] = (1, 5, 10, 25, 50, 75, 90, 95, 99)
MIN_SAMPLES_FOR_P99 = 100  # below this p99 is (nearly) the maximum: flagged
BOOTSTRAP_ROUNDS = 200
BOOTSTRAP_MAX_N = 5_000  # larger samples are subsampled for the CI (keeps the summary fast)


def clean(values: Any) -> F64:
    """A float array without NaNs."""
    arr = np.asarray(values, dtype=np.float64)
    return arr[~np.isnan(arr)]


STAT_KEYS: tuple[str, ...] = (
    "avg",
    *(f"p{p}" for p in PERCENTILES),
    "min",
    "max",
    "std",
    "count",
    "sum",
)  # AIPerf 0.13's order in profile_export_aiperf.json


def distribution(values: Any, unit: str) -> dict[str, Any]:
    """``{"unit", "avg", "p1".."p99", "min", "max", "std", "count", "sum"}`` — AIPerf 0.13's
    metric object (linear percentiles, population standard deviation).

    Empty input gives ``None`` statistics (JSON ``null``), ``count`` 0 and ``sum`` 0."""
    arr = clean(values)
    out: dict[str, Any] = {"unit": unit}
    if arr.size == 0:
        out.update({k: None for k in STAT_KEYS})
        out.update(count=0, sum=0.0)
        return out
    total = float(arr.sum())
    out["avg"] = total / arr.size
    for p, v in zip(PERCENTILES, np.percentile(arr, PERCENTILES), strict=True):
        out[f"p{p}"] = float(v)
    out["min"] = float(arr.min())
    out["max"] = float(arr.max())
    out["std"] = float(arr.std())
    out["count"] = int(arr.size)
    out["sum"] = total
    return out


def bootstrap_ci(
    values: Any,
    stats: Sequence[str] = ("avg", "p50", "p90", "p99"),
    level: float = 0.95,
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = 0,
) -> dict[str, list[float] | None]:
    """Percentile-bootstrap confidence intervals ``[low, high]`` for mean and percentiles."""
    arr = clean(values)
    if arr.size < 2:
        return {s: None for s in stats}
    rng = np.random.default_rng(seed)
    if arr.size > BOOTSTRAP_MAX_N:
        arr = rng.choice(arr, BOOTSTRAP_MAX_N, replace=False)
    samples = arr[rng.integers(0, arr.size, size=(rounds, arr.size))]
    alpha = (1 - level) / 2
    out: dict[str, list[float] | None] = {}
    for s in stats:
        if s == "avg":
            estimates = samples.mean(axis=1)
        else:
            estimates = np.percentile(samples, float(s[1:]), axis=1)
        low, high = np.quantile(estimates, [alpha, 1 - alpha])
        out[s] = [float(low), float(high)]
    return out


def sample_warnings(name: str, values: Any) -> list[str]:
    """A warning when a tail percentile rests on too few samples."""
    n = clean(values).size
    if 0 < n < MIN_SAMPLES_FOR_P99:
        return [f"{name}: p99 from only {n} samples (< {MIN_SAMPLES_FOR_P99}) is unreliable"]
    return []


def in_flight_curve(send_ms: F64, end_ms: F64) -> tuple[F64, F64]:
    """Step function of requests in flight: (times, count after each time)."""
    ok = ~(np.isnan(send_ms) | np.isnan(end_ms))
    starts, ends = send_ms[ok], end_ms[ok]
    times = np.concatenate((starts, ends))
    deltas = np.concatenate((np.ones(starts.size), -np.ones(ends.size)))
    order = np.argsort(times, kind="stable")
    return times[order], np.cumsum(deltas[order])


def steady_window(send_ms: F64, end_ms: F64, fraction: float = 0.9) -> tuple[float, float]:
    """The steady-state window: from when the load first reaches ``fraction`` of its
    time-weighted median level until it last drops below it (ramp-up and drain trimmed)."""
    times, level = in_flight_curve(send_ms, end_ms)
    if times.size < 4:
        return (float(times[0]), float(times[-1])) if times.size else (0.0, 0.0)
    durations = np.diff(times)
    held = level[:-1]
    order = np.argsort(held)
    cum = np.cumsum(durations[order])
    median = float(held[order][np.searchsorted(cum, cum[-1] / 2)]) if cum[-1] > 0 else 0.0
    threshold = max(1.0, fraction * median)
    above = np.nonzero(level >= threshold)[0]
    if above.size == 0:
        return float(times[0]), float(times[-1])
    start = float(times[above[0]])
    end = float(times[min(above[-1] + 1, times.size - 1)])
    return start, end


def variation(values: Sequence[float]) -> dict[str, float | None]:
    """Between-run variation of one figure over repeats: mean, sd, coefficient of variation."""
    arr = clean(list(values))
    if arr.size == 0:
        return {"mean": None, "sd": None, "cv": None, "n": 0}
    mean = float(arr.mean())
    sd = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return {"mean": mean, "sd": sd, "cv": sd / mean if mean else None, "n": int(arr.size)}


def mann_whitney_u(a: Any, b: Any) -> tuple[float, float]:
    """Two-sided Mann–Whitney U test (normal approximation with tie correction).

    Returns (U for ``a``, p-value). Adequate for the sample sizes a benchmark produces
    (tens to thousands of requests)."""
    x, y = clean(a), clean(b)
    n1, n2 = x.size, y.size
    if n1 == 0 or n2 == 0:
        return float("nan"), 1.0
    both = np.concatenate((x, y))
    ranks = _rankdata(both)
    u1 = float(ranks[:n1].sum() - n1 * (n1 + 1) / 2)
    mu = n1 * n2 / 2
    _, counts = np.unique(both, return_counts=True)
    n = n1 + n2
    tie = float((counts**3 - counts).sum()) / (n * (n - 1)) if n > 1 else 0.0
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - tie))
    if sigma == 0:
        return u1, 1.0
    z = (abs(u1 - mu) - 0.5) / sigma
    p = math.erfc(max(z, 0.0) / math.sqrt(2))
    return u1, min(1.0, p)


def _rankdata(values: F64) -> F64:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(values.size, dtype=np.float64)
    sorted_vals = values[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_vals, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    return ranks


def bootstrap_diff_ci(
    a: Any, b: Any, stat: str = "p50", *, rounds: int = 500, seed: int = 0, level: float = 0.95
) -> tuple[float, list[float]]:
    """Difference ``stat(b) − stat(a)`` with a bootstrap confidence interval."""
    x, y = clean(a), clean(b)
    rng = np.random.default_rng(seed)

    def est(arr: F64, axis: int | None = None) -> Any:
        if stat == "avg":
            return arr.mean(axis=axis)
        return np.percentile(arr, float(stat[1:]), axis=axis)

    x = x if x.size <= BOOTSTRAP_MAX_N else rng.choice(x, BOOTSTRAP_MAX_N, replace=False)
    y = y if y.size <= BOOTSTRAP_MAX_N else rng.choice(y, BOOTSTRAP_MAX_N, replace=False)
    diff = float(est(y) - est(x))
    bx = est(x[rng.integers(0, x.size, size=(rounds, x.size))], axis=1)
    by = est(y[rng.integers(0, y.size, size=(rounds, y.size))], axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(by - bx, [alpha, 1 - alpha])
    return diff, [float(low), float(high)]
