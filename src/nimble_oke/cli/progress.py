"""Live progress for ``up`` and ``down``: what runs now, what it waits on, for how long,
against what the plan expects.

Fed by two things the lifecycle already produces: the saga engine's step events
(:class:`~nimble_oke.services.saga.StepEvent`: which step of how many, its phase, and the
run's context, whose plan gives the expected time) and the ``say`` lines (what is being
waited on: "gpu pool: trying …", "deploy      model download 40%").

- On a terminal (:meth:`LiveProgress.open` with ``live=True``): the ``say`` lines are
  printed as before and one status line under them is redrawn in place (Rich ``Live``, 4
  redraws a second, removed at the end)::

      ⠋ up try1 · 9/17 wait ready · model download 40% · 41s · plan: ready after ≈ 23m52s
      of cloud time

- Not a terminal (a pipe, a log, CI): plain appended lines — the ``say`` lines, and when
  nothing was printed for ``heartbeat_s`` one ``… still <status>`` line, so a log never
  shows a long silence without saying what it waits on.
- ``--output json``: the command does not open one (nothing extra on stdout).

Rendering is pure (:func:`status_line`) so it is tested without a terminal; the display
never fails the command (the saga ignores a listener that raises).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nimble_oke.cli.render import fmt_duration

if TYPE_CHECKING:
    from rich.console import Console

    from nimble_oke.services.saga import StepEvent

HEARTBEAT_S = 15.0  # plain mode: a status line after this long without output
REFRESH_PER_SECOND = 4
_LABEL_WIDTH = 12  # say() lines are "label       text": the label column's width


@dataclass
class State:
    """What the display knows, updated by events and say() lines."""

    command: str
    session: str = ""
    step: str = ""
    index: int = 0
    total: int = 0
    waiting_on: str = ""
    expected_s: float | None = None  # the plan's time to ready (cloud time)
    started: float = 0.0
    undoing: bool = False
    ready: bool = False  # up: the endpoint is ready (smoke and bench follow)
    cloud_elapsed_s: float | None = None  # on the cloud's clock (simulated on the sim)


def waiting_on(line: str) -> str:
    """The detail of a say() line: "deploy      model download 40%" → "model download
    40%"; a line without a label column is kept whole."""
    head, rest = line[:_LABEL_WIDTH], line[_LABEL_WIDTH:]
    if len(line) > _LABEL_WIDTH and head.endswith("  ") and head.strip() and rest.strip():
        return rest.strip()
    return line.strip()


def status_line(state: State, now: float) -> str:
    """One line: command and session, step i/n, what it waits on, elapsed, plan."""
    parts = [f"{state.command} {state.session}".strip()]
    if state.step:
        verb = "undo " if state.undoing else ""
        parts.append(f"{state.index}/{state.total} {verb}{state.step}")
    if state.waiting_on:
        parts.append(state.waiting_on[:80])
    parts.append(fmt_duration(now - state.started))
    cloud = state.cloud_elapsed_s
    if state.expected_s and cloud is not None:
        parts.append(
            f"cloud time {fmt_duration(cloud)} of ≈ {fmt_duration(state.expected_s)} planned"
        )
    elif state.expected_s:
        parts.append(f"plan: ready after ≈ {fmt_duration(state.expected_s)} of cloud time")
    return " · ".join(parts)


def cloud_now(context: Any) -> float | None:
    """The cloud's clock through the run's state store (simulated time on the sim), or
    None when the context has none or it cannot be read (the display never fails a run)."""
    now = getattr(getattr(context, "store", None), "now", None)
    if not callable(now):
        return None
    try:
        value = now()
    except Exception:  # noqa: BLE001 - advisory
        return None
    return float(value) if isinstance(value, int | float) else None


def expected_ready_s(context: Any) -> float | None:
    """The plan's time to ready, when the run's context carries a plan (``up``)."""
    plan = getattr(context, "plan", None)
    value = getattr(plan, "time_to_ready_s", None)
    return float(value) if isinstance(value, int | float) and value > 0 else None


