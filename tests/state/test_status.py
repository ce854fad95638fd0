"""Session states: typed, stored as the strings older versions wrote, said in words."""

from __future__ import annotations

from pathlib import Path

import pytest

from nimble_oke.services.provision import Keep, TeardownResult
from nimble_oke.state.status import SessionStatus
from nimble_oke.state.store import StateStore


def test_a_member_is_its_stored_text_and_reads_back_from_the_store(tmp_path: Path) -> None:
    with StateStore(tmp_path) as store:
        store.upsert_session("s", target="sim", status=SessionStatus.STANDBY)
        record = store.session("s")
        assert record is not None
        assert record.status == "standby (cluster kept)"
        assert SessionStatus.of(record.status) is SessionStatus.STANDBY
    assert SessionStatus.of("something an older nimble wrote") is None
    assert SessionStatus.ENFORCED.display.startswith("stopped by the watchdog")
    assert SessionStatus.READY.display == "ready"
    assert SessionStatus.READY.live and not SessionStatus.ENFORCED.live


def test_keep_says_what_state_down_leaves() -> None:
    clean = TeardownResult(removed=["a"], failed=[], kept=[], remaining=[])
    kept = TeardownResult(removed=["a"], failed=[], kept=["vol"], remaining=[])
    broken = TeardownResult(removed=[], failed=["x: 500"], kept=[], remaining=[])
    assert Keep().status_after(clean) is SessionStatus.DOWN
    assert Keep(cache=True).status_after(kept) is SessionStatus.DOWN_CACHE_KEPT
    assert Keep(cache=True, cluster=True).status_after(kept) is SessionStatus.STANDBY
    assert Keep().status_after(broken) is SessionStatus.DOWN_INCOMPLETE


def test_a_session_restarted_after_a_full_down_counts_its_cost_from_then(tmp_path: Path) -> None:
    from nimble_oke.domain.cost import Meter
    from nimble_oke.services.costs import session_accrual

    clock = [1_000_000.0]
    gpu = Meter("gpu.a10", 1, "GPU")
    with StateStore(tmp_path, now=lambda: clock[0]) as store:
        store.upsert_session("s", target="oci", status=SessionStatus.READY)
        store.record_created("s", "node_pool", "p1", meters=[gpu])
        clock[0] += 3600
        store.record_deleted("s", "node_pool", "p1")
        store.set_session_status("s", SessionStatus.DOWN)
        first = session_accrual(store, "s", now=clock[0], read_lease=False).accrual.total_usd
        assert first == pytest.approx(2.0)  # an A10 hour
        clock[0] += 600
        store.restart_session("s")  # the next up of the name: a new session
        store.record_created("s", "node_pool", "p2", meters=[gpu])
        clock[0] += 1800
        again = session_accrual(store, "s", now=clock[0], read_lease=False).accrual.total_usd
        assert again == pytest.approx(1.0)  # only the new half hour
        record = store.session("s")
        assert record is not None and record.since is not None
