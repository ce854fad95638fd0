"""``summarize(result)``: the run summary with GenAI-Perf's field names and shapes.

Distributions are ``{"unit", "avg", "min", "max", "p1" … "p99", "std"}`` over successful
requests; throughputs are ``{"unit", "avg"}``. Throughput window (GenAI-Perf's): from the
first request sent to the last response received.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from nimble_oke.bench.analysis import RequestTable, analyze
from nimble_oke.bench.cost import usd_per_million_tokens
from nimble_oke.bench.records import ErrorKind
from nimble_oke.bench.result import BenchResult
from nimble_oke.bench.slo import goodput
from nimble_oke.bench.stats import bootstrap_ci, distribution, sample_warnings, steady_window
from nimble_oke.bench.validity import assess

SCHEMA_VERSION = "nimble-bench/1"


def window_s(table: RequestTable) -> float:
    """Seconds from the first send to the last response (0 when nothing was sent)."""
    sends = table.send_ms[~np.isnan(table.send_ms)]
    ends = table.end_ms[~np.isnan(table.end_ms)]
    if sends.size == 0 or ends.size == 0:
        return 0.0
    return max(0.0, float(ends.max() - sends.min()) / 1e3)


def _distributions(t: RequestTable, ok: np.ndarray[Any, Any]) -> dict[str, Any]:
    itl_ok = ok[t.itl_request] if t.itl_request.size else np.zeros(0, dtype=bool)
    return {
        "time_to_first_token": distribution(t.ttft_ms[ok], "ms"),
        "time_to_second_token": distribution(t.ttst_ms[ok], "ms"),
        "inter_token_latency": distribution(t.itl_ms[itl_ok], "ms"),
        "time_per_output_token": distribution(t.tpot_ms[ok], "ms"),
        "request_latency": distribution(t.e2e_ms[ok], "ms"),
        "output_sequence_length": distribution(t.osl[ok], "tokens"),
        "input_sequence_length": distribution(t.isl[ok], "tokens"),
        "output_token_throughput_per_user": distribution(t.per_user_tps[ok], "tokens/sec/user"),
        "time_to_first_byte": distribution(t.ttfb_ms[ok], "ms"),
        "time_to_first_token_from_intended_send": distribution(t.ttft_intended_ms[ok], "ms"),
        "request_latency_from_intended_send": distribution(t.e2e_intended_ms[ok], "ms"),
    }


def errors_summary(t: RequestTable) -> dict[str, Any]:
    """Error count, rate and breakdown by type, with one example message per type."""
    sent = ~np.isnan(t.send_ms)
    failed = (t.error != 0) & sent
    by_type = Counter(ErrorKind(int(e)).label for e in t.error[failed])
    examples: dict[str, str] = {}
    for i in np.nonzero(failed)[0]:
        label = ErrorKind(int(t.error[i])).label
        if label not in examples and int(i) in t.messages:
            examples[label] = t.messages[int(i)]
    n_sent = int(sent.sum())
    return {
        "count": int(failed.sum()),
        "rate": float(failed.sum()) / n_sent if n_sent else 0.0,
        "by_type": dict(sorted(by_type.items())),
        "examples": examples,
    }


def summarize(result: BenchResult, session_cost_usd: float | None = None) -> dict[str, Any]:
    """The run summary (what ``--output json`` prints and the JSON export contains)."""
    t = analyze(result)
    ok = t.ok
    win = window_s(t)
    n_ok = int(ok.sum())
    total_osl = float(np.nansum(t.osl[ok]))
    out: dict[str, Any] = {"schema": SCHEMA_VERSION}
    out.update(_distributions(t, ok))
    out["request_throughput"] = {"unit": "requests/sec", "avg": n_ok / win if win else 0.0}
    out["output_token_throughput"] = {"unit": "tokens/sec", "avg": total_osl / win if win else 0.0}
    out["request_count"] = {"unit": "count", "avg": n_ok}
    out["errors"] = errors_summary(t)
    out["confidence_intervals"] = {
        "level": 0.95,
        "time_to_first_token": bootstrap_ci(t.ttft_ms[ok], seed=result.config.seed),
        "inter_token_latency": bootstrap_ci(
            t.itl_ms[ok[t.itl_request]] if t.itl_ms.size else t.itl_ms, seed=result.config.seed
        ),
        "request_latency": bootstrap_ci(t.e2e_ms[ok], seed=result.config.seed),
    }
    out["steady_state"] = _steady(t)
    warnings: list[str] = []
    for name, values in (("time_to_first_token", t.ttft_ms[ok]), ("request_latency", t.e2e_ms[ok])):
        warnings.extend(sample_warnings(name, values))
    flagged = int(t.token_count_flag.sum())
    if flagged:
        warnings.append(
            f"{flagged} requests: server token count disagrees with the chunk/word cross-check"
        )
    out["token_accounting"] = {"source": t.token_source, "flagged_requests": flagged}
    out["validity"] = assess(result)
    out["goodput"] = goodput(t, result.config.slo_ms, win)
    out["server"] = dict(result.server)
    cost = session_cost_usd if session_cost_usd is not None else result.config.session_cost_usd
    out["cost"] = {
        "session_cost_usd": cost,
        "usd_per_million_output_tokens": (
            None if cost is None else usd_per_million_tokens(cost, total_osl)
        ),
    }
    out["warnings"] = warnings
    out["config"] = {
        **result.config.public_dict(),
        "model": result.model,
        "token_param": result.token_param,
        "request_extras": sorted(result.request_extras),
        "workers": result.workers,
        "window_s": win,
    }
    return out


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
