"""SLO goodput: the share of load that met every service-level objective.

``--slo ttft=200ms,itl=40ms`` → a request is *good* when its TTFT ≤ 200 ms and its mean
per-token ITL (= TPOT) ≤ 40 ms. Goodput = good requests per second of the run window
(AIPerf's ``goodput``, in the metric registry), and their output tokens per second.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from nimble_oke.bench.analysis import RequestTable

DEFAULT_ATTAINMENT = 0.9  # a load level "meets the SLO" when ≥ 90 % of requests are good


def slo_columns(table: RequestTable) -> dict[str, npt.NDArray[np.float64]]:
    """The per-request value each SLO metric is checked against (ms)."""
    return {
        "ttft": table.ttft_ms,
        "itl": table.tpot_ms,
        "tpot": table.tpot_ms,
        "e2e": table.e2e_ms,
    }


def good_mask(table: RequestTable, slo_ms: dict[str, float]) -> npt.NDArray[np.bool_]:
    """Requests that succeeded and met every SLO (a missing value, e.g. no TPOT for a
    one-token answer, does not fail that SLO)."""
    good = table.ok.copy()
    columns = slo_columns(table)
    for name, limit in slo_ms.items():
        values = columns[name]
        good &= np.isnan(values) | (values <= limit)
    return good


def slo_summary(table: RequestTable, slo_ms: dict[str, float], window_s: float) -> dict[str, Any]:
    """The ``slo`` object: what was asked, how many requests met it, and their tokens/s
    (the request rate of good requests is the registry's ``goodput`` metric)."""
    if not slo_ms:
        return {"slo_ms": {}, "good_requests": None, "attainment": None, "token_goodput": None}
    good = good_mask(table, slo_ms)
    total = int(table.ok.size)
    n_good = int(good.sum())
    tokens = float(np.nansum(table.osl[good]))
    return {
        "slo_ms": dict(slo_ms),
        "good_requests": n_good,
        "attainment": n_good / total if total else 0.0,
        "token_goodput": {"unit": "tokens/sec", "avg": tokens / window_s if window_s else 0.0},
    }
