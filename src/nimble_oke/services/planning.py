"""Planning service: config (file + env + flags) → validated config → plan → guard decision."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nimble_oke.catalog import load_catalog
from nimble_oke.config_file import load_config
from nimble_oke.domain.config import NimbleConfig
from nimble_oke.domain.cost import GuardDecision, guard
from nimble_oke.domain.plan import Plan, build_plan
from nimble_oke.domain.profiles import check_deploy_profile
from nimble_oke.state.status import SessionStatus


@dataclass(frozen=True)
class Warmth:
    """What an earlier ``down`` kept for this session, so ``up`` plans what it will do:
    a kept cache volume (its size is fixed; the planner picks only its VPUs for this
    session) and a kept network and cluster (standby)."""

    kept_cache_gb: int | None = None
    standby: bool = False
    node_image: bool = False  # a kept GPU node image holding this session's NIM image
    hibernated: bool = False  # down --hibernate: up starts the stopped GPU node


@dataclass(frozen=True)
class PlannedSession:
    config: NimbleConfig
    config_path: Path | None
    plan: Plan
    guard: GuardDecision


def plan_session(
    config_file: str | None,
    flags: Mapping[str, Any],
    *,
    yes: bool = False,
    interactive: bool = False,
    env: Mapping[str, str] | None = None,
    cache_warm: bool = False,
    warmth: Callable[[NimbleConfig], Warmth] | None = None,
) -> PlannedSession:
    cfg, path = load_config(config_file, flags, env)
    catalog = load_catalog()
    check_deploy_profile(
        catalog, cfg.nim.model, cfg.gpu_pool.shape, cfg.nim.precision, cfg.nim.model_profile
    )
    kept = warmth(cfg) if warmth is not None else Warmth()
    if kept.kept_cache_gb is not None and cfg.cache.mode != "object-storage":
        cache = cfg.cache.model_copy(update={"size_gb": kept.kept_cache_gb})
        cfg = cfg.model_copy(update={"cache": cache})
    plan = build_plan(
        cfg,
        catalog,
        cache_warm=cache_warm or kept.kept_cache_gb is not None,
        standby=kept.standby,
        node_image=kept.node_image,
    )
    if kept.kept_cache_gb is not None:
        plan.notes.append(
            f"kept cache volume: {kept.kept_cache_gb} GB (its size is fixed; raised online to "
            f"{(plan.config or cfg).cache.vpus_per_gb} VPU/GB for the session), no download"
        )
    if kept.node_image:
        plan.notes.append("kept node image: the GPU pool starts with the NIM image on board")
    if kept.standby:
        plan.notes.append("standby: the network and cluster are kept; only the GPU pool is new")
    if kept.hibernated:
        plan.notes.append(_wake_note(plan.config or cfg, catalog))
    decision = guard(
        worst_case_usd=plan.worst_case_usd,
        budget_usd=cfg.budget.max_usd,
        confirm_above_usd=cfg.budget.confirm_above_usd,
        environment=cfg.budget.environment,
        yes=yes,
        interactive=interactive,
    )
    # the plan fills in what the config leaves to the planner (cache volume size and VPUs)
    return PlannedSession(plan.config or cfg, path, plan, decision)


def _wake_note(cfg: NimbleConfig, catalog: Any) -> str:
    from nimble_oke.domain.hibernate import CASES, hibernate_wake

    wake = {case: hibernate_wake(cfg, catalog, case).ready_s / 60 for case in CASES}
    return (
        f"hibernated: up starts the stopped GPU node — ready in {wake['typical']:.1f} min "
        f"({wake['best']:.1f}-{wake['worst']:.1f}: the start time is an assumption); the "
        "timeline above is the cold path it falls back to if OCI has no host for it"
    )


def session_warmth(cfg: NimbleConfig) -> Warmth:
    """What the session's last ``down`` kept, read from the journal (no cloud call): the
    kept cache volume's size (its storage meter), whether a kept node image fits this
    session and whether the cluster stands by."""
    from nimble_oke.state.store import StateStore

    with StateStore() as store:
        record = store.session(cfg.session_name)
        if record is None:
            return Warmth()
        live = store.resources(cfg.session_name, live_only=True)
        kept_gb = None
        for volume in (r for r in live if r.kind == "volume" and r.kept):
            for meter in volume.meters:
                if meter.price_key == "block.storage" and meter.until is None:
                    kept_gb = int(meter.quantity)
        from nimble_oke.services.node_image import KIND, node_image_of, unfit

        node_image = any(
            r.kind == KIND and r.kept and unfit(node_image_of(r), cfg) is None for r in live
        )
        return Warmth(
            kept_cache_gb=kept_gb,
            node_image=node_image,
            hibernated=record.status == SessionStatus.HIBERNATED,
            standby=record.status == SessionStatus.STANDBY
            and any(r.kind == "cluster" for r in live),
        )


# --- between sessions: hibernate vs standby vs cold (issue 22) ---------------------------

_GAP_UNITS = {"m": 1 / 60, "h": 1.0, "d": 24.0, "w": 168.0}


def parse_gap(text: str) -> float:
    """``--gap`` as hours: a number of hours, or a number with m, h, d or w (``90m``,
    ``16h``, ``1d``, ``2w``). ConfigError names what is allowed."""
    import math

    from nimble_oke.errors import ConfigError

    raw = text.strip().lower()
    unit = raw[-1:] if raw[-1:] in _GAP_UNITS else "h"
    number = raw[:-1] if raw[-1:] in _GAP_UNITS else raw
    try:
        hours = float(number) * _GAP_UNITS[unit]
    except ValueError:
        hours = -1.0
    if not math.isfinite(hours) or not 0 <= hours <= 24 * 365:
        raise ConfigError(
            f"--gap {text!r}: the expected time between sessions, as hours (16) or with a "
            "unit m, h, d or w (90m, 16h, 1d, 2w), from 0 up to a year"
        )
    return hours


def sleep_comparison(
    cfg: NimbleConfig, gap_hours: float, *, billed_when_stopped: bool | None = None
) -> dict[str, Any]:
    """Hibernate, standby (+ node image) and cold for the user's expected gap between
    sessions (domain/hibernate.py ``compare_sleep_options``): per-day cost asleep, time back
    to ready (hibernate: typical and the start assumption's range), the wake's GPU cost,
    the total over the gap, the cheapest, and the break-even gaps against hibernate.
    ``billed_when_stopped``: the Compute API's answer when a provider is at hand (None:
    OCI's published rule, for offline planning)."""
    from nimble_oke.domain.hibernate import breakeven_hours, compare_sleep_options

    comparison = compare_sleep_options(
        cfg, load_catalog(), gap_hours=gap_hours, billed_when_stopped=billed_when_stopped
    )
    hibernate = comparison.option("hibernate")
    breakeven = {
        o.name: breakeven_hours(hibernate, o)
        for o in comparison.options
        if o.name != "hibernate" and hibernate.available
    }
    return {
        "gap_hours": gap_hours,
        "options": [o.as_dict(gap_hours) for o in comparison.options],
        "recommended": comparison.recommended.name,
        "hibernate_breakeven_hours": {
            k: None if v is None else round(v, 1) for k, v in breakeven.items()
        },
    }


def sleep_lines(comparison: dict[str, Any]) -> list[str]:
    """The comparison as ``nimble plan --gap`` prints it (one line per option)."""
    gap = comparison["gap_hours"]
    lines = [f"between sessions (gap {gap:g} h): asleep/day · ready · wake GPU · total for the gap"]
    for o in comparison["options"]:
        ready = f"{o['ready_s'] / 60:.1f} min"
        if o["ready_range_s"]:
            low, high = o["ready_range_s"]
            ready += f" ({low / 60:.1f}-{high / 60:.1f})"
        mark = "→" if o["name"] == comparison["recommended"] else " "
        total = f"${o['usd_for_gap']:.2f}" if o["available"] else "refused"
        lines.append(
            f" {mark} {o['name']:<22} ${o['asleep_usd_per_day']:.3f} · {ready:<20} · "
            f"${o['wake_usd']:.2f} · {total}"
        )
        if not o["available"]:
            lines.append(f"      {o['note']}")
    even = {k: v for k, v in comparison["hibernate_breakeven_hours"].items() if v is not None}
    if even:
        lines.append(
            "   hibernate is cheaper below: "
            + ", ".join(f"{v:g} h vs {k}" for k, v in even.items())
        )
    return lines
