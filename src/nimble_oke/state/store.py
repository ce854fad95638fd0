"""The local state store: SQLite in WAL mode under ``NIMBLE_HOME``.

What it records: sessions, the intent journal (every cloud mutation is written here
*before* it is sent, with its deterministic retry token, so a killed run can resume and
``down`` always knows what may exist), resources with their billed meters and real
lifetimes (the source of accrued cost), events, phase timings and benchmark runs.

Nothing secret is ever stored: event messages and details pass through the redaction
filter, and the config snapshot holds only the *name* of the NGC key variable.

Crash safety: every write is one SQLite transaction (``with self._tx()``); WAL + fsync'd
commits mean a process killed at any instant leaves either the whole transaction or none
of it. Schema changes are numbered migrations applied in order at open.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nimble_oke.domain.cost import Meter, ResourceUsage
from nimble_oke.errors import StateError
from nimble_oke.redact import redact

MIGRATIONS: Sequence[str] = (
    # 1: initial schema
    """
    CREATE TABLE sessions (
        name TEXT PRIMARY KEY,
        target TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        lease_expires_at REAL,
        budget_usd REAL,
        estimate_usd REAL,
        worst_case_usd REAL,
        endpoint TEXT,
        config_json TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE journal (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session TEXT NOT NULL,
        step TEXT NOT NULL,
        retry_token TEXT NOT NULL,
        status TEXT NOT NULL,
        request_id TEXT,
        resource_kind TEXT,
        resource_id TEXT,
        detail TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        UNIQUE (session, step)
    );
    CREATE TABLE resources (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session TEXT NOT NULL,
        kind TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        name TEXT,
        meters_json TEXT NOT NULL DEFAULT '[]',
        tags_json TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL,
        deleted_at REAL,
        kept INTEGER NOT NULL DEFAULT 0,
        UNIQUE (session, kind, resource_id)
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session TEXT,
        at REAL NOT NULL,
        level TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE TABLE phases (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session TEXT NOT NULL,
        run TEXT NOT NULL,
        name TEXT NOT NULL,
        started_at REAL NOT NULL,
        ended_at REAL,
        status TEXT NOT NULL,
        detail TEXT
    );
    CREATE TABLE bench_runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session TEXT,
        created_at REAL NOT NULL,
        summary_json TEXT NOT NULL,
        export_dir TEXT
    );
    CREATE INDEX resources_session ON resources(session);
    CREATE INDEX events_session ON events(session);
    """,
    # 2: applied chart revisions (for rollback): manifest hash + non-secret values
    """
    CREATE TABLE revisions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        session TEXT NOT NULL,
        revision INTEGER NOT NULL,
        manifest_hash TEXT NOT NULL,
        values_json TEXT NOT NULL,
        applied_at REAL NOT NULL,
        UNIQUE (session, revision)
    );
    """,
    # 3: runs of up/down and their steps (the saga's journal); which run made a resource
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        session TEXT NOT NULL,
        command TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at REAL NOT NULL,
        ended_at REAL,
        error TEXT
    );
    CREATE INDEX runs_session ON runs(session);
    CREATE TABLE run_steps (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run TEXT NOT NULL,
        step TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at REAL NOT NULL,
        ended_at REAL,
        detail TEXT
    );
    CREATE INDEX run_steps_run ON run_steps(run);
    ALTER TABLE resources ADD COLUMN run TEXT;
    ALTER TABLE sessions ADD COLUMN restarted_at REAL;
    """,
)
RUN_STATUSES = ("running", "ok", "rolled_back", "failed", "kept")
STEP_STATUSES = ("running", "done", "failed", "undone", "undo_failed")

SCHEMA_VERSION = len(MIGRATIONS)


