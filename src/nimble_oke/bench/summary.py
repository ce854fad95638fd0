"""``summarize(result)``: the run summary — AIPerf 0.13's metric objects plus nimble's own.

Every metric of the registry (:mod:`nimble_oke.bench.metrics`) appears under its key:
distributions as ``{"unit", "avg", "p1".."p99", "min", "max", "std", "count", "sum"}``
over the successful requests, run figures as ``{"unit", "avg"}`` (``goodput`` and
``good_request_count`` only with SLOs). Next to them: ``error_summary`` (AIPerf's shape),
and nimble's ``outcome`` (PASSED/FAILED on errors), ``validity`` (did the client keep
up), ``errors``, ``slo``, ``client``, ``steady_state``, ``confidence_intervals``,
``server``, ``cost``, ``warnings`` and ``config``. The throughput window (AIPerf's
``benchmark_duration``) runs from the first request sent to the last response received.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from nimble_oke.bench.analysis import RequestTable, analyze
from nimble_oke.bench.cost import usd_per_million_tokens
from nimble_oke.bench.metrics import DISTRIBUTIONS, METRICS, RunFacts
from nimble_oke.bench.outcome import outcome
from nimble_oke.bench.records import ErrorKind
from nimble_oke.bench.result import BenchResult
from nimble_oke.bench.slo import good_mask, slo_summary
from nimble_oke.bench.stats import bootstrap_ci, distribution, sample_warnings, steady_window
from nimble_oke.bench.validity import assess

SCHEMA_VERSION = "nimble-bench/2"
AIPERF_SCHEMA_VERSION = "1.4"  # the profile_export_aiperf.json schema of AIPerf 0.13


def window_s(table: RequestTable) -> float:
    """Seconds from the first send to the last response (0 when nothing was sent)."""
    sends = table.send_ms[~np.isnan(table.send_ms)]
    ends = table.end_ms[~np.isnan(table.end_ms)]
    if sends.size == 0 or ends.size == 0:
        return 0.0
    return max(0.0, float(ends.max() - sends.min()) / 1e3)


def metric_values(t: RequestTable, facts: RunFacts) -> dict[str, Any]:
    """Every registered metric's summary object (run metrics without a value omitted)."""
    out: dict[str, Any] = {}
    ok = t.ok
    for metric in METRICS:
        if metric.kind == "request":
            out[metric.key] = distribution(metric.per_request(t)[ok], metric.unit)
        elif metric.kind == "samples":
            values, rows = metric.samples(t)
            keep = ok[rows] if rows.size else np.zeros(0, dtype=bool)
            out[metric.key] = distribution(values[keep], metric.unit)
        else:
            value = metric.run_value(facts)
            if value is not None:
                out[metric.key] = {"unit": metric.unit, "avg": value}
    return out


def _failed(t: RequestTable) -> np.ndarray[Any, np.dtype[np.bool_]]:
    failed: np.ndarray[Any, np.dtype[np.bool_]] = (t.error != 0) & ~np.isnan(t.send_ms)
    return failed


def errors_summary(t: RequestTable) -> dict[str, Any]:
    """Error count, rate and breakdown by type, with one example message per type."""
    failed = _failed(t)
    by_type = Counter(ErrorKind(int(e)).label for e in t.error[failed])
    examples: dict[str, str] = {}
    for i in np.nonzero(failed)[0]:
        label = ErrorKind(int(t.error[i])).label
        if label not in examples and int(i) in t.messages:
            examples[label] = t.messages[int(i)]
    n_sent = int((~np.isnan(t.send_ms)).sum())
    return {
        "count": int(failed.sum()),
        "rate": float(failed.sum()) / n_sent if n_sent else 0.0,
        "by_type": dict(sorted(by_type.items())),
        "examples": examples,
    }


