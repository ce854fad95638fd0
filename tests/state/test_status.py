"""Session states: typed, stored as the strings older versions wrote, said in words."""

from __future__ import annotations

from pathlib import Path

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
