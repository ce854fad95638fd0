"""The engine ``up`` and ``down`` run on: a list of steps, each with its ``do`` and its
``undo``, journaled, rolled back in reverse on any failure, resumable after a kill.

A *step* is a small object: ``name`` (what the journal and messages call it), ``phase``
(the ledger row it is timed under, or None), ``do(ctx)`` and ``undo(ctx)``. Steps share
one context object (the run's inputs and what earlier steps produced); what a step needs
to undo its own work it keeps on itself.

The engine (:class:`Saga`):

- records the run (``runs``) and every step (``run_steps``: running → done | failed →
  undone | undo_failed) in the state store *before* the step acts, so a killed process
  leaves a journal that says where it stopped;
- times each phase on the store's clock (simulated time on the sim target) into the
  ledger (``phases``), one row per phase even when several steps share it;
- on *any* failure of a step — a NimbleError, an internal error, Ctrl-C — undoes the
  failed step and then every done step in reverse order (unless the caller keeps what
  was made), goes on when an undo fails and reports what could not be undone;
- resumes after a kill: a run that never ended leaves its creations *unsettled*; the next
  run of the session inherits them (``StateStore.unfinished_runs``): its steps adopt them
  (the journal of cloud intents and the tag search), and its undo removes them if it
  fails too. Only a run that ends ok settles what came before it.

A process that dies (SIGKILL, power loss) runs no undo at all: that is the point of the
journal. ``BaseException`` subclasses other than KeyboardInterrupt (SystemExit,
GeneratorExit, the test suite's SimulatedCrash) are treated as such a death.

Progress: every step's start and end (and each undo's) is a :class:`StepEvent` given to the
run's listener — ``Saga(on_event=…)``, or whoever called :func:`listening` around the run
(the CLI's live display, which does not reach into the lifecycle's code). Events only
report: a listener that raises is ignored, so a display can never fail a run.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from nimble_oke.state.store import StateStore

Say = Callable[[str], None]
C = TypeVar("C")
C_contra = TypeVar("C_contra", contravariant=True)


@dataclass(frozen=True)
class StepEvent:
    """One step of a run starting or ending (for progress displays only).

    ``status``: ``started``, ``done``, ``failed``, ``undoing``, ``undone`` or
    ``undo_failed``; ``index``/``total``: the step's place in the run (1-based); ``context``:
    the run's shared context object (a display may read e.g. its plan); ``at``: when, on
    the process's monotonic clock."""

    command: str  # up, down
    session: str
    step: str
    phase: str | None
    status: str
    index: int
    total: int
    context: Any = None
    at: float = 0.0


OnEvent = Callable[[StepEvent], None]
_LISTENER: ContextVar[OnEvent | None] = ContextVar("saga_listener", default=None)


@contextlib.contextmanager
def listening(on_event: OnEvent) -> Iterator[None]:
    """Inside: every :class:`Saga` created without its own ``on_event`` reports to
    ``on_event``."""
    token = _LISTENER.set(on_event)
    try:
        yield
    finally:
        _LISTENER.reset(token)


class Step(Protocol[C_contra]):
    @property
    def name(self) -> str: ...

    @property
    def phase(self) -> str | None: ...

    def do(self, ctx: C_contra) -> None: ...

    def undo(self, ctx: C_contra) -> None: ...


class NoUndo:
    """Mixin for steps that create nothing (checks, reads, status updates)."""

    def undo(self, ctx: object) -> None:
        return None


@dataclass
class Ledger:
    """The phases of one run, timed on the store's clock and recorded as they end."""

    store: StateStore
    session: str
    run_id: str
    done: list[dict[str, Any]] = field(default_factory=list)
    _open: tuple[str, int, float] | None = None

    def enter(self, phase: str | None) -> None:
        """Move to ``phase`` (closing the current one ok when it differs)."""
        if self._open is not None and self._open[0] == phase:
            return
        self.close("ok")
        if phase is not None:
            started = self.store.now()
            self._open = (
                phase,
                self.store.phase_started(self.session, self.run_id, phase),
                started,
            )

    def close(self, status: str) -> None:
        if self._open is None:
            return
        name, phase_id, started = self._open
        self._open = None
        self.store.phase_ended(phase_id, status)
        seconds = round(self.store.now() - started, 3)
        self.done.append({"name": name, "seconds": seconds, "status": status})


@dataclass
class Undone:
    """What the rollback of a failed run did."""

    steps: list[str] = field(default_factory=list)  # undone, most recent first
    failed: list[str] = field(default_factory=list)  # "step: why" for undos that failed
    aborted: bool = False  # Ctrl-C during the rollback


