"""``nimble bench diff A B``: which figures changed, and is the change significant?

With per-request records on both sides (``profile_export.jsonl``) each latency metric is
compared with a two-sided Mann–Whitney U test and a bootstrap CI of the p50 difference;
a change is *significant* when p < ``alpha`` and the CI excludes 0. Throughputs (one
number per run) are only shown as relative change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nimble_oke.bench.export import load_summary
from nimble_oke.bench.stats import bootstrap_diff_ci, mann_whitney_u

ALPHA = 0.01
METRICS = (
    ("time_to_first_token", "time_to_first_token_ms"),
    ("inter_token_latency", "inter_token_latencies_ms"),
    ("request_latency", "request_latency_ms"),
    ("time_per_output_token", "time_per_output_token_ms"),
)
SCALARS = ("output_token_throughput", "request_throughput")


def _values(records: list[dict[str, Any]], field: str) -> list[float]:
    out: list[float] = []
    for r in records:
        if not r.get("ok"):
            continue
        v = r.get(field)
        if isinstance(v, list):
            out.extend(float(x) for x in v)
        elif v is not None:
            out.append(float(v))
    return out


def diff_summaries(a: Path, b: Path, alpha: float = ALPHA) -> dict[str, Any]:
    """Compare two runs (export directories or JSON summary files)."""
    sa, ra = load_summary(a)
    sb, rb = load_summary(b)
    metrics: dict[str, Any] = {}
    for key, field in METRICS:
        entry: dict[str, Any] = {
            "a_p50": sa.get(key, {}).get("p50"),
            "b_p50": sb.get(key, {}).get("p50"),
        }
        if ra is not None and rb is not None:
            xa, xb = _values(ra, field), _values(rb, field)
            if len(xa) >= 2 and len(xb) >= 2:
                _, p = mann_whitney_u(xa, xb)
                delta, ci = bootstrap_diff_ci(xa, xb, "p50")
                entry.update(
                    {
                        "p50_delta_ms": delta,
                        "p50_delta_ci95": ci,
                        "mann_whitney_p": p,
                        "significant": bool(p < alpha and (ci[0] > 0 or ci[1] < 0)),
                    }
                )
        metrics[key] = entry
    for key in SCALARS:
        va, vb = sa[key]["avg"], sb[key]["avg"]
        metrics[key] = {
            "a": va,
            "b": vb,
            "relative_change": (vb - va) / va if va else None,
        }
    return {
        "a": str(a),
        "b": str(b),
        "alpha": alpha,
        "per_request_data": ra is not None and rb is not None,
        "a_valid": sa.get("validity", {}).get("valid"),
        "b_valid": sb.get("validity", {}).get("valid"),
        "metrics": metrics,
        "significant_changes": [k for k, v in metrics.items() if v.get("significant")],
    }
