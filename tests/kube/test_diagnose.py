"""Every troubleshoot pattern, produced for real in the Kubernetes simulator (pods run the
NIM emulator) and named by ``diagnose(collect(client, ns))``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from nimble_oke.kube import podstate
from nimble_oke.kube.diagnose import Finding, collect, diagnose
from nimble_oke.nim_logformat import download_percent, progress_message

from .conftest import NAMESPACE, Deployer, deployment

MakeDeployer = Callable[..., Deployer]


def assert_no_errors(d: Deployer) -> None:
    errors = d.errors()
    assert errors == [], errors


def redeploy_and_heal(d: Deployer, overrides: dict[str, Any]) -> None:
    """Apply the fixed values; once the failed pod is gone and the new one is Ready,
    troubleshoot has no error to report."""
    failed = {p["metadata"]["name"] for p in d.kube.objects("Pod", NAMESPACE)}
    d.deploy(overrides)
    deadline = time.monotonic() + 10
    while failed & {p["metadata"]["name"] for p in d.kube.objects("Pod", NAMESPACE)}:
        assert time.monotonic() < deadline, "the failed pod was not replaced"
        time.sleep(0.05)
    d.wait()
    assert_no_errors(d)


def test_healthy_deployment_has_no_error_finding(deployer: Deployer) -> None:
    deployer.deploy()
    deployer.wait()
    assert deployer.findings() == []


def test_no_gpu_nodes_then_gpu_node_heals(make_deployer: MakeDeployer) -> None:
    d = make_deployer(gpu_nodes=0)
    d.deploy()
    empty = d.await_finding("no nodes in the cluster")
    assert empty.severity == "error"
    d.kube.add_node("10.0.0.9", {"kubernetes.io/os": "linux"}, {"cpu": "8", "memory": "64Gi"})
    finding = d.await_finding("no node advertises nvidia.com/gpu")
    assert "GPU device plugin missing" in finding.cause
    assert "NvidiaGpuPlugin" in finding.fix
    d.kube.add_gpu_node(shape="VM.GPU.A10.1")
    d.wait()
    assert_no_errors(d)


def test_device_plugin_present_but_no_gpu_advertised(make_deployer: MakeDeployer) -> None:
    d = make_deployer(gpu_nodes=0, gpu_device_plugin=True)
    d.kube.add_node("10.0.0.9", {"nvidia.com/gpu": "true"}, {"cpu": "8", "memory": "64Gi"})
    d.deploy()
    finding = d.await_finding("no node advertises nvidia.com/gpu")
    assert "plugin missing" not in finding.cause


def test_insufficient_gpu(deployer: Deployer) -> None:
    deployer.deploy({"resources": {"gpu": 2}})
    finding = deployer.await_finding("not enough free GPUs")
    assert "Insufficient nvidia.com/gpu" in finding.evidence


def test_taint_without_toleration(deployer: Deployer) -> None:
    def drop_tolerations(manifests: list[dict[str, Any]]) -> None:
        deployment(manifests)["spec"]["template"]["spec"].pop("tolerations", None)

    deployer.deploy(edit=drop_tolerations)
    finding = deployer.await_finding("taint is not tolerated")
    assert "nvidia.com/gpu" in finding.evidence


def test_node_selector_mismatch(deployer: Deployer) -> None:
    deployer.deploy({"scheduling": {"shape": "VM.GPU.A10.2"}})
    finding = deployer.await_finding("node selector")
    assert "node affinity/selector" in finding.evidence


def test_image_pull_auth_failure(make_deployer: MakeDeployer) -> None:
    d = make_deployer(pull_auth=lambda _registry, _user, _password: "unauthorized")
    d.deploy()
    finding = d.await_finding("nvcr.io refused the image pull")
    assert "401 Unauthorized" in finding.evidence
    assert "$oauthtoken" in finding.fix


def test_pod_state_reads_a_real_pull_failure_from_lightkube_objects(
    make_deployer: MakeDeployer,
) -> None:
    """The classifier the live wait and the warm-up use (a lightkube Pod's ``to_dict()``)
    sees the same pull failure troubleshoot names."""
    from lightkube.resources.core_v1 import Pod

    d = make_deployer(pull_auth=lambda _registry, _user, _password: "unauthorized")
    d.deploy()
    d.await_finding("nvcr.io refused the image pull")
    pods = [p.to_dict() for p in d.client.list(Pod, namespace=NAMESPACE)]
    stuck = [podstate.stuck_reason(p) for p in pods]
    assert any(s and s.split(":")[0] in podstate.IMAGE_PULL_FAILURES for s in stuck), stuck
    assert all(not podstate.is_ready(p) for p in pods)


def test_pod_state_names_each_kubelet_reason() -> None:
    """Container statuses as the API returns them (kubelet reasons, lastState)."""

    def pod(waiting: str = "", last: dict[str, Any] | None = None) -> dict[str, Any]:
        state = {"waiting": {"reason": waiting, "message": "m"}} if waiting else {"running": {}}
        status = {"name": "nim", "restartCount": 3, "state": state, "lastState": {}}
        if last is not None:
            status["lastState"] = {"terminated": last}
        return {"status": {"containerStatuses": [status], "conditions": []}}

    invalid = podstate.containers(pod("InvalidImageName"))[0]
    assert invalid.image_pull_failed and invalid.stuck == "InvalidImageName: m"
    config = podstate.containers(pod("CreateContainerConfigError"))[0]
    assert config.config_failed and not config.image_pull_failed
    assert (
        podstate.stuck_reason(pod("CreateContainerConfigError")) == "CreateContainerConfigError: m"
    )
    crash = podstate.containers(pod("CrashLoopBackOff", {"reason": "OOMKilled", "exitCode": 137}))
    assert crash[0].crash_looping and crash[0].oom_killed and crash[0].restarts == 3
    assert crash[0].last_exit == " (last exit: OOMKilled, code 137)"
    assert podstate.stuck_reason(pod("CrashLoopBackOff")) is None  # may heal: not stuck
    assert not podstate.is_scheduled(pod())


def test_the_progress_line_the_emulator_prints_is_the_one_readers_parse() -> None:
    line = f"INFO 2026-11-27 13:00:05.123 ngc_download.py:88] {progress_message(7)} (1 GB / 9 GB)"
    assert download_percent(line) == 7
    assert download_percent("INFO … Model download complete") is None


def test_image_pull_insufficient_scope(make_deployer: MakeDeployer) -> None:
    d = make_deployer(pull_auth=lambda _registry, _user, _password: "insufficient_scope")
    d.deploy()
    finding = d.await_finding("nvcr.io refused the image pull")
    assert "insufficient_scope" in finding.evidence


def test_storage_class_missing(deployer: Deployer) -> None:
    deployer.deploy({"cache": {"storageClass": {"create": False, "name": "oci-bv-gone"}}})
    finding = deployer.await_finding("StorageClass oci-bv-gone does not exist")
    assert "oci-bv" in finding.evidence  # the classes that do exist


def test_startup_budget_exceeded(make_deployer: MakeDeployer) -> None:
    # 16 GB at 20 MB/s ≈ 800 s of download against a 30 s startup budget.
    d = make_deployer(nim_overrides={"download_bytes_per_s": 20e6})
    short = {"initialDelaySeconds": 0, "periodSeconds": 10, "failureThreshold": 3}
    d.deploy({"probes": {"startup": short}})
    finding = d.await_finding("startup probe budget ran out")
    assert "startup probe" in finding.evidence
    assert "still downloading" in finding.evidence
    # The budget nimble computes covers the slow download (overridden here for 800 s).
    redeploy_and_heal(d, {"probes": {"startup": {"periodSeconds": 10, "failureThreshold": 120}}})


def test_oom_killed(deployer: Deployer) -> None:
    # The emulator needs ≈4 GiB runtime + one 4 GB shard of host memory.
    memory = {"requests": {"memory": "2Gi"}, "limits": {"memory": "3Gi"}}
    deployer.deploy({"resources": memory})
    finding = deployer.await_finding("OOMKilled")
    assert "raise resources.limits.memory" in finding.fix
    redeploy_and_heal(deployer, {})


def test_cuda_out_of_memory(deployer: Deployer) -> None:
    # 70B bf16 (≈141 GB of weights) on one A10 (24 GB).
    image = {"repository": "nvcr.io/nim/meta/llama-3.1-70b-instruct", "tag": "1.8.0"}
    # The 8B plan's startup budget is too short for a 141 GB download: give it an hour.
    startup = {"periodSeconds": 10, "failureThreshold": 360}
    deployer.deploy({"image": image, "probes": {"startup": startup}})
    finding = deployer.await_finding("CUDA out of memory")
    assert "torch.OutOfMemoryError" in finding.evidence


def test_max_model_len_beyond_kv_cache(deployer: Deployer) -> None:
    env = [{"name": "NIM_MAX_MODEL_LEN", "value": "131072"}]
    deployer.deploy({"nim": {"extraEnv": env}})
    finding = deployer.await_finding("KV cache")
    assert "NIM_MAX_MODEL_LEN" in finding.fix
    assert "131072" in finding.evidence


def test_profile_incompatible_with_gpu(deployer: Deployer) -> None:
    deployer.deploy({"nim": {"modelProfile": "vllm-fp8-tp1"}})
    finding = deployer.await_finding("model profile does not match this GPU")
    assert "compute capability" in finding.evidence


def test_load_balancer_pending(make_deployer: MakeDeployer) -> None:
    d = make_deployer(lb_provision_seconds=3600.0, config={"service": {"type": "LoadBalancer"}})
    d.deploy()
    d.wait()
    finding: Finding = d.await_finding("load balancer for service")
    assert finding.severity == "warning"
    assert "Ensuring load balancer" in finding.evidence
    assert_no_errors(d)


def test_crash_history_of_a_ready_pod_is_only_a_warning(deployer: Deployer) -> None:
    """A pod that is Ready again after a crash (its previous container's log still names
    the cause) is not an error; an unready pod with the same log is."""
    deployer.deploy()
    deployer.wait()
    snap = collect(deployer.client, NAMESPACE)
    (pod,) = snap.pods
    oom = "ERROR torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
    snap.logs[pod["metadata"]["name"]].insert(0, oom)  # as if from --previous
    (finding,) = diagnose(snap)
    assert finding.cause == "CUDA out of memory on the GPU"
    assert finding.severity == "warning" and "Ready now" in finding.evidence
    for condition in pod["status"]["conditions"]:
        if condition["type"] == "Ready":
            condition["status"] = "False"
    (finding,) = diagnose(snap)
    assert finding.severity == "error"
