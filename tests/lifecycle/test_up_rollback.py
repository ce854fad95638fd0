"""Each failure path of ``up`` alone: an unexpected exception injected into each step in
turn (after the step did its work) rolls back everything that run created — on the joined
simulators, with the real OCI SDK, lightkube, the chart and the NIM emulator."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest

from nimble_oke.catalog import load_catalog
from nimble_oke.domain.config import NimbleConfig, build_config
from nimble_oke.domain.plan import build_plan
from nimble_oke.services import lifecycle
from nimble_oke.services.lifecycle import up
from nimble_oke.services.sim_tools import product_stack
from nimble_oke.services.targets import sim_target
from nimble_oke.services.up_steps import UpOptions, UpRun, up_steps
from nimble_oke.state.store import StateStore

SCALE = 3000.0
STEPS = [s.name for s in up_steps(UpOptions(bench=True))]
NOTHING_LEFT = {"oci_resources": 0, "kube_nodes": 0, "kube_namespaces": 0, "kube_pvs": 0}


class InjectedError(RuntimeError):
    """An error nimble does not know (like lightkube's ApiError for a missing Job)."""


class FailsAfter:
    """A real step whose ``do`` raises once it has done its work."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name, self.phase = inner.name, inner.phase

    def do(self, run: UpRun) -> None:
        self.inner.do(run)
        raise InjectedError(f"injected after {self.name}")

    def undo(self, run: UpRun) -> None:
        self.inner.undo(run)


def _cfg() -> NimbleConfig:
    return build_config(
        {
            "cluster": {"name": "rb"},
            "budget": {"max_hours": 48, "max_usd": 500},
            "cache": {"size_gb": 200, "vpus_per_gb": 10},  # warmed on a CPU pool
            "bench": {"requests": 4, "concurrency": 2, "input_tokens": 16, "output_tokens": 8},
        }
    )


@pytest.mark.parametrize("step", STEPS)
def test_an_unexpected_error_in_any_step_rolls_back_what_the_run_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    def failing_steps(options: UpOptions) -> list[Any]:
        return [FailsAfter(s) if s.name == step else s for s in up_steps(options)]

    monkeypatch.setattr(lifecycle, "up_steps", failing_steps)
    messages: list[str] = []
    with product_stack(tmp_path / "sim", time_scale=SCALE, seed=31) as stack:
        cfg = _cfg()
        target = sim_target(cfg, stack.endpoints(), {})
        with (
            contextlib.closing(target.provider),
            StateStore(tmp_path / "home", now=stack.clock.wall) as store,
        ):
            result = up(cfg, build_plan(cfg, load_catalog()), target, store, say=messages.append)
            assert not result.ok
            assert isinstance(result.exception, InjectedError), (result.error, messages)
            assert result.failed_step == step
            assert result.exit_code == 70 and result.error_kind == "InjectedError"
            assert result.error is not None and "internal error" in result.error
            assert result.rollback_failed == [], messages
            record = store.session("rb")
            if step == "budget":  # before the session is recorded: nothing to say
                assert record is None
            else:
                assert record is not None and record.status == "rolled back"
            assert store.resources("rb", live_only=True) == []
            assert store.runs("rb")[-1].status == "rolled_back"
        assert stack.leftovers() == NOTHING_LEFT, stack.oci.inventory()
    assert any("rolling back what this run created" in m for m in messages)