class LiveProgress:
    """One command's progress display; use :meth:`open` (a context manager)."""

    def __init__(
        self,
        command: str,
        console: Console,
        *,
        live: bool,
        heartbeat_s: float = HEARTBEAT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state = State(command, started=clock())
        self.console = console
        self.is_live = live
        self.heartbeat_s = heartbeat_s
        self.clock = clock
        self._lock = threading.Lock()
        self._last_output = clock()
        self._live: Any = None
        self._stop = threading.Event()
        self._context: Any = None
        self._cloud_started: float | None = None
        self._spinner: Any = None

    def _read_cloud_clock(self) -> None:
        """Cloud time since the run's first step (read at events and say() lines only: on
        the sim each read is a request to the simulator's clock)."""
        now = cloud_now(self._context)
        if now is None:
            return
        if self._cloud_started is None:
            self._cloud_started = now
        self.state.cloud_elapsed_s = now - self._cloud_started

    # --- inputs ----------------------------------------------------------------------
    def say(self, line: str) -> None:
        """A line the lifecycle says: printed, and (during a step) what is waited on."""
        with self._lock:
            if self.state.step:  # before the first step: the plan's lines, not a wait
                self.state.waiting_on = waiting_on(line)
                self._read_cloud_clock()
            self._print(line)
        if self._live is not None:
            self._live.refresh()

    def on_event(self, event: StepEvent) -> None:
        """A saga step starting or ending."""
        with self._lock:
            state = self.state
            state.session = event.session
            if event.status in ("started", "undoing"):
                state.step, state.index, state.total = event.step, event.index, event.total
                state.undoing = event.status == "undoing"
                state.waiting_on = ""
            self._context = event.context
            self._read_cloud_clock()
            if event.step == "ready" and event.status == "done":
                state.expected_s, state.ready = None, True  # the plan's figure is behind us
            elif state.expected_s is None and event.command == "up" and not state.ready:
                state.expected_s = expected_ready_s(event.context)
        if self._live is not None:
            self._live.refresh()

    # --- output ----------------------------------------------------------------------
    def render(self) -> Any:
        """What the live region shows now (Rich calls this on each redraw)."""
        from rich.spinner import Spinner
        from rich.text import Text

        text = Text(status_line(self.state, self.clock()), no_wrap=True, overflow="ellipsis")
        if self._spinner is None:  # one spinner: its frame follows the time it was made
            self._spinner = Spinner("dots", text=text, style="cyan")
        else:
            self._spinner.update(text=text)
        return self._spinner

    def _print(self, line: str) -> None:
        if self.is_live:  # above the live region
            self.console.print(line, markup=False, highlight=False, emoji=False, soft_wrap=True)
        else:
            self.console.file.write(line + "\n")
            self.console.file.flush()
        self._last_output = self.clock()

    def _heartbeat(self) -> None:
        """Plain mode: say what is still running after ``heartbeat_s`` of silence."""
        while not self._stop.wait(min(1.0, self.heartbeat_s / 4)):
            with self._lock:
                if self.clock() - self._last_output >= self.heartbeat_s and self.state.step:
                    self._print(f"  … still {status_line(self.state, self.clock())}")

    def ask(self, question: str, ask: Callable[[str], bool]) -> bool:
        """A question to the user (``up``'s confirmation) with the live line out of the way."""
        if self._live is None:
            return ask(question)
        self._live.stop()
        try:
            return ask(question)
        finally:
            self._live.start()

    @contextmanager
    def open(self) -> Iterator[LiveProgress]:
        """Run the display for the duration of the block (and listen to the saga)."""
        from nimble_oke.services.saga import listening

        worker: threading.Thread | None = None
        if self.is_live:
            from rich.live import Live

            self._live = Live(
                get_renderable=self.render,
                console=self.console,
                refresh_per_second=REFRESH_PER_SECOND,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()
        else:
            worker = threading.Thread(target=self._heartbeat, name="progress", daemon=True)
            worker.start()
        try:
            with listening(self.on_event):
                yield self
        finally:
            self._stop.set()
            if self._live is not None:
                self._live.stop()
                self._live = None
            if worker is not None:
                worker.join(timeout=2.0)


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no real file behind it (closed, a test's buffer)
        return False


def for_command(command: str, output: str, session: str | None = None) -> LiveProgress | None:
    """The display a command gets: None with ``--output json``; live on a terminal."""
    if output == "json":
        return None
    import sys

    from rich.console import Console

    # stdout itself, not Rich's guess (FORCE_COLOR makes Rich treat a pipe as a terminal)
    live = _is_tty(sys.stdout) and os.environ.get("TERM") != "dumb"
    console = Console(highlight=False, soft_wrap=True, force_terminal=live)
    display = LiveProgress(command, console, live=live)
    display.state.session = session or ""
    return display


BENCH_LINE_EVERY_S = 10.0


class PlainBenchLines:
    """``nimble bench`` when stderr is not a terminal: the live line's text (rate, in
    flight, errors) appended to stderr every ``every_s`` and when the phase changes, so a
    log shows a long run moving. The engine calls it every 0.25 s with plain counters; it
    only compares two floats until a line is due (no cost on the request path)."""

    def __init__(
        self,
        write: Callable[[str], None],
        *,
        every_s: float = BENCH_LINE_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.write, self.every_s, self.clock = write, every_s, clock
        self._due = 0.0
        self._phase = ""
        self._previous: Any = None

    def __enter__(self) -> PlainBenchLines:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def __call__(self, p: Any) -> None:
        now = self.clock()
        if p.phase == self._phase and now < self._due:
            return
        from nimble_oke.bench.progress import status_line as bench_status

        previous = self._previous if self._previous is not None and p.phase == self._phase else None
        if previous is not None or p.phase != self._phase:
            self.write(f"bench {bench_status(p, previous)}")
        self._phase, self._previous, self._due = p.phase, p, now + self.every_s
