"""``poll_until``: the one deadline loop every wait of the product goes through."""

from __future__ import annotations

import pytest

from nimble_oke.errors import ProviderError
from nimble_oke.polling import PollTimeoutError, poll_until, wait_quietly


class FakeTime:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def test_returns_the_first_answer_and_sleeps_between_asks() -> None:
    t = FakeTime()
    answers = iter([None, None, "ready"])
    got = poll_until(
        lambda: next(answers), timeout_s=10, interval_s=2, sleep=t.sleep, clock=t.clock
    )
    assert got == "ready"
    assert t.sleeps == [2, 2]


def test_asks_once_more_after_the_deadline_then_raises_the_callers_error() -> None:
    t = FakeTime()
    asked: list[float] = []

    def probe() -> None:
        asked.append(t.now)

    with pytest.raises(ProviderError, match="pool did not come up"):
        poll_until(
            probe,
            timeout_s=5,
            interval_s=2,
            sleep=t.sleep,
            clock=t.clock,
            on_timeout=lambda: ProviderError("pool did not come up"),
        )
    assert asked == [0, 2, 4, 6]  # the last ask is past the deadline


def test_default_timeout_error_and_the_quiet_variant() -> None:
    t = FakeTime()
    with pytest.raises(PollTimeoutError, match="after 1 s"):
        poll_until(lambda: None, timeout_s=1, interval_s=1, sleep=t.sleep, clock=t.clock)
    assert wait_quietly(lambda: None, timeout_s=0, interval_s=0.001) is False
    assert wait_quietly(lambda: True, timeout_s=0, interval_s=0.001) is True


def test_errors_of_the_probe_are_not_waited_out() -> None:
    def probe() -> None:
        raise ProviderError("work request FAILED")

    with pytest.raises(ProviderError, match="FAILED"):
        poll_until(probe, timeout_s=60, interval_s=1)


def test_a_falsy_answer_other_than_none_is_an_answer() -> None:
    assert poll_until(lambda: 0, timeout_s=1, interval_s=1) == 0
