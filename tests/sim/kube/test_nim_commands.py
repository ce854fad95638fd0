# mypy: disable-error-code="union-attr,index,operator,arg-type"
# (lightkube models type every field Optional; the tests read fields the server always sets)
"""The NIM image honours its container command: ``download-to-cache`` warms the model cache
on a CPU node, the NIM server on a GPU node then finds it warm on the same volume; an image
pre-pull pod (``true``) leaves the image on the GPU node for the server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from kubesim_helpers import apply_yaml, events, wait_for
from lightkube import ApiError, Client, KubeConfig
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Event, Pod

from nimble_oke.kube.deploy import ensure_ngc_secrets
from nimble_oke.ngc_keys import throwaway_key
from nimble_oke.sim.clock import SimClock
from nimble_oke.sim.kube import KubeSimulator
from nimble_oke.sim.kube.volumes import block_volume_bytes_per_s
from nimble_oke.sim.nim.settings import DEFAULT_DOWNLOAD_BYTES_PER_S

pytest.importorskip("nimble_oke.sim.nim")

# The tiny model keeps the download short (0.27 GB); the image is still a 12 GB pull.
IMAGE = "nvcr.io/nim/nimble/smollm2-135m-instruct:1.0.0"
PROFILE = "vllm-bf16-tp1"
AD = "US-ASHBURN-AD-1"
CPU_NODE, GPU_NODE = "10.0.1.10", "10.0.1.20"
NGC_KEY = throwaway_key()
SECRET_REF = {"name": "ngc-api", "key": "NGC_API_KEY"}


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeSimulator]:
    with KubeSimulator(tmp_path / "kube", SimClock(600)) as k:
        k.add_node(
            CPU_NODE,
            {
                "node.kubernetes.io/instance-type": "VM.Standard.E5.Flex",
                "topology.kubernetes.io/zone": AD,
                "failure-domain.beta.kubernetes.io/zone": AD,
            },
            {"cpu": "3700m", "memory": "15000Mi"},
        )
        k.add_gpu_node("VM.GPU.A10.1", name=GPU_NODE, ad=AD)
        yield k


@pytest.fixture
def client(kube: KubeSimulator, tmp_path: Path) -> Iterator[Client]:
    config = KubeConfig.from_file(kube.write_kubeconfig(tmp_path / "kubeconfig"))
    with Client(config, field_manager="nimble") as c:
        ensure_ngc_secrets(c, "default", NGC_KEY, session="test")
        yield c


PVC = """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: cache, namespace: default}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 200Gi}}}
"""


def _pod_spec(
    node: str,
    command: list[str],
    *,
    env: dict[str, str] | None = None,
    policy: str = "IfNotPresent",
    cache: bool = True,
) -> dict[str, Any]:
    """A NIM-image pod spec pinned to ``node`` (the server, without a command, gets a GPU)."""
    gpu = node == GPU_NODE
    container: dict[str, Any] = {
        "name": "nim",
        "image": IMAGE,
        "imagePullPolicy": policy,
        "command": command,
        "env": [
            {"name": "NGC_API_KEY", "valueFrom": {"secretKeyRef": SECRET_REF}},
            {"name": "NIM_CACHE_PATH", "value": "/opt/nim/.cache"},
            *({"name": k, "value": v} for k, v in (env or {}).items()),
        ],
    }
    if gpu and not command:
        container["resources"] = {"limits": {"nvidia.com/gpu": 1}}
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "nodeSelector": {"kubernetes.io/hostname": node},
        "imagePullSecrets": [{"name": "ngc-secret"}],
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}] if gpu else [],
        "containers": [container],
    }
    if cache:
        container["volumeMounts"] = [{"name": "cache", "mountPath": "/opt/nim/.cache"}]
        spec["volumes"] = [{"name": "cache", "persistentVolumeClaim": {"claimName": "cache"}}]
    return spec


def _create_pod(client: Client, name: str, node: str, command: list[str], **kw: Any) -> None:
    pod = {"metadata": {"name": name}, "spec": _pod_spec(node, command, **kw)}
    client.create(cast(Pod, Pod.from_dict(pod)))


def _create_job(client: Client, name: str, command: list[str]) -> None:
    template = {"spec": _pod_spec(CPU_NODE, command)}
    job = {"metadata": {"name": name}, "spec": {"backoffLimit": 0, "template": template}}
    client.create(cast(Job, Job.from_dict(job)))


def _logs(client: Client, pod: str) -> list[str]:
    """The container's log; [] while it has not started (the API answers 400 then)."""
    try:
        return [line.rstrip("\n") for line in client.log(pod, container="nim")]
    except ApiError as exc:
        assert "is waiting to start" in str(exc)
        return []


