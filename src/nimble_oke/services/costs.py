"""Session history and accrued cost, from the state store's recorded resource lifetimes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nimble_oke.catalog import load_catalog
from nimble_oke.domain.catalog import Catalog
from nimble_oke.domain.cost import Accrual, ResourceUsage, accrue
from nimble_oke.errors import StateError
from nimble_oke.services.enforcement import reachable_target, read_enforcement_when_due
from nimble_oke.state.status import SessionStatus
from nimble_oke.state.store import SessionRecord, StateStore

if TYPE_CHECKING:
    from nimble_oke.services.targets import Target


def session_clock(store: StateStore, record: SessionRecord) -> Callable[[], float]:
    """The clock a session's lifetimes were recorded on: real time for oci; for sim the
    running simulator's clock, or — when the simulator is stopped, so its cloud is frozen —
    the last time recorded for the session."""
    from nimble_oke.services.targets import target_kind

    live = target_kind(record.target).live_clock(store.home)
    if live is not None:
        return live
    times = [record.updated_at]
    for r in store.resources(record.name):
        times += [t for t in (r.created_at, r.deleted_at) if t is not None]
    frozen = max(times)
    return lambda: frozen


@dataclass(frozen=True)
class SessionAccrual:
    accrual: Accrual
    note: str = ""  # what the watchdog did, or why its lease could not be read


def session_accrual(
    store: StateStore,
    session: str | SessionRecord,
    *,
    now: float | None = None,
    clock: Callable[[], float] | None = None,
    catalog: Catalog | None = None,
    read_lease: bool = True,
    target_for: Callable[[Path, SessionRecord], Target | None] = reachable_target,
) -> SessionAccrual:
    """What a session has cost so far: the one way every command prices the journal.

    ``now`` prices up to that instant; otherwise ``clock`` (default: the clock the session
    was recorded on). With ``read_lease``, once the watchdog can have acted (lease over or
    budget reached), its in-cluster lease is read into the journal first and the session
    priced again at a fresh reading of the clock (on a fast simulated clock the watchdog
    may act while the lease is read)."""
    catalog = catalog or load_catalog()
    record = store.session(session) if isinstance(session, str) else session
    name = session if isinstance(session, str) else session.name
    read = _reader(store, record, now, clock)

    since = record.since if record is not None else None

    def priced() -> tuple[Accrual, float]:
        at = read()
        return accrue(catalog, session_usages(store, name, since), at), at

    accrual, at = priced()
    if not read_lease or record is None:
        return SessionAccrual(accrual)
    changed, note = read_enforcement_when_due(
        store, record, accrual.total_usd, at, target_for=target_for
    )
    return SessionAccrual(priced()[0] if changed else accrual, note)


def session_usages(
    store: StateStore, session: str, since: float | None = None
) -> list[ResourceUsage]:
    """The session's billed lifetimes from ``since`` on (the session's start: a session
    name reused after a ``down`` that kept nothing starts a new session and a new budget)."""
    usages = []
    for record in store.resources(session):
        usage = record.usage()
        if since is not None:
            if usage.deleted_at is not None and usage.deleted_at <= since:
                continue
            usage = replace(usage, created_at=max(usage.created_at, since))
        usages.append(usage)
    return usages


def _reader(
    store: StateStore,
    record: SessionRecord | None,
    now: float | None,
    clock: Callable[[], float] | None,
) -> Callable[[], float]:
    if now is not None:
        return lambda: now
    if clock is not None:
        return clock
    return session_clock(store, record) if record is not None else store.now


def status_text(status: str) -> str:
    """A stored status as the user reads it."""
    known = SessionStatus.of(status)
    return known.display if known is not None else status


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def session_summaries(store: StateStore | None = None) -> list[dict[str, Any]]:
    own = store is None
    store = store or StateStore()
    try:
        catalog = load_catalog()
        out = []
        for listed in store.sessions():
            # the same accrual as `status` and `cost`: after the watchdog's lease once due
            accrual = session_accrual(store, listed, catalog=catalog).accrual
            s = store.session(listed.name) or listed  # the lease read may change its status
            resources = store.resources(s.name)
            out.append(
                {
                    "name": s.name,
                    "target": s.target,
                    "status": s.status,
                    "status_text": status_text(s.status),
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
        priced = session_accrual(store, record, catalog=catalog)
        accrual, watchdog_note = priced.accrual, priced.note
        record = store.session(session) or record  # the watchdog may have acted
        resources = store.resources(session)
        per_day = _hibernated_per_day(store, record)
        return {
            "session": session,
            "target": record.target,
            "status": record.status,
            "status_text": status_text(record.status),
            "estimate_usd": record.estimate_usd,
            "worst_case_usd": record.worst_case_usd,
            "accrued_usd": round(accrual.total_usd, 6),
            "running_usd_per_hour": round(accrual.running_usd_per_hour, 6),
            "watchdog": watchdog_note
            or (f"hibernated: storage only, ${per_day:.3f}/day" if per_day is not None else None),
            # a hibernated session: what its storage costs per day while it sleeps
            "storage_usd_per_day": per_day,
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


def _hibernated_per_day(store: StateStore, record: SessionRecord) -> float | None:
    if SessionStatus.of(record.status) is not SessionStatus.HIBERNATED:
        return None
    from nimble_oke.services.hibernate import storage_per_day

    return round(storage_per_day(store, record.name)[0], 6)


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