def error_summary(t: RequestTable, status: np.ndarray[Any, Any]) -> list[dict[str, Any]]:
    """AIPerf's ``error_summary``: ``[{"error_details": {code, type, message}, "count"}]``
    grouped by (HTTP status, error type)."""
    groups: dict[tuple[int | None, str], tuple[str, int]] = {}
    for i in np.nonzero(_failed(t))[0]:
        code = int(status[i]) or None
        key = (code, ErrorKind(int(t.error[i])).label)
        message, count = groups.get(key, (t.messages.get(int(i), ""), 0))
        groups[key] = (message, count + 1)
    return [
        {"error_details": {"code": code, "type": kind, "message": message}, "count": count}
        for (code, kind), (message, count) in groups.items()
    ]


def summarize(result: BenchResult, session_cost_usd: float | None = None) -> dict[str, Any]:
    """The run summary (what ``--output json`` prints and the JSON export contains)."""
    t = analyze(result)
    config = result.config
    win = window_s(t)
    good = int(good_mask(t, config.slo_ms).sum()) if config.slo_ms else None
    out: dict[str, Any] = {"schema": SCHEMA_VERSION, "schema_version": AIPERF_SCHEMA_VERSION}
    out.update(metric_values(t, RunFacts(t, win, good)))
    out["error_summary"] = error_summary(t, result.store.status)
    out["outcome"] = outcome(t, config.max_error_rate)
    out["validity"] = assess(result)
    out["errors"] = errors_summary(t)
    out["slo"] = slo_summary(t, config.slo_ms, win)
    out["client"] = {"connections": result.health.connections, "gc": result.health.gc}
    out["confidence_intervals"] = _intervals(t, config.seed)
    out["steady_state"] = _steady(t)
    flagged = int(t.token_count_flag.sum())
    out["token_accounting"] = {"source": t.token_source, "flagged_requests": flagged}
    out["server"] = dict(result.server)
    cost = session_cost_usd if session_cost_usd is not None else config.session_cost_usd
    total_osl = float(np.nansum(t.osl[t.ok]))
    out["cost"] = {
        "session_cost_usd": cost,
        "usd_per_million_output_tokens": (
            None if cost is None else usd_per_million_tokens(cost, total_osl)
        ),
    }
    out["warnings"] = _warnings(t, flagged)
    out["config"] = {
        **config.public_dict(),
        "model": result.model,
        "token_param": result.token_param,
        "request_extras": sorted(result.request_extras),
        "workers": result.workers,
        "window_s": win,
    }
    return out


def _intervals(t: RequestTable, seed: int) -> dict[str, Any]:
    out: dict[str, Any] = {"level": 0.95}
    for metric in DISTRIBUTIONS:
        if metric.diff:  # the headline latencies
            if metric.kind == "request":
                values = metric.per_request(t)[t.ok]
            else:
                samples, rows = metric.samples(t)
                values = samples[t.ok[rows]] if rows.size else samples
            out[metric.key] = bootstrap_ci(values, seed=seed)
    return out


def _warnings(t: RequestTable, flagged: int) -> list[str]:
    warnings: list[str] = []
    for name in ("time_to_first_token", "request_latency"):
        warnings.extend(sample_warnings(name, t.values(name)[t.ok]))
    if flagged:
        warnings.append(
            f"{flagged} requests: server token count disagrees with the chunk/word cross-check"
        )
    return warnings


def _steady(t: RequestTable) -> dict[str, Any]:
    """Figures over the steady-state window only (ramp-up and drain trimmed)."""
    if not t.ok.any():
        return {"window_ms": None, "request_count": 0}
    start, end = steady_window(t.send_ms, t.end_ms)
    inside = t.ok & (t.send_ms >= start) & (t.end_ms <= end)
    span_s = (end - start) / 1e3
    return {
        "window_ms": [start, end],
        "request_count": int(inside.sum()),
        "time_to_first_token": distribution(t.ttft_ms[inside], "ms"),
        "request_latency": distribution(t.e2e_ms[inside], "ms"),
        "output_token_throughput": {
            "unit": "tokens/sec",
            "avg": float(np.nansum(t.osl[inside])) / span_s if span_s > 0 else None,
        },
    }
