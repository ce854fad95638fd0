"""Waking a hibernated session when things go wrong: START finds no host (the fallback to
the standby path, said), a step of the wake fails (every step undone: hibernated again,
never half-woken), the process dies mid-wake (the next `up` resumes it)."""

from __future__ import annotations

import pytest
from hibernate_session import (
    SESSION,
    TYPICAL_WAKE,
    compute_client,
    gpu_instance,
    live_kinds,
    quiet,
    session,
)

from nimble_oke.services import up_steps
from nimble_oke.services.hibernate import hibernate
from nimble_oke.services.lifecycle import down, up
from nimble_oke.sim.oci import FaultPlan, FaultRule
from nimble_oke.sim.oci.billing import priced_usd
from nimble_oke.state.status import SessionStatus
from nimble_oke.state.store import StateStore

NO_HOST = FaultRule(operation="InstanceAction", kind="out_of_host_capacity")


class SimulatedCrash(BaseException):
    """The process dies here (no undo runs, the journal stays)."""


def test_start_without_a_host_falls_back_to_the_standby_path(tmp_path) -> None:
    faults = FaultPlan(rules=[NO_HOST], timings=TYPICAL_WAKE)
    with session(tmp_path, seed=21, faults=faults) as (stack, target, store, plan):
        compute = compute_client(stack)
        assert up(plan.config, plan.plan, target, store, say=quiet, bench=False).ok
        stopped = gpu_instance(store, target)
        hibernate(SESSION, plan.config, target, store, say=quiet)
        messages: list[str] = []
        woken = up(plan.config, plan.plan, target, store, say=messages.append, bench=False)
        assert woken.ok, woken.error
        assert woken.wake is not None and woken.wake.startswith("fell back to standby")
        assert "Out of host capacity" in woken.wake
        said = "\n".join(messages)
        assert "no host for" in said and "falling back to the standby path" in said
        # a new node in a new pool; the stopped one is gone with its pool
        assert gpu_instance(store, target) != stopped
        assert compute.get_instance(stopped).data.lifecycle_state in ("TERMINATING", "TERMINATED")
        assert store.session(SESSION).status == SessionStatus.READY
        assert woken.smoke is not None and woken.smoke["passed"]
        down(SESSION, plan.config, target, store, say=quiet)
        compute.base_client.session.close()


def test_a_failed_wake_is_undone_to_hibernated(tmp_path, monkeypatch) -> None:
    with session(tmp_path, seed=22, faults=FaultPlan(timings=TYPICAL_WAKE)) as (
        stack,
        target,
        store,
        plan,
    ):
        assert up(plan.config, plan.plan, target, store, say=quiet, bench=False).ok
        instance = gpu_instance(store, target)
        hibernate(SESSION, plan.config, target, store, say=quiet)

        def broken(self, run) -> None:  # the wait fails (say, an API outage)
            from nimble_oke.errors import KubeError

            raise KubeError("NIM pod not ready: the API server is unavailable")

        with monkeypatch.context() as patch:
            patch.setattr(up_steps.WaitReady, "do", broken)  # the step the wake shares with up
            failed = up(plan.config, plan.plan, target, store, say=quiet, bench=False)
        assert not failed.ok and failed.failed_step == "wait ready"
        assert failed.rollback_failed == []
        assert store.session(SESSION).status == SessionStatus.HIBERNATED
        assert target.provider.instance_info(instance).state == "STOPPED"
        assert "load_balancer" not in live_kinds(store)
        # the journal's GPU meters are closed again: it accrues storage only, like the bill
        at = stack.clock.now()
        stack.clock.advance(3600)
        _usd, gpu_s = priced_usd(stack.oci.billing(), start=at, end=stack.clock.now())
        assert gpu_s == 0.0
        woken = up(plan.config, plan.plan, target, store, say=quiet, bench=False)
        assert woken.ok and woken.wake == "hibernated", woken.error
        down(SESSION, plan.config, target, store, say=quiet)


@pytest.mark.parametrize("step", ["start instances", "node ready", "redeploy"])
def test_a_wake_killed_at_a_step_is_resumed_by_the_next_up(tmp_path, monkeypatch, step) -> None:
    seed = 23 + ["start instances", "node ready", "redeploy"].index(step)
    with session(tmp_path, seed=seed, faults=FaultPlan(timings=TYPICAL_WAKE)) as (
        _stack,
        target,
        store,
        plan,
    ):
        assert up(plan.config, plan.plan, target, store, say=quiet, bench=False).ok
        hibernate(SESSION, plan.config, target, store, say=quiet)
        real = StateStore.step_started

        def step_started(self: StateStore, run_id: str, name: str) -> int:
            step_id = real(self, run_id, name)
            if name == step:
                raise SimulatedCrash(step)
            return step_id

        with monkeypatch.context() as patch, pytest.raises(SimulatedCrash):
            patch.setattr(StateStore, "step_started", step_started)
            up(plan.config, plan.plan, target, store, say=quiet, bench=False)
        messages: list[str] = []
        woken = up(plan.config, plan.plan, target, store, say=messages.append, bench=False)
        assert woken.ok, woken.error
        assert any(f"stopped in '{step}'" in m for m in messages), messages
        assert store.session(SESSION).status == SessionStatus.READY
        down(SESSION, plan.config, target, store, say=quiet)


