"""The run outcome: did the run succeed? — a separate question from validity.

Validity (:mod:`nimble_oke.bench.validity`) asks whether the *client* kept up, so that the
figures describe the server. The outcome asks whether the *server* answered: a run where
the endpoint died half-way ("32 ok · errors 168") has figures for 32 requests that are
valid measurements of almost nothing. Such a run is FAILED — with the error breakdown —
when more than ``max_error_rate`` of the requests sent failed (default 1 %,
``--max-error-rate``), or when none succeeded. The CLI exits with
:data:`FAILED_RUN_EXIT` for it, before considering validity.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from nimble_oke.bench.analysis import RequestTable
from nimble_oke.bench.records import ErrorKind

PASSED, FAILED = "PASSED", "FAILED"


def outcome(table: RequestTable, max_error_rate: float) -> dict[str, Any]:
    """The ``outcome`` object of every summary and export."""
    sent = ~np.isnan(table.send_ms)
    failed = (table.error != 0) & sent
    n_sent, n_failed = int(sent.sum()), int(failed.sum())
    rate = n_failed / n_sent if n_sent else 0.0
    by_type = Counter(ErrorKind(int(e)).label for e in table.error[failed])
    breakdown = ", ".join(f"{k} {n}" for k, n in sorted(by_type.items()))
    reasons: list[str] = []
    if n_sent == 0:
        reasons.append("no request was sent")
    elif n_failed == n_sent:
        reasons.append(f"all {n_sent} requests failed ({breakdown})")
    elif rate > max_error_rate:
        reasons.append(
            f"{n_failed} of {n_sent} requests failed ({rate:.1%} > --max-error-rate "
            f"{max_error_rate:.1%}): {breakdown}"
        )
    return {
        "status": FAILED if reasons else PASSED,
        "passed": not reasons,
        "error_rate": rate,
        "max_error_rate": max_error_rate,
        "reasons": reasons,
    }
