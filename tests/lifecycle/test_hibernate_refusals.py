"""`down --hibernate` refuses a session that is not ready before touching anything (no
cloud call: the journal says so), and does not mistake its own run for a killed one."""

from __future__ import annotations

from typing import Any

import pytest

from nimble_oke.domain.config import build_config
from nimble_oke.errors import StateError
from nimble_oke.services.hibernate import hibernate
from nimble_oke.state.status import SessionStatus
from nimble_oke.state.store import StateStore


class NoCloud:
    """A target whose every use fails the test: the refusal must come first."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the refusal touched the target ({name})")


@pytest.mark.parametrize(
    "status", [SessionStatus.STANDBY, SessionStatus.DOWN, SessionStatus.ENFORCED]
)
def test_only_a_ready_session_can_hibernate(status: SessionStatus) -> None:
    cfg = build_config({"cluster": {"name": "idle"}})
    with StateStore() as store:
        store.upsert_session("idle", target="sim", status=status, config={})
        with pytest.raises(StateError) as refused:
            hibernate("idle", cfg, NoCloud(), store, say=lambda _m: None)  # type: ignore[arg-type]
        assert f"is {status.value}: only a ready session can hibernate" in refused.value.message
        assert store.session("idle").status == status
        (run,) = store.runs("idle")
        assert (run.command, run.status) == ("hibernate", "rolled_back")
        # a second refusal: the first (ended) run is no killed hibernate to finish
        with pytest.raises(StateError):
            hibernate("idle", cfg, NoCloud(), store, say=lambda _m: None)  # type: ignore[arg-type]
