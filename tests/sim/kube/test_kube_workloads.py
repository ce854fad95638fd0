# mypy: disable-error-code="union-attr,index,operator,arg-type,misc,type-var"
# (lightkube models type every field Optional; the tests read fields the server always sets)
"""Controllers and pods, driven through lightkube: scheduling, probes, images, services."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
from kubesim_helpers import apply_yaml, echo_deployment, events, wait_for, watch_until
from lightkube import Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment, StatefulSet
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import (
    Endpoints,
    PersistentVolume,
    PersistentVolumeClaim,
    Pod,
    Secret,
    Service,
)

from nimble_oke.ngc_keys import throwaway_key
from nimble_oke.sim.clock import SimClock
from nimble_oke.sim.kube import KubeSimulator, VolumeRequest

GPU_TOLERATION = "tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]"


def _pods(client: Client, app: str) -> list[Pod]:
    return list(client.list(Pod, labels={"app": app}))


def _ready(pod: Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def test_deployment_becomes_ready_and_load_balancer_forwards_http(
    kube: KubeSimulator, client: Client
) -> None:
    kube.add_node("10.0.1.5", allocatable={"cpu": "8", "memory": "32Gi"})
    probe = "readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 5}"
    apply_yaml(client, echo_deployment("web", replicas=2, probes=probe))
    apply_yaml(
        client,
        """
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
  annotations:
    service.beta.kubernetes.io/oci-load-balancer-shape: flexible
    service.beta.kubernetes.io/oci-load-balancer-shape-flex-min: "10"
    service.beta.kubernetes.io/oci-load-balancer-shape-flex-max: "100"
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
""",
    )
    ready: set[str] = set()

    def both_ready(kind: str, pod: Pod) -> bool:
        if kind != "DELETED" and _ready(pod):
            ready.add(pod.metadata.name)
        return len(ready) == 2

    assert watch_until(client, Pod, both_ready, labels={"app": "web"})
    svc = wait_for(
        lambda: (s := client.get(Service, "web")).status.loadBalancer.ingress and s,
        what="load balancer ingress",
    )
    assert svc.status.loadBalancer.ingress[0].ip == "127.0.0.1"
    endpoints = client.get(Endpoints, "web")
    assert len(endpoints.subsets[0].addresses) == 2
    assert endpoints.subsets[0].ports[0].port == 8080
    host, port = kube.service_address("default", "web", 80) or ("", 0)
    served = {httpx.get(f"http://{host}:{port}/hello").json()["pod"] for _ in range(4)}
    assert served == ready  # round-robin over both ready endpoints
    reasons = {e.reason for e in events(client)}
    assert {
        "Scheduled",
        "Pulling",
        "Pulled",
        "Created",
        "Started",
        "EnsuredLoadBalancer",
        "ScalingReplicaSet",
        "SuccessfulCreate",
    } <= reasons
    dep = client.get(Deployment, "web")
    assert dep.status.readyReplicas == 2 and dep.status.availableReplicas == 2


def test_failed_scheduling_when_no_node_has_enough_gpus(
    kube: KubeSimulator, client: Client
) -> None:
    kube.add_gpu_node("VM.GPU.A10.1")
    kube.add_gpu_node("VM.GPU.A10.1")
    resources = "resources: {limits: {nvidia.com/gpu: 2}}"
    apply_yaml(client, echo_deployment("big", extra=GPU_TOLERATION, probes=resources))
    message = wait_for(
        lambda: [e.message for e in events(client, reason="FailedScheduling")],
        what="FailedScheduling",
    )[0]
    assert message == (
        "0/2 nodes are available: 2 Insufficient nvidia.com/gpu. preemption: 0/2 nodes are "
        "available: 2 No preemption victims found for incoming pod.."
    )
    pod = _pods(client, "big")[0]
    assert pod.status.phase == "Pending"
    assert pod.status.conditions[0].reason == "Unschedulable"


def test_untolerated_gpu_taint_then_fixed_by_reapplying(
    kube: KubeSimulator, client: Client
) -> None:
    nodes = [kube.add_gpu_node("VM.GPU.A10.2")["metadata"]["name"] for _ in range(3)]
    kube.add_node("10.0.1.99", allocatable={"cpu": "2", "memory": "4Gi"})
    selector = "nodeSelector: {nvidia.com/gpu: 'true'}"
    resources = "resources: {limits: {nvidia.com/gpu: 1}}"
    apply_yaml(client, echo_deployment("gpu", extra=selector, probes=resources))
    message = wait_for(
        lambda: [e.message for e in events(client, reason="FailedScheduling")],
        what="FailedScheduling",
    )[0]
    assert message == (
        "0/4 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
        "3 node(s) had untolerated taint {nvidia.com/gpu: present}. preemption: 0/4 nodes are "
        "available: 4 Preemption is not helpful for scheduling.."
    )
    extra = f"{selector}\n      {GPU_TOLERATION}"
    apply_yaml(client, echo_deployment("gpu", extra=extra, probes=resources))
    running = wait_for(
        lambda: [p for p in _pods(client, "gpu") if p.status.phase == "Running"],
        what="gpu pod running",
    )
    assert running[0].spec.nodeName in nodes


def _crash_loop_deployment(client: Client, name: str, threshold: int) -> None:
    # "Model download" of 600 simulated seconds; the seed's startup probe allows 5 s x 36.
    probes = (
        f"startupProbe: {{httpGet: {{path: /healthz, port: 8080}}, periodSeconds: 5, "
        f"failureThreshold: {threshold}}}"
    )
    apply_yaml(
        client,
        echo_deployment(name, env='{name: READY_AFTER_SECONDS, value: "600"}', probes=probes),
    )


def test_too_short_startup_probe_kills_a_slow_start_into_crash_loop(
    kube: KubeSimulator, client: Client
) -> None:
    kube.add_node("10.0.1.5", allocatable={"cpu": "8", "memory": "32Gi"})
    _crash_loop_deployment(client, "slow", threshold=36)

    def crash_looping() -> Any:
        pods = _pods(client, "slow")
        status = pods[0].status.containerStatuses if pods else None
        if (
            status
            and status[0].restartCount >= 2
            and status[0].state.waiting
            and (status[0].state.waiting.reason == "CrashLoopBackOff")
        ):
            return status[0]
        return None

    status = wait_for(crash_looping, timeout=20, what="CrashLoopBackOff")
    assert status.lastState.terminated.exitCode == 137
    assert "back-off" in status.state.waiting.message
    messages = {e.message for e in events(client)}
    assert "Startup probe failed: HTTP probe failed with statuscode: 503" in messages
    assert "Container app failed startup probe, will be restarted" in messages


def test_startup_budget_covering_the_download_never_restarts(
    kube: KubeSimulator, client: Client
) -> None:
    kube.add_node("10.0.1.5", allocatable={"cpu": "8", "memory": "32Gi"})
    _crash_loop_deployment(client, "patient", threshold=180)
    pod = wait_for(
        lambda: [p for p in _pods(client, "patient") if _ready(p)], timeout=20, what="ready pod"
    )[0]
    assert pod.status.containerStatuses[0].restartCount == 0


def test_second_deployment_starts_fast_from_the_retained_volume(
    kube: KubeSimulator, client: Client
) -> None:
    kube.add_node("10.0.1.5", allocatable={"cpu": "8", "memory": "32Gi"})
    apply_yaml(
        client,
        """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: cache, namespace: default, annotations: {helm.sh/resource-policy: keep}}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 100Gi}}}
