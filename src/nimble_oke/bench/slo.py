"""SLO goodput: the share of load that met every service-level objective.

``--slo ttft=200ms,itl=40ms`` → a request is *good* when its TTFT ≤ 200 ms and its mean
per-token ITL (= TPOT) ≤ 40 ms. Goodput = good requests (and their output tokens) per
second of the run window — GenAI-Perf's ``request_goodput`` with tokens added.
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


def goodput(table: RequestTable, slo_ms: dict[str, float], window_s: float) -> dict[str, Any]:
    """The ``goodput`` object: requests/s and tokens/s meeting every SLO."""
    if not slo_ms:
        return {"slo_ms": {}, "request_goodput": None, "token_goodput": None}
    good = good_mask(table, slo_ms)
    total = int(table.ok.size)
    n_good = int(good.sum())
    tokens = float(np.nansum(table.osl[good]))
    return {
        "slo_ms": dict(slo_ms),
        "request_goodput": {"unit": "requests/sec", "avg": n_good / window_s if window_s else 0.0},
        "token_goodput": {"unit": "tokens/sec", "avg": tokens / window_s if window_s else 0.0},
        "good_requests": n_good,
        "attainment": n_good / total if total else 0.0,
    }
