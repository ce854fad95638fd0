"""wait_ready waits between polls with the ``sleep`` it is given (the target's: a wait on
the simulator's clock), not with time.sleep."""

from __future__ import annotations

import time

from nimble_oke.kube.wait import wait_ready

from .conftest import NAMESPACE, SELECTOR, Deployer


def test_wait_ready_polls_with_the_given_sleep(deployer: Deployer) -> None:
    deployer.deploy()
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(0.05)

    result = wait_ready(deployer.client, NAMESPACE, SELECTOR, timeout_s=60, poll_s=7.0, sleep=sleep)
    assert result.phases[-1][0] == "ready"
    assert waits and set(waits) == {7.0}  # every wait between two polls went through it
