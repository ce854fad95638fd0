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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nimble_oke.catalog import load_catalog
from nimble_oke.domain.cost import Accrual, accrue
from nimble_oke.errors import BudgetError
from nimble_oke.services.lifecycle import bench_line, down, up
from nimble_oke.services.planning import PlannedSession, plan_session
from nimble_oke.services.targets import sim_target
from nimble_oke.state.store import StateStore

if TYPE_CHECKING:
    from nimble_oke.domain.config import NimbleConfig
    from nimble_oke.domain.plan import Plan
    from nimble_oke.services.lifecycle import DownResult, UpResult
    from nimble_oke.services.targets import Target
    from nimble_oke.sim.stack import SimStack

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
    started = time.perf_counter()
    say = echo or (lambda _line: None)
    say("nimble demo — the whole lifecycle on the local simulator (no cloud account, $0 spent)")
    planned = plan_session(None, DEMO_FLAGS, yes=True, env={})
    _narrate_plan(planned, say)

    def indent(message: str) -> None:
        say("  " + message)

    run = _run_on_simulator(
        planned.config, planned.plan, indent, time_scale=time_scale, home=home, bench=bench
    )
    wall = time.perf_counter() - started
    say(
        f"{'done' if run.ok else 'FAILED'} in {wall:.1f}s — "
        + (
            "nothing left running, $0 spent (checked against the simulators' inventories)"
            if run.ok
            else (run.result.error or "resources left behind")
        )
    )
    return _summary(run, planned.plan, wall)


def _narrate_plan(planned: PlannedSession, say: Callable[[str], None]) -> None:
    """The plan's two lines; a session the budget guard would not let through stops here."""
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


@dataclass(frozen=True)
class _DemoRun:
    """What the lifecycle did on the simulated stack, read before the stack stops."""

    result: UpResult
    teardown: DownResult
    accrued: Accrual
    accrued_at_ready_usd: float
    billed_before_down_usd: float
    leftovers: dict[str, int]

    @property
    def leaked(self) -> int:
        return sum(self.leftovers.values())

    @property
    def ready_s(self) -> float | None:
        """Simulated seconds from ``up`` starting to the endpoint being ready."""
        result = self.result
        if result.ok and result.ready_at and result.started_at:
            return result.ready_at - result.started_at
        return None

    @property
    def ok(self) -> bool:
        return bool(self.result.ok and self.leaked == 0 and not self.teardown.teardown.failed)


def _run_on_simulator(
    cfg: NimbleConfig,
    plan: Plan,
    indent: Callable[[str], None],
    *,
    time_scale: float | None,
    home: Path | None,
    bench: bool,
) -> _DemoRun:
    """A private simulated stack in a temporary directory, gone when the demo ends."""
    from nimble_oke.services.sim_tools import product_stack

    with tempfile.TemporaryDirectory(prefix="nimble-demo-") as tmp:
        state = Path(tmp)
        with product_stack(state / "sim", time_scale=time_scale, seed=7) as stack:
            target = sim_target(cfg, stack.endpoints(), {})
            with (
                contextlib.closing(target.provider),
                StateStore(home or state / "home", now=stack.clock.wall) as store,
            ):
                return _up_and_down(cfg, plan, target, store, stack, indent, bench=bench)


def _up_and_down(
    cfg: NimbleConfig,
    plan: Plan,
    target: Target,
    store: StateStore,
    stack: SimStack,
    indent: Callable[[str], None],
    *,
    bench: bool,
) -> _DemoRun:
    """Exactly what ``nimble up`` and ``nimble down`` run, then the simulators' inventory:
    "nothing left running" is measured, not assumed."""
    sim_started = stack.clock.now()
    result = up(cfg, plan, target, store, say=indent, bench=bench)
    if result.ok and result.ready_at and result.started_at:
        indent(
            f"simulated   ready after {_minutes(result.ready_at - result.started_at)} "
            f"of cloud time (plan: {_minutes(plan.time_to_ready_s)})"
        )
    billed_before_down = _billed(stack)
    accrued_at_ready = _accrued(store, cfg.session_name).total_usd
    teardown = down(cfg.session_name, cfg, target, store, say=lambda _m: None)
    accrued = _accrued(store, cfg.session_name)
    indent(
        f"cost        accrued ${accrued.total_usd:.2f} over "
        f"{_minutes(stack.clock.now() - sim_started)} simulated · "
        + " · ".join(f"{k} ${v:.3f}" for k, v in _by_category(accrued.lines).items())
    )
    run = _DemoRun(
        result, teardown, accrued, accrued_at_ready, billed_before_down, stack.leftovers()
    )
    indent(
        f"down        {len(teardown.teardown.removed)} resources deleted · "
        f"{run.leaked} left {'✓' if run.leaked == 0 else '✗ ' + str(run.leftovers)}"
    )
    return run


def _accrued(store: StateStore, session: str) -> Accrual:
    """The session's cost so far, from the lifetimes the state store recorded."""
    usages = [r.usage() for r in store.resources(session)]
    return accrue(load_catalog(), usages, store.now())


def _summary(run: _DemoRun, plan: Plan, wall: float) -> dict[str, Any]:
    """The demo's result as ``nimble demo --output json`` prints it."""
    result = run.result
    checks = (result.smoke or {}).get("checks", [])
    ready_s = run.ready_s
    return {
        "ok": run.ok,
        "phases": result.phases,
        "placement": result.placement,
        "endpoint": result.endpoint,
        "smoke": {
            "passed": sum(1 for c in checks if c.get("passed")),
            "failed": sum(1 for c in checks if not c.get("passed") and not c.get("skipped")),
            "skipped": sum(1 for c in checks if c.get("skipped")),
        },
        "bench": result.bench,
        "bench_line": bench_line(result.bench) if result.bench else None,
        "cost": {
            "estimated_usd": round(plan.total_usd, 4),
            "accrued_usd": round(run.accrued.total_usd, 4),
            "accrued_at_ready_usd": round(run.accrued_at_ready_usd, 4),
            "simulator_billed_usd_before_down": round(run.billed_before_down_usd, 4),
            "spent_usd": 0.0,
        },
        "ready_s": None if ready_s is None else round(ready_s, 1),
        "plan_ready_s": round(plan.time_to_ready_s, 1),
        "leaked_resources": run.leaked,
        "leftovers": run.leftovers,
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
