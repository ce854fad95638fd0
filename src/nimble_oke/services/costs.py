"""Session history and accrued cost, from the state store's recorded resource lifetimes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from nimble_oke.catalog import load_catalog
from nimble_oke.errors import StateError
from nimble_oke.services.enforcement import accrue_with_enforcement
from nimble_oke.state.store import SessionRecord, StateStore


def session_clock(store: StateStore, record: SessionRecord) -> Callable[[], float]:
    """The clock a session's lifetimes were recorded on: real time for oci; for sim the
    running simulator's clock, or — when the simulator is stopped, so its cloud is frozen —
    the last time recorded for the session."""
    if record.target != "sim":
        return time.time
    from nimble_oke.services.sim_service import status
    from nimble_oke.services.targets import SimClockClient

    current = status(store.home)
    if current["running"] and current["endpoints"]:
        return SimClockClient(str(current["endpoints"]["admin"])).now
    times = [record.updated_at]
    for r in store.resources(record.name):
        times += [t for t in (r.created_at, r.deleted_at) if t is not None]
    frozen = max(times)
    return lambda: frozen


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def session_summaries(store: StateStore | None = None) -> list[dict[str, Any]]:
    own = store is None
    store = store or StateStore()
    try:
        catalog = load_catalog()
        out = []
        for s in store.sessions():
            # the same accrual as `status` and `cost`: after the watchdog's lease once due
            accrual, _note = accrue_with_enforcement(store, s, catalog, session_clock(store, s))
            resources = store.resources(s.name)
            out.append(
                {
                    "name": s.name,
                    "target": s.target,
                    "status": s.status,
                    "created": _iso(s.created_at),
                    "estimate_usd": s.estimate_usd,
                    "accrued_usd": round(accrual.total_usd, 6),
                    "live_resources": sum(1 for r in resources if r.deleted_at is None),
                    "lease_expires_at": s.lease_expires_at,
                }
            )
        return out
    finally:
        if own:
            store.close()


def session_cost(
    session: str | None, config_file: str | None, store: StateStore | None = None
) -> dict[str, Any]:
    own = store is None
    store = store or StateStore()
    try:
        if session is None:
            from nimble_oke.config_file import load_config

            cfg, _ = load_config(config_file)
            session = cfg.session_name
        record = store.session(session)
        if record is None:
            known = ", ".join(s.name for s in store.sessions()) or "none"
            raise StateError(f"no session named '{session}' (known sessions: {known})")
        catalog = load_catalog()
        accrual, watchdog_note = accrue_with_enforcement(
            store, record, catalog, session_clock(store, record)
        )
        resources = store.resources(session)
        return {
            "session": session,
            "target": record.target,
            "status": record.status,
            "estimate_usd": record.estimate_usd,
            "worst_case_usd": record.worst_case_usd,
            "accrued_usd": round(accrual.total_usd, 6),
            "running_usd_per_hour": round(accrual.running_usd_per_hour, 6),
            "watchdog": watchdog_note or None,
            "lines": [line.as_dict() for line in accrual.lines],
            "resources": [
                {
                    "kind": r.kind,
                    "id": r.resource_id,
                    "name": r.name,
                    "created_at": r.created_at,
                    "deleted_at": r.deleted_at,
                    "kept": r.kept,
                    "usd": round(accrual.per_resource.get(r.usage().resource, 0.0), 6),
                }
                for r in resources
            ],
        }
    finally:
        if own:
            store.close()


def compare_costs(a: str, b: str, store: StateStore | None = None) -> dict[str, Any]:
    """Two sessions' accrued cost side by side, line by line, with their estimates."""
    own = store is None
    store = store or StateStore()
    try:
        first, second = session_cost(a, None, store), session_cost(b, None, store)
    finally:
        if own:
            store.close()
    items: dict[str, dict[str, Any]] = {}
    for key, report in (("a_usd", first), ("b_usd", second)):
        for line in report["lines"]:
            row = items.setdefault(line["item"], {"item": line["item"], "a_usd": 0.0, "b_usd": 0.0})
            row[key] += line["usd"]
    summary = {
        k: {
            "session": r["session"],
            "estimate_usd": r["estimate_usd"],
            "accrued_usd": r["accrued_usd"],
            "status": r["status"],
        }
        for k, r in (("a", first), ("b", second))
    }
    return {**summary, "lines": list(items.values())}
