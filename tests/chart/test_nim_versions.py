"""NIM 2.x and 1.x images in the chart, and Helm test pods on a GPU-only OKE cluster."""

from __future__ import annotations

from typing import Any

import pytest

from nimble_oke.kube.render import ChartError
from nimble_oke.sim.kube.scheduler import node_matches, untolerated_taint

from .checks import nim_container, pod_spec
from .conftest import Render

V1 = {"image": {"tag": "1.8.0"}}

# An OKE GPU node as OKE labels and taints it (calibration.md "Kubernetes/OKE strings").
OKE_GPU_NODE: dict[str, Any] = {
    "metadata": {
        "name": "10.0.10.5",
        "labels": {
            "node.kubernetes.io/instance-type": "VM.GPU.A10.1",
            "nvidia.com/gpu": "true",
            "oke.oraclecloud.com/pool.name": "try1-gpu",
        },
    },
    "spec": {"taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]},
}
PREEMPTIBLE_TAINT = {
    "key": "oci.oraclecloud.com/oke-is-preemptible",
    "value": "present",
    "effect": "NoSchedule",
}


def env_of(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in nim_container(manifests)["env"]}


def test_default_is_nim_2x_with_its_settings(render: Render) -> None:
    manifests = render(
        {
            "nim": {
                "modelProfile": "vllm-bf16-tp1-pp1",
                "maxModelLen": 8192,
                "passthroughArgs": "--max-num-seqs 64",
                "healthPort": 8080,
            }
        }
    )
    nim = nim_container(manifests)
    assert nim["image"].endswith(":2.0.12")
    env = env_of(manifests)
    assert env["NIM_MODEL_PROFILE"] == "vllm-bf16-tp1-pp1"
    assert env["NIM_MAX_MODEL_LEN"] == "8192"
    assert env["NIM_PASSTHROUGH_ARGS"] == "--max-num-seqs 64"
    assert env["NIM_HEALTH_PORT"] == "8080"
    assert env["NIM_CACHE_PATH"] == "/opt/nim/.cache" and env["NIM_SERVER_PORT"] == "8000"
    # Probes follow the health endpoints to their own port.
    assert {p["containerPort"] for p in nim["ports"]} == {8000, 8080}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert nim[probe]["httpGet"]["port"] == "health"


def test_a_1x_image_renders_without_2x_settings(render: Render) -> None:
    manifests = render({**V1, "nim": {"modelProfile": "tensorrt_llm-a10-bf16-tp1"}})
    env = env_of(manifests)
    assert nim_container(manifests)["image"].endswith(":1.8.0")
    assert env["NIM_MODEL_PROFILE"] == "tensorrt_llm-a10-bf16-tp1"
    assert "NIM_PASSTHROUGH_ARGS" not in env and "NIM_HEALTH_PORT" not in env
    assert nim_container(manifests)["readinessProbe"]["httpGet"]["port"] == "http"


@pytest.mark.parametrize(
    ("values", "key", "words"),
    [
        ({**V1, "nim": {"passthroughArgs": "--max-num-seqs 8"}}, "nim.passthroughArgs", "2.x"),
        ({**V1, "nim": {"healthPort": 9000}}, "nim.healthPort", "2.x"),
        ({**V1, "nim": {"modelProfile": "vllm-bf16-tp1-pp1"}}, "nim.modelProfile", "2.x"),
        ({"nim": {"modelProfile": "tensorrt_llm-a10-bf16-tp1"}}, "nim.modelProfile", "1.x"),
        ({"nim": {"healthPort": 8000}}, "nim.healthPort", "differ"),
        ({"nim": {"majorVersion": "3"}}, "nim.majorVersion", ""),
    ],
)
def test_settings_of_the_other_major_are_refused(
    render: Render, values: dict[str, Any], key: str, words: str
) -> None:
    with pytest.raises(ChartError) as info:
        render(values)
    assert key in str(info.value) or key in (info.value.key or "")
    assert words in str(info.value)


def test_major_version_override_for_tags_without_a_version(render: Render) -> None:
    manifests = render(
        {"image": {"tag": "mirror-2026-11"}, "nim": {"majorVersion": "1", "modelProfile": "x"}}
    )
    assert "NIM_PASSTHROUGH_ARGS" not in env_of(manifests)
    with pytest.raises(ChartError, match="NIM 2.x setting"):
        render(
            {
                "image": {"tag": "mirror-2026-11"},
                "nim": {"majorVersion": "1", "passthroughArgs": "--x"},
            }
        )


@pytest.mark.parametrize("preemptible", [False, True])
def test_helm_test_pods_schedule_on_a_gpu_only_oke_cluster(
    render: Render, preemptible: bool
) -> None:
    """The NIM pod and every `helm test` pod fit an OKE GPU node (taint nvidia.com/gpu);
    a preemptible pool's node carries OKE's preemptible taint too."""
    node = {**OKE_GPU_NODE, "spec": {"taints": list(OKE_GPU_NODE["spec"]["taints"])}}
    values: dict[str, Any] = {}
    if preemptible:
        node["spec"]["taints"].append(PREEMPTIBLE_TAINT)
        toleration = {k: PREEMPTIBLE_TAINT[k] for k in ("key", "effect")} | {"operator": "Exists"}
        values = {"scheduling": {"extraTolerations": [toleration]}}
    manifests = render(values, include_tests=True)
    tests = [m for m in manifests if m["kind"] == "Pod"]
    assert {t["metadata"]["name"].rsplit("-", 1)[-1] for t in tests} == {
        "models",
        "completion",
        "streaming",
    }
    for spec in [pod_spec(manifests)] + [t["spec"] for t in tests]:
        assert untolerated_taint(spec, node) is None
        assert node_matches(spec, node)
    for test in tests:
        limits = test["spec"]["containers"][0]["resources"]["limits"]
        assert "nvidia.com/gpu" not in limits  # a test pod never takes the GPU