""",
    )
    env = '{name: READY_AFTER_SECONDS, value: "600"}, {name: CACHE_DIR, value: /cache}'
    probes = "readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 5}"
    volumes = "{name: cache, persistentVolumeClaim: {claimName: cache}}"
    mounts = "{name: cache, mountPath: /cache}"
    spec = echo_deployment("model", env=env, probes=probes, volumes=volumes, mounts=mounts)

    def time_to_ready() -> float:
        apply_yaml(client, spec)
        pod = wait_for(
            lambda: [
                p for p in _pods(client, "model") if _ready(p) and not p.metadata.deletionTimestamp
            ],
            timeout=20,
            what="ready model pod",
        )[0]
        started = pod.status.containerStatuses[0].state.running.startedAt
        ready_at = next(c.lastTransitionTime for c in pod.status.conditions if c.type == "Ready")
        return float((ready_at - started).total_seconds())

    first = time_to_ready()
    pvc = client.get(PersistentVolumeClaim, "cache")
    assert pvc.status.phase == "Bound"
    client.delete(Deployment, "model")  # uninstall; the kept PVC stays
    wait_for(lambda: not _pods(client, "model"), what="pods gone")
    second = time_to_ready()
    assert first >= 590
    assert second < 30


def test_pvc_provisioning_passes_size_vpus_and_tags_to_the_provisioner(tmp_path: Path) -> None:
    seen: list[VolumeRequest] = []

    class Recording:
        async def create_volume(self, request: VolumeRequest) -> str:
            seen.append(request)
            return "ocid1.volume.oc1.iad.example"

        async def delete_volume(self, volume_id: str) -> None:
            seen.append(VolumeRequest("", "", "", "", 0, 0, {"deleted": volume_id}))

    with KubeSimulator(tmp_path / "k", SimClock(600), volume_provisioner=Recording()) as kube:
        kube.add_gpu_node("VM.GPU.A10.1", ad="IAD-AD-2")
        cfg = kube.write_kubeconfig(tmp_path / "kc")
        from lightkube import KubeConfig

        with Client(KubeConfig.from_file(cfg), field_manager="t") as client:
            apply_yaml(
                client,
                """
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: fast
  annotations: {oci.oraclecloud.com/initial-freeform-tags-override: '{"nimble-session": "s1"}'}
