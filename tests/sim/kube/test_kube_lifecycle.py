# mypy: disable-error-code="union-attr,index,operator,arg-type,misc,type-var"
# (lightkube models type every field Optional; the tests read fields the server always sets)
"""Rolling updates, garbage collection, graceful deletion, node loss, PVC protection,
log streaming, CronJob and DaemonSet, driven through lightkube."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from kubesim_helpers import apply_yaml, echo_deployment, events, wait_for
from lightkube import Client
from lightkube.resources.apps_v1 import DaemonSet, Deployment, ReplicaSet
from lightkube.resources.batch_v1 import CronJob, Job
from lightkube.resources.core_v1 import PersistentVolume, PersistentVolumeClaim, Pod

from nimble_oke.sim.clock import SimClock
from nimble_oke.sim.kube import KubeSimulator

Obj = dict[str, Any]

READINESS = "readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 5}"


def _live_pods(client: Client, app: str) -> list[Pod]:
    return [p for p in client.list(Pod, labels={"app": app}) if not p.metadata.deletionTimestamp]


def _node(kube: KubeSimulator, name: str = "10.0.1.5") -> None:
    kube.add_node(name, allocatable={"cpu": "8", "memory": "32Gi"})


def test_template_change_rolls_pods_to_a_new_replica_set(
    kube: KubeSimulator, client: Client
) -> None:
    _node(kube)
    apply_yaml(client, echo_deployment("roll", replicas=2, probes=READINESS))
    wait_for(lambda: (d := client.get(Deployment, "roll")).status and d.status.readyReplicas == 2)
    old_hash = _live_pods(client, "roll")[0].metadata.labels["pod-template-hash"]
    env = '{name: VERSION, value: "2"}'
    apply_yaml(client, echo_deployment("roll", replicas=2, probes=READINESS, env=env))

    def rolled() -> bool:
        dep = client.get(Deployment, "roll")
        pods = _live_pods(client, "roll")
        hashes = {p.metadata.labels["pod-template-hash"] for p in pods}
        return (
            dep.status.updatedReplicas == 2
            and dep.status.readyReplicas == 2
            and len(pods) == 2
            and old_hash not in hashes
        )

    wait_for(rolled, timeout=20, what="rollout")
    replica_sets = {
        rs.metadata.labels["pod-template-hash"]: rs.spec.replicas for rs in client.list(ReplicaSet)
    }
    assert replica_sets[old_hash] == 0
    assert sorted(replica_sets.values()) == [0, 2]
    scaling = [e.message for e in events(client, reason="ScalingReplicaSet")]
    assert any(m.startswith("Scaled down replica set roll-") for m in scaling)


def test_deleting_a_deployment_collects_its_replica_sets_and_pods(
    kube: KubeSimulator, client: Client
) -> None:
    _node(kube)
    apply_yaml(client, echo_deployment("gc", replicas=2))
    wait_for(lambda: len(_live_pods(client, "gc")) == 2, what="pods")
    client.delete(Deployment, "gc")
    wait_for(lambda: not list(client.list(Pod, labels={"app": "gc"})), what="pods collected")
    assert list(client.list(ReplicaSet)) == []


def test_deleted_pod_terminates_its_server_and_is_replaced(
    kube: KubeSimulator, client: Client
) -> None:
    _node(kube)
    apply_yaml(client, echo_deployment("grace", probes=READINESS))
    wait_for(lambda: (d := client.get(Deployment, "grace")).status and d.status.readyReplicas)
    first = _live_pods(client, "grace")[0].metadata.name
    client.delete(Pod, first)
    killing = wait_for(lambda: events(client, reason="Killing"), what="Killing event")
    assert killing[0].message == "Stopping container app"
    wait_for(
        lambda: [p for p in _live_pods(client, "grace") if p.metadata.name != first],
        what="replacement pod",
    )
    wait_for(lambda: first not in {p.metadata.name for p in client.list(Pod)}, what="old pod gone")


def test_losing_the_only_node_leaves_the_replacement_pending(
    kube: KubeSimulator, client: Client
) -> None:
    _node(kube, "10.0.1.7")
    apply_yaml(client, echo_deployment("lost"))
    wait_for(
        lambda: [p for p in _live_pods(client, "lost") if p.status.phase == "Running"],
        what="running pod",
    )
    kube.remove_node("10.0.1.7")
    message = wait_for(
        lambda: [e.message for e in events(client, reason="FailedScheduling")],
        what="FailedScheduling",
    )[0]
    assert message == "no nodes available to schedule pods"
    pods = _live_pods(client, "lost")
    assert len(pods) == 1 and pods[0].status.phase == "Pending"


def test_pvc_in_use_stays_terminating_until_its_pod_is_gone(
    kube: KubeSimulator, client: Client
) -> None:
    _node(kube)
    apply_yaml(
        client,
        """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: default}