class SagaFailedError(Exception):
    """Carries the original failure of a run (``__cause__``) and its rollback."""

    def __init__(self, step: str, error: BaseException, undone: Undone | None) -> None:
        super().__init__(f"step {step} failed: {error}")
        self.step = step
        self.error = error
        self.undone = undone


class Saga(Generic[C]):
    """Runs the steps of one ``up``/``down`` of a session (see the module docstring)."""

    def __init__(
        self,
        store: StateStore,
        session: str,
        command: str,
        *,
        say: Say,
        on_event: OnEvent | None = None,
    ) -> None:
        self.store, self.session, self.command, self.say = store, session, command, say
        self.on_event = on_event or _LISTENER.get()
        self._total = 0
        self.inherited = store.unfinished_runs(session)
        self.run_id = store.start_run(session, command)
        self.ledger = Ledger(store, session, self.run_id)

    @property
    def lineage(self) -> frozenset[str]:
        """This run and the unsettled runs before it: what they created is this run's."""
        return frozenset({self.run_id, *(r.id for r in self.inherited)})

    def interrupted_at(self) -> str | None:
        """The step an earlier run of this command was killed in (for the resume message)."""
        for run in reversed(self.inherited):
            if run.status == "running" and run.command == self.command:
                steps = self.store.run_steps(run.id)
                return steps[-1][0] if steps else "its start"
        return None

    def run(
        self,
        steps: Sequence[Step[C]],
        ctx: C,
        *,
        compensate: bool = True,
        on_failure: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        """Do every step; on a failure call ``on_failure(step, error)``, undo (when
        ``compensate``) and raise :class:`SagaFailedError` from the original error. The run
        ends ``ok``, ``rolled_back``, ``failed`` (some undo failed) or ``kept`` (not
        compensated)."""
        done: list[Step[C]] = []
        self._total = len(steps)
        for index, step in enumerate(steps, 1):
            self.ledger.enter(step.phase)
            step_id = self.store.step_started(self.run_id, step.name)
            self._emit(step, "started", index, ctx)
            try:
                step.do(ctx)
            except (Exception, KeyboardInterrupt) as exc:
                self.ledger.close("failed")
                self.store.step_ended(step_id, "failed", f"{type(exc).__name__}: {exc}")
                self._emit(step, "failed", index, ctx)
                if on_failure is not None:
                    on_failure(step.name, exc)
                undone = self._undo([step, *reversed(done)], ctx) if compensate else None
                self._end(exc, undone)
                raise SagaFailedError(step.name, exc, undone) from exc
            self.store.step_ended(step_id, "done")
            self._emit(step, "done", index, ctx)
            done.append(step)
        self.ledger.close("ok")
        self.store.end_run(self.run_id, "ok")

    def _undo(self, steps: Sequence[Step[C]], ctx: C) -> Undone:
        undone = Undone()
        for index, step in enumerate(steps, 1):
            step_id = self.store.step_started(self.run_id, f"undo {step.name}")
            self._emit(step, "undoing", index, ctx, total=len(steps))
            try:
                step.undo(ctx)
            except KeyboardInterrupt:
                self.store.step_ended(step_id, "undo_failed", "interrupted")
                undone.aborted = True
                return undone
            except Exception as exc:  # noqa: BLE001 - go on undoing; report what failed
                self.store.step_ended(step_id, "undo_failed", f"{type(exc).__name__}: {exc}")
                self._emit(step, "undo_failed", index, ctx, total=len(steps))
                undone.failed.append(f"{step.name}: {exc}")
                continue
            self.store.step_ended(step_id, "undone")
            self._emit(step, "undone", index, ctx, total=len(steps))
            undone.steps.append(step.name)
        return undone

    def _emit(
        self, step: Step[C], status: str, index: int, ctx: C, *, total: int | None = None
    ) -> None:
        """Tell the listener (if any); a listener's failure never reaches the run."""
        if self.on_event is None:
            return
        event = StepEvent(
            self.command,
            self.session,
            step.name,
            step.phase,
            status,
            index,
            total or self._total,
            ctx,
            time.monotonic(),
        )
        with contextlib.suppress(Exception):  # progress is advisory; the run goes on
            self.on_event(event)

    def _end(self, exc: BaseException, undone: Undone | None) -> None:
        error = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"{exc}"
        if undone is None:
            status = "kept"
        elif undone.failed or undone.aborted:
            status = "failed"
        else:
            status = "rolled_back"
        self.store.end_run(self.run_id, status, error)