provisioner: blockvolume.csi.oraclecloud.com
parameters: {vpusPerGB: "20"}
reclaimPolicy: Delete
volumeBindingMode: WaitForFirstConsumer
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: small, namespace: default}
spec:
  storageClassName: fast
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 20Gi}}
""",
            )
            wait_for(lambda: events(client, reason="WaitForFirstConsumer"), what="WFFC event")
            apply_yaml(
                client,
                echo_deployment(
                    "user",
                    extra=GPU_TOLERATION,
                    volumes="{name: v, persistentVolumeClaim: {claimName: small}}",
                    mounts="{name: v, mountPath: /data}",
                ),
            )
            pvc = wait_for(
                lambda: (
                    (p := client.get(PersistentVolumeClaim, "small")).status.phase == "Bound" and p
                ),
                what="bound PVC",
            )
            pv = client.get(PersistentVolume, pvc.spec.volumeName)
            assert pv.spec.csi.volumeHandle == "ocid1.volume.oc1.iad.example"
            assert pv.spec.capacity["storage"] == "50Gi"  # OCI's 50 GB minimum
            request = seen[0]
            assert (request.size_bytes, request.vpus_per_gb) == (50 * 2**30, 20)
            assert request.freeform_tags == {"nimble-session": "s1"}
            assert request.availability_domain == "IAD-AD-2"
            client.delete(Deployment, "user")
            wait_for(lambda: not _pods(client, "user"), what="pods gone")
            client.delete(PersistentVolumeClaim, "small")
            wait_for(lambda: len(seen) == 2, what="volume deletion")
            assert seen[1].freeform_tags == {"deleted": "ocid1.volume.oc1.iad.example"}
            assert list(client.list(PersistentVolume)) == []


def _nvcr_pod(client: Client, secret: bool) -> None:
    pull = "imagePullSecrets: [{name: ngc-secret}]" if secret else ""
    apply_yaml(
        client,
        echo_deployment("nim", image="nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.0", extra=pull),
    )


def _docker_secret(client: Client, key: str) -> None:
    config = {"auths": {"nvcr.io": {"username": "$oauthtoken", "password": key}}}
    client.create(
        Secret(
            metadata=ObjectMeta(name="ngc-secret"),
            type="kubernetes.io/dockerconfigjson",
            data={".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()},
        )
    )


def test_image_pull_fails_without_the_nvcr_pull_secret(kube: KubeSimulator, client: Client) -> None:
    kube.add_node("10.0.1.5", allocatable={"cpu": "8", "memory": "32Gi"})
    _nvcr_pod(client, secret=False)
    image = "nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.0"

    def backing_off() -> Any:
        pods = _pods(client, "nim")
        status = pods[0].status.containerStatuses if pods else None
        waiting = status[0].state.waiting if status else None
        return waiting if waiting and waiting.reason == "ImagePullBackOff" else None

    wait_for(backing_off, what="ImagePullBackOff")
    messages = [e.message for e in events(client, reason="Failed")]
    assert (
        f'Failed to pull image "{image}": failed to pull and unpack image "{image}": failed to '
        f'resolve reference "{image}": unexpected status from HEAD request to https://nvcr.io/v2/'
        "nim/meta/llama-3.1-8b-instruct/manifests/1.8.0: 401 Unauthorized"
    ) in messages
    assert "Error: ErrImagePull" in messages and "Error: ImagePullBackOff" in messages
    assert f'Back-off pulling image "{image}"' in {e.message for e in events(client)}


def test_bad_ngc_key_is_unauthorized_and_a_good_one_pulls(
    kube: KubeSimulator, client: Client
) -> None:
    kube.add_node("10.0.1.5", allocatable={"cpu": "8", "memory": "32Gi"})
    _docker_secret(client, "not-an-ngc-key")
    _nvcr_pod(client, secret=True)
    wait_for(
        lambda: [e for e in events(client, reason="Failed") if "401" in e.message],
        what="401 on pull",
    )
    client.delete(Secret, "ngc-secret")
    _docker_secret(client, throwaway_key())
    wait_for(
        lambda: [e for e in events(client, reason="Pulled")],
        timeout=20,
        what="successful pull after back-off",
    )


def test_oom_killed_when_memory_limit_is_below_need(kube: KubeSimulator, client: Client) -> None:
    kube.add_node("10.0.1.5", allocatable={"cpu": "8", "memory": "32Gi"})
    apply_yaml(
        client,
        echo_deployment(
            "hungry",
            env='{name: MEMORY_BYTES, value: "2147483648"}',
            probes="resources: {limits: {memory: 1Gi}}",
        ),
    )

    def oom() -> Any:
        pods = _pods(client, "hungry")
        cs = pods[0].status.containerStatuses if pods else None
        last = cs[0].lastState.terminated if cs and cs[0].lastState else None
        return last if last and last.reason == "OOMKilled" else None

    assert wait_for(oom, what="OOMKilled").exitCode == 137


def test_job_runs_busybox_to_completion_and_serves_logs(
    kube: KubeSimulator, client: Client
) -> None:
    kube.add_node("10.0.1.5", allocatable={"cpu": "8", "memory": "32Gi"})
    apply_yaml(
        client,
        """
