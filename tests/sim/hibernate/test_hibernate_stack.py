# mypy: disable-error-code="union-attr,index,operator,arg-type,attr-defined"
# (lightkube models type every field Optional; the servers always set them.)
"""On the joined stack (OCI simulator + Kubernetes simulator): a stopped instance's Node goes
NotReady and keeps what its boot volume holds (containerd's images, ``status.images``) and
its attached block volume; after START the Node is Ready again and a pod finds the image
"already present on machine" and the volume's data where it left it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import oci
import pytest
from lightkube import Client, KubeConfig
from lightkube.codecs import load_all_yaml
from lightkube.resources.core_v1 import Event, Node, PersistentVolumeClaim, Pod
from ocisim_helpers import client_kwargs, create_active_cluster, make_network, pool_details

from nimble_oke.sim.stack import SimStack
from polling import wait_for

SCALE = 3000.0  # a VM GPU node (10-12 min) is ACTIVE in ≈0.25 s; a START (≤5 min) in 0.1 s
IMAGE = "busybox:1.36"
UNREACHABLE = "node.kubernetes.io/unreachable"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[SimStack]:
    with SimStack(tmp_path / "sim", time_scale=SCALE, seed=5) as s:
        yield s


def _pod(name: str, node: str, script: str) -> Any:
    text = f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: default}}
spec:
  nodeName: "{node}"
  restartPolicy: Never
  tolerations: [{{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}}]
  containers:
  - name: sh
    image: "{IMAGE}"
    command: [sh, -c, "{script}"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  volumes: [{{name: data, persistentVolumeClaim: {{claimName: cache}}}}]
"""
    return load_all_yaml(text)[0]


PVC = """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: cache, namespace: default}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 50Gi}}}
"""


def _ready(kc: Client, node: str) -> str:
    conditions = kc.get(Node, node).status.conditions
    return str(next(c.status for c in conditions if c.type == "Ready"))


def _taints(kc: Client, node: str) -> set[str]:
    return {t.key for t in kc.get(Node, node).spec.taints or []}


def _images(kc: Client, node: str) -> set[str]:
    return {n for e in kc.get(Node, node).status.images or [] for n in e.names}


def _phase(kc: Client, pod: str) -> str:
    return str(kc.get(Pod, pod).status.phase)


def _pulled(kc: Client, pod: str) -> list[str]:
    return [
        str(e.message)
        for e in kc.list(Event, namespace="default")
        if e.involvedObject.name == pod and e.reason == "Pulled"
    ]


def _gpu_node(stack: SimStack, ce: Any, vn: Any) -> Any:
    net = make_network(stack.oci, vn)
    cluster_id = create_active_cluster(stack.oci, ce, net)
    resp = ce.create_node_pool(pool_details(stack.oci, ce, cluster_id, net["workers"]))
    pool_id = ce.get_work_request(resp.headers["opc-work-request-id"]).data.resources[0]

    def active() -> Any:
        nodes = ce.get_node_pool(pool_id.identifier).data.nodes
        return nodes[0] if nodes and nodes[0].lifecycle_state == "ACTIVE" else None

    return wait_for(active, timeout=20.0, what="the GPU node ACTIVE")


def _volume_states(stack: SimStack) -> list[str]:
    return [
        str(r.wire["lifecycleState"])
        for r in stack.oci.world.resources.values()
        if r.kind == "volume" and r.live
    ]


