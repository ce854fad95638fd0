"""The saga engine alone: journal, ledger, reverse undo on any failure, inheritance of a
killed run's work. (The real steps of up on the simulators: tests/lifecycle.)"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from nimble_oke.errors import ProviderError
from nimble_oke.services.saga import Saga, SagaFailedError


@dataclass
class Ctx:
    log: list[str] = field(default_factory=list)


class Recorder:
    def __init__(self, name: str, phase: str | None = None, *, fail: BaseException | None = None):
        self.name, self.phase, self.fail = name, phase, fail
        self.undo_fails: BaseException | None = None

    def do(self, ctx: Ctx) -> None:
        ctx.log.append(f"do {self.name}")
        if self.fail is not None:
            raise self.fail

    def undo(self, ctx: Ctx) -> None:
        ctx.log.append(f"undo {self.name}")
        if self.undo_fails is not None:
            raise self.undo_fails


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        self.t += 10.0  # every reading is 10 s later
        return self.t


def _store(tmp_path: Path):  # type: ignore[no-untyped-def]
    from nimble_oke.state.store import StateStore

    return StateStore(tmp_path, now=Clock())


def test_a_clean_run_journals_every_step_and_one_ledger_row_per_phase(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        saga: Saga[Ctx] = Saga(store, "s", "up", say=lambda _m: None)
        ctx = Ctx()
        steps = [Recorder("net", "provision"), Recorder("pool", "provision"), Recorder("mark")]
        saga.run(steps, ctx)
        assert ctx.log == ["do net", "do pool", "do mark"]
        assert store.run_steps(saga.run_id) == [("net", "done"), ("pool", "done"), ("mark", "done")]
        assert [r.status for r in store.runs("s")] == ["ok"]
        # the two provision steps are one ledger row, timed on the store's clock
        assert [p["name"] for p in saga.ledger.done] == ["provision"]
        assert saga.ledger.done[0]["seconds"] > 0
        assert [p["name"] for p in store.phases("s")] == ["provision"]


@pytest.mark.parametrize(
    "error",
    [ProviderError("out of capacity"), RuntimeError("jobs.batch not found"), KeyboardInterrupt()],
    ids=["project-error", "internal-error", "ctrl-c"],
)
def test_any_failure_undoes_the_failed_step_then_the_done_ones_in_reverse(
    tmp_path: Path, error: BaseException
) -> None:
    with _store(tmp_path) as store:
        saga: Saga[Ctx] = Saga(store, "s", "up", say=lambda _m: None)
        ctx = Ctx()
        seen: list[tuple[str, BaseException]] = []
        steps = [Recorder("net"), Recorder("cluster"), Recorder("pool", fail=error), Recorder("x")]
        with pytest.raises(SagaFailedError) as caught:
            saga.run(steps, ctx, on_failure=lambda step, exc: seen.append((step, exc)))
        assert caught.value.error is error and caught.value.step == "pool"
        assert seen == [("pool", error)]
        assert ctx.log == [
            "do net",
            "do cluster",
            "do pool",
            "undo pool",
            "undo cluster",
            "undo net",
        ]
        assert caught.value.undone is not None and caught.value.undone.steps == [
            "pool",
            "cluster",
            "net",
        ]
        assert store.runs("s")[-1].status == "rolled_back"


def test_an_undo_that_fails_is_reported_and_the_rest_still_undone(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        saga: Saga[Ctx] = Saga(store, "s", "up", say=lambda _m: None)
        ctx = Ctx()
        cluster = Recorder("cluster")
        cluster.undo_fails = ProviderError("409 Conflict: the cluster still has node pools")
        with pytest.raises(SagaFailedError) as caught:
            saga.run([Recorder("net"), cluster, Recorder("pool", fail=ValueError("x"))], ctx)
        undone = caught.value.undone
        assert undone is not None
        assert undone.steps == ["pool", "net"]
        assert undone.failed == ["cluster: 409 Conflict: the cluster still has node pools"]
        assert store.runs("s")[-1].status == "failed"
        assert ("undo cluster", "undo_failed") in store.run_steps(saga.run_id)


def test_without_compensation_nothing_is_undone_and_the_run_is_kept(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        saga: Saga[Ctx] = Saga(store, "s", "up", say=lambda _m: None)
        ctx = Ctx()
        with pytest.raises(SagaFailedError) as caught:
            saga.run(
                [Recorder("net"), Recorder("pool", fail=ValueError("x"))], ctx, compensate=False
            )
        assert caught.value.undone is None
        assert ctx.log == ["do net", "do pool"]
        assert store.runs("s")[-1].status == "kept"


class Died(BaseException):
    """Stands for the process dying: no undo may run."""


def test_a_killed_run_is_inherited_by_the_next_until_one_ends_ok(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        first: Saga[Ctx] = Saga(store, "s", "up", say=lambda _m: None)
        ctx = Ctx()
        with pytest.raises(Died):
            first.run([Recorder("net"), Recorder("pool", fail=Died())], ctx)
        assert ctx.log == ["do net", "do pool"]  # nothing undone: the process is gone
        assert store.runs("s")[-1].status == "running"

        second: Saga[Ctx] = Saga(store, "s", "up", say=lambda _m: None)
        assert second.interrupted_at() == "pool"
        assert second.lineage == {first.run_id, second.run_id}
        second.run([Recorder("net"), Recorder("pool")], Ctx())

        third: Saga[Ctx] = Saga(store, "s", "up", say=lambda _m: None)
        assert third.lineage == {third.run_id}  # the ok run settled everything before it
        assert third.interrupted_at() is None
