"""One way to wait for something: poll a probe until it answers or a deadline passes.

Every wait in the product (a work request, a node pool reaching its size, a Job, a
namespace going away, a Service's address) is the same loop: ask, stop when the answer
is there, give up after a real-time deadline, sleep between asks. Written once here so
the deadline arithmetic, the order of "check then give up" and the sleep are the same
everywhere, and so a test can drive a wait with its own clock and sleep.

The deadline is in *real* seconds (``time.monotonic``): simulators run on a scaled
clock, and callers convert their simulated budgets with ``Target.real_seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class PollTimeoutError(TimeoutError):
    """A wait gave up (the default error when the caller names none)."""


def poll_until(
    probe: Callable[[], T | None],
    *,
    timeout_s: float,
    interval_s: float,
    on_timeout: Callable[[], BaseException] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Call ``probe`` until it returns something other than None and return that.

    The probe is always asked at least once, and once more after the deadline has
    passed, so a wait never gives up on an answer that arrived during its last sleep.
    Errors the probe raises propagate (a failed work request is not something to wait
    out). When the deadline passes, raises ``on_timeout()`` (default :class:`PollTimeoutError`).
    """
    deadline = clock() + timeout_s
    while True:
        answer = probe()
        if answer is not None:
            return answer
        if clock() > deadline:
            raise (
                on_timeout()
                if on_timeout is not None
                else PollTimeoutError(f"gave up after {timeout_s:g} s")
            )
        sleep(interval_s)


def wait_quietly(
    probe: Callable[[], object | None],
    *,
    timeout_s: float,
    interval_s: float,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """:func:`poll_until` for best-effort waits: True when the probe answered, False when
    the deadline passed (the caller goes on either way)."""
    try:
        poll_until(probe, timeout_s=timeout_s, interval_s=interval_s, sleep=sleep)
    except PollTimeoutError:
        return False
    return True