spec: {storageClassName: oci, accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
""",
    )
    apply_yaml(
        client,
        echo_deployment(
            "user",
            volumes="{name: d, persistentVolumeClaim: {claimName: data}}",
            mounts="{name: d, mountPath: /data}",
        ),
    )
    wait_for(
        lambda: [p for p in _live_pods(client, "user") if p.status.phase == "Running"],
        what="running pod",
    )
    client.delete(PersistentVolumeClaim, "data")
    pvc = client.get(PersistentVolumeClaim, "data")
    assert pvc.metadata.deletionTimestamp is not None
    assert pvc.metadata.finalizers == ["kubernetes.io/pvc-protection"]
    client.delete(Deployment, "user")
    wait_for(lambda: not list(client.list(PersistentVolumeClaim)), what="PVC released")


def test_log_follow_streams_until_the_container_exits(kube: KubeSimulator, client: Client) -> None:
    _node(kube)
    apply_yaml(
        client,
        """
apiVersion: v1
kind: Pod
metadata: {name: talker, namespace: default}
spec:
  restartPolicy: Never
  containers: [{name: main, image: busybox, command: [sh, -c, "echo one; sleep 120; echo two"]}]
""",
    )
    wait_for(lambda: client.get(Pod, "talker").status.phase == "Running", what="running")
    lines = list(client.log("talker", follow=True))
    assert lines == ["one\n", "two\n"]
    wait_for(lambda: client.get(Pod, "talker").status.phase == "Succeeded", what="succeeded")


def test_cron_job_creates_jobs_on_schedule(kube: KubeSimulator, client: Client) -> None:
    _node(kube)
    apply_yaml(
        client,
        """
apiVersion: batch/v1
kind: CronJob
metadata: {name: tick, namespace: default}
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: main, image: busybox, command: [sh, -c, "echo tick"]}]
""",
    )
    job = wait_for(lambda: list(client.list(Job)), timeout=20, what="a scheduled Job")[0]
    assert job.metadata.name.startswith("tick-")
    assert job.metadata.ownerReferences[0].kind == "CronJob"
    wait_for(lambda: (c := client.get(CronJob, "tick")).status and c.status.lastScheduleTime)


def test_daemon_set_runs_on_nodes_whose_taints_it_tolerates(
    kube: KubeSimulator, client: Client
) -> None:
    _node(kube)
    kube.add_gpu_node("VM.GPU.A10.1")
    daemon = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: default}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      TOLERATIONS
      containers: [{name: a, image: nimble-sim/http-echo:1}]
"""
    apply_yaml(client, daemon.replace("TOLERATIONS", ""))
    ds = wait_for(
        lambda: (d := client.get(DaemonSet, "agent")).status and d.status.numberReady == 1 and d
    )
    assert ds.status.desiredNumberScheduled == 1
    tolerate = "tolerations: [{operator: Exists}]"
    apply_yaml(client, daemon.replace("TOLERATIONS", tolerate))
    wait_for(
        lambda: (d := client.get(DaemonSet, "agent")).status and d.status.numberReady == 2,
        what="daemon on both nodes",
    )
    nodes = {p.spec.nodeName for p in _live_pods(client, "agent")}
    assert len(nodes) == 2


def test_cluster_ip_service_forwards_and_is_announced_in_env(
    kube: KubeSimulator, client: Client
) -> None:
    _node(kube)
    apply_yaml(client, echo_deployment("backend", probes=READINESS))
    apply_yaml(
        client,
        """
apiVersion: v1
kind: Service
metadata: {name: backend, namespace: default}
spec: {selector: {app: backend}, ports: [{port: 8000, targetPort: 8080}]}
""",
    )
    address = wait_for(lambda: kube.service_address("default", "backend", 8000), what="forwarder")
    reply = wait_for(
        lambda: _get_json(f"http://{address[0]}:{address[1]}/x"), what="ClusterIP forward"
    )
    assert reply["path"] == "/x"
    apply_yaml(
        client,
        """
apiVersion: v1
kind: Pod
metadata: {name: reader, namespace: default}
spec:
  restartPolicy: Never
  containers: [{name: c, image: busybox, command: [sh, -c, "echo $BACKEND_SERVICE_PORT"]}]
""",
    )
    wait_for(lambda: client.get(Pod, "reader").status.phase == "Succeeded", what="reader done")
    assert list(client.log("reader")) == [f"{address[1]}\n"]


def _get_json(url: str) -> dict[str, str] | None:
    try:
        response = httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


def _busybox_pod(name: str, script: str, claim: str) -> str:
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: default}}
spec:
  restartPolicy: Never
  containers:
  - {{name: c, image: busybox, command: [sh, -c, "{script}"],
     volumeMounts: [{{name: v, mountPath: /cache}}]}}
  volumes: [{{name: v, persistentVolumeClaim: {{claimName: {claim}}}}}]
