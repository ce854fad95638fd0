"""The simulated clock shared by the simulators (OCI API, Kubernetes API servers, NIM).

Two ways to run it:

- **Event clock** (``SimClock.event()``, what ``nimble sim start`` and ``nimble demo`` use):
  simulated time runs at real speed, and *jumps* to the next timer whenever something a
  person would not want to wait for is pending (an *activity*: a cluster or node being
  provisioned, an image pull, a model download or load, a volume attach, a delete) and
  the whole stack is *quiescent*. So provisioning takes seconds of real time, while a
  ready endpoint with nothing pending lives at human speed (a 2 h lease lasts 2 h).
- **Scaled clock** (``SimClock(scale)``, tests): simulated time runs ``scale`` times faster
  than real time, always.

Every wait on simulated time is a *timer* in one heap (``wait_until``, ``sleep_until``,
``schedule``), of one of four kinds:

- ``ACTIVITY``: provisioning, pulls, downloads, loads, attach, deletes. Pending ones let
  the event clock jump.
- ``SCHEDULED``: cron schedules, Job deadlines and back-offs: never a reason to jump, but
  every jump and every :meth:`SimClock.advance` stops at them, in order.
- ``SAMPLE``: periodic sampling (HPA scrapes, probes): jumps stop at them; an
  :meth:`~SimClock.advance` does not (one sample after a long jump stands for the rest).
- ``WAKE``: a participant's sleep (below); jumps stop at them, an advance does not.

*Quiescent* means: no simulator request in flight (API calls, controller passes, hook
calls, tool containers, traffic through a Service; long-lived watches and log follows
excluded), nothing fired in the last few milliseconds, every watched event loop has run
what was ready (a barrier posted to each), and every *participant* asleep or idle.

A *participant* is a client process that takes part in simulated time (``nimble up``
through its sim target): it registers, keeps a heartbeat (missed for
:data:`BEAT_EXPIRY_S`, it is dropped: a killed client frees the clock within ~2 s) telling
whether its main thread is computing, and sleeps by long-polling "wake me at simulated time
t". While it computes the clock does not jump (its CPU time is not magnified into simulated
minutes: it runs at real speed); while it sleeps the clock may jump to its wake-up. A
participant awake but idle (polling with ``time.sleep``) lets time jump after
:data:`IDLE_GRACE_S`, pausing :data:`DWELL_S` after every :data:`DWELL_EVERY_SIM_S` jumped,
so that its polls see the stack at least that often (its view lags by less than that).

:meth:`SimClock.advance` (``nimble sim advance``) plays what falls inside the jump in
order: it stops at every activity and scheduled timer up to the target (the in-cluster
watchdog's CronJob runs, controllers, the OCI simulator's lifecycle events), waits for
quiescence at each, then moves to the target. A lease that ends inside the jump is enforced
by the watchdog run that follows its end, and billing stops there.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

ACTIVITY = "activity"
SCHEDULED = "scheduled"
SAMPLE = "sample"
WAKE = "wake"
KINDS = (ACTIVITY, SCHEDULED, SAMPLE, WAKE)
ADVANCE_STOPS = (ACTIVITY, SCHEDULED)

SETTLE_S = 0.005  # real seconds of calm after any change before a jump
IDLE_GRACE_S = 0.15  # an awake participant must have been idle this long (real)
DWELL_S = 0.12  # real seconds between jumps while a participant polls with time.sleep
DWELL_EVERY_SIM_S = 10.0  # ... once this much simulated time was jumped since the last
BEAT_EXPIRY_S = 1.5  # a participant whose heartbeat stops this long is dropped
BARRIER_HOPS = 3  # loop iterations a barrier waits through (a woken task runs in the next)
BARRIER_TIMEOUT_S = 1.0
HINT_POLL_S = 0.02  # the longest real wait real_seconds() advises on the event clock
HINT_HOLD_S = 0.03  # ... and how long the clock then stays at the moment it was asked about
ADVANCE_PATIENCE_S = 30.0  # real seconds an advance waits for quiescence at one stop
IDLE_DRIVER_EXIT_S = 5.0  # the driver thread ends after this long with nothing to do


@dataclass(order=True)
class Timer:
    """One wait on simulated time (a handle: :meth:`cancel` it when no longer needed)."""

    due: float
    seq: int
    kind: str = field(compare=False)
    fire: Callable[[], None] | None = field(compare=False, repr=False)
    clock: SimClock | None = field(default=None, compare=False, repr=False)
    done: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        if self.clock is not None:
            self.clock._cancel(self)


@dataclass
class _Participant:
    ident: str
    thread_name: str
    last_beat: float  # real monotonic
    idle_since: float | None = None  # real monotonic, None while (presumed) busy
    asleep_until: float | None = None  # simulated; None while awake
    topics: frozenset[str] = frozenset()
    wake: Callable[[], None] | None = None
    seen: dict[str, int] = field(default_factory=dict)  # topic changes it has been awake for


class SimClock:
    """Monotonic simulated time in seconds, starting at ``epoch`` (Unix seconds)."""

    def __init__(
        self, scale: float = 1.0, epoch: float | None = None, *, auto_advance: bool = False
    ) -> None:
        if scale <= 0:
            raise ValueError(f"time scale must be > 0, got {scale}")
        self._scale = float(scale)
        self._auto = auto_advance
        self._epoch = time.time() if epoch is None else float(epoch)
        self._t0 = time.monotonic()
        self._offset = 0.0
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._heap: list[Timer] = []
        self._seq = itertools.count()
        self._activities = 0
        self._hints: dict[float, Timer] = {}
        self._busy = 0
        self._hold_until = 0.0
        self._last_change = 0.0
        self._last_jump = 0.0
        self._jumped_since_dwell = 0.0  # simulated seconds jumped since the last dwell
        self.jumps = 0  # how many jumps, and how far in total (simulated seconds)
        self.jumped_s = 0.0
        self._epoch_no = 0
        self._loops: set[asyncio.AbstractEventLoop] = set()
        self._participants: dict[str, _Participant] = {}
        self._topic_changes: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._advance_to: float | None = None
        self._advance_lock = threading.Lock()
        self._driver: threading.Thread | None = None
        self._closed = False

    @classmethod
    def event(cls, epoch: float | None = None) -> SimClock:
        """The event clock: real speed, jumping over activities when the stack is quiet."""
        return cls(1.0, epoch, auto_advance=True)

    # --- reading ------------------------------------------------------------------------------
    @property
    def scale(self) -> float:
        """Simulated seconds per real second between jumps."""
        return self._scale

    @property
    def auto_advance(self) -> bool:
        return self._auto

    @property
    def mode(self) -> str:
        return "event" if self._auto else "scaled"

    def now(self) -> float:
        """Simulated seconds since the clock started."""
        with self._lock:
            return self._now_locked()

    def _now_locked(self) -> float:
        return (time.monotonic() - self._t0) * self._scale + self._offset

    def wall(self) -> float:
        """Simulated Unix time (epoch + now), for timestamps shown to clients."""
        return self._epoch + self.now()

    @property
    def epoch(self) -> float:
        return self._epoch

    def real_seconds(self, sim_seconds: float) -> float:
        """How long to wait (really) for ``sim_seconds`` of simulated time to pass. On the
        event clock time may jump, so this is short, and the moment asked about becomes a
        stop for jumps: a caller polling with it (the kubelet's probe loop) is not jumped
        over."""
        sim_seconds = max(0.0, sim_seconds)
        if not self._auto:
            return sim_seconds / self._scale
        if sim_seconds > 0:
            self._hint(self.now() + sim_seconds)
        return min(sim_seconds / self._scale, HINT_POLL_S)

    def _hint(self, due: float) -> None:
        key = round(due, 3)
        with self._lock:
            if key in self._hints:
                return
            timer = Timer(due, next(self._seq), SAMPLE, None, self)
            self._hints[key] = timer
            self._push_locked(timer)

    # --- timers -------------------------------------------------------------------------------
    def schedule(self, due: float, kind: str, fire: Callable[[], None] | None) -> Timer:
        """Call ``fire()`` (on the clock's thread: keep it quick, e.g. a
        ``call_soon_threadsafe``) once simulated time reaches ``due``."""
        if kind not in KINDS:
            raise ValueError(f"timer kind must be one of {KINDS}, got {kind!r}")
        timer = Timer(due, next(self._seq), kind, fire, self)
        with self._lock:
            self._push_locked(timer)
        return timer

    def _push_locked(self, timer: Timer) -> None:
        heapq.heappush(self._heap, timer)
        if timer.kind == ACTIVITY:
            self._activities += 1
        self._changed_locked()
        self._ensure_driver_locked()

    def _cancel(self, timer: Timer) -> None:
        with self._lock:
            if timer.done:
                return
            timer.done = True
            if timer.kind == ACTIVITY:
                self._activities -= 1
            self._changed_locked()

    async def wait_until(
        self, sim_time: float, poll: float = 0.05, *, kind: str = ACTIVITY
    ) -> None:
        """Await until simulated time reaches ``sim_time`` (``poll`` is ignored: the clock
        wakes the waiter itself). Honours jumps and :meth:`advance`."""
        del poll
        if self.now() >= sim_time:
            return
        loop = asyncio.get_running_loop()
        self.watch_loop(loop)
        future: asyncio.Future[None] = loop.create_future()
        timer = self.schedule(sim_time, kind, _resolver(loop, future))
        try:
            await future
        finally:
            timer.cancel()

    def sleep_until(self, sim_time: float, *, kind: str = ACTIVITY) -> None:
        """Block this thread until simulated time reaches ``sim_time``."""
        if self.now() >= sim_time:
            return
        event = threading.Event()
        timer = self.schedule(sim_time, kind, event.set)
        try:
            while not event.wait(1.0):
                if self._closed:
                    return
        finally:
            timer.cancel()

    def sleep(self, sim_seconds: float, *, kind: str = ACTIVITY) -> None:
        """Block for ``sim_seconds`` of simulated time."""
        self.sleep_until(self.now() + max(0.0, sim_seconds), kind=kind)

    async def asleep(self, sim_seconds: float, *, kind: str = ACTIVITY) -> None:
        """Await ``sim_seconds`` of simulated time."""
        await self.wait_until(self.now() + max(0.0, sim_seconds), kind=kind)

    def pending(self) -> dict[str, int]:
        """Live timers by kind, work in progress (``busy``) and jumps so far (for tests and
        the admin API)."""
        with self._lock:
            out = dict.fromkeys(KINDS, 0)
            for timer in self._heap:
                if not timer.done:
                    out[timer.kind] += 1
            out["busy"] = self._busy
            out["jumps"] = self.jumps
            return out

    # --- work the clock waits for ---------------------------------------------------------------
    def enter_busy(self) -> None:
        with self._lock:
            self._busy += 1
            self._changed_locked()

    def exit_busy(self) -> None:
        with self._lock:
            self._busy -= 1
            self._changed_locked()
            self._cond.notify_all()

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """Work in progress: the clock does not jump while it runs."""
        self.enter_busy()
        try:
            yield
        finally:
            self.exit_busy()

    def hold(self, seconds: float) -> None:
        """Something happened that may go on for up to ``seconds`` (real) without a sign
        (tokens streaming through a Service): no jump before then."""
        with self._lock:
            self._hold_until = max(self._hold_until, time.monotonic() + seconds)
            self._last_change = time.monotonic()

    def watch_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """An event loop whose ready work must run before the clock jumps."""
        if loop in self._loops:
            return
        with self._lock:
            self._loops.add(loop)

    def _changed_locked(self) -> None:
        self._epoch_no += 1
        self._last_change = time.monotonic()
        self._cond.notify_all()

    # --- participants ---------------------------------------------------------------------------
    def join(self, thread_name: str = "") -> str:
        """Register a participant; returns its id (heartbeat it with :meth:`beat`)."""
        with self._lock:
            ident = f"p{next(self._ids)}"
            self._participants[ident] = _Participant(
                ident, thread_name, time.monotonic(), seen=dict(self._topic_changes)
            )
            self._changed_locked()
            self._ensure_driver_locked()
            return ident

    def leave(self, ident: str) -> bool:
        with self._lock:
            gone = self._participants.pop(ident, None)
            self._changed_locked()
        if gone is not None and gone.wake is not None:
            gone.wake()
        return gone is not None

    def beat(self, ident: str, busy: bool | None) -> bool:
        """A heartbeat: ``busy`` says whether the participant's thread computed in the last
        beat period (None: it cannot tell, taken as idle). False for an unknown id."""
        with self._lock:
            p = self._participants.get(ident)
            if p is None:
                return False
            now = time.monotonic()
            p.last_beat = now
            if busy:
                if p.idle_since is not None:
                    p.idle_since = None
                    self._changed_locked()
            elif p.idle_since is None:
                p.idle_since = now
                self._cond.notify_all()
            return True

    def participants(self) -> list[dict[str, object]]:
        with self._lock:
            return [
                {
                    "id": p.ident,
                    "thread": p.thread_name,
                    "asleep_until": p.asleep_until,
                    "idle": p.idle_since is not None,
                }
                for p in self._participants.values()
            ]

    async def participant_sleep(
        self, ident: str, sim_time: float, topics: frozenset[str] = frozenset()
    ) -> bool:
        """Hold participant ``ident`` asleep until simulated time reaches ``sim_time`` or
        one of ``topics`` is :meth:`notify`-ed. False for an unknown participant."""
        loop = asyncio.get_running_loop()
        self.watch_loop(loop)
        future: asyncio.Future[None] = loop.create_future()
        wake = _resolver(loop, future)
        with self._lock:
            p = self._participants.get(ident)
            if p is None:
                return False
            missed = any(self._topic_changes.get(t, 0) > p.seen.get(t, 0) for t in topics)
            if missed or self._now_locked() >= sim_time:
                # something it sleeps on changed while it was awake: look again first
                p.seen = dict(self._topic_changes)
                return True
            timer = Timer(sim_time, next(self._seq), WAKE, wake, self)
            p.asleep_until, p.topics, p.wake = sim_time, topics, wake
            self._push_locked(timer)
        try:
            await future
        finally:
            timer.cancel()
            with self._lock:
                p.asleep_until, p.topics, p.wake = None, frozenset(), None
                p.seen = dict(self._topic_changes)
                p.idle_since = None  # awake, and presumed busy until a beat says otherwise
                p.last_beat = max(p.last_beat, time.monotonic())
                self._changed_locked()
        return True

    def wake_all(self) -> None:
        """End every participant's sleep now (the simulator is stopping)."""
        with self._lock:
            wakes = [p.wake for p in self._participants.values() if p.wake is not None]
        for wake in wakes:
            wake()

    def notify(self, topic: str) -> None:
        """Something changed in ``topic`` (e.g. ``"oci"``: a lifecycle event ran or a
        resource was changed through the API): wake the participants sleeping on it; one
        awake now finds its next sleep on ``topic`` ended at once (no lost wake-up)."""
        with self._lock:
            self._topic_changes[topic] = self._topic_changes.get(topic, 0) + 1
            wakes = [
                p.wake
                for p in self._participants.values()
                if p.wake is not None and topic in p.topics
            ]
        for wake in wakes:
            wake()

    # --- jumping ---------------------------------------------------------------------------------
    def advance(self, seconds: float) -> None:
        """Move simulated time ``seconds`` forward, playing in order every activity and
        scheduled timer that falls inside (a quiescent stack at each), then to the end.
        Blocks until done (from a thread that is not a simulator's event loop)."""
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        with self._advance_lock, self._lock:
            target = self._now_locked() + seconds
            if self._on_watched_loop():
                # cannot wait for our own loop: a plain jump (timers fire after it)
                self._offset += seconds
                self._changed_locked()
                return
            self._advance_to = target
            self._ensure_driver_locked()
            self._cond.notify_all()
            while self._advance_to is not None and not self._closed:
                self._cond.wait(1.0)

    def _on_watched_loop(self) -> bool:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        return loop in self._loops

    def _ensure_driver_locked(self) -> None:
        if self._closed or (self._driver is not None and self._driver.is_alive()):
            return
        self._driver = threading.Thread(target=self._drive, name="sim-clock", daemon=True)
        self._driver.start()

    def close(self) -> None:
        """Stop the driver thread; waiting threads are released."""
        with self._lock:
            self._closed = True
            self._advance_to = None
            self._cond.notify_all()
            driver = self._driver
        if driver is not None and driver is not threading.current_thread():
            driver.join(5)

    def _drive(self) -> None:
        idle_since = time.monotonic()
        stop_since: float | None = None
        while True:
            with self._lock:
                if self._closed:
                    return
                fired = self._pop_due_locked()
                self._expire_participants_locked()
                target, wait = self._plan_locked()
                if not fired and target is None and not self._heap and not self._participants:
                    if time.monotonic() - idle_since > IDLE_DRIVER_EXIT_S:
                        self._driver = None
                        return
                else:
                    idle_since = time.monotonic()
            for fire in fired:
                try:
                    fire()
                except Exception:
                    log.exception("simulated clock timer failed")
            if fired:
                continue
            if target is not None:
                stop_since = stop_since or time.monotonic()
                patience = self._advance_to is not None and (
                    time.monotonic() - stop_since > ADVANCE_PATIENCE_S
                )
                quiet, retry = self._quiet()
                if quiet or patience:
                    if patience and not quiet:
                        log.warning("advance: the stack stayed busy; moving on")
                    with self._lock:
                        self._jump_locked(target)
                    stop_since = None
                    continue
                wait = min(wait, retry)
            else:
                stop_since = None
            with self._lock:
                if not self._closed:
                    self._cond.wait(wait)

    def _first_live_locked(self, kinds: tuple[str, ...] = KINDS) -> Timer | None:
        while self._heap and self._heap[0].done:
            heapq.heappop(self._heap)
        if kinds == KINDS:
            return self._heap[0] if self._heap else None
        live = [t for t in self._heap if not t.done and t.kind in kinds]
        return min(live) if live else None

    def _pop_due_locked(self) -> list[Callable[[], None]]:
        now = self._now_locked()
        fired: list[Callable[[], None]] = []
        while self._heap and (self._heap[0].done or self._heap[0].due <= now):
            timer = heapq.heappop(self._heap)
            if timer.done:
                continue
            timer.done = True
            if timer.kind == ACTIVITY:
                self._activities -= 1
            if timer.fire is None:
                # a poller (the kubelet's probe loop) meant to look at this moment: give it
                # the real time it sleeps between looks before the clock moves on
                self._hints.pop(round(timer.due, 3), None)
                self._hold_until = max(self._hold_until, time.monotonic() + HINT_HOLD_S)
            else:
                fired.append(timer.fire)
        if fired:
            self._changed_locked()
        return fired

    def _plan_locked(self) -> tuple[float | None, float]:
        """(simulated time to jump to, or None; real seconds to wait otherwise)."""
        first = self._first_live_locked()
        wait = 0.5 if self._participants else 5.0
        if first is not None:
            wait = min(wait, max(0.0, first.due - self._now_locked()) / self._scale)
        if self._advance_to is not None:
            stop = self._first_live_locked(ADVANCE_STOPS)
            if stop is not None and stop.due <= self._advance_to:
                return stop.due, wait
            return self._advance_to, wait
        if self._auto and self._activities > 0 and first is not None:
            return first.due, wait
        return None, wait

    def _jump_locked(self, target: float) -> None:
        now = self._now_locked()
        if target > now:
            self._offset += target - now
            self.jumps += 1
            self.jumped_s += target - now
            self._jumped_since_dwell += target - now
        self._last_jump = time.monotonic()
        if self._advance_to is not None and target >= self._advance_to:
            self._advance_to = None
        self._changed_locked()

    def _expire_participants_locked(self) -> None:
        now = time.monotonic()
        gone = [p for p in self._participants.values() if now - p.last_beat > BEAT_EXPIRY_S]
        for p in gone:
            del self._participants[p.ident]
            if p.wake is not None:
                p.wake()
        if gone:
            self._changed_locked()

    def _quiet(self) -> tuple[bool, float]:
        """(may the clock jump now, real seconds to wait before asking again)."""
        with self._lock:
            retry = self._calm_retry_locked()
            if retry > 0:
                return False, retry
            mark, loops = self._epoch_no, list(self._loops)
        if not self._barrier(loops):
            return False, SETTLE_S
        with self._lock:
            if self._epoch_no != mark or self._busy:
                return False, SETTLE_S
            return True, 0.0

    def _calm_retry_locked(self) -> float:
        """0 when nothing (work, recent changes, participants) forbids a jump, else how
        long to wait before looking again."""
        now = time.monotonic()
        if self._busy:
            return 0.05
        waits = [self._hold_until - now, self._last_change + SETTLE_S - now]
        if self._advance_to is None:
            awake = [p for p in self._participants.values() if p.asleep_until is None]
            for p in awake:
                if p.idle_since is None:
                    waits.append(0.05)
                else:
                    waits.append(p.idle_since + IDLE_GRACE_S - now)
            if awake and self._jumped_since_dwell >= DWELL_EVERY_SIM_S:
                dwell = self._last_jump + DWELL_S - now
                if dwell <= 0:
                    self._jumped_since_dwell = 0.0
                waits.append(dwell)
        return max(0.0, *waits)

    def _barrier(self, loops: list[asyncio.AbstractEventLoop]) -> bool:
        """Each loop has run everything that was ready (and what that made ready, for a
        few iterations)."""
        events: list[threading.Event] = []
        for loop in loops:
            if loop.is_closed() or not loop.is_running():
                with self._lock:
                    self._loops.discard(loop)
                continue
            done = threading.Event()
            try:
                loop.call_soon_threadsafe(_hop, loop, done, BARRIER_HOPS)
            except RuntimeError:  # closed meanwhile
                continue
            events.append(done)
        deadline = time.monotonic() + BARRIER_TIMEOUT_S
        return all(e.wait(max(0.0, deadline - time.monotonic())) for e in events)


def _hop(loop: asyncio.AbstractEventLoop, done: threading.Event, left: int) -> None:
    if left <= 1:
        done.set()
    else:
        loop.call_soon(_hop, loop, done, left - 1)


def _resolver(loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> Callable[[], None]:
    def resolve() -> None:
        if not future.done():
            future.set_result(None)

    def fire() -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(resolve)

    return fire
