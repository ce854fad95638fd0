"""The outcome of one benchmark run: raw measurements plus what the run observed about itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nimble_oke.bench.config import BenchConfig
from nimble_oke.bench.records import I64, RequestStore


@dataclass
class RunHealth:
    """Client-side health measured during the run (input to the validity gate)."""

    wall_s: float
    cpu_s: float
    loop_lag_ns: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    in_flight_waits: int = 0  # open loop: sends delayed because max_in_flight was reached
    gc: dict[str, Any] = field(default_factory=dict)  # QuietGC's collections and pauses
    connections: dict[str, Any] = field(default_factory=dict)  # warmed, opened during the run


@dataclass
class BenchResult:
    """Raw, mergeable data of one run. Derived metrics come from :func:`analysis.analyze`."""

    config: BenchConfig
    model: str
    token_param: str
    request_extras: dict[str, Any]
    store: RequestStore
    start_ns: int  # perf_counter_ns when the measured phase started
    stop_ns: int  # perf_counter_ns when the last request finished
    wall_offset_ns: int  # time.time_ns() - perf_counter_ns() at start (to merge workers)
    health: RunHealth
    server: dict[str, Any] = field(default_factory=dict)
    workers: int = 1
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def count(self) -> int:
        """Requests dispatched in the measured phase."""
        return self.store.count
