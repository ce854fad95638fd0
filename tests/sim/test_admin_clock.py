"""The simulators' admin clock API (sim/admin.py), through the client other processes use
(services/targets.SimClockClient): speed changes, forward jumps, and bad bodies refused."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from nimble_oke.services.targets import SimClockClient
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
