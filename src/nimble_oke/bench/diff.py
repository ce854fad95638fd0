"""``nimble bench diff A B``: which figures changed, and is the change significant?

With per-request records on both sides (``profile_export.jsonl``) each latency metric the
registry marks for comparison is tested with a two-sided Mann–Whitney U test and a
bootstrap CI of the p50 difference; a change is *significant* when p < ``alpha`` and the
CI excludes 0. Throughputs (one number per run) are only shown as relative change. Either
side may be nimble's export (current or ``nimble-bench/1``) or AIPerf 0.13's
(:mod:`nimble_oke.bench.loader`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nimble_oke.bench.loader import load_export
from nimble_oke.bench.metrics import DISTRIBUTIONS
from nimble_oke.bench.stats import bootstrap_diff_ci, mann_whitney_u

ALPHA = 0.01
SCALARS = ("output_token_throughput", "request_throughput")


def _values(records: list[dict[str, Any]], key: str) -> list[float]:
    out: list[float] = []
    for r in records:
        if not r["ok"]:
            continue
        v = r["values"].get(key)
        if isinstance(v, list):
            out.extend(float(x) for x in v if isinstance(x, int | float))
        elif isinstance(v, int | float) and not isinstance(v, bool):
            out.append(float(v))
    return out


def _p50(summary: dict[str, Any], key: str) -> Any:
    entry = summary.get(key)
    return entry.get("p50") if isinstance(entry, dict) else None


def _avg(summary: dict[str, Any], key: str) -> float | None:
    entry = summary.get(key)
    value = entry.get("avg") if isinstance(entry, dict) else None
    return float(value) if isinstance(value, int | float) else None


def _compare(xa: list[float], xb: list[float], alpha: float) -> dict[str, Any]:
    _, p = mann_whitney_u(xa, xb)
    delta, ci = bootstrap_diff_ci(xa, xb, "p50")
    return {
        "p50_delta_ms": delta,
        "p50_delta_ci95": ci,
        "mann_whitney_p": p,
        "significant": bool(p < alpha and (ci[0] > 0 or ci[1] < 0)),
    }


def diff_summaries(a: Path, b: Path, alpha: float = ALPHA) -> dict[str, Any]:
    """Compare two runs (export directories or JSON summary files)."""
    ea, eb = load_export(a), load_export(b)
    sa, sb = ea.summary, eb.summary
    metrics: dict[str, Any] = {}
    for metric in DISTRIBUTIONS:
        if not metric.diff:
            continue
        entry: dict[str, Any] = {"a_p50": _p50(sa, metric.key), "b_p50": _p50(sb, metric.key)}
        if ea.records is not None and eb.records is not None:
            xa, xb = _values(ea.records, metric.key), _values(eb.records, metric.key)
            if len(xa) >= 2 and len(xb) >= 2:
                entry.update(_compare(xa, xb, alpha))
        metrics[metric.key] = entry
    for key in SCALARS:
        va, vb = _avg(sa, key), _avg(sb, key)
        metrics[key] = {
            "a": va,
            "b": vb,
            "relative_change": (vb - va) / va if va and vb is not None else None,
        }
    both = ea.records is not None and eb.records is not None
    return {
        "a": str(a),
        "b": str(b),
        "alpha": alpha,
        "per_request_data": both,
        "a_valid": sa.get("validity", {}).get("valid"),
        "b_valid": sb.get("validity", {}).get("valid"),
        "metrics": metrics,
        "significant_changes": [k for k, v in metrics.items() if v.get("significant")],
    }