apiVersion: batch/v1
kind: Job
metadata: {name: hello, namespace: default}
spec:
  template:
    spec:
      restartPolicy: Never
      initContainers:
      - {name: setup, image: busybox:1.36, command: [sh, -c, "echo preparing; sleep 5"]}
      containers:
      - {name: main, image: busybox:1.36, command: [sh, -c, "echo hello from $POD; sleep 30"],
         env: [{name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]}
""",
    )
    job = wait_for(
        lambda: (j := client.get(Job, "hello")).status and j.status.succeeded and j,
        what="job success",
    )
    assert [c.type for c in job.status.conditions] == ["SuccessCriteriaMet", "Complete"]
    pod = next(iter(client.list(Pod, labels={"job-name": "hello"})))
    assert pod.status.phase == "Succeeded"
    assert list(client.log(pod.metadata.name, container="main")) == [
        f"hello from {pod.metadata.name}\n"
    ]
    assert list(client.log(pod.metadata.name, container="setup")) == ["preparing\n"]


def test_failing_job_hits_the_backoff_limit(kube: KubeSimulator, client: Client) -> None:
    kube.add_node("10.0.1.5", allocatable={"cpu": "8", "memory": "32Gi"})
    apply_yaml(
        client,
        """
apiVersion: batch/v1
kind: Job
metadata: {name: broken, namespace: default}
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox, command: [sh, -c, "exit 3"]}]
""",
    )
    job = wait_for(
        lambda: (j := client.get(Job, "broken")).status and j.status.conditions and j,
        what="job failure",
    )
    assert job.status.conditions[-1].reason == "BackoffLimitExceeded"
    assert job.status.failed == 2


def test_statefulset_creates_ordered_pods_with_claims(kube: KubeSimulator, client: Client) -> None:
    kube.add_node("10.0.1.5", allocatable={"cpu": "8", "memory": "32Gi"})
    apply_yaml(
        client,
        """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: default}
spec:
  replicas: 2
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: app, image: nimble-sim/http-echo:1, ports: [{containerPort: 8080}],
                    volumeMounts: [{name: data, mountPath: /data}]}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 50Gi}}}
""",
    )
    sts = wait_for(
        lambda: (s := client.get(StatefulSet, "db")).status and s.status.readyReplicas == 2 and s,
        what="statefulset ready",
    )
    assert sts.status.replicas == 2
    assert sorted(p.metadata.name for p in _pods(client, "db")) == ["db-0", "db-1"]
    claims = sorted(c.metadata.name for c in client.list(PersistentVolumeClaim))
    assert claims == ["data-db-0", "data-db-1"]
