# mypy: disable-error-code="union-attr,index,operator,arg-type"
# (lightkube models type every field Optional; the tests read fields the server always sets)
"""Block volumes live in one availability domain and attach to one node at a time:
PV zone affinity from the CSI driver's topology, the scheduler's volume node affinity
conflict, and the attach/detach controller's Multi-Attach wait — through lightkube."""

from __future__ import annotations

from kubesim_helpers import apply_yaml, events, wait_for
from lightkube import Client
from lightkube.resources.core_v1 import Event, PersistentVolume, PersistentVolumeClaim, Pod

from nimble_oke.sim.kube import KubeSimulator
from nimble_oke.sim.kube.kubelet import ATTACH_S

AD1, AD2 = "US-ASHBURN-AD-1", "US-ASHBURN-AD-2"
PVC = """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: cache, namespace: default}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 50Gi}}}
"""


def _worker(kube: KubeSimulator, name: str, zone: str) -> None:
    """A CPU worker labelled as OKE labels it (both zone keys, as the CSI driver matches)."""
    kube.add_node(
        name,
        {
            "topology.kubernetes.io/zone": zone,
            "failure-domain.beta.kubernetes.io/zone": zone,
            "node.kubernetes.io/instance-type": "VM.Standard.E5.Flex",
        },
        {"cpu": "3700m", "memory": "15000Mi"},
    )


def _pod(name: str, script: str, node: str | None = None) -> str:
    selector = f"nodeSelector: {{kubernetes.io/hostname: '{node}'}}" if node else ""
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: default}}
spec:
  restartPolicy: Never
  {selector}
  containers:
  - name: sh
    image: busybox:1.36
    command: [sh, -c, "{script}"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  volumes: [{{name: data, persistentVolumeClaim: {{claimName: cache}}}}]
"""


def _phase(client: Client, name: str) -> str | None:
    pod = client.get(Pod, name)
    return pod.status.phase if pod.status else None


def _pod_events(client: Client, pod: str, reason: str) -> list[Event]:
    return [e for e in events(client, reason=reason) if e.involvedObject.name == pod]


def _bound_pv(client: Client) -> PersistentVolume:
    pvc = wait_for(
        lambda: (p := client.get(PersistentVolumeClaim, "cache")).status.phase == "Bound" and p,
        what="bound PVC",
    )
    return client.get(PersistentVolume, pvc.spec.volumeName)


def test_pv_has_zone_affinity_and_pods_elsewhere_hit_a_volume_node_affinity_conflict(
    kube: KubeSimulator, client: Client
) -> None:
    _worker(kube, "10.0.1.10", AD1)
    _worker(kube, "10.0.2.10", AD2)
    apply_yaml(client, PVC + "---" + _pod("writer", "touch /data/marker", "10.0.1.10"))
    pv = _bound_pv(client)
    terms = pv.spec.nodeAffinity.required.nodeSelectorTerms
    assert [(t.matchExpressions[0].key, t.matchExpressions[0].values) for t in terms] == [
        ("topology.kubernetes.io/zone", [AD1]),
        ("failure-domain.beta.kubernetes.io/zone", [AD1]),
    ]
    assert all(t.matchExpressions[0].operator == "In" for t in terms)
    wait_for(lambda: _phase(client, "writer") == "Succeeded", what="writer done")

    apply_yaml(client, _pod("elsewhere", "test -f /data/marker", "10.0.2.10"))
    failed = wait_for(lambda: _pod_events(client, "elsewhere", "FailedScheduling"), what="event")
    assert failed[0].message == (
        "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
        "1 node(s) had volume node affinity conflict. preemption: 0/2 nodes are available: "
        "2 Preemption is not helpful for scheduling.."
    )
    assert client.get(Pod, "elsewhere").spec.nodeName is None

    # without a node selector, the scheduler picks the only node in the volume's AD
    apply_yaml(client, _pod("anywhere", "test -f /data/marker"))
    wait_for(lambda: _phase(client, "anywhere") == "Succeeded", what="reader in AD-1")
    assert client.get(Pod, "anywhere").spec.nodeName == "10.0.1.10"


def test_second_node_waits_for_the_volume_with_a_multi_attach_error(
    kube: KubeSimulator, client: Client
) -> None:
    _worker(kube, "10.0.1.10", AD1)
    _worker(kube, "10.0.1.11", AD1)
    apply_yaml(
        client, PVC + "---" + _pod("writer", "touch /data/marker && sleep 100000", "10.0.1.10")
    )
    wait_for(lambda: _phase(client, "writer") == "Running", what="writer running")
    pv = _bound_pv(client).metadata.name
    attached = _pod_events(client, "writer", "SuccessfulAttachVolume")
    assert [e.message for e in attached] == [f'AttachVolume.Attach succeeded for volume "{pv}"']
    assert attached[0].source.component == "attachdetach-controller"

    # a pod waiting for the volume is deleted promptly (the wait is cancellable)
    apply_yaml(client, _pod("doomed", "true", "10.0.1.11"))
    wait_for(lambda: _pod_events(client, "doomed", "FailedAttachVolume"), what="doomed waits")
    client.delete(Pod, "doomed")
    wait_for(lambda: all(p.metadata.name != "doomed" for p in client.list(Pod)), what="gone")

    apply_yaml(client, _pod("reader", "test -f /data/marker", "10.0.1.11"))
    failed = wait_for(lambda: _pod_events(client, "reader", "FailedAttachVolume"), what="error")
    assert failed[0].type == "Warning"
    assert failed[0].source.component == "attachdetach-controller"
    assert failed[0].message == (
        f'Multi-Attach error for volume "{pv}" Volume is already used by pod(s) writer'
    )
    reader = client.get(Pod, "reader")
    assert reader.status.phase == "Pending"
    assert reader.status.containerStatuses[0].state.waiting.reason == "ContainerCreating"

    released_at = kube.clock.wall()
    client.delete(Pod, "writer")  # the volume is detached from 10.0.1.10 once it is gone
    wait_for(lambda: _phase(client, "reader") == "Succeeded", what="reader done")  # marker seen
    assert [e.message for e in _pod_events(client, "reader", "SuccessfulAttachVolume")] == [
        f'AttachVolume.Attach succeeded for volume "{pv}"'
    ]
    started = client.get(Pod, "reader").status.containerStatuses[0].state.terminated.startedAt
    assert started.timestamp() >= released_at + ATTACH_S - 1  # the attach took its time

    # the volume stays attached to 10.0.1.11: the next pod there does not wait
    apply_yaml(client, _pod("again", "test -f /data/marker", "10.0.1.11"))
    wait_for(lambda: _phase(client, "again") == "Succeeded", what="second reader done")
    for reason in ("FailedAttachVolume", "SuccessfulAttachVolume"):
        assert _pod_events(client, "again", reason) == []
