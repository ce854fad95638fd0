"""Open-loop arrival schedules, precomputed and seeded before the run starts.

Precomputing means the hot path only sleeps until the next intended send time; the
intended time is kept per request, so latency can be reported from it (no coordinated
omission: a late send shows up as latency instead of silently lowering the load).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from nimble_oke.bench.config import Arrival

NS_PER_S = 1_000_000_000


def inter_arrival_s(
    arrival: Arrival, rate: float, count: int, seed: int, gamma_shape: float = 0.5
) -> npt.NDArray[np.float64]:
    """``count`` gaps in seconds between consecutive sends with mean ``1/rate``.

    - constant: every gap is exactly ``1/rate``;
    - poisson: exponential gaps (coefficient of variation 1);
    - gamma: gamma gaps with ``shape`` k and scale ``1/(k*rate)`` — mean ``1/rate``,
      CV ``1/sqrt(k)``; k < 1 is burstier than Poisson (vLLM's "burstiness" knob).
    """
    if count <= 0:
        return np.zeros(0, dtype=np.float64)
    mean = 1.0 / rate
    rng = np.random.default_rng(seed)
    if arrival == "constant":
        return np.full(count, mean, dtype=np.float64)
    if arrival == "poisson":
        return rng.exponential(mean, size=count).astype(np.float64)
    return rng.gamma(gamma_shape, mean / gamma_shape, size=count).astype(np.float64)


def send_offsets_ns(
    arrival: Arrival,
    rate: float,
    count: int,
    seed: int,
    gamma_shape: float = 0.5,
) -> npt.NDArray[np.int64]:
    """Intended send times in ns after the start; the first request is sent at 0."""
    gaps = inter_arrival_s(arrival, rate, count, seed, gamma_shape)
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.concatenate(([0.0], np.cumsum(gaps[:-1])))
    return np.round(offsets * NS_PER_S).astype(np.int64)


def schedule_length(rate: float, requests: int | None, duration_s: float | None) -> int:
    """How many sends to precompute: the request bound, or enough for the duration."""
    if requests is not None and duration_s is None:
        return requests
    assert duration_s is not None
    # Enough arrivals to cover the duration with a wide margin; extra ones are never sent.
    by_time = int(rate * duration_s * 1.5) + 64
    return by_time if requests is None else min(requests, by_time)
