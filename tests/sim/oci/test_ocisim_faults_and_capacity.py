"""Fault injection, capacity reports, limits, and the SDK's retry behaviour against them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import oci
import pytest
from ocisim_helpers import C, M, client_kwargs, create_cluster, make_network, pool_details, settle

from nimble_oke.sim.oci import FaultPlan, FaultRule, OciSimulator


def _fast_retry(attempts: int) -> oci.retry.RetryStrategy:
    return oci.retry.RetryStrategyBuilder(
        max_attempts_check=True,
        max_attempts=attempts,
        total_elapsed_time_check=True,
        total_elapsed_time_seconds=20,
        retry_max_wait_between_calls_seconds=0.05,
        retry_base_sleep_time_seconds=0.01,
        service_error_check=True,
        service_error_retry_on_any_5xx=True,
        service_error_retry_config={429: []},
        backoff_type=oci.retry.BACKOFF_FULL_JITTER_VALUE,
    ).get_retry_strategy()


def test_sdk_retries_through_429_and_503(tmp_path: Path) -> None:
    plan = FaultPlan(
        seed=3,
        rules=[
            FaultRule(operation="ListAvailabilityDomains", error="TooManyRequests", nth=[1, 2]),
            FaultRule(operation="list_vcns", error="ServiceUnavailable", nth=[1]),
        ],
    )
    with OciSimulator(state_dir=tmp_path, faults=plan, seed=1) as sim:
        cfg = sim.oci_config()
        idc = oci.identity.IdentityClient(cfg, **client_kwargs(sim, retry_strategy=_fast_retry(4)))
        plain = oci.core.VirtualNetworkClient(cfg, **client_kwargs(sim))
        try:
            assert len(idc.list_availability_domains(sim.compartment_id).data) == 3
            assert sim.world.injector._calls["list_availability_domains"] == 3  # 2 x 429, then 200
            with pytest.raises(oci.exceptions.ServiceError) as info:
                plain.list_vcns(sim.compartment_id)  # no retry strategy: the 503 surfaces
            assert (info.value.status, info.value.code) == (503, "ServiceUnavailable")
            assert plain.list_vcns(sim.compartment_id).data == []
        finally:
            idc.base_client.session.close()
            plain.base_client.session.close()


def test_fault_plan_from_yaml_rate_and_latency(tmp_path: Path) -> None:
    path = tmp_path / "faults.yaml"
    path.write_text(
        "seed: 7\n"
        "rules:\n"
        "  - {operation: ListVcns, error: InternalError, rate: 0.5}\n"
        "  - {operation: GetVcn, latency_s: 0.3}\n"
        "limits: {gpu-a10-count: {AD-1: 0}}\n"
    )
    plan = FaultPlan.load(path)
    outcomes: list[list[int]] = []
    for _ in range(2):  # the same seed gives the same sequence
        with OciSimulator(
            state_dir=tmp_path / f"s{len(outcomes)}", faults=FaultPlan.load(path), seed=1
        ) as sim:
            vn = oci.core.VirtualNetworkClient(sim.oci_config(), **client_kwargs(sim))
            try:
                seq = []
                for _ in range(12):
                    try:
                        vn.list_vcns(sim.compartment_id)
                        seq.append(200)
                    except oci.exceptions.ServiceError as err:
                        seq.append(err.status)
                outcomes.append(seq)
                vcn = vn.create_vcn(
                    C.CreateVcnDetails(cidr_block="10.0.0.0/16", compartment_id=sim.compartment_id)
                ).data
                started = time.monotonic()
                vn.get_vcn(vcn.id)
                assert time.monotonic() - started >= 0.3
            finally:
                vn.base_client.session.close()
    assert outcomes[0] == outcomes[1]
    assert 200 in outcomes[0] and 500 in outcomes[0]
    assert plan.limits == {"gpu-a10-count": {"AD-1": 0}}


def test_out_of_host_capacity_fails_the_work_request(tmp_path: Path) -> None:
    plan = FaultPlan(capacity={"VM.GPU.A10.1": {"AD-1": 0}})
    with OciSimulator(state_dir=tmp_path, faults=plan, seed=1) as sim:
        kw = client_kwargs(sim)
        ce = oci.container_engine.ContainerEngineClient(sim.oci_config(), **kw)
        vn = oci.core.VirtualNetworkClient(sim.oci_config(), **kw)
        compute = oci.core.ComputeClient(sim.oci_config(), **kw)
        try:
            ads = sim.world.ads()
            report = compute.create_compute_capacity_report(
                C.CreateComputeCapacityReportDetails(
                    compartment_id=sim.compartment_id,
                    availability_domain=ads[0],
                    shape_availabilities=[
                        C.CreateCapacityReportShapeAvailabilityDetails(
                            instance_shape="VM.GPU.A10.1"
                        )
                    ],
                )
            ).data
            assert report.shape_availabilities[0].availability_status == "OUT_OF_HOST_CAPACITY"
            report2 = compute.create_compute_capacity_report(
                C.CreateComputeCapacityReportDetails(
                    compartment_id=sim.compartment_id,
                    availability_domain=ads[1],
                    shape_availabilities=[
                        C.CreateCapacityReportShapeAvailabilityDetails(
                            instance_shape="VM.GPU.A10.1"
                        )
                    ],
                )
            ).data
            assert report2.shape_availabilities[0].availability_status == "AVAILABLE"

            net = make_network(sim, vn)
            cluster_id = create_cluster(sim, ce, net)
            resp = ce.create_node_pool(
                pool_details(sim, ce, cluster_id, net["workers"], size=1, ad_index=0)
            )
            wr_id = resp.headers["opc-work-request-id"]
            settle(sim, 120)  # the launch attempt fails after ~90 s
            wr = ce.get_work_request(wr_id).data
            assert wr.status == "FAILED"
            errors = ce.list_work_request_errors(sim.compartment_id, wr_id).data
            assert errors[0].message == "(500, InternalError) Out of host capacity."
            pool = ce.get_node_pool(wr.resources[0].identifier).data
            assert pool.nodes[0].node_error.code == "InternalError"
            assert pool.nodes[0].node_error.message == "Out of host capacity."
            assert not [b for b in sim.billing() if b["kind"] == "node"]  # failed launches are free
        finally:
            for c in (ce, vn, compute):
                c.base_client.session.close()


def test_limits_follow_node_pools_and_limit_exceeded(tmp_path: Path) -> None:
    plan = FaultPlan(limits={"gpu-a10-count": {"AD-1": 2}})
    with OciSimulator(state_dir=tmp_path, faults=plan, seed=1) as sim:
        kw = client_kwargs(sim)
        cfg = sim.oci_config()
        ce = oci.container_engine.ContainerEngineClient(cfg, **kw)
        vn = oci.core.VirtualNetworkClient(cfg, **kw)
        limits = oci.limits.LimitsClient(cfg, **kw)
        try:
            ad1 = sim.world.ads()[0]

            def avail() -> Any:
                return limits.get_resource_availability(
                    "compute", "gpu-a10-count", sim.compartment_id, availability_domain=ad1
                ).data

            assert (avail().used, avail().available) == (0, 2)
            net = make_network(sim, vn)
            cluster_id = create_cluster(sim, ce, net)
            ce.create_node_pool(
                pool_details(sim, ce, cluster_id, net["workers"], size=1, shape="VM.GPU.A10.2")
            )
            settle(sim, 13 * 60)
            assert (avail().used, avail().available) == (2, 0)
            resp = ce.create_node_pool(pool_details(sim, ce, cluster_id, net["workers"], size=1))
            settle(sim, 120)
            wr_id = resp.headers["opc-work-request-id"]
            assert ce.get_work_request(wr_id).data.status == "FAILED"
            err = ce.list_work_request_errors(sim.compartment_id, wr_id).data[0]
            assert err.code == "LimitExceeded" and "service limit of 2" in err.message
            assert avail().used == 2
        finally:
            for c in (ce, vn, limits):
                c.base_client.session.close()


def test_work_request_failing_midway_and_node_never_active(tmp_path: Path) -> None:
    plan = FaultPlan(
        rules=[
            FaultRule(operation="CreateCluster", kind="work_request_fail", at=0.5, times=1),
            FaultRule(operation="CreateNodePool", kind="node_never_active"),
        ],
        timings={"node_registration_timeout_s": 1500},
    )
    with OciSimulator(state_dir=tmp_path, faults=plan, seed=1) as sim:
        kw = client_kwargs(sim)
        ce = oci.container_engine.ContainerEngineClient(sim.oci_config(), **kw)
        vn = oci.core.VirtualNetworkClient(sim.oci_config(), **kw)
        try:
            net = make_network(sim, vn)
            resp = ce.create_cluster(
                M.CreateClusterDetails(
                    name="c",
                    compartment_id=sim.compartment_id,
                    vcn_id=net["vcn"],
                    kubernetes_version="v1.35.2",
                )
            )
            settle(sim, 250)  # half of a 6-8 min create
            wr = ce.get_work_request(resp.headers["opc-work-request-id"]).data
            assert wr.status == "FAILED"
            assert ce.get_cluster(wr.resources[0].identifier).data.lifecycle_state == "FAILED"

            cluster_id = create_cluster(sim, ce, net)  # times=1: the second create works
            assert ce.get_cluster(cluster_id).data.lifecycle_state == "ACTIVE"
            resp = ce.create_node_pool(pool_details(sim, ce, cluster_id, net["workers"], size=1))
            settle(sim, 20 * 60)
            wr = ce.get_work_request(resp.headers["opc-work-request-id"]).data
            assert wr.status == "IN_PROGRESS"
            node = ce.get_node_pool(wr.resources[0].identifier).data.nodes[0]
            assert node.lifecycle_state == "CREATING"
            settle(sim, 10 * 60)
            assert ce.get_work_request(wr.id).data.status == "FAILED"
            node = ce.get_node_pool(wr.resources[0].identifier).data.nodes[0]
            assert "has not been seen in k8s nodes" in node.lifecycle_details
        finally:
            ce.base_client.session.close()
            vn.base_client.session.close()


def test_fault_plan_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="unknown fault rule keys"):
        FaultPlan.from_dict({"rules": [{"operation": "GetVcn", "eror": "InternalError"}]})
    with pytest.raises(ValueError, match="fault kind"):
        FaultRule(kind="meteor")
    with pytest.raises(ValueError, match="unknown fault plan keys"):
        FaultPlan.from_dict({"limit": {}})
