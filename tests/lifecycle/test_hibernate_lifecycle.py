"""`nimble down --hibernate` and `nimble up` from hibernation on the joined simulators,
through the real OCI SDK (Compute GetInstance/InstanceAction/ListShapes, Container Engine,
Load Balancer) and lightkube: the GPU node is stopped and started, not recreated.

Issue 22's bar: on VM.GPU.A10.1 with meta/llama-3.1-8b-instruct, ready within 5 modeled
minutes of the wake; zero GPU-billed seconds while hibernated by the simulator's billing
meter; refused with the reason for shapes OCI bills while stopped."""

from __future__ import annotations

from pathlib import Path

import pytest
from hibernate_session import (
    CONFIG,
    SESSION,
    TYPICAL_WAKE,
    compute_client,
    gpu_instance,
    live_kinds,
    nim_pulls,
    planned,
    quiet,
    session,
)

from nimble_oke.errors import ConfigError
from nimble_oke.services.costs import session_accrual, session_cost
from nimble_oke.services.hibernate import hibernate, refusal
from nimble_oke.services.lifecycle import down, up
from nimble_oke.sim.oci import FaultPlan
from nimble_oke.sim.oci.billing import priced_usd
from nimble_oke.state.status import SessionStatus


def test_hibernate_stops_the_gpu_bill_and_up_is_ready_within_five_minutes(
    tmp_path: Path,
) -> None:
    faults = FaultPlan(timings=TYPICAL_WAKE)
    with session(tmp_path, seed=11, faults=faults) as (stack, target, store, plan):
        compute = compute_client(stack)
        first = up(plan.config, plan.plan, target, store, say=quiet, bench=False)
        assert first.ok, first.error
        instance = gpu_instance(store, target)
        messages: list[str] = []
        result = hibernate(SESSION, plan.config, target, store, say=messages.append)

        # the instance is STOPPED (not terminated): node pool, cluster, volumes stay; LB goes
        assert compute.get_instance(instance).data.lifecycle_state == "STOPPED"
        assert store.session(SESSION).status == SessionStatus.HIBERNATED
        assert {"cluster", "node_pool", "volume"} <= live_kinds(store)
        assert "load_balancer" not in live_kinds(store)
        assert any("storage only" in m for m in messages), messages
        assert 0.05 < result.usd_per_day < 2.0  # boot volume + resting cache, no GPU
        assert session_cost(SESSION, None, store)["storage_usd_per_day"] == pytest.approx(
            result.usd_per_day, rel=1e-3
        )

        # what `nimble up` plans now: the wake, with its range
        again = planned(tmp_path / "nimble.yaml")
        assert any(
            n.startswith("hibernated: up starts the stopped GPU node") for n in again.plan.notes
        )

        # two hours asleep: the simulator's meter bills no GPU second
        asleep_from = stack.clock.now()  # the billing rows' clock
        stack.clock.advance(2 * 3600)  # the laptop closed for two hours (nimble sim advance)
        asleep_to = stack.clock.now()
        assert asleep_to - asleep_from >= 2 * 3600
        usd, gpu_s = priced_usd(stack.oci.billing(), start=asleep_from, end=asleep_to)
        assert gpu_s == 0.0
        assert usd == pytest.approx(result.usd_per_day / 12, rel=0.1)
        pulls_before = nim_pulls(stack)

        messages.clear()
        woken = up(plan.config, plan.plan, target, store, say=messages.append, bench=False)
        assert woken.ok, woken.error
        assert woken.wake == "hibernated"
        assert woken.ready_at is not None and woken.started_at is not None
        ready_min = (woken.ready_at - woken.started_at) / 60
        assert ready_min <= 5.0, [(p["name"], p["seconds"]) for p in woken.phases]
        assert woken.smoke is not None and woken.smoke["passed"]
        assert compute.get_instance(instance).data.lifecycle_state == "RUNNING"
        assert gpu_instance(store, target) == instance  # the same node, woken
        new = [m for key, m in nim_pulls(stack).items() if key not in pulls_before]
        assert new and all("already present on machine" in m for m in new), new
        assert "load_balancer" in live_kinds(store)

        # journal and bill agree over the whole session
        journal = session_accrual(store, SESSION, now=stack.clock.wall(), read_lease=False)
        assert journal.accrual.total_usd == pytest.approx(
            priced_usd(stack.oci.billing())[0], rel=0.05
        )
        down(SESSION, plan.config, target, store, say=quiet)
        compute.base_client.session.close()


def test_shapes_billed_while_stopped_are_refused_from_the_api_answer(tmp_path: Path) -> None:
    with session(tmp_path, seed=12) as (_stack, target, _store, plan):
        for shape in ("BM.GPU.A10.4", "VM.GPU3.1"):
            why = refusal(target, plan.config, shape, None)
            assert why is not None
            assert f"cannot hibernate {shape}" in why
            assert "is_billed_for_stopped_instance=true" in why
            assert "--keep-cluster" in why and "--keep-node-image" in why
        for shape in ("VM.GPU.A10.1", "VM.GPU.A10.2"):
            assert refusal(target, plan.config, shape, None) is None


def test_hibernate_of_a_bare_metal_a10_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    config = dict(CONFIG, gpu_pool={"shape": "BM.GPU.A10.4"})
    with session(tmp_path, seed=13, config=config) as (_stack, target, store, plan):
        first = up(plan.config, plan.plan, target, store, say=quiet, bench=False)
        assert first.ok, first.error
        instance = gpu_instance(store, target)
        with pytest.raises(ConfigError) as refused:
            hibernate(SESSION, plan.config, target, store, say=quiet)
        assert "cannot hibernate BM.GPU.A10.4" in refused.value.message
        assert refused.value.exit_code != 0
        assert store.session(SESSION).status == SessionStatus.READY
        assert target.provider.instance_info(instance).state == "RUNNING"
        assert "load_balancer" in live_kinds(store)
        down(SESSION, plan.config, target, store, say=quiet)