def retry_token(session: str, step: str, intent_id: int) -> str:
    """Deterministic ``opc-retry-token`` for one journal intent (OCI allows 64 chars).

    It is fixed for the life of the intent — a crashed run that resends the create gets the
    same resource back — but a *new* intent for the same step (after ``down``, or after the
    resource it named is gone) gets a new token, so OCI never replays a stale response."""
    return hashlib.sha256(f"nimble-oke/{session}/{step}/{intent_id}".encode()).hexdigest()[:40]


@dataclass(frozen=True)
class JournalEntry:
    session: str
    step: str
    retry_token: str
    status: str
    request_id: str | None
    resource_kind: str | None
    resource_id: str | None
    detail: str | None
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class ResourceRecord:
    session: str
    kind: str
    resource_id: str
    name: str | None
    meters: tuple[Meter, ...]
    tags: dict[str, str]
    created_at: float
    deleted_at: float | None
    kept: bool
    run: str | None = None  # the run that recorded it first (None: before runs existed)

    def usage(self) -> ResourceUsage:
        return ResourceUsage(
            f"{self.kind}:{self.name or self.resource_id}",
            self.meters,
            self.created_at,
            self.deleted_at,
        )


@dataclass(frozen=True)
class RunRecord:
    """One ``up`` or ``down``: ``running`` until it ends (a killed run stays ``running``),
    then ``ok``, ``rolled_back``, ``failed`` (could not finish its rollback) or ``kept``
    (``--keep-on-failure``)."""

    id: str
    session: str
    command: str
    status: str
    started_at: float
    ended_at: float | None
    error: str | None


@dataclass(frozen=True)
class SessionRecord:
    name: str
    target: str
    status: str
    created_at: float
    updated_at: float
    lease_expires_at: float | None
    budget_usd: float | None
    estimate_usd: float | None
    worst_case_usd: float | None
    endpoint: str | None
    config: dict[str, Any]
    restarted_at: float | None = None  # a down that kept nothing ended the session before

    @property
    def since(self) -> float | None:
        """Where this session's cost and budget start (None: all it ever recorded)."""
        return self.restarted_at


def _meters_to_json(meters: Sequence[Meter]) -> str:
    return json.dumps(
        [
            {
                "price_key": m.price_key,
                "quantity": m.quantity,
                "item": m.item,
                "multiplier": m.multiplier,
                "min_billed_seconds": m.min_billed_seconds,
                **({"since": m.since} if m.since is not None else {}),
                **({"until": m.until} if m.until is not None else {}),
            }
            for m in meters
        ]
    )


def _meters_from_json(text: str) -> tuple[Meter, ...]:
    return tuple(Meter(**m) for m in json.loads(text))


def default_home() -> Path:
    return Path(os.environ.get("NIMBLE_HOME") or Path.home() / ".nimble-oke")


