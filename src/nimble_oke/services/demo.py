"""``nimble demo``: the whole lifecycle on the embedded default (the ``sim`` target).

A private simulated stack (OCI API + Kubernetes + NIM emulator, joined, on the event
clock: provisioning is jumped over, smoke tests and the benchmark run at real speed;
``time_scale`` runs it on a scaled clock instead) is started in a temporary directory; the demo then runs exactly what ``nimble up``
and ``nimble down`` run — plan, budget guard, preflight, provision, deploy, wait, smoke,
benchmark, cost, teardown — and finally *checks* the simulators' inventories: "nothing
left running" is a measurement, not a message. Simulated money is never spent.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nimble_oke.catalog import load_catalog
from nimble_oke.domain.cost import accrue
from nimble_oke.errors import BudgetError
from nimble_oke.services.lifecycle import bench_line, down, up
from nimble_oke.services.planning import plan_session
from nimble_oke.services.targets import sim_target
from nimble_oke.state.store import StateStore

Echo = Callable[[str], None] | None

DEMO_FLAGS: dict[str, object] = {
    "target": "sim",
    "cluster.name": "demo",
    "gpu_pool.preemptible": True,
    "budget.max_hours": 2.0,
    "budget.max_usd": 5.0,
    "bench.concurrency": 8,
    "bench.requests": 32,
    "bench.warmup": 2,
    "bench.input_tokens": 128,
    "bench.output_tokens": 48,
}


def run_demo(
    echo: Echo = print,
    *,
    time_scale: float | None = None,
    home: Path | None = None,
    bench: bool = True,
) -> dict[str, Any]:
    from nimble_oke.services.sim_tools import product_stack

    started = time.perf_counter()
    say = echo or (lambda _line: None)
    say("nimble demo — the whole lifecycle on the local simulator (no cloud account, $0 spent)")
    planned = plan_session(None, DEMO_FLAGS, yes=True, env={})
    cfg, plan = planned.config, planned.plan
    say(
        f"  plan        {plan.shape.name} ×{cfg.gpu_pool.nodes} preemptible · {plan.model.name} "
        f"{cfg.nim.precision} · cache {cfg.cache.mode} {cfg.cache.size_gb} GB"
    )
    say(
        f"              estimate ${plan.total_usd:.2f} for {plan.hours:g} h (worst case "
        f"${plan.worst_case_usd:.2f}) · budget ${cfg.budget.max_usd:.2f} "
        f"{'✓' if planned.guard.action == 'proceed' else '✗'}"
    )
    if planned.guard.action != "proceed":
        raise BudgetError(f"budget guard: {planned.guard.reason}")

    def indent(message: str) -> None:
        say("  " + message)

    with tempfile.TemporaryDirectory(prefix="nimble-demo-") as tmp:
        state = Path(tmp)
        with product_stack(state / "sim", time_scale=time_scale, seed=7) as stack:
            target = sim_target(cfg, stack.endpoints(), {})
            store_home = home or state / "home"
            with (
                contextlib.closing(target.provider),
                StateStore(store_home, now=stack.clock.wall) as store,
            ):
                sim_started = stack.clock.now()
                result = up(cfg, plan, target, store, say=indent, bench=bench)
                ready_s = None
                if result.ok and result.ready_at and result.started_at:
                    ready_s = result.ready_at - result.started_at
                    indent(
                        f"simulated   ready after {_minutes(result.ready_at - result.started_at)} "
                        f"of cloud time (plan: {_minutes(plan.time_to_ready_s)})"
                    )
                billing_before_down = _billed(stack)
                accrued_at_ready = accrue(
                    load_catalog(),
                    [r.usage() for r in store.resources(cfg.session_name)],
                    store.now(),
                ).total_usd
                teardown = down(cfg.session_name, cfg, target, store, say=lambda _m: None)
                accrued = accrue(
                    load_catalog(),
                    [r.usage() for r in store.resources(cfg.session_name)],
                    store.now(),
                )
                indent(
                    f"cost        accrued ${accrued.total_usd:.2f} over "
                    f"{_minutes(stack.clock.now() - sim_started)} simulated · "
                    + " · ".join(f"{k} ${v:.3f}" for k, v in _by_category(accrued.lines).items())
                )
                leftovers = stack.leftovers()
                leaked = sum(leftovers.values())
                indent(
                    f"down        {len(teardown.teardown.removed)} resources deleted · "
                    f"{leaked} left {'✓' if leaked == 0 else '✗ ' + str(leftovers)}"
                )
    wall = time.perf_counter() - started
    ok = bool(result.ok and leaked == 0 and not teardown.teardown.failed)
    say(
        f"{'done' if ok else 'FAILED'} in {wall:.1f}s — "
        + (
            "nothing left running, $0 spent (checked against the simulators' inventories)"
            if ok
            else (result.error or "resources left behind")
        )
    )
    smoke = result.smoke or {}
    checks = smoke.get("checks", [])
    return {
        "ok": ok,
        "phases": result.phases,
        "placement": result.placement,
        "endpoint": result.endpoint,
        "smoke": {
            "passed": sum(1 for c in checks if c.get("passed")),
            "failed": sum(1 for c in checks if not c.get("passed")),
        },
        "bench": result.bench,
        "bench_line": bench_line(result.bench) if result.bench else None,
        "cost": {
            "estimated_usd": round(plan.total_usd, 4),
            "accrued_usd": round(accrued.total_usd, 4),
            "accrued_at_ready_usd": round(accrued_at_ready, 4),
            "simulator_billed_usd_before_down": round(billing_before_down, 4),
            "spent_usd": 0.0,
        },
        "ready_s": None if ready_s is None else round(ready_s, 1),
        "plan_ready_s": round(plan.time_to_ready_s, 1),
        "leaked_resources": leaked,
        "leftovers": leftovers,
        "error": result.error,
        "wall_seconds": round(wall, 3),
    }


def _by_category(lines: list[Any]) -> dict[str, float]:
    names = {"gpu": "GPU", "block": "volumes", "lb": "LB", "oke": "control plane"}
    out: dict[str, float] = {}
    for line in lines:
        name = names.get(line.price_key.split(".")[0], "other")
        out[name] = out.get(name, 0.0) + line.usd
    return out


def _minutes(seconds: float) -> str:
    minutes, sec = divmod(round(seconds), 60)
    return f"{minutes}m{sec:02d}s"


def _billed(stack: Any) -> float:
    """What the simulated cloud's meter says so far, priced with the catalog."""
    from nimble_oke.sim.oci.billing import priced_usd

    return priced_usd(stack.oci.billing())[0]
