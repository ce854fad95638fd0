"""The chart README's steps with the real kubectl and helm against the simulated OKE
cluster: create the namespace and the two secrets, ``helm install --wait``, ``helm test``,
the NOTES' port-forward to ``/v1/models``, then ``helm upgrade``, ``helm rollback`` (the old
ReplicaSet comes back) and ``helm uninstall``.

The cluster has the GPU node the NIM needs plus a CPU node: the chart's test pods carry no
GPU toleration yet (a chart bug owned by n19-nim), so on a GPU-only cluster they would stay
Pending, as on real OKE. The simulated NGC download is fast (``nim_overrides``): with the
default rate the NIM's cold start outlasts the Deployment's 600 s progress deadline and
helm's ``--wait`` fails, as it would on OKE (reported to the chart's owner)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from real_clients import HELM, kubectl, needs_binaries, run
from test_kube_streams import port_forward

from nimble_oke.kube.render import chart_path
from nimble_oke.ngc_keys import throwaway_key
from nimble_oke.sim.clock import SimClock
from nimble_oke.sim.kube import KubeSimulator

pytest.importorskip("nimble_oke.sim.nim")
pytestmark = needs_binaries

FAST_NGC = {"download_bytes_per_s": 5e9, "load_bytes_per_s": 5e9}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[KubeSimulator]:
    with KubeSimulator(tmp_path / "kube", SimClock(120), nim_overrides=FAST_NGC) as kube:
        kube.add_gpu_node("VM.GPU.A10.1")
        kube.add_node("10.0.2.10", allocatable={"cpu": "2", "memory": "8Gi"})
        yield kube


def helm(kc: Path, home: Path, *args: str) -> str:
    out = run(HELM, kc, *args, home=home, timeout=300)
    assert out.returncode == 0, f"helm {' '.join(args)}: {out.stderr}"
    return out.stdout


def _replica_sets(kc: Path) -> dict[str, tuple[int, int]]:
    """name -> (revision, desired replicas)"""
    items = json.loads(kubectl(kc, "-n", "nim", "get", "rs", "-o", "json"))["items"]
    return {
        rs["metadata"]["name"]: (
            int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]),
            rs["spec"]["replicas"],
        )
        for rs in items
    }


def test_chart_readme_steps_with_plain_helm(cluster: KubeSimulator, tmp_path: Path) -> None:
    kc = cluster.write_kubeconfig(tmp_path / "kc")
    home = tmp_path / "helm-home"
    key = throwaway_key()
    chart = str(chart_path())
    kubectl(kc, "create", "namespace", "nim")
    kubectl(
        kc,
        "-n",
        "nim",
        "create",
        "secret",
        "generic",
        "ngc-api",
        f"--from-literal=NGC_API_KEY={key}",
    )
    kubectl(
        kc, "-n", "nim", "create", "secret", "docker-registry", "ngc-secret",
        "--docker-server=nvcr.io", "--docker-username=$oauthtoken", f"--docker-password={key}",
    )  # fmt: skip
    out = helm(kc, home, "install", "nim", chart, "-n", "nim", "--set", "session=my-test",
               "--wait", "--timeout", "240s")  # fmt: skip
    assert "STATUS: deployed" in out
    assert "kubectl -n nim port-forward svc/nim-nimble-nim 8000:8000" in out  # the NOTES
    tests = helm(kc, home, "test", "nim", "-n", "nim", "--timeout", "240s")
    for suite in ("models", "completion", "streaming"):
        assert f"TEST SUITE:     nim-nimble-nim-test-{suite}\n" in tests
    assert tests.count("Phase:          Succeeded") == 3, tests

    with port_forward(kc, "-n", "nim", "svc/nim-nimble-nim", ":8000") as port:
        models = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=30).json()
    assert models["object"] == "list"
    assert models["data"][0]["id"] == "meta/llama-3.1-8b-instruct"

    first = _replica_sets(kc)
    helm(kc, home, "upgrade", "nim", chart, "-n", "nim", "--set", "session=my-test",
         "--set", "podAnnotations.rollout=two", "--wait", "--timeout", "240s")  # fmt: skip
    upgraded = _replica_sets(kc)
    assert len(upgraded) == 2 and set(first) < set(upgraded)
    helm(kc, home, "rollback", "nim", "1", "-n", "nim", "--wait", "--timeout", "240s")
    rolled = _replica_sets(kc)
    (original,) = first
    assert set(rolled) == set(upgraded)  # no third ReplicaSet: the first one is reused
    assert rolled[original] == (3, 1)
    history = helm(kc, home, "history", "nim", "-n", "nim")
    assert "Rollback to 1" in history

    helm(kc, home, "uninstall", "nim", "-n", "nim", "--wait", "--timeout", "120s")
    left = json.loads(kubectl(kc, "-n", "nim", "get", "deploy,svc,rs,pods", "-o", "json"))
    assert left["items"] == []
    secrets = kubectl(kc, "-n", "nim", "get", "secrets", "-o", "name").split()
    assert sorted(secrets) == ["secret/ngc-api", "secret/ngc-secret"]  # helm's release Secrets gone
