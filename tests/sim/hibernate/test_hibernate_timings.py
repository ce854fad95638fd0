"""The simulator's power-action timings are the planner's stated assumptions (one source:
domain/hibernate.py), drawn around their typical value, and a fault plan can pin them."""

from __future__ import annotations

import random
import statistics

import pytest

from nimble_oke.domain import hibernate
from nimble_oke.sim.oci.catalog import Timings


@pytest.mark.parametrize(
    ("name", "assumption"),
    [
        ("instance_start", hibernate.INSTANCE_START),
        ("node_rejoin", hibernate.NODE_REJOIN),
        ("os_shutdown", hibernate.OS_SHUTDOWN),
        ("instance_stop", hibernate.INSTANCE_STOP),
    ],
)
def test_draws_span_the_assumption_with_its_typical_value_as_median(
    name: str, assumption: hibernate.Assumption
) -> None:
    timings, rng = Timings(), random.Random(7)
    draws = [timings.draw(rng, name) for _ in range(4000)]
    assert assumption.best <= min(draws) and max(draws) <= assumption.worst
    assert statistics.median(draws) == pytest.approx(assumption.typical, rel=0.08)


def test_softstop_timeout_is_ocis_documented_15_minutes() -> None:
    assert Timings().softstop_timeout_s == hibernate.SOFTSTOP_TIMEOUT_S == 900


def test_a_fault_plan_pins_a_start_time() -> None:
    timings = Timings()
    timings.override({"instance_start_s": 30})
    assert [timings.draw(random.Random(i), "instance_start") for i in range(3)] == [30.0] * 3
    timings.override({"instance_start_max_s": 600})  # widened: the pinned typical stays
    draws = [timings.draw(random.Random(i), "instance_start") for i in range(200)]
    assert min(draws) >= 30 and max(draws) <= 600
