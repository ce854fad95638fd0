"""Benchmark engine: load generation, metrics, statistics, exports.

Public API::

    from nimble_oke.bench import BenchConfig, run, summarize, write_exports
    result = run(BenchConfig(endpoint="http://127.0.0.1:8000", concurrency=8, requests=200))
    print(summarize(result)["time_to_first_token"]["p50"])
"""

from __future__ import annotations

from nimble_oke.bench.analysis import RequestTable, analyze
from nimble_oke.bench.config import BenchConfig, parse_input_tokens, parse_slo
from nimble_oke.bench.cost import usd_per_million_at_throughput, usd_per_million_tokens
from nimble_oke.bench.diff import diff_summaries
from nimble_oke.bench.engine import run_async
from nimble_oke.bench.export import write_exports
from nimble_oke.bench.loader import load_export
from nimble_oke.bench.metrics import METRICS, Metric
from nimble_oke.bench.raw import load_raw, save_raw
from nimble_oke.bench.result import BenchResult
from nimble_oke.bench.runs import (
    CapacityResult,
    find_capacity,
    find_capacity_async,
    repeat_variation,
    repeats,
    repeats_async,
    run,
    sweep,
    sweep_async,
)
from nimble_oke.bench.shard import merge, shard
from nimble_oke.bench.summary import summarize
from nimble_oke.bench.validity import assess

__all__ = [
    "METRICS",
    "BenchConfig",
    "BenchResult",
    "CapacityResult",
    "Metric",
    "RequestTable",
    "analyze",
    "assess",
    "diff_summaries",
    "find_capacity",
    "find_capacity_async",
    "load_export",
    "load_raw",
    "merge",
    "parse_input_tokens",
    "parse_slo",
    "repeat_variation",
    "repeats",
    "repeats_async",
    "run",
    "run_async",
    "save_raw",
    "shard",
    "summarize",
    "sweep",
    "sweep_async",
    "usd_per_million_at_throughput",
    "usd_per_million_tokens",
    "write_exports",
]
