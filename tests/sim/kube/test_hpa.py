# mypy: disable-error-code="union-attr,index,operator,arg-type,misc,no-untyped-call"
# (lightkube models type every field Optional, generic resources are untyped; the tests
# read fields the server always sets)
"""The HorizontalPodAutoscaler controller of the Kubernetes simulator.

First the algorithm's pure functions (tolerance, missing and unready pods, max over
metrics, min/max clamp, scaling policies, stabilization windows), then the demonstration
issue 9 asks for, end to end: our chart with autoscaling on, NIM emulators in the pods,
our benchmark client driving load through the Service, the HPA scaling up while the queue
grows and back down after the load stops — observed through lightkube.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from kubesim_helpers import apply_yaml, echo_deployment, events, wait_for
from lightkube import Client
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apps_v1 import StatefulSet

from nimble_oke.bench import BenchConfig, run_async, summarize
from nimble_oke.kube.deploy import (
    apply_manifests,
    ensure_namespace,
    ensure_ngc_secrets,
    kube_client,
)
from nimble_oke.kube.render import render_chart
from nimble_oke.ngc_keys import throwaway_key
from nimble_oke.sim.clock import SimClock
from nimble_oke.sim.kube import KubeSimulator
from nimble_oke.sim.kube.hpa_algorithm import (
    Behavior,
    MetricsError,
    PodView,
    Policy,
    Rules,
    Stamped,
    Tolerances,
    behavior_of,
    format_milli,
    max_proposal,
    parse_prometheus,
    plain_metric_replicas,
    rate_limited,
    scale_down_limit,
    scale_up_limit,
    stabilize,
)
from nimble_oke.sim.kube.quantity import parse
from nimble_oke.sim.nim.metrics import NimMetrics

# lightkube's model of autoscaling/v2 requires fields our checks do not need; a generic
# resource reads the HPA as the server sends it.
HPA = create_namespaced_resource(
    "autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"
)


# --- pure functions -------------------------------------------------------------------------------
def test_quantities_print_as_kubernetes_does() -> None:
    assert format_milli(4500) == "4500m"
    assert format_milli(12000) == "12"
    assert format_milli(0) == "0"
    assert format_milli(333) == "333m"
    assert format_milli(3_000_000) == "3k"


def test_nim_metrics_text_parses_to_the_gauges() -> None:
    text = NimMetrics("meta/llama-3.1-8b-instruct").render(
        lambda: {"num_requests_waiting": 7, "gpu_cache_usage_perc": 0.25}
    )
    values = parse_prometheus(text)
    assert values["num_requests_waiting"] == 7
    assert values["gpu_cache_usage_perc"] == 0.25
    assert values["num_requests_running"] == 0


def _pods(*names: str, phase: str = "Running") -> list[PodView]:
    return [PodView(n, phase) for n in names]


def test_ratio_within_tolerance_keeps_the_count() -> None:
    pods = _pods("a", "b", "c")
    # average 4.3 vs target 4: ratio 1.075, inside the 10 % band
    assert plain_metric_replicas(3, 4000, {"a": 4300, "b": 4300, "c": 4300}, pods) == (3, 4300)
    # average 4.5: ratio 1.125 → ceil(3 × 1.125) = 4
    assert plain_metric_replicas(3, 4000, {"a": 4500, "b": 4500, "c": 4500}, pods) == (4, 4500)
    # a configurable (1.33+) tolerance changes the band
    assert plain_metric_replicas(
        3, 4000, {"a": 4300, "b": 4300, "c": 4300}, pods, Tolerances(up=0.05)
    ) == (4, 4300)


def test_missing_metrics_are_conservative_in_both_directions() -> None:
    pods = _pods("a", "b")
    # scale-up: the pod without a sample counts as 0 → (20 + 0) / 2 / 4 = 2.5 → 5
    assert plain_metric_replicas(2, 4000, {"a": 20000}, pods) == (5, 20000)
    # scale-down: it counts as the target → (0 + 4) / 2 / 4 = 0.5 → 1
    assert plain_metric_replicas(2, 4000, {"a": 0}, pods) == (1, 0)
    # a direction flip once missing pods are filled in keeps the current count
    assert plain_metric_replicas(2, 4000, {"a": 5000}, pods) == (2, 5000)


def test_pending_pods_count_as_zero_on_a_scale_up() -> None:
    pods = [*_pods("a"), *_pods("b", phase="Pending")]
    # 8 / 4 = 2 alone, (8 + 0) / 2 / 4 = 1.0 with the pending pod: within tolerance
    assert plain_metric_replicas(2, 4000, {"a": 8000}, pods) == (2, 8000)
    deleting = [PodView("a"), PodView("b", deleting=True)]
    assert plain_metric_replicas(2, 4000, {"a": 8000}, deleting) == (2, 8000)


def test_no_samples_is_an_error() -> None:
    with pytest.raises(MetricsError, match="did not receive metrics"):
        plain_metric_replicas(1, 4000, {}, _pods("a"))
    with pytest.raises(MetricsError, match="no pods returned"):
        plain_metric_replicas(1, 4000, {}, [])


def test_the_largest_proposal_wins_unless_an_unknown_metric_could_disagree() -> None:
    waiting, kv = (5, "pods metric num_requests_waiting"), (2, "pods metric gpu_cache_usage_perc")
    assert max_proposal([kv, waiting], current=1) == waiting
    assert max_proposal([waiting, None], current=3) == waiting  # scale-up despite a failure
    assert max_proposal([kv, None], current=3) is None  # no scale-down on partial data
    assert max_proposal([None, None], current=3) is None


def _behavior(spec: dict[str, Any] | None = None) -> Behavior:
    return behavior_of(spec or {"behavior": {}})


def test_min_and_max_clamp_with_their_reasons() -> None:
    b = _behavior()
    assert rate_limited(1, 5, 1, 3, b, [], [], now=0)[:2] == (3, "TooManyReplicas")
    assert rate_limited(2, 0, 1, 3, b, [], [], now=0)[:2] == (1, "TooFewReplicas")
    assert rate_limited(2, 3, 1, 3, b, [], [], now=0)[:2] == (3, "DesiredWithinRange")
    legacy = behavior_of({})
    assert legacy.legacy and legacy.down.stabilization_s == 300
    # without spec.behavior one step is at most max(2 × current, 4)
    assert rate_limited(3, 20, 1, 50, legacy, [], [], now=0)[:2] == (6, "ScaleUpLimit")


def test_scaling_policies_limit_the_rate() -> None:
    one_per_2min = Rules(0, (Policy("Pods", 1, 120),))
    b = Behavior(up=one_per_2min, down=one_per_2min)
    assert rate_limited(1, 3, 1, 3, b, [], [], now=0)[:2] == (2, "ScaleUpLimit")
    ups = [Stamped(1, 0.0)]  # went 1 → 2 at t=0
    assert rate_limited(2, 3, 1, 3, b, ups, [], now=60)[0] == 2
    assert rate_limited(2, 3, 1, 3, b, ups, [], now=121)[0] == 3
    assert rate_limited(3, 1, 1, 3, b, [], [], now=0)[:2] == (2, "ScaleDownLimit")
    both = (Policy("Pods", 4, 15), Policy("Percent", 100, 15))
    assert scale_up_limit(1, [], [], Rules(0, both), 0) == 5  # Max: the larger change
    assert scale_up_limit(1, [], [], Rules(0, both, select="Min"), 0) == 2
    assert scale_up_limit(4, [], [], Rules(0, both, select="Disabled"), 0) == 4
    assert scale_up_limit(4, [], [], Rules(0, (Policy("Percent", 50, 60),)), 0) == 6
    assert scale_down_limit(4, [], [], Rules(0, (Policy("Percent", 50, 60),)), 0) == 2


def test_stabilization_windows_hold_the_extreme_recommendation() -> None:
    history = [Stamped(5, 0.0), Stamped(2, 200.0)]
    # scale-down: the highest recommendation of the last 300 s
    assert stabilize(history, 250, 5, 1, 0, 300)[:2] == (5, "ScaleDownStabilized")
    assert stabilize(history, 301, 5, 1, 0, 300)[0] == 2
    assert stabilize(history, 501, 5, 1, 0, 300)[0] == 1
    # scale-up: the lowest recommendation of the last 60 s
    assert stabilize([Stamped(1, 0.0)], 30, 1, 4, 60, 300)[:2] == (1, "ScaleUpStabilized")
    assert stabilize([Stamped(1, 0.0)], 61, 1, 4, 60, 300)[0] == 4


def test_chart_behavior_is_read_with_defaults() -> None:
    spec = {
        "behavior": {
            "scaleUp": {
                "stabilizationWindowSeconds": 60,
                "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}],
            },
            "scaleDown": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}]},
        }
    }
    b = behavior_of(spec)
    assert not b.legacy
    assert b.up.stabilization_s == 60 and b.up.policies == (Policy("Pods", 1, 120),)
    assert b.down.stabilization_s == 300 and b.down.select == "Max"
    assert _behavior().up.stabilization_s == 0


# --- against a running simulator --------------------------------------------------------------------
NAMESPACE = "nim"
SESSION = "hpa"
NAME = f"{SESSION}-nimble-nim"
# 300 simulated seconds per real second: a replica's cold start (image pull, model download
# and load, ≈10 simulated minutes) takes ≈2 s; serving runs in real time.
TIME_SCALE = 300
# The emulated engine runs at most 4 sequences (vLLM max_num_seqs; NIM's default is 256),
# so 32 concurrent requests queue ≈28 deep on one replica (≈7 per replica on three):
# the HPA's target is 4.
MAX_RUNNING = 4
CONCURRENCY = 32
LOAD_REAL_S = 8.0


@pytest.fixture
def autoscaling_sim(tmp_path: Path) -> Iterator[tuple[KubeSimulator, Client]]:
    with KubeSimulator(
        tmp_path / "kube", SimClock(TIME_SCALE), nim_overrides={"max_running": MAX_RUNNING}
    ) as kube:
        for _ in range(3):
            kube.add_gpu_node("VM.GPU.A10.1")
        client = kube_client(kube.write_kubeconfig(tmp_path / "kubeconfig"), NAMESPACE)
        try:
            yield kube, client
        finally:
            client.close()


def _deploy(client: Client) -> None:
    ensure_namespace(client, NAMESPACE, SESSION)
    ensure_ngc_secrets(client, NAMESPACE, throwaway_key(), session=SESSION)
    values = {
        "session": SESSION,
        "workload": "StatefulSet",  # one cache volume per replica
        "autoscaling": {
            "enabled": True,
            "minReplicas": 1,
            "maxReplicas": 3,
            "hpa": {"scaleDownStabilizationSeconds": 60},
        },
    }
    manifests = render_chart(values, release=SESSION, namespace=NAMESPACE)
    assert any(m["kind"] == "HorizontalPodAutoscaler" for m in manifests)
    apply_manifests(client, manifests, session=SESSION, namespace=NAMESPACE)


def _hpa(client: Client) -> dict[str, Any]:
    return dict(client.get(HPA, NAME, namespace=NAMESPACE).to_dict())


def _sts(client: Client) -> StatefulSet:
    return client.get(StatefulSet, NAME, namespace=NAMESPACE)


def _waiting(hpa: dict[str, Any]) -> str | None:
    for metric in (hpa.get("status") or {}).get("currentMetrics") or []:
        if (metric.get("pods") or {}).get("metric", {}).get("name") == "num_requests_waiting":
            return str(metric["pods"]["current"]["averageValue"])
    return None


def _condition(hpa: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in hpa["status"]["conditions"] if c["type"] == kind)


def _at_max(hpa: dict[str, Any]) -> dict[str, Any] | None:
    """The HPA at maxReplicas and still asking for more (ScalingLimited: TooManyReplicas)."""
    status = hpa.get("status") or {}
    if status.get("currentReplicas") != 3 or status.get("desiredReplicas") != 3:
        return None
    limited = _condition(hpa, "ScalingLimited")
    return hpa if (limited["status"], limited["reason"]) == ("True", "TooManyReplicas") else None


def _table(kube: KubeSimulator, namespace: str) -> dict[str, Any]:
    """What `kubectl get hpa` asks for: the server's Table rendering of the resource."""
    response = httpx.get(
        f"{kube.url}/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers",
        headers={
            "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io",
            "Authorization": f"Bearer {kube.token}",
        },
    )
    response.raise_for_status()
    return dict(response.json())


