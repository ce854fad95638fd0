"""The simulators' admin clock API (sim/admin.py), through the client other processes use
(services/targets.SimClockClient): forward jumps, participants (a killed one forgotten),
and bad bodies refused (the speed is not settable)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from nimble_oke.services.targets import SimClockClient
from nimble_oke.sim.clock import ACTIVITY
from nimble_oke.sim.stack import SimStack


def _post(url: str, body: object) -> tuple[int, dict[str, object]]:
    req = urllib.request.Request(
        f"{url}/admin/clock",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_advance_jumps_the_shared_clock_forward(tmp_path: Path) -> None:
    with SimStack(tmp_path / "sim", time_scale=1.0, seed=3) as stack:
        clock = SimClockClient(stack.endpoints()["admin"])
        before = clock.now()
        clock.advance(7200)
        assert 7200 <= clock.now() - before < 7260
        assert 7200 <= stack.clock.wall() - before < 7260  # the simulators' own clock moved


@pytest.mark.parametrize(
    "body",
    [{}, {"advance": -5}, {"advance": 40 * 86400}, {"advance": "soon"}, {"scale": 0}, [1]],
    ids=["empty", "backwards", "beyond-a-month", "not-a-number", "zero-scale", "not-an-object"],
)
def test_bad_clock_requests_are_refused_and_change_nothing(tmp_path: Path, body: object) -> None:
    with SimStack(tmp_path / "sim", time_scale=1.0, seed=3) as stack:
        url = str(stack.endpoints()["admin"])
        before = stack.clock.now()
        status, answer = _post(url, body)
        assert status == 400 and "expected" in str(answer["error"]), answer
        assert stack.clock.now() - before < 60
        assert stack.clock.scale == 1.0


def test_the_speed_is_not_settable_by_any_client(tmp_path: Path) -> None:
    with SimStack(tmp_path / "sim") as stack:
        status, answer = _post(str(stack.endpoints()["admin"]), {"scale": 1.0})
        assert status == 400 and "not settable" in str(answer["error"])
        assert stack.clock.mode == "event"


def _participants(url: str) -> list[object]:
    with urllib.request.urlopen(f"{url}/admin/clock", timeout=10) as resp:
        data = json.loads(resp.read())
    participants: list[object] = data["participants"]
    return participants


CHILD = """
import sys, time
from nimble_oke.services.targets import SimClockClient
from nimble_oke.sim.clock import ACTIVITY
clock = SimClockClient(sys.argv[1])
clock.join()
print("joined", flush=True)
time.sleep(60)
"""


def test_a_participant_sleeps_on_the_clock_and_a_killed_one_is_forgotten(tmp_path: Path) -> None:
    with SimStack(tmp_path / "sim") as stack:
        url = str(stack.endpoints()["admin"])
        clock = SimClockClient(url)
        clock.join()
        try:
            # provisioning pending in the background: the sleeping client is jumped to its
            # own wake-up (not past it), in well under a second
            stack.clock.schedule(stack.clock.now() + 7200, ACTIVITY, None)
            before, began = clock.now(), time.monotonic()
            clock.sleep(600)
            assert time.monotonic() - began < 2.0
            assert 600 <= clock.now() - before < 610
        finally:
            clock.leave()
        assert _participants(url) == []

        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, url], stdout=subprocess.PIPE, text=True
        )
        assert child.stdout is not None and child.stdout.readline().strip() == "joined"
        assert len(_participants(url)) == 1
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        child.stdout.close()
        deadline = time.monotonic() + 3
        while _participants(url) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _participants(url) == []
