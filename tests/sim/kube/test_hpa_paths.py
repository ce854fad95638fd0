# mypy: disable-error-code="union-attr,index,no-untyped-call"
"""The HPA controller's outcomes before any metric is read, one each, seen through
lightkube: the target is missing, the target is at zero replicas (scaling disabled), the
target is above maxReplicas or below minReplicas (clamped, with the upstream reason), and
the scale write is refused (FailedRescale). The conditions, events and status pinned here
are kube-controller-manager's (pkg/controller/podautoscaler/horizontal.go)."""

from __future__ import annotations

from typing import Any

import pytest
from kubesim_helpers import apply_yaml, echo_deployment, events, wait_for
from lightkube import Client
from lightkube.generic_resource import create_namespaced_resource

from nimble_oke.sim.kube import KubeSimulator
from nimble_oke.sim.kube.apierrors import ApiError

HPA = create_namespaced_resource(
    "autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"
)


def _hpa_yaml(
    min_replicas: int = 1,
    max_replicas: int = 3,
    api_version: str = "apps/v1",
    kind: str = "Deployment",
    name: str = "echo",
) -> str:
    return f"""
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: echo, namespace: default}}
spec:
  scaleTargetRef: {{apiVersion: {api_version}, kind: {kind}, name: {name}}}
  minReplicas: {min_replicas}
  maxReplicas: {max_replicas}
  metrics:
  - type: Resource
    resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 80}}}}
"""


def _hpa(client: Client) -> dict[str, Any]:
    return dict(client.get(HPA, "echo", namespace="default").to_dict())


def _condition(hpa: dict[str, Any], kind: str) -> dict[str, Any] | None:
    conditions = (hpa.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == kind), None)


def _with(client: Client, kind: str, reason: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        hpa = _hpa(client)
        found = _condition(hpa, kind)
        return hpa if found and found["reason"] == reason else None

    result: dict[str, Any] = wait_for(probe, what=f"{kind} {reason}")
    return result


def _replicas(kube: KubeSimulator) -> int:
    return int(kube.objects("Deployment", "default")[0]["spec"]["replicas"])


@pytest.mark.parametrize(
    ("api_version", "kind", "missing"),
    [
        ("apps/v1", "Deployment", 'deployments.apps "ghost" not found'),
        ("example.com/v1", "Widget", 'widget "ghost" not found'),
    ],
)
def test_a_missing_target_is_reported_unable_to_scale(
    kube: KubeSimulator, client: Client, api_version: str, kind: str, missing: str
) -> None:
    apply_yaml(client, _hpa_yaml(api_version=api_version, kind=kind, name="ghost"))
    hpa = _with(client, "AbleToScale", "FailedGetScale")
    able = _condition(hpa, "AbleToScale")
    assert able is not None and able["status"] == "False"
    assert able["message"] == (
        f"the HPA controller was unable to get the target's current scale: {missing}"
    )
    assert (hpa["status"]["currentReplicas"], hpa["status"]["desiredReplicas"]) == (0, 0)
    assert _condition(hpa, "ScalingActive") is None
    warnings = wait_for(lambda: events(client, reason="FailedGetScale"), what="event")
    assert {(e.type, e.message) for e in warnings} == {("Warning", missing)}


def test_a_target_at_zero_replicas_disables_scaling(kube: KubeSimulator, client: Client) -> None:
    apply_yaml(client, echo_deployment(replicas=0))
    apply_yaml(client, _hpa_yaml())
    hpa = _with(client, "ScalingActive", "ScalingDisabled")
    active = _condition(hpa, "ScalingActive")
    assert active is not None and active["status"] == "False"
    assert active["message"] == "scaling is disabled since the replica count of the target is zero"
    able = _condition(hpa, "AbleToScale")
    assert able is not None and (able["status"], able["reason"]) == ("True", "SucceededGetScale")
    status = hpa["status"]
    assert (status["currentReplicas"], status["desiredReplicas"]) == (0, 0)
    assert status["currentMetrics"] == [] and "lastScaleTime" not in status
    assert status["observedGeneration"] == 1
    assert _replicas(kube) == 0
    assert events(client, reason="SuccessfulRescale") == []


@pytest.mark.parametrize(
    ("replicas", "expected", "reason"),
    [
        (5, 3, "Current number of replicas above Spec.MaxReplicas"),
        (1, 2, "Current number of replicas below Spec.MinReplicas"),
    ],
)
def test_replicas_outside_the_bounds_are_clamped(
    kube: KubeSimulator, client: Client, replicas: int, expected: int, reason: str
) -> None:
    apply_yaml(client, echo_deployment(replicas=replicas))
    apply_yaml(client, _hpa_yaml(min_replicas=2, max_replicas=3))
    rescaled = wait_for(lambda: events(client, reason="SuccessfulRescale"), what="rescale")
    assert [e.message for e in rescaled] == [f"New size: {expected}; reason: {reason}"]
    assert rescaled[0].involvedObject.kind == "HorizontalPodAutoscaler"
    assert _replicas(kube) == expected
    hpa = _hpa(client)
    assert hpa["status"]["lastScaleTime"]
    # the next syncs read the (unavailable) CPU metric and leave the count where it is
    hpa = _with(client, "ScalingActive", "FailedGetResourceMetric")
    assert hpa["status"]["currentReplicas"] == expected
    assert hpa["status"]["desiredReplicas"] == expected
    assert _replicas(kube) == expected
    assert len(events(client, reason="SuccessfulRescale")) == 1


def test_a_refused_scale_write_is_reported_and_changes_nothing(
    kube: KubeSimulator, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No request the simulator's API accepts makes a merge patch of spec.replicas fail, so
    # the controller's write is made to fail as the API server would answer it.
    def refuse(target: Any, replicas: int) -> None:
        raise ApiError(409, "Conflict", "the object has been modified")

    monkeypatch.setattr(kube._hpa, "_scale", refuse)
    apply_yaml(client, echo_deployment(replicas=5))
    apply_yaml(client, _hpa_yaml(max_replicas=3))
    hpa = _with(client, "AbleToScale", "FailedUpdateScale")
    able = _condition(hpa, "AbleToScale")
    assert able is not None and able["status"] == "False"
    assert able["message"] == (
        "the HPA controller was unable to update the target scale: the object has been modified"
    )
    assert hpa["status"]["currentReplicas"] == 5
    assert "lastScaleTime" not in hpa["status"]
    failed = wait_for(lambda: events(client, reason="FailedRescale"), what="FailedRescale")
    assert {(e.type, e.message) for e in failed} == {
        (
            "Warning",
            "New size: 3; reason: Current number of replicas above Spec.MaxReplicas; "
            "error: the object has been modified",
        )
    }
    assert _replicas(kube) == 5