def test_a_stopped_node_is_not_ready_and_keeps_its_images_and_volume(stack: SimStack) -> None:
    config, kwargs = stack.oci.oci_config(), client_kwargs(stack.oci)
    ce = oci.container_engine.ContainerEngineClient(config, **kwargs)
    vn = oci.core.VirtualNetworkClient(config, **kwargs)
    compute = oci.core.ComputeClient(config, **kwargs)
    kc: Client | None = None
    try:
        node = _gpu_node(stack, ce, vn)
        # the cluster's own API server exists from now on (one per cluster)
        kc = Client(KubeConfig.from_file(str(stack.kubeconfig_path)), field_manager="t")
        wait_for(lambda: _ready(kc, node.name) == "True", timeout=20.0, what="Node Ready")
        for obj in load_all_yaml(PVC):
            kc.create(obj)
        kc.create(_pod("writer", node.name, "touch /data/marker"))
        wait_for(lambda: _phase(kc, "writer") == "Succeeded", timeout=20.0, what="writer")
        assert IMAGE in _images(kc, node.name)
        assert _volume_states(stack) == ["AVAILABLE"]
        kc.delete(Pod, "writer", grace_period=0)  # NIM scaled to zero before the stop

        assert compute.instance_action(node.id, "SOFTSTOP").data.lifecycle_state == "STOPPING"
        wait_for(lambda: _ready(kc, node.name) == "Unknown", timeout=20.0, what="NotReady")
        assert UNREACHABLE in _taints(kc, node.name)
        wait_for(
            lambda: compute.get_instance(node.id).data.lifecycle_state == "STOPPED",
            timeout=20.0,
            what="STOPPED",
        )
        # the boot volume (containerd's images) and the block volume are kept
        assert IMAGE in _images(kc, node.name)
        assert _volume_states(stack) == ["AVAILABLE"]
        assert kc.get(PersistentVolumeClaim, "cache", namespace="default").status.phase == "Bound"
        assert [n.metadata.name for n in kc.list(Node)] == [node.name]

        compute.instance_action(node.id, "START")
        wait_for(lambda: _ready(kc, node.name) == "True", timeout=20.0, what="Ready again")
        assert compute.get_instance(node.id).data.lifecycle_state == "RUNNING"
        assert UNREACHABLE not in _taints(kc, node.name)
        assert IMAGE in _images(kc, node.name)
        kc.create(_pod("reader", node.name, "test -f /data/marker"))
        wait_for(lambda: _phase(kc, "reader") == "Succeeded", timeout=20.0, what="reader")
        assert _pulled(kc, "reader") == [f'Container image "{IMAGE}" already present on machine']
    finally:
        if kc is not None:
            kc.close()
        for client in (ce, vn, compute):
            client.base_client.session.close()


def test_an_image_captured_from_a_stopped_node_leaves_it_stopped(stack: SimStack) -> None:
    """OCI captures a STOPPED instance without starting it: the Node stays NotReady after the
    capture (a capture of a running one stops it and boots it again), and a capture while
    the instance is STOPPING is refused as busy."""
    config, kwargs = stack.oci.oci_config(), client_kwargs(stack.oci)
    ce = oci.container_engine.ContainerEngineClient(config, **kwargs)
    vn = oci.core.VirtualNetworkClient(config, **kwargs)
    compute = oci.core.ComputeClient(config, **kwargs)
    kc: Client | None = None
    try:
        node = _gpu_node(stack, ce, vn)
        # the cluster's own API server exists from now on (one per cluster)
        kc = Client(KubeConfig.from_file(str(stack.kubeconfig_path)), field_manager="t")
        wait_for(lambda: _ready(kc, node.name) == "True", timeout=20.0, what="Node Ready")
        compute.instance_action(node.id, "SOFTSTOP")
        details = oci.core.models.CreateImageDetails(
            compartment_id=stack.oci.compartment_id, instance_id=node.id
        )
        with pytest.raises(oci.exceptions.ServiceError) as busy:
            compute.create_image(details)
        assert (busy.value.status, busy.value.code) == (409, "Conflict")
        wait_for(
            lambda: compute.get_instance(node.id).data.lifecycle_state == "STOPPED",
            timeout=20.0,
            what="STOPPED",
        )
        image_id = compute.create_image(details).data.id
        wait_for(
            lambda: compute.get_image(image_id).data.lifecycle_state == "AVAILABLE",
            timeout=20.0,
            what="image AVAILABLE",
        )
        assert _ready(kc, node.name) == "Unknown"
        assert compute.get_instance(node.id).data.lifecycle_state == "STOPPED"
    finally:
        if kc is not None:
            kc.close()
        for client in (ce, vn, compute):
            client.base_client.session.close()
