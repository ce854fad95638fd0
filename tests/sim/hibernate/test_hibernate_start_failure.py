"""A stopped A10 VM gives its host back: its START fails as OCI fails a launch without a
host ("(500, InternalError) Out of host capacity.") when another instance took the last one,
or when the fault plan says so — and the instance stays STOPPED, still billing storage only,
so the product can fall back. Shapes billed while stopped keep their host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import oci
from hibernate_helpers import (
    NODE_ACTIVE_S,
    Clients,
    active_node,
    billing_now,
    error,
    start,
    start_sim,
    state,
    stop,
)
from ocisim_helpers import C, create_cluster, make_network, pool_details, settle

from nimble_oke.sim.oci import FaultPlan, FaultRule, OciSimulator

OUT_OF_HOST = (500, "InternalError", "Out of host capacity.")


def _second_pool(sim: OciSimulator, clients: Any, shape: str) -> str:
    """Another cluster's pool in the same AD, launching one node of ``shape``."""
    ce = clients["ce"]
    net = make_network(sim, clients["vn"])
    cluster_id = create_cluster(sim, ce, net)
    details = pool_details(sim, ce, cluster_id, net["workers"], shape=shape)
    details.name = "other"
    resp = ce.create_node_pool(details)
    return str(
        ce.get_work_request(resp.headers["opc-work-request-id"]).data.resources[0].identifier
    )


def _available(sim: OciSimulator, clients: Any, shape: str, ad: str) -> tuple[str, int]:
    report = (
        clients["compute"]
        .create_compute_capacity_report(
            C.CreateComputeCapacityReportDetails(
                compartment_id=sim.compartment_id,
                availability_domain=ad,
                shape_availabilities=[
                    C.CreateCapacityReportShapeAvailabilityDetails(instance_shape=shape)
                ],
            )
        )
        .data.shape_availabilities[0]
    )
    return str(report.availability_status), int(report.available_count)


def _with_plan(tmp_path: Path, identity: Path, plan: FaultPlan) -> tuple[OciSimulator, Clients]:
    sim = start_sim(tmp_path / "state", identity, faults=plan)
    return sim, Clients(sim)


def test_the_last_host_taken_while_stopped_fails_the_start(
    tmp_path: Path, hibernate_identity: Path
) -> None:
    plan = FaultPlan(capacity={"VM.GPU.A10.1": {"AD-1": 1}})
    sim, clients = _with_plan(tmp_path, hibernate_identity, plan)
    try:
        _, node_id = active_node(sim, clients)
        ad = clients["compute"].get_instance(node_id).data.availability_domain
        assert _available(sim, clients, "VM.GPU.A10.1", ad) == ("OUT_OF_HOST_CAPACITY", 0)
        stop(sim, clients, node_id)
        assert _available(sim, clients, "VM.GPU.A10.1", ad) == ("AVAILABLE", 1)
        other = _second_pool(sim, clients, "VM.GPU.A10.1")
        settle(sim, NODE_ACTIVE_S)
        assert clients["ce"].get_node_pool(other).data.nodes[0].lifecycle_state == "ACTIVE"

        failed = error(lambda: clients["compute"].instance_action(node_id, "START"))
        assert (failed.status, failed.code, failed.message) == OUT_OF_HOST
        assert state(clients, node_id) == "STOPPED"
        assert billing_now(sim, node_id) == {"block.storage", "block.vpu"}

        clients["ce"].delete_node_pool(other)  # the host comes back
        settle(sim, 5 * 60)
        start(sim, clients, node_id)
    finally:
        clients.close()
        sim.stop()


def test_an_injected_start_failure_fires_as_planned(
    tmp_path: Path, hibernate_identity: Path
) -> None:
    rule = FaultRule(
        operation="InstanceAction", kind="out_of_host_capacity", shape="VM.GPU.A10.1", times=1
    )
    sim, clients = _with_plan(tmp_path, hibernate_identity, FaultPlan(rules=[rule]))
    try:
        _, node_id = active_node(sim, clients)
        stop(sim, clients, node_id)  # the rule is only checked on START
        failed = error(lambda: clients["compute"].instance_action(node_id, "START"))
        assert (failed.status, failed.code, failed.message) == OUT_OF_HOST
        assert state(clients, node_id) == "STOPPED"
        start(sim, clients, node_id)  # times=1: the next START gets a host
    finally:
        clients.close()
        sim.stop()


def test_the_sdk_retries_a_failed_start_only_when_told_to(
    tmp_path: Path, hibernate_identity: Path
) -> None:
    """instance_action does not retry by default (the SDK's docstring); a caller's retry
    strategy sees the 500 like any other and tries again."""
    rule = FaultRule(operation="InstanceAction", kind="out_of_host_capacity", times=1)
    sim, clients = _with_plan(tmp_path, hibernate_identity, FaultPlan(rules=[rule]))
    try:
        _, node_id = active_node(sim, clients)
        stop(sim, clients, node_id)
        retry = oci.retry.RetryStrategyBuilder(
            max_attempts_check=True,
            max_attempts=3,
            retry_base_sleep_time_seconds=0.01,
            retry_max_wait_between_calls_seconds=0.05,
            service_error_check=True,
            service_error_retry_on_any_5xx=True,
        ).get_retry_strategy()
        resp = clients["compute"].instance_action(node_id, "START", retry_strategy=retry)
        assert resp.data.lifecycle_state == "STARTING"
        assert sim.world.injector._calls["instance_action"] == 3  # SOFTSTOP, 500, 200
    finally:
        clients.close()
        sim.stop()


def test_a_shape_billed_while_stopped_keeps_its_host(
    tmp_path: Path, hibernate_identity: Path
) -> None:
    plan = FaultPlan(capacity={"VM.GPU3.1": {"AD-1": 1}})
    sim, clients = _with_plan(tmp_path, hibernate_identity, plan)
    try:
        _, node_id = active_node(sim, clients, shape="VM.GPU3.1")
        stop(sim, clients, node_id, "STOP")
        ad = clients["compute"].get_instance(node_id).data.availability_domain
        assert _available(sim, clients, "VM.GPU3.1", ad) == ("OUT_OF_HOST_CAPACITY", 0)
        other = _second_pool(sim, clients, "VM.GPU3.1")
        settle(sim, NODE_ACTIVE_S)
        node = clients["ce"].get_node_pool(other).data.nodes[0]
        assert node.lifecycle_state == "FAILING"
        assert node.node_error.message == "Out of host capacity."
        start(sim, clients, node_id)  # its host was kept: the START cannot lack one
    finally:
        clients.close()
        sim.stop()
