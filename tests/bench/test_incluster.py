"""In-cluster benchmark against the joined simulators: a real session (``up`` on the sim
target), worker Jobs created through lightkube, the tools image running
``nimble bench worker`` in the Kubernetes simulator's pods, results read back from the
pod logs through the API and merged."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pytest

from nimble_oke.bench import BenchConfig, summarize
from nimble_oke.bench.analysis import analyze
from nimble_oke.bench.incluster import (
    RAW_BEGIN,
    decode_raw,
    encode_raw,
    job_manifests,
    run_in_cluster,
)
from nimble_oke.catalog import load_catalog
from nimble_oke.domain.config import build_config
from nimble_oke.domain.plan import build_plan
from nimble_oke.errors import ConfigError, EndpointError
from nimble_oke.kube.deploy import kube_client
from nimble_oke.services.lifecycle import release_name, up
from nimble_oke.services.sim_tools import product_stack
from nimble_oke.services.targets import sim_target
from nimble_oke.sim.stack import SimStack
from nimble_oke.state.store import StateStore

SCALE = 3000.0
SESSION = "bench-ic"


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimStack, str, str]]:
    """A ready session on the sim target: (stack, namespace, NIM service name)."""
    tmp = tmp_path_factory.mktemp("incluster")
    cfg = build_config(
        {
            "cluster": {"name": SESSION},
            # a lease long enough for the compressed clock (3000×: an hour is 1.2 s)
            "budget": {"max_hours": 48, "max_usd": 500},
        }
    )
    with product_stack(tmp / "sim", time_scale=SCALE, seed=7) as stack:
        target = sim_target(cfg, stack.endpoints(), {})
        with (
            contextlib.closing(target.provider),
            StateStore(tmp / "home", now=stack.clock.wall) as store,
        ):
            result = up(
                cfg,
                build_plan(cfg, load_catalog()),
                target,
                store,
                say=lambda _m: None,
                bench=False,
            )
            assert result.ok, result.error
        yield stack, cfg.nim.namespace, f"{release_name(cfg.session_name)}-nimble-nim"


def _config(**changes: object) -> BenchConfig:
    base = BenchConfig(
        endpoint="http://unused:1",  # replaced by the Service's in-cluster URL
        concurrency=4,
        requests=24,
        input_tokens_mean=32,
        output_tokens=16,
        seed=11,
    )
    return base.replace(**changes)


def test_two_workers_run_next_to_the_service_and_merge(
    session: tuple[SimStack, str, str],
) -> None:
    stack, namespace, service = session
    client = kube_client(stack.kubeconfig_path, namespace)
    try:
        run = run_in_cluster(client, namespace, service, _config(), 2, timeout_s=60, poll_s=0.05)
        from lightkube.resources.batch_v1 import Job

        leftover = [
            j.metadata.name
            for j in client.list(Job, namespace=namespace)
            if j.metadata.name.startswith("nimble-bench-")
        ]
    finally:
        client.close()
    # the workers measured the Service by its cluster DNS name, not a local port
    assert run.endpoint.startswith(f"http://{service}.{namespace}.svc:")
    assert [s.requests for s in run.shards] == [12, 12]
    assert all(s.pod and s.pod.startswith(s.job) for s in run.shards)
    result = run.result
    assert result.workers == 2 and result.store.count == 24
    summary = summarize(result)
    assert summary["request_count"]["avg"] == 24
    assert summary["errors"]["count"] == 0
    assert summary["config"]["endpoint"] == run.endpoint
    assert summary["config"]["concurrency"] == 4 and summary["config"]["requests"] == 24
    table = analyze(result)
    assert np.all(table.ttft_ms[table.ok] > 0)
    assert np.all(table.e2e_ms[table.ok] >= table.ttft_ms[table.ok])
    assert np.all(table.osl[table.ok] == 16)
    # distinct seeds per shard: no two requests share a prompt tag
    ttft = summary["time_to_first_token"]
    assert 0 < ttft["p50"] <= ttft["p99"] < 5_000
    assert summary["output_token_throughput"]["avg"] > 0
    assert leftover == []  # the Jobs (and their pods) are deleted after collection
    assert run.as_dict()["max_start_skew_s"] < 5.0


def test_a_worker_that_cannot_reach_the_service_fails_the_run_with_its_log(
    session: tuple[SimStack, str, str],
) -> None:
    from lightkube import codecs
    from lightkube.resources.core_v1 import Service

    stack, namespace, service = session
    client = kube_client(stack.kubeconfig_path, namespace)
    try:
        # a Service whose selector matches no pod: nothing answers behind it
        dead = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "no-backend", "namespace": namespace},
            "spec": {"selector": {"app": "nothing-here"}, "ports": [{"port": 8000}]},
        }
        client.create(codecs.from_dict(dead), namespace=namespace)
        try:
            with pytest.raises(EndpointError, match=r"bench worker \d \(job .*\) failed: ") as info:
                run_in_cluster(
                    client,
                    namespace,
                    "no-backend",
                    _config(requests=4, concurrency=2),
                    2,
                    timeout_s=60,
                    poll_s=0.05,
                )
        finally:
            client.delete(Service, "no-backend", namespace=namespace)
        assert "/v1/models" in str(info.value)  # the worker's own error, from its log
        with pytest.raises(ConfigError, match="--workers 8"):
            run_in_cluster(client, namespace, service, _config(concurrency=4), 8)
    finally:
        client.close()


def test_wire_format_round_trip_and_corruption_is_detected(
    session: tuple[SimStack, str, str],
) -> None:
    stack, namespace, service = session
    client = kube_client(stack.kubeconfig_path, namespace)
    try:
        run = run_in_cluster(
            client, namespace, service, _config(requests=4, concurrency=2), 1, timeout_s=60
        )
    finally:
        client.close()
    lines = ["some log line", *encode_raw(run.result, 0), "after"]
    assert lines[1].startswith(RAW_BEGIN)
    back = decode_raw(lines)
    assert back.store.count == 4
    assert np.array_equal(back.store.end_ns[:4], run.result.store.end_ns[:4])
    broken = list(lines)
    broken[2] = ("A" if broken[2][0] != "A" else "B") + broken[2][1:]
    with pytest.raises(ValueError, match="checksum|bytes|Incorrect"):
        decode_raw(broken)
    with pytest.raises(ValueError, match="no complete raw result"):
        decode_raw(lines[:-2])
    manifests = job_manifests("r1", namespace, run.endpoint, _config(), 3)
    assert [m["metadata"]["name"] for m in manifests] == [f"nimble-bench-r1-{i}" for i in range(3)]
    command = manifests[2]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[:3] == ["nimble", "bench", "worker"]
    assert command[command.index("--shard-index") + 1] == "2"
    assert "api_key" not in command[command.index("--config") + 1]
