"""The simulated clock (sim/clock.py): the event clock jumps over activities only when the
stack is quiescent, runs at real speed otherwise, waits for participants that compute,
forgets silent ones; advance() plays timers in order; cron's next run."""

from __future__ import annotations

import asyncio
import calendar
import threading
import time
from collections.abc import Callable

import pytest

from nimble_oke.sim.clock import ACTIVITY, SAMPLE, SCHEDULED, SimClock
from nimble_oke.sim.kube.cron import CronSchedule


def _in_thread(fn: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    return thread


def test_an_activity_is_jumped_to_when_nothing_else_happens() -> None:
    clock = SimClock.event()
    try:
        began = time.monotonic()
        asyncio.run(clock.wait_until(clock.now() + 3600))  # an hour of provisioning
        assert time.monotonic() - began < 2.0
        assert 3600 <= clock.now() < 3610
        assert clock.jumps >= 1
    finally:
        clock.close()


def test_with_no_activity_pending_time_runs_at_real_speed() -> None:
    clock = SimClock.event()
    try:
        fired = threading.Event()
        clock.schedule(clock.now() + 3600, SAMPLE, fired.set)  # a periodic wake-up only
        clock.schedule(clock.now() + 7200, SCHEDULED, fired.set)  # a cron run
        time.sleep(0.5)
        assert clock.now() < 1.5 and not fired.is_set()
    finally:
        clock.close()


def test_busy_work_holds_the_jump_until_it_ends() -> None:
    clock = SimClock.event()
    try:
        done = threading.Event()
        with clock.busy():
            waiter = _in_thread(lambda: (clock.sleep(600), done.set()))
            time.sleep(0.4)
            assert clock.now() < 2 and not done.is_set()
        waiter.join(2)
        assert done.is_set() and clock.now() >= 600
    finally:
        clock.close()


def _beat(clock: SimClock, ident: str, busy: bool, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        clock.beat(ident, busy)
        time.sleep(0.1)


def test_a_computing_participant_holds_the_clock_and_a_silent_one_is_dropped() -> None:
    clock = SimClock.event()
    try:
        ident = clock.join("main")
        done = threading.Event()
        _in_thread(lambda: (clock.sleep(600), done.set()))
        _beat(clock, ident, True, 0.6)  # it computes: no jump
        assert not done.is_set() and clock.now() < 2
        began = time.monotonic()  # it stops beating (killed): dropped, the clock moves on
        assert done.wait(4)
        assert 1.0 < time.monotonic() - began < 3.5
        assert clock.participants() == []
    finally:
        clock.close()


def test_an_idle_participant_lets_time_jump_and_wakes_at_its_own_time() -> None:
    clock = SimClock.event()
    ident = clock.join("main")
    stop = threading.Event()

    def beats() -> None:
        while not stop.wait(0.1):
            clock.beat(ident, False)

    beater = _in_thread(beats)
    try:
        clock.schedule(clock.now() + 3600, ACTIVITY, None)  # provisioning in the background

        async def nap() -> float:
            await clock.participant_sleep(ident, clock.now() + 300)
            return clock.now()

        began = time.monotonic()
        woke = asyncio.run(nap())
        assert time.monotonic() - began < 2.0
        assert 300 <= woke < 305  # the clock stopped at its wake-up, not at the hour
        _beat(clock, ident, True, 0.3)  # awake and computing: the hour is not reached
        assert clock.now() < 310
    finally:
        stop.set()
        beater.join(1)
        clock.close()


def test_advance_plays_activity_and_scheduled_timers_in_order() -> None:
    clock = SimClock(1.0)  # no jumps of its own: only advance moves it on
    seen: list[tuple[str, float]] = []
    start = clock.now()

    def record(what: str) -> Callable[[], None]:
        return lambda: seen.append((what, round(clock.now() - start)))

    def slow_job() -> None:  # the watchdog's run takes real time: the next stop waits
        seen.append(("job", round(clock.now() - start)))
        clock.enter_busy()

        def finish() -> None:
            time.sleep(0.3)
            seen.append(("job done", round(clock.now() - start)))
            clock.exit_busy()

        _in_thread(finish)

    try:
        clock.schedule(start + 50, SAMPLE, record("sample"))  # not a stop
        clock.schedule(start + 300, SCHEDULED, slow_job)
        clock.schedule(start + 301, ACTIVITY, record("activity"))
        clock.schedule(start + 5000, ACTIVITY, record("after"))
        clock.advance(1000)
        assert seen == [
            ("sample", 300),
            ("job", 300),
            ("job done", 300),  # at 1× during the stop: not a minute later
            ("activity", 301),
        ]
        assert 1000 <= clock.now() - start < 1002
    finally:
        clock.close()


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("*/5 * * * *", "2026-06-01 12:03:20", "2026-06-01 12:05:00"),
        ("*/5 * * * *", "2026-06-01 12:05:00", "2026-06-01 12:10:00"),
        ("0 3 * * 1", "2026-06-01 12:00:00", "2026-06-08 03:00:00"),  # next Monday
        ("30 23 31 12 *", "2026-06-01 00:00:00", "2026-12-31 23:30:00"),
        ("0 0 29 2 *", "2026-03-01 00:00:00", None),  # no 29 February within a year and a day
    ],
)
def test_cron_next_run(expression: str, after: str, expected: str | None) -> None:
    def unix(text: str) -> float:
        return float(calendar.timegm(time.strptime(text, "%Y-%m-%d %H:%M:%S")))

    schedule = CronSchedule(expression)
    nxt = schedule.next_after(unix(after))
    assert nxt == (unix(expected) if expected else None)
    if nxt is not None:  # agrees with the minute-by-minute rule
        assert schedule.matches(nxt)
        assert schedule.latest_between(unix(after), nxt - 60) is None
