"""Planning service: config (file + env + flags) → validated config → plan → guard decision."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nimble_oke.catalog import load_catalog
from nimble_oke.config_file import load_config
from nimble_oke.domain.config import NimbleConfig
from nimble_oke.domain.cost import GuardDecision, guard
from nimble_oke.domain.plan import Plan, build_plan
from nimble_oke.domain.profiles import check_deploy_profile


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
) -> PlannedSession:
    cfg, path = load_config(config_file, flags, env)
    catalog = load_catalog()
    check_deploy_profile(
        catalog, cfg.nim.model, cfg.gpu_pool.shape, cfg.nim.precision, cfg.nim.model_profile
    )
    plan = build_plan(cfg, catalog, cache_warm=cache_warm)
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
