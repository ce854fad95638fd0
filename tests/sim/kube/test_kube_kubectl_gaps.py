"""Smaller kubectl paths, each answered as the real server does: self-subject reviews
(``auth can-i``, ``auth whoami``), ``-o wide`` columns, ``get all``, log options,
``rollout undo`` reusing the old ReplicaSet, ``autoscale``, and images the simulator does
not emulate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubesim_helpers import wait_for
from real_clients import kubectl, needs_binaries

from nimble_oke.sim.kube import KubeSimulator

pytestmark = needs_binaries

WEB = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: busybox, command: [sh, -c, "echo one; echo two; sleep 100000"]}]
"""


@pytest.fixture
def kc(kube: KubeSimulator, tmp_path: Path) -> Path:
    kube.add_node("10.0.1.5", allocatable={"cpu": "4", "memory": "16Gi"})
    path = kube.write_kubeconfig(tmp_path / "kc")
    kubectl(path, "apply", "-f", "-", stdin=WEB)
    kubectl(path, "wait", "--for=condition=Available", "deployment/web", "--timeout=30s")
    return path


def test_auth_can_i_and_whoami(kc: Path) -> None:
    assert kubectl(kc, "auth", "can-i", "create", "pods").strip() == "yes"
    assert kubectl(kc, "auth", "can-i", "delete", "nodes").strip() == "yes"
    who = kubectl(kc, "auth", "whoami", "-o", "json")
    assert json.loads(who)["status"]["userInfo"]["username"] == "nimble-sim"
    assert "*.*" in kubectl(kc, "auth", "can-i", "--list")


def test_wide_columns_and_get_all(kc: Path) -> None:
    pods = kubectl(kc, "get", "pods", "-o", "wide").splitlines()
    assert pods[0].split() == [
        "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE",
        "READINESS", "GATES",
    ]  # fmt: skip
    assert "10.0.1.5" in pods[1] and "10.244." in pods[1]
    assert "NAME" not in kubectl(kc, "get", "pods").splitlines()[0].split()[5:]
    deploy = kubectl(kc, "get", "deploy", "-o", "wide").splitlines()
    assert deploy[0].split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert deploy[1].split()[-3:] == ["app", "busybox", "app=web"]
    everything = kubectl(kc, "get", "all")
    for kind in ("pod/web-", "deployment.apps/web", "replicaset.apps/web-"):
        assert kind in everything


def test_log_options(kc: Path) -> None:
    assert kubectl(kc, "logs", "deploy/web") == "one\ntwo\n"
    stamped = kubectl(kc, "logs", "deploy/web", "--timestamps").splitlines()
    assert [line.split(" ", 1)[1] for line in stamped] == ["one", "two"]
    assert stamped[0].split(" ", 1)[0].endswith("Z") and "T" in stamped[0]
    assert kubectl(kc, "logs", "deploy/web", "--limit-bytes=5") == "one\nt"
    assert kubectl(kc, "logs", "deploy/web", "--tail=1") == "two\n"
    assert kubectl(kc, "logs", "deploy/web", "--since-time=2999-01-01T00:00:00Z") == ""
    assert kubectl(kc, "logs", "deploy/web", "--since-time=2000-01-01T00:00:00Z") == "one\ntwo\n"


def test_rollout_undo_reuses_the_old_replica_set(kube: KubeSimulator, kc: Path) -> None:
    def replica_sets() -> dict[str, tuple[str, int]]:
        return {
            rs["metadata"]["name"]: (
                rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
                rs["spec"]["replicas"],
            )
            for rs in kube.objects("ReplicaSet", "default")
        }

    (first,) = replica_sets()
    kubectl(kc, "set", "image", "deployment/web", "app=busybox:1.36")
    assert wait_for(lambda: len(replica_sets()) == 2 and replica_sets()[first][1] == 0)
    kubectl(kc, "rollout", "undo", "deployment/web")
    assert wait_for(lambda: replica_sets()[first] == ("3", 1))
    assert len(replica_sets()) == 2


def test_autoscale_creates_an_hpa(kc: Path) -> None:
    out = kubectl(kc, "autoscale", "deployment/web", "--min=1", "--max=3", "--cpu-percent=70")
    assert "horizontalpodautoscaler.autoscaling/web autoscaled" in out
    hpa = json.loads(kubectl(kc, "get", "hpa", "web", "-o", "json"))
    assert hpa["spec"]["maxReplicas"] == 3


def test_an_image_the_simulator_does_not_emulate_runs_inert_and_says_so(
    kube: KubeSimulator, kc: Path
) -> None:
    kubectl(kc, "run", "web-server", "--image=nginx:1.27", "--port=80")
    kubectl(kc, "wait", "--for=condition=Ready", "pod/web-server", "--timeout=30s")
    events = json.loads(kubectl(kc, "get", "events", "-o", "json"))["items"]
    notes = [e["message"] for e in events if e["reason"] == "NotEmulated"]
    assert notes == [
        'The simulator does not run image "nginx:1.27": the container is Running and does '
        "nothing (no process, no open port)"
    ]
    assert kubectl(kc, "logs", "web-server") == ""


V1_HPA = """
apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 4
  targetCPUUtilizationPercentage: 60
"""


def test_autoscaling_v1_is_served_and_stored_as_v2(kc: Path) -> None:
    kubectl(kc, "apply", "-f", "-", stdin=V1_HPA)
    v1 = "horizontalpodautoscalers.v1.autoscaling"
    v2 = "horizontalpodautoscalers.v2.autoscaling"
    as_v1 = json.loads(kubectl(kc, "get", v1, "web", "-o", "json"))
    assert as_v1["apiVersion"] == "autoscaling/v1"
    assert as_v1["spec"]["targetCPUUtilizationPercentage"] == 60
    kubectl(
        kc,
        "patch",
        v1,
        "web",
        "--type=merge",
        "-p",
        '{"spec":{"targetCPUUtilizationPercentage":75}}',
    )
    as_v2 = json.loads(kubectl(kc, "get", v2, "web", "-o", "json"))
    assert as_v2["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 75},
            },
        }
    ]
    assert "autoscaling/v1" in kubectl(kc, "api-versions").split()