def test_the_watchdog_stops_a_node_started_outside_nimble_while_hibernated(tmp_path) -> None:
    """The lease says hibernated: a watchdog that runs at all runs on a started node."""
    from nimble_oke.kube.connect import client_for
    from nimble_oke.services import watchdog

    with session(tmp_path, seed=31, faults=FaultPlan(timings=TYPICAL_WAKE)) as (
        stack,
        target,
        store,
        plan,
    ):
        assert up(plan.config, plan.plan, target, store, say=quiet, bench=False).ok
        instance = gpu_instance(store, target)
        hibernate(SESSION, plan.config, target, store, say=quiet)
        kubeconfig, cluster_id = store.live_cluster(SESSION)
        ns = plan.config.nim.namespace
        client = client_for(kubeconfig, target.token(cluster_id), ns)
        lease = watchdog.lease_from_configmap(client, ns)
        assert lease is not None and lease.mode == watchdog.HIBERNATED
        assert lease.instance_ids == (instance,)
        # someone starts the instance in the console
        compute = compute_client(stack)
        compute.instance_action(instance, "START")
        target.provider.await_instance_state(instance, {"RUNNING"}, timeout_s=60)
        said: list[str] = []
        decision = watchdog.run_once(target.provider, client, ns, target.now(), say=said.append)
        assert decision is not None and decision.enforce
        assert "started outside nimble while hibernated" in decision.reason
        assert target.provider.instance_info(instance).state in ("STOPPING", "STOPPED")
        kept = watchdog.lease_from_configmap(client, ns)
        assert kept is not None and kept.mode == watchdog.HIBERNATED and kept.enforced_at is None
        target.provider.await_instance_state(instance, {"STOPPED"}, timeout_s=60)
        client.close()
        compute.base_client.session.close()
        down(SESSION, plan.config, target, store, say=quiet)


def test_a_plain_down_of_a_hibernated_session_removes_everything(tmp_path) -> None:
    with session(tmp_path, seed=32) as (_stack, target, store, plan):
        assert up(plan.config, plan.plan, target, store, say=quiet, bench=False).ok
        hibernate(SESSION, plan.config, target, store, say=quiet)
        result = down(SESSION, plan.config, target, store, say=quiet)
        assert result.teardown.failed == [] and result.teardown.remaining == []
        assert store.session(SESSION).status == SessionStatus.DOWN
        assert store.resources(SESSION, live_only=True) == []
    # (the fixture asserts the simulated cloud has nothing of the session left)


@pytest.mark.parametrize(
    ("step", "then"),
    [("delete load balancer", "hibernate"), ("stop instances", "up"), ("lease", "up")],
)
def test_a_killed_hibernate_is_finished_by_hibernate_or_undone_by_up(
    tmp_path, monkeypatch, step, then
) -> None:
    seed = 40 + ["delete load balancer", "stop instances", "lease"].index(step)
    with session(tmp_path, seed=seed, faults=FaultPlan(timings=TYPICAL_WAKE)) as (
        _stack,
        target,
        store,
        plan,
    ):
        assert up(plan.config, plan.plan, target, store, say=quiet, bench=False).ok
        instance = gpu_instance(store, target)
        real = StateStore.step_started

        def step_started(self: StateStore, run_id: str, name: str) -> int:
            step_id = real(self, run_id, name)
            if name == step:
                raise SimulatedCrash(step)
            return step_id

        with monkeypatch.context() as patch, pytest.raises(SimulatedCrash):
            patch.setattr(StateStore, "step_started", step_started)
            hibernate(SESSION, plan.config, target, store, say=quiet)
        if then == "hibernate":
            hibernate(SESSION, plan.config, target, store, say=quiet)
            assert store.session(SESSION).status == SessionStatus.HIBERNATED
            assert target.provider.instance_info(instance).state == "STOPPED"
            assert "load_balancer" not in live_kinds(store)
        else:
            woken = up(plan.config, plan.plan, target, store, say=quiet, bench=False)
            assert woken.ok and woken.wake == "hibernated", woken.error
            assert target.provider.instance_info(instance).state == "RUNNING"
            assert store.session(SESSION).status == SessionStatus.READY
        down(SESSION, plan.config, target, store, say=quiet)
