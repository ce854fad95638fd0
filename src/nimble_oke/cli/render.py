"""Rich renderings shared by commands (tables for plans, costs, sessions)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from nimble_oke.domain.cost import CostLine, GuardDecision
    from nimble_oke.domain.plan import Plan


def console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def fmt_duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, sec = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def cost_table(title: str, lines: list[CostLine]) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False)
    table.add_column("item")
    table.add_column("quantity", justify="right")
    table.add_column("unit")
    table.add_column("USD", justify="right")
    for line in lines:
        table.add_row(line.item, f"{line.quantity:,.3f}", line.unit, f"{line.usd:,.4f}")
    return table


def render_plan(plan: Plan, decision: GuardDecision, budget_usd: float) -> None:
    out = console()
    out.print(
        f"[bold]plan[/bold] session [cyan]{plan.session}[/cyan] · target {plan.target} · "
        f"{plan.shape.name} · {plan.model.name} · {plan.hours:g} h"
    )
    out.print(f"  fit: {plan.fit.reason}")
    res = Table(title="resources", title_justify="left", show_edge=False)
    res.add_column("action")
    res.add_column("kind")
    res.add_column("name")
    res.add_column("detail")
    for r in plan.resources:
        res.add_row(r.action, r.kind, r.name, r.detail)
    out.print(res)
    tl = Table(title="timeline (modeled)", title_justify="left", show_edge=False)
    tl.add_column("phase")
    tl.add_column("starts", justify="right")
    tl.add_column("takes", justify="right")
    tl.add_column("GPU billed")
    tl.add_column("source")
    for p in plan.timeline:
        tl.add_row(
            p.name,
            fmt_duration(p.start_s),
            fmt_duration(p.seconds),
            "yes" if p.gpu_billed else "",
            p.source,
        )
    out.print(tl)
    out.print(
        f"  time to ready ≈ {fmt_duration(plan.time_to_ready_s)} · GPU billed before ready ≈ "
        f"{fmt_duration(plan.gpu_billed_s)} · startup probe budget "
        f"{fmt_duration(plan.startup.budget_s)} ({plan.startup.failure_threshold} × "
        f"{plan.startup.period_s}s)"
    )
    if plan.warm_up is not None:
        out.print(
            f"  cache warm-up: {plan.warm_up.shape} ({plan.warm_up.ocpus} OCPU, "
            f"{plan.warm_up.memory_gb} GB) fills the cache beside the GPU pool, same AD; "
            "falls back to a download on the GPU node when the AD or quota does not allow it"
        )
    if plan.volume_options:
        vol = Table(
            title="cache volume (planner's choice ▶; faster volumes vs what they cost)",
            title_justify="left",
            show_edge=False,
        )
        for column in ("", "size", "VPU/GB", "MB/s", "load", "GPU waits", "volume $", "GPU $"):
            vol.add_column(column, justify="right")
        for o in plan.volume_options:
            vol.add_row(
                "▶" if o is plan.volume_chosen else "",
                f"{o.size_gb} GB",
                str(o.vpus_per_gb),
                f"{o.mb_per_s:.0f}",
                fmt_duration(o.load_s),
                fmt_duration(o.gpu_wait_s),
                f"{o.volume_usd:.3f}",
                f"{o.gpu_usd:.3f}",
            )
        out.print(vol)
    out.print(cost_table(f"estimated cost for {plan.hours:g} h", plan.lines))
    phases = " · ".join(f"{k} ${v:.2f}" for k, v in plan.by_phase.items())
    out.print(f"  by phase: {phases}")
    mark = {
        "proceed": "[green]✓[/green]",
        "confirm": "[yellow]?[/yellow]",
        "refuse": "[red]✗[/red]",
    }
    out.print(
        f"[bold]estimate ${plan.total_usd:.2f}[/bold] (worst case ${plan.worst_case_usd:.2f}) · "
        f"budget ${budget_usd:.2f} {mark[decision.action]} {decision.reason}"
    )
    for note in plan.notes:
        out.print(f"  note: {note}")