class LoadThread(threading.Thread):
    """Our benchmark client, closed loop, on its own event loop: a new connection per
    request, so the Service spreads requests over replicas as they become ready."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(name="hpa-load", daemon=True)
        self.endpoint = endpoint
        self.summary: dict[str, Any] = {}
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.summary = asyncio.run(self._load())
        except BaseException as exc:  # reported by the test
            self.error = exc

    async def _load(self) -> dict[str, Any]:
        config = BenchConfig(
            endpoint=self.endpoint,
            concurrency=CONCURRENCY,
            requests=None,
            duration_s=LOAD_REAL_S,
            output_tokens=16,
            scrape_metrics=False,
            timeout_s=30,
        )
        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            return summarize(await run_async(config, session))


def test_queue_growth_scales_up_and_idle_scales_back_down(
    autoscaling_sim: tuple[KubeSimulator, Client],
) -> None:
    kube, client = autoscaling_sim
    _deploy(client)
    wait_for(lambda: _sts(client).status.readyReplicas == 1, timeout=30, what="first replica")
    idle = wait_for(lambda: _waiting(_hpa(client)) == "0" and _hpa(client), what="idle metrics")
    assert idle["status"]["desiredReplicas"] == 1
    assert _condition(idle, "ScalingActive")["reason"] == "ValidMetricFound"

    address = kube.service_address(NAMESPACE, NAME, 8000)
    assert address is not None
    load = LoadThread(f"http://{address[0]}:{address[1]}")
    load.start()
    try:
        wait_for(
            lambda: (_sts(client).status.readyReplicas or 0) >= 2,
            timeout=LOAD_REAL_S + 4,
            what="a second Ready replica under load",
        )
        loaded = wait_for(lambda: _at_max(_hpa(client)), timeout=5, what="maxReplicas reached")
    finally:
        load.join(60)
    assert not load.is_alive() and load.error is None
    assert load.summary["errors"]["count"] == 0
    assert load.summary["request_count"]["avg"] > CONCURRENCY

    assert loaded["status"]["lastScaleTime"] and parse(_waiting(loaded) or "0") > 4
    assert _condition(loaded, "ScalingActive")["reason"] == "ValidMetricFound"
    rescales = [e.message for e in events(client, NAMESPACE, "SuccessfulRescale")]
    assert "New size: 2; reason: pods metric num_requests_waiting above target" in rescales
    kinds = {e.involvedObject.kind for e in events(client, NAMESPACE, "SuccessfulRescale")}
    assert kinds == {"HorizontalPodAutoscaler"}

    # Load over: after the 60 s scale-down window, one pod per 120 s back to minReplicas.
    wait_for(
        lambda: _sts(client).spec.replicas == 1 and _sts(client).status.readyReplicas == 1,
        timeout=20,
        what="scale-down to minReplicas",
    )
    final = _hpa(client)
    assert final["status"]["currentReplicas"] == 1 and _waiting(final) == "0"
    rescales = [e.message for e in events(client, NAMESPACE, "SuccessfulRescale")]
    assert any(m.endswith("reason: All metrics below target") for m in rescales)
    assert "New size: 1; reason: All metrics below target" in rescales
    row = _table(kube, NAMESPACE)["rows"][0]["cells"]
    assert row[:6] == [NAME, f"StatefulSet/{NAME}", "0/4, 0/800m", "1", "3", "1"]


CPU_HPA = """
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: echo, namespace: default}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: echo}
  minReplicas: 1
  maxReplicas: 4
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 80}}
"""


def test_cpu_metrics_are_reported_unavailable_not_faked(
    kube: KubeSimulator, client: Client
) -> None:
    kube.add_node("cpu-1")
    apply_yaml(client, echo_deployment(replicas=2))
    apply_yaml(client, CPU_HPA)

    def failed() -> dict[str, Any] | None:
        hpa = dict(client.get(HPA, "echo", namespace="default").to_dict())
        conditions = (hpa.get("status") or {}).get("conditions") or []
        active = [c for c in conditions if c["type"] == "ScalingActive"]
        return hpa if active and active[0]["status"] == "False" else None

    hpa = wait_for(failed, what="ScalingActive=False")
    active = _condition(hpa, "ScalingActive")
    assert active["reason"] == "FailedGetResourceMetric"
    assert active["message"] == (
        "the HPA was unable to compute the replica count: failed to get cpu utilization: "
        "unable to get metrics for resource cpu: no metrics returned from resource metrics API"
    )
    assert hpa["status"]["currentReplicas"] == 2
    assert _condition(hpa, "AbleToScale")["reason"] == "SucceededGetScale"
    warnings = {e.reason for e in events(client, "default") if e.type == "Warning"}
    assert {"FailedGetResourceMetric", "FailedComputeMetricsReplicas"} <= warnings
    assert kube.objects("Deployment", "default")[0]["spec"]["replicas"] == 2  # untouched

    table = _table(kube, "default")
    columns = [c["name"] for c in table["columnDefinitions"]]
    assert columns == ["Name", "Reference", "Targets", "MinPods", "MaxPods", "Replicas", "Age"]
    cells = table["rows"][0]["cells"]
    assert cells[:6] == ["echo", "Deployment/echo", "cpu: <unknown>/80%", "1", "4", "2"]


# .tools/kubectl/kubectl: the repository's pinned kubectl (see test_kube_kubectl.py).
KUBECTL = next(
    (
        str(c)
        for c in (Path(__file__).resolve().parents[3] / ".tools/kubectl/kubectl",)
        if c.is_file()
    ),
    shutil.which("kubectl"),
)


@pytest.mark.skipif(KUBECTL is None, reason="no kubectl on this machine")
def test_kubectl_get_hpa_prints_the_hpa_columns(
    kube: KubeSimulator, client: Client, tmp_path: Path
) -> None:
    kube.add_node("cpu-1")
    apply_yaml(client, echo_deployment(replicas=1))
    apply_yaml(client, CPU_HPA.replace("cpu, target", "memory, target"))
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
    wait_for(
        lambda: (client.get(HPA, "echo", namespace="default").to_dict().get("status") or {}).get(
            "conditions"
        ),
        what="HPA status",
    )
    out = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), "get", "hpa", "-o", "wide"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    header, row = out.splitlines()[:2]
    assert header.split()[:6] == ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS"]
    assert row.split()[:2] == ["echo", "Deployment/echo"]
    assert "memory: <unknown>/80%" in row
