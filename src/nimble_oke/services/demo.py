"""``nimble demo``: the main job on the embedded default (the ``sim`` target).

It runs every phase that exists in this version for real and says plainly which phases
are not built yet — it never reports a success it did not observe.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from nimble_oke.services.planning import plan_session

Echo = Callable[[str], None] | None


def run_demo(echo: Echo = print) -> dict[str, Any]:
    started = time.perf_counter()
    say = echo or (lambda _line: None)
    say("nimble demo — the lifecycle on the local simulator (no cloud account, $0 spent)")
    phases: list[dict[str, Any]] = []

    t0 = time.perf_counter()
    planned = plan_session(
        None,
        {
            "target": "sim",
            "gpu_pool.preemptible": True,
            "budget.max_hours": 1.0,
            "budget.max_usd": 5.0,
        },
        yes=True,
    )
    plan = planned.plan
    phases.append({"name": "plan", "seconds": round(time.perf_counter() - t0, 3)})
    say(
        f"  plan        {plan.shape.name} ×{planned.config.gpu_pool.nodes} preemptible · "
        f"{plan.model.name} {planned.config.nim.precision} · cache {planned.config.cache.mode} "
        f"{planned.config.cache.size_gb} GB"
    )
    say(
        f"              estimate ${plan.total_usd:.2f} for {plan.hours:g} h (worst case "
        f"${plan.worst_case_usd:.2f}) · budget ${planned.config.budget.max_usd:.2f} "
        f"{'✓' if planned.guard.action == 'proceed' else '✗'}"
    )
    not_built = ["provision", "deploy", "smoke", "bench", "down"]
    say(f"  not built yet in this version: {', '.join(not_built)} (nothing was created)")
    return {
        "ok": planned.guard.action == "proceed",
        "phases": phases,
        "not_built": not_built,
        "smoke": None,
        "bench": None,
        "cost": {"estimated_usd": round(plan.total_usd, 4), "accrued_usd": 0.0},
        "leaked_resources": 0,
        "wall_seconds": round(time.perf_counter() - started, 3),
    }