class StateStore:
    """SQLite-backed store. One instance per process; not shared across threads."""

    def __init__(self, home: Path | None = None, *, now: Callable[[], float] = time.time) -> None:
        self.home = home or default_home()
        self.now = now
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            self.path = self.home / "state.db"
            self._db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"cannot open the state store in {self.home}: {exc}") from None
        self._db.row_factory = sqlite3.Row
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StateError(
                f"the state store {self.path} is unreadable ({exc}); move it aside to start fresh"
            ) from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema --------------------------------------------------------------------------

    def _migrate(self) -> None:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StateError(
                f"the state store {self.path} has schema version {version}, newer than this "
                f"nimble understands ({SCHEMA_VERSION}); upgrade nimble"
            )
        for number in range(version, SCHEMA_VERSION):
            with self._tx() as db:
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {number + 1}")

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")

    # -- sessions ------------------------------------------------------------------------

    def upsert_session(
        self,
        name: str,
        *,
        target: str,
        status: str,
        config: dict[str, Any] | None = None,
        lease_expires_at: float | None = None,
        budget_usd: float | None = None,
        estimate_usd: float | None = None,
        worst_case_usd: float | None = None,
    ) -> None:
        now = self.now()
        config_json = redact(json.dumps(config or {}, sort_keys=True))
        with self._tx() as db:
            db.execute(
                """INSERT INTO sessions (name, target, status, created_at, updated_at,
                       lease_expires_at, budget_usd, estimate_usd, worst_case_usd, config_json)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(name) DO UPDATE SET target=excluded.target,
                       status=excluded.status, updated_at=excluded.updated_at,
                       lease_expires_at=COALESCE(excluded.lease_expires_at, lease_expires_at),
                       budget_usd=COALESCE(excluded.budget_usd, budget_usd),
                       estimate_usd=COALESCE(excluded.estimate_usd, estimate_usd),
                       worst_case_usd=COALESCE(excluded.worst_case_usd, worst_case_usd),
                       config_json=CASE WHEN excluded.config_json = '{}' THEN config_json
                                        ELSE excluded.config_json END""",
                (
                    name,
                    target,
                    status,
                    now,
                    now,
                    lease_expires_at,
                    budget_usd,
                    estimate_usd,
                    worst_case_usd,
                    config_json,
                ),
            )

    def restart_session(self, name: str) -> None:
        """Start the session anew (an ``up`` after a ``down`` that kept nothing): its budget
        and ``cost`` count from now; the journal of the earlier one stays for history."""
        with self._tx() as db:
            db.execute(
                "UPDATE sessions SET restarted_at=?, updated_at=? WHERE name=?",
                (self.now(), self.now(), name),
            )

    def set_session_status(
        self,
        name: str,
        status: str,
        *,
        endpoint: str | None = None,
        clear_endpoint: bool = False,
    ) -> None:
        """``endpoint`` sets it; ``clear_endpoint`` forgets it (the deployment is gone)."""
        with self._tx() as db:
            if clear_endpoint:
                db.execute(
                    "UPDATE sessions SET status=?, updated_at=?, endpoint=NULL WHERE name=?",
                    (status, self.now(), name),
                )
                return
            db.execute(
                "UPDATE sessions SET status=?, updated_at=?, endpoint=COALESCE(?, endpoint) "
                "WHERE name=?",
                (status, self.now(), endpoint, name),
            )

    def extend_lease(self, name: str, expires_at: float) -> None:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE sessions SET lease_expires_at=?, updated_at=? WHERE name=?",
                (expires_at, self.now(), name),
            )
            if cur.rowcount == 0:
                raise StateError(f"no session named '{name}'")

    def session(self, name: str) -> SessionRecord | None:
        row = self._db.execute("SELECT * FROM sessions WHERE name=?", (name,)).fetchone()
        return self._session(row) if row else None

    def sessions(self) -> list[SessionRecord]:
        rows = self._db.execute("SELECT * FROM sessions ORDER BY created_at").fetchall()
        return [self._session(r) for r in rows]

    @staticmethod
    def _session(row: sqlite3.Row) -> SessionRecord:
        return SessionRecord(
            name=row["name"],
            target=row["target"],
            status=row["status"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            lease_expires_at=row["lease_expires_at"],
            budget_usd=row["budget_usd"],
            estimate_usd=row["estimate_usd"],
            worst_case_usd=row["worst_case_usd"],
            endpoint=row["endpoint"],
            config=json.loads(row["config_json"] or "{}"),
            restarted_at=row["restarted_at"],
        )

    # -- journal -------------------------------------------------------------------------

    def intend(self, session: str, step: str, resource_kind: str | None = None) -> JournalEntry:
        """Record the intent to perform ``step`` (idempotent: returns the existing entry)."""
        now = self.now()
        with self._tx() as db:
            cur = db.execute(
                """INSERT INTO journal (session, step, retry_token, status, resource_kind,
                       created_at, updated_at)
                   VALUES (?, ?, '', 'intent', ?, ?, ?)
                   ON CONFLICT(session, step) DO NOTHING""",
                (session, step, resource_kind, now, now),
            )
            if cur.rowcount:
                row_id = int(cur.lastrowid or 0)
                db.execute(
                    "UPDATE journal SET retry_token=? WHERE id=?",
                    (retry_token(session, step, row_id), row_id),
                )
        entry = self.journal_entry(session, step)
        assert entry is not None
        return entry

    def journal_update(
        self,
        session: str,
        step: str,
        *,
        status: str,
        request_id: str | None = None,
        resource_id: str | None = None,
        detail: str | None = None,
    ) -> None:
        allowed = {"intent", "sent", "done", "failed", "rolled_back"}
        if status not in allowed:
            raise ValueError(f"journal status must be one of {sorted(allowed)}")
        with self._tx() as db:
            cur = db.execute(
                """UPDATE journal SET status=?, updated_at=?,
                       request_id=COALESCE(?, request_id), resource_id=COALESCE(?, resource_id),
                       detail=COALESCE(?, detail)
                   WHERE session=? AND step=?""",
                (
                    status,
                    self.now(),
                    request_id,
                    resource_id,
                    redact(detail) if detail else None,
                    session,
                    step,
                ),
            )
            if cur.rowcount == 0:
                raise StateError(f"journal: no step '{step}' in session '{session}'")

    def journal_entry(self, session: str, step: str) -> JournalEntry | None:
        row = self._db.execute(
            "SELECT * FROM journal WHERE session=? AND step=?", (session, step)
        ).fetchone()
        return self._entry(row) if row else None

    def journal(self, session: str) -> list[JournalEntry]:
        rows = self._db.execute(
            "SELECT * FROM journal WHERE session=? ORDER BY id", (session,)
        ).fetchall()
        return [self._entry(r) for r in rows]

    def forget_intent(self, session: str, step: str) -> None:
        """Drop a step's intent whose resource is gone, so the next intent gets a new token."""
        with self._tx() as db:
            db.execute("DELETE FROM journal WHERE session=? AND step=?", (session, step))

    def clear_journal(self, session: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM journal WHERE session=?", (session,))

    @staticmethod
    def _entry(row: sqlite3.Row) -> JournalEntry:
        return JournalEntry(
            session=row["session"],
            step=row["step"],
            retry_token=row["retry_token"],
            status=row["status"],
            request_id=row["request_id"],
            resource_kind=row["resource_kind"],
            resource_id=row["resource_id"],
            detail=row["detail"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    # -- resources -----------------------------------------------------------------------

    def record_created(
        self,
        session: str,
        kind: str,
        resource_id: str,
        *,
        name: str | None = None,
        meters: Sequence[Meter] = (),
        tags: dict[str, str] | None = None,
        created_at: float | None = None,
        run: str | None = None,
    ) -> None:
        """Record a resource's creation (idempotent: the first creation time and run win).
        ``run``: the run that created (or adopted) it, which owns it until a run ends ok."""
        with self._tx() as db:
            db.execute(
                """INSERT INTO resources (session, kind, resource_id, name, meters_json,
                       tags_json, created_at, run)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(session, kind, resource_id) DO UPDATE SET deleted_at=NULL""",
                (
                    session,
                    kind,
                    resource_id,
                    name,
                    _meters_to_json(meters),
                    json.dumps(tags or {}, sort_keys=True),
                    self.now() if created_at is None else created_at,
                    run,
                ),
            )

    def record_deleted(
        self, session: str, kind: str, resource_id: str, *, deleted_at: float | None = None
    ) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE resources SET deleted_at=? WHERE session=? AND kind=? AND resource_id=? "
                "AND deleted_at IS NULL",
                (self.now() if deleted_at is None else deleted_at, session, kind, resource_id),
            )

    def set_meters(
        self, session: str, kind: str, resource_id: str, meters: Sequence[Meter]
    ) -> None:
        """Replace a resource's meters (its billed rate changed; earlier rates stay as
        meters bounded by ``until``, so the accrual keeps what they cost)."""
        with self._tx() as db:
            db.execute(
                "UPDATE resources SET meters_json=? WHERE session=? AND kind=? AND resource_id=?",
                (_meters_to_json(meters), session, kind, resource_id),
            )

    def mark_kept(self, session: str, kind: str, resource_id: str, kept: bool = True) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE resources SET kept=? WHERE session=? AND kind=? AND resource_id=?",
                (int(kept), session, kind, resource_id),
            )

    def live_cluster(self, session: str) -> tuple[Path, str] | None:
        """(kubeconfig path, cluster OCID) of the session's live cluster, when the journal
        has the cluster and the kubeconfig is on disk; None otherwise."""
        path = self.home / "sessions" / session / "kubeconfig"
        clusters = [r for r in self.resources(session, live_only=True) if r.kind == "cluster"]
        if not path.exists() or not clusters:
            return None
        return path, clusters[0].resource_id

    def resources(self, session: str, *, live_only: bool = False) -> list[ResourceRecord]:
        sql = "SELECT * FROM resources WHERE session=?"
        if live_only:
            sql += " AND deleted_at IS NULL"
        rows = self._db.execute(sql + " ORDER BY id", (session,)).fetchall()
        return [
            ResourceRecord(
                session=r["session"],
                kind=r["kind"],
                resource_id=r["resource_id"],
                name=r["name"],
                meters=_meters_from_json(r["meters_json"]),
                tags=json.loads(r["tags_json"]),
                created_at=r["created_at"],
                deleted_at=r["deleted_at"],
                kept=bool(r["kept"]),
                run=r["run"],
            )
            for r in rows
        ]

    # -- runs (the saga's journal) --------------------------------------------------------

    def start_run(self, session: str, command: str) -> str:
        """Record that an ``up``/``down`` of ``session`` starts; returns its id (unique even
        for two runs in the same second)."""
        now = self.now()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
        run_id = f"{stamp}-{os.urandom(3).hex()}"
        with self._tx() as db:
            db.execute(
                "INSERT INTO runs (id, session, command, status, started_at) "
                "VALUES (?, ?, ?, 'running', ?)",
                (run_id, session, command, now),
            )
        return run_id

    def end_run(self, run_id: str, status: str, error: str | None = None) -> None:
        if status not in RUN_STATUSES:
            raise ValueError(f"run status must be one of {RUN_STATUSES}")
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET status=?, ended_at=?, error=? WHERE id=?",
                (status, self.now(), redact(error) if error else None, run_id),
            )

    def runs(self, session: str) -> list[RunRecord]:
        rows = self._db.execute(
            "SELECT * FROM runs WHERE session=? ORDER BY started_at, rowid", (session,)
        ).fetchall()
        return [
            RunRecord(
                r["id"],
                r["session"],
                r["command"],
                r["status"],
                r["started_at"],
                r["ended_at"],
                r["error"],
            )
            for r in rows
        ]

    def unfinished_runs(self, session: str) -> list[RunRecord]:
        """The runs since the session's last run that ended ok, oldest first: what they
        created is not settled yet, so the next run finishes it or rolls it back. A run
        that ended ok (an ``up`` that reached its end, a ``down``) settles everything
        before it."""
        runs = self.runs(session)
        settled = max((i for i, r in enumerate(runs) if r.status == "ok"), default=-1)
        return runs[settled + 1 :]

    def last_settled_run(self, session: str) -> RunRecord | None:
        ok = [r for r in self.runs(session) if r.status == "ok"]
        return ok[-1] if ok else None

    def step_started(self, run_id: str, step: str) -> int:
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO run_steps (run, step, status, started_at) VALUES (?, ?, 'running', ?)",
                (run_id, step, self.now()),
            )
            return int(cur.lastrowid or 0)

    def step_ended(self, step_id: int, status: str, detail: str | None = None) -> None:
        if status not in STEP_STATUSES:
            raise ValueError(f"step status must be one of {STEP_STATUSES}")
        with self._tx() as db:
            db.execute(
                "UPDATE run_steps SET status=?, ended_at=?, detail=? WHERE id=?",
                (status, self.now(), redact(detail) if detail else None, step_id),
            )

    def run_steps(self, run_id: str) -> list[tuple[str, str]]:
        """(step, status) of a run, in the order they were journaled."""
        rows = self._db.execute(
            "SELECT step, status FROM run_steps WHERE run=? ORDER BY id", (run_id,)
        ).fetchall()
        return [(r["step"], r["status"]) for r in rows]

    # -- events, phases, benchmark runs ----------------------------------------------------

    def event(self, session: str | None, level: str, message: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO events (session, at, level, message) VALUES (?, ?, ?, ?)",
                (session, self.now(), level, redact(message)),
            )

    def events(self, session: str | None = None) -> list[tuple[float, str, str]]:
        if session is None:
            rows = self._db.execute("SELECT at, level, message FROM events ORDER BY id")
        else:
            rows = self._db.execute(
                "SELECT at, level, message FROM events WHERE session=? ORDER BY id", (session,)
            )
        return [(r["at"], r["level"], r["message"]) for r in rows.fetchall()]

    def phase_started(self, session: str, run: str, name: str) -> int:
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO phases (session, run, name, started_at, status) "
                "VALUES (?, ?, ?, ?, 'running')",
                (session, run, name, self.now()),
            )
            return int(cur.lastrowid or 0)

    def phase_ended(self, phase_id: int, status: str = "ok", detail: str | None = None) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE phases SET ended_at=?, status=?, detail=? WHERE id=?",
                (self.now(), status, redact(detail) if detail else None, phase_id),
            )

    def record_phase(
        self, session: str, run: str, name: str, seconds: float, status: str = "ok"
    ) -> None:
        """A phase measured elsewhere (e.g. pod phases seen while waiting): ends now."""
        now = self.now()
        with self._tx() as db:
            db.execute(
                "INSERT INTO phases (session, run, name, started_at, ended_at, status) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (session, run, name, now - seconds, now, status),
            )

    def phases(self, session: str, run: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM phases WHERE session=?"
        args: tuple[Any, ...] = (session,)
        if run is not None:
            sql += " AND run=?"
            args = (session, run)
        return [dict(r) for r in self._db.execute(sql + " ORDER BY id", args).fetchall()]

    def add_bench_run(
        self, session: str | None, summary: dict[str, Any], export_dir: str | None = None
    ) -> int:
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO bench_runs (session, created_at, summary_json, export_dir) "
                "VALUES (?, ?, ?, ?)",
                (session, self.now(), redact(json.dumps(summary)), export_dir),
            )
            return int(cur.lastrowid or 0)

    def bench_runs(self, session: str | None = None) -> list[dict[str, Any]]:
        if session is None:
            rows = self._db.execute("SELECT * FROM bench_runs ORDER BY id").fetchall()
        else:
            rows = self._db.execute(
                "SELECT * FROM bench_runs WHERE session=? ORDER BY id", (session,)
            ).fetchall()
        out = []
        for r in rows:
            d = dict(r)
            d["summary"] = json.loads(d.pop("summary_json"))
            out.append(d)
        return out

    def add_revision(self, session: str, manifest_hash: str, values_json: str) -> int:
        """Record an applied chart revision (non-secret values); returns its number."""
        with self._tx() as db:
            row = db.execute(
                "SELECT COALESCE(MAX(revision), 0) FROM revisions WHERE session=?", (session,)
            ).fetchone()
            revision = int(row[0]) + 1
            db.execute(
                "INSERT INTO revisions (session, revision, manifest_hash, values_json, applied_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (session, revision, manifest_hash, redact(values_json), self.now()),
            )
            return revision

    def revisions(self, session: str) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT * FROM revisions WHERE session=? ORDER BY revision", (session,)
        ).fetchall()
        return [dict(r) for r in rows]

    def integrity_ok(self) -> bool:
        return bool(self._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok")