def _phase(client: Client, name: str) -> str | None:
    pod = client.get(Pod, name)
    return pod.status.phase if pod.status else None


def _pod_events(client: Client, pod: str, reason: str) -> list[Event]:
    return [e for e in events(client, reason=reason) if e.involvedObject.name == pod]


def test_cache_warmed_on_a_cpu_node_is_found_by_the_server_on_the_gpu_node(
    kube: KubeSimulator, client: Client
) -> None:
    apply_yaml(client, PVC)
    _create_job(client, "warm", ["download-to-cache", "--profiles", PROFILE])
    # meanwhile the GPU node pre-pulls the 12 GB image with a pod that exits at once
    _create_pod(client, "prepull", GPU_NODE, ["true"], cache=False)
    wait_for(lambda: _phase(client, "prepull") == "Succeeded", what="pre-pull pod done")
    (full_pull,) = _pod_events(client, "prepull", "Pulled")
    assert full_pull.message.startswith(f'Successfully pulled image "{IMAGE}" in 3m38')
    wait_for(lambda: (client.get(Job, "warm").status.succeeded or 0) == 1, what="job complete")

    warm_pod = next(iter(client.list(Pod, labels={"job-name": "warm"})))
    assert warm_pod.spec.nodeName == CPU_NODE
    logs = _logs(client, warm_pod.metadata.name)
    text = "\n".join(logs)
    assert f"Selected profile: {PROFILE}" in text
    assert "Downloading model files: 100%" in text
    # the same rate as the server's cold start: min(NGC, the 200 GB Balanced volume)
    rate = min(DEFAULT_DOWNLOAD_BYTES_PER_S, block_volume_bytes_per_s(200 * 2**30, 10))
    assert f"at {rate / 1e6:.1f} MB/s" in text
    assert "Model download complete" in text
    assert NGC_KEY not in text
    assert warm_pod.status.containerStatuses[0].state.terminated.exitCode == 0

    # the Job's pod has Succeeded: the volume moves to the GPU node without a Multi-Attach
    _create_pod(client, "nim", GPU_NODE, [], env={"NIM_MODEL_PROFILE": PROFILE})
    started = wait_for(
        lambda: any("Application startup complete." in line for line in _logs(client, "nim")),
        what="NIM server ready",
        timeout=30,
    )
    assert started
    server_logs = "\n".join(_logs(client, "nim"))
    assert "Model files found in cache" in server_logs
    assert "Downloading model files" not in server_logs
    assert [e.message for e in _pod_events(client, "nim", "Pulled")] == [
        f'Container image "{IMAGE}" already present on machine'
    ]
    assert _pod_events(client, "nim", "FailedAttachVolume") == []
    assert len(_pod_events(client, "nim", "SuccessfulAttachVolume")) == 1

    # pullPolicy Always re-resolves the image, but its layers are already on the node
    _create_pod(client, "recheck", GPU_NODE, ["true"], policy="Always", cache=False)
    wait_for(lambda: _phase(client, "recheck") == "Succeeded", what="recheck pod done")
    pulled = _pod_events(client, "recheck", "Pulled")
    assert [e.message.split(" (")[0] for e in pulled] == [
        f'Successfully pulled image "{IMAGE}" in 500ms'
    ]


def test_download_to_cache_without_a_profile_fails_on_a_cpu_node(client: Client) -> None:
    apply_yaml(client, PVC)
    _create_pod(client, "guess", CPU_NODE, ["download-to-cache"])
    wait_for(lambda: _phase(client, "guess") == "Failed", what="download-to-cache failed")
    state = client.get(Pod, "guess").status.containerStatuses[0].state.terminated
    assert (state.exitCode, state.reason) == (1, "Error")
    text = "\n".join(_logs(client, "guess"))
    assert (
        "Could not find a profile that is currently runnable with the detected hardware. "
        "Please check the system information below and make sure you have enough free GPUs."
    ) in text
    assert "No GPUs found" in text
    assert "Downloading model files" not in text