"""


def test_retained_volume_keeps_data_across_pvc_deletion(
    kube: KubeSimulator, client: Client
) -> None:
    _node(kube)
    apply_yaml(
        client,
        """
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: keep}
provisioner: blockvolume.csi.oraclecloud.com
reclaimPolicy: Retain
volumeBindingMode: Immediate
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: cache, namespace: default}
spec: {storageClassName: keep, accessModes: [ReadWriteOnce], resources: {requests: {storage: 50Gi}}}
""",
    )
    apply_yaml(client, _busybox_pod("writer", "touch /cache/weights.bin", "cache"))
    wait_for(lambda: client.get(Pod, "writer").status.phase == "Succeeded", what="writer")
    pv_name = client.get(PersistentVolumeClaim, "cache").spec.volumeName
    client.delete(Pod, "writer")
    client.delete(PersistentVolumeClaim, "cache")  # "helm uninstall" without keep
    wait_for(
        lambda: client.get(PersistentVolume, pv_name).status.phase == "Released",
        what="PV released",
    )
    claim = """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: cache, namespace: default}
spec: {storageClassName: keep, volumeName: PV, accessModes: [ReadWriteOnce],
       resources: {requests: {storage: SIZE}}}
"""
    apply_yaml(client, claim.replace("PV", pv_name).replace("SIZE", "500Gi"))
    message = wait_for(lambda: [e.message for e in events(client, reason="FailedBinding")])[0]
    assert message == f'Cannot bind to requested volume "{pv_name}": requested PV is too small'
    client.delete(PersistentVolumeClaim, "cache")
    wait_for(lambda: not list(client.list(PersistentVolumeClaim)), what="claim gone")
    apply_yaml(client, claim.replace("PV", pv_name).replace("SIZE", "50Gi"))
    apply_yaml(client, _busybox_pod("reader", "test -f /cache/weights.bin", "cache"))
    wait_for(lambda: client.get(Pod, "reader").status.phase == "Succeeded", what="data found")


def test_scale_subresource(kube: KubeSimulator, client: Client) -> None:
    _node(kube)
    apply_yaml(client, echo_deployment("sc", replicas=1))
    scale = client.get(Deployment.Scale, "sc")
    assert (scale.spec.replicas, scale.status.selector) == (1, "app=sc")
    client.patch(Deployment.Scale, "sc", {"spec": {"replicas": 3}})
    wait_for(lambda: len(_live_pods(client, "sc")) == 3, what="scaled up")
    assert client.get(Deployment, "sc").spec.replicas == 3


def test_optional_gpu_device_plugin_runs_on_gpu_nodes(tmp_path: Path) -> None:
    with KubeSimulator(tmp_path, SimClock(600), gpu_device_plugin=True) as kube:
        node = kube.add_gpu_node("VM.GPU.A10.2")["metadata"]["name"]
        kube.add_node("10.0.1.200")

        def running() -> list[Obj]:
            return [
                p
                for p in kube.objects("Pod", "kube-system")
                if p.get("status", {}).get("phase") == "Running"
            ]

        pods = wait_for(running, what="device plugin pod")
        assert [p["spec"]["nodeName"] for p in pods] == [node]


def test_preemptible_node_is_tainted_and_drained_before_reclaim(
    kube: KubeSimulator, client: Client
) -> None:
    spot = kube.add_gpu_node("VM.GPU.A10.1", preemptible=True)
    assert spot["metadata"]["labels"]["oci.oraclecloud.com/oke-is-preemptible"] == "true"
    tolerations = (
        "tolerations: [{key: nvidia.com/gpu, operator: Exists},"
        " {key: oci.oraclecloud.com/oke-is-preemptible, operator: Exists}]"
    )
    apply_yaml(client, echo_deployment("spot", extra=tolerations))
    wait_for(
        lambda: [p for p in _live_pods(client, "spot") if p.status.phase == "Running"],
        what="running on the preemptible node",
    )
    kube.preempt_node(spot["metadata"]["name"])
    assert kube.objects("Node") == []
    killing = [e.message for e in events(client, reason="Killing")]
    assert "Stopping container app" in killing  # evicted gracefully, not just dropped
    wait_for(
        lambda: [e for e in events(client, reason="FailedScheduling")],
        what="replacement pending",
    )


def test_advancing_the_clock_finishes_a_long_job(kube: KubeSimulator, client: Client) -> None:
    _node(kube)
    apply_yaml(
        client,
        """
apiVersion: batch/v1
kind: Job
metadata: {name: long, namespace: default}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox, command: [sh, -c, "sleep 86400"]}]
""",
    )
    wait_for(lambda: [p for p in client.list(Pod) if p.status.phase == "Running"], what="running")
    kube.clock.advance(86400)  # a simulated day, without waiting 144 real seconds
    wait_for(
        lambda: (j := client.get(Job, "long")).status and j.status.succeeded == 1,
        timeout=5,
        what="job done",
    )
