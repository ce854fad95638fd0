from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from nimble_oke.catalog import load_catalog
from nimble_oke.domain.cost import accrue, load_balancer_meters
from nimble_oke.errors import StateError
from nimble_oke.ngc_keys import throwaway_key
from nimble_oke.state.lock import SessionLock
from nimble_oke.state.store import SCHEMA_VERSION, StateStore, retry_token


def test_schema_is_migrated_and_reopens(tmp_path: Path) -> None:
    with StateStore(tmp_path) as store:
        assert store.schema_version == SCHEMA_VERSION
    with StateStore(tmp_path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.integrity_ok()
    mode = sqlite3.connect(tmp_path / "state.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    StateStore(tmp_path).close()
    db = sqlite3.connect(tmp_path / "state.db")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    db.close()
    with pytest.raises(StateError, match="newer than this nimble understands"):
        StateStore(tmp_path)


def test_garbage_database_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "state.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StateError, match="unreadable"):
        StateStore(tmp_path)


def test_journal_is_idempotent_with_deterministic_tokens(tmp_path: Path) -> None:
    with StateStore(tmp_path) as store:
        first = store.intend("s1", "network/vcn", "vcn")
        again = store.intend("s1", "network/vcn", "vcn")
        assert first.retry_token == again.retry_token
        assert len(first.retry_token) == 40
        assert retry_token("s2", "network/vcn", 1) != retry_token("s1", "network/vcn", 1)
        other = store.intend("s2", "network/vcn", "vcn")
        assert other.retry_token != first.retry_token
        store.forget_intent("s2", "network/vcn")
        assert store.intend("s2", "network/vcn", "vcn").retry_token != other.retry_token
        store.journal_update("s1", "network/vcn", status="sent", request_id="req-1")
        store.journal_update("s1", "network/vcn", status="done", resource_id="ocid1.vcn.oc1..x")
        entry = store.journal_entry("s1", "network/vcn")
        assert entry is not None
        assert (entry.status, entry.request_id, entry.resource_id) == (
            "done",
            "req-1",
            "ocid1.vcn.oc1..x",
        )
        assert len(store.journal("s1")) == 1
        with pytest.raises(StateError):
            store.journal_update("s1", "nope", status="done")


def test_resources_feed_accrual(tmp_path: Path) -> None:
    clock = [1000.0]
    with StateStore(tmp_path, now=lambda: clock[0]) as store:
        store.upsert_session("s", target="sim", status="up")
        store.record_created(
            "s", "load-balancer", "ocid1.lb", name="lb", meters=load_balancer_meters(10)
        )
        clock[0] += 3600
        store.record_deleted("s", "load-balancer", "ocid1.lb")
        clock[0] += 3600
        (record,) = store.resources("s")
        accrual = accrue(load_catalog(), [record.usage()], store.now())
        assert accrual.total_usd == pytest.approx(0.0113 + 0.001)
        assert store.resources("s", live_only=True) == []


def test_nothing_secret_is_stored(tmp_path: Path) -> None:
    key = throwaway_key()
    par = "https://objectstorage.us-ashburn-1.oraclecloud.com/p/AbCdEfGhIjKlMnOp1234/n/ns/b/bk/o/x"
    with StateStore(tmp_path) as store:
        store.upsert_session("s", target="sim", status="up", config={"note": key})
        store.event("s", "INFO", f"pulling with {key} from {par}")
        store.intend("s", "step")
        store.journal_update("s", "step", status="failed", detail=f"Authorization: Bearer {key}")
        store.add_bench_run("s", {"endpoint": par})
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("state.db*"))
    assert key.encode() not in raw
    assert b"AbCdEfGhIjKlMnOp1234" not in raw


def test_lock_refuses_a_second_holder_in_process(tmp_path: Path) -> None:
    with SessionLock(tmp_path, "demo", command="nimble up"):
        with pytest.raises(StateError, match=r"session 'demo' is in use by pid \d+ \(nimble up"):
            SessionLock(tmp_path, "demo").acquire()
        SessionLock(tmp_path, "other").acquire()  # another session is independent
    SessionLock(tmp_path, "demo").acquire()  # released


_LOCK_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from nimble_oke.state.lock import SessionLock
    from nimble_oke.errors import StateError
    home, go = Path(sys.argv[1]), float(sys.argv[2])
    while time.time() < go:
        time.sleep(0.001)
    try:
        lock = SessionLock(home, "race", command="nimble up")
        lock.acquire()
    except StateError as exc:
        print("REFUSED", exc, flush=True)
        sys.exit(4)
    print("ACQUIRED", flush=True)
    time.sleep(1.0)
    """
)


def test_lock_race_between_two_processes(tmp_path: Path) -> None:
    go = time.time() + 1.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _LOCK_SCRIPT, str(tmp_path), str(go)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=30)[0] for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 4], outputs
    assert sum("ACQUIRED" in o for o in outputs) == 1
    assert any("is in use by" in o for o in outputs)


_WRITER = textwrap.dedent(
    """
    import sys, itertools
    from pathlib import Path
    from nimble_oke.state.store import StateStore
    store = StateStore(Path(sys.argv[1]))
    store.upsert_session("crash", target="sim", status="up")
    print("READY", flush=True)
    for i in itertools.count():
        # one transaction writes a journal step and its resource together
        with store._tx() as db:
            db.execute(
                "INSERT INTO journal (session, step, retry_token, status, resource_id, created_at,"
                " updated_at) VALUES ('crash', ?, 't', 'done', ?, 0, 0)",
                (f"step-{i}", f"r-{i}"),
            )
            db.execute(
                "INSERT INTO resources (session, kind, resource_id, created_at, meters_json)"
                " VALUES ('crash', 'thing', ?, 0, ?)",
                (f"r-{i}", "[]" + " " * 2000),
            )
    """
)


def test_sigkill_mid_transaction_leaves_a_consistent_database(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "READY"
        time.sleep(0.8)  # thousands of transactions in flight
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()
    with StateStore(tmp_path) as store:
        assert store.integrity_ok()
        steps = {e.resource_id for e in store.journal("crash")}
        resources = {r.resource_id for r in store.resources("crash")}
        assert len(steps) > 10
        assert steps == resources  # every transaction is all-or-nothing
        assert json.dumps(store.session("crash").config) == "{}"  # type: ignore[union-attr]
