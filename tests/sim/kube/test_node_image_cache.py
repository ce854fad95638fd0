# mypy: disable-error-code="union-attr,index,operator,arg-type,attr-defined"
# (lightkube models type every field Optional; the simulator always sets them.)
"""A node's containerd image cache, seen through the Kubernetes API: images a node booted
with (a custom image) are ``status.images`` and are not pulled again; a completed pull is
published there too; a new node reusing a name starts from its own images only."""

from __future__ import annotations

from kubesim_helpers import apply_yaml, wait_for
from lightkube import Client
from lightkube.resources.core_v1 import Event, Node, Pod

from nimble_oke.sim.kube import KubeSimulator

IMAGE = "busybox:1.36"


def _pod(name: str, node: str) -> str:
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: default}}
spec:
  nodeName: {node}
  restartPolicy: Never
  containers: [{{name: main, image: "{IMAGE}", command: [sh, -c, "echo hi"]}}]
"""


def _pull_events(client: Client, pod: str) -> list[tuple[str, str]]:
    return [
        (str(e.reason), str(e.message))
        for e in client.list(Event, namespace="default")
        if e.involvedObject.name == pod and e.reason in ("Pulling", "Pulled")
    ]


def _pulled(client: Client, pod: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = wait_for(
        lambda: [e for e in _pull_events(client, pod) if e[0] == "Pulled"],
        what=f"image pulled for {pod}",
    )
    return found


def _node_images(client: Client, name: str) -> dict[str, int]:
    node = client.get(Node, name)
    return {n: int(e.sizeBytes or 0) for e in node.status.images or [] for n in e.names}


def test_preloaded_images_skip_the_pull_and_do_not_leak_to_a_new_node(
    kube: KubeSimulator, client: Client
) -> None:
    kube.add_node("10.0.1.5", images={IMAGE: 4_000_000})
    assert _node_images(client, "10.0.1.5") == {IMAGE: 4_000_000}
    assert kube.node_images("10.0.1.5") == {IMAGE: 4_000_000}

    apply_yaml(client, _pod("warm", "10.0.1.5"))
    assert _pulled(client, "warm") == [
        ("Pulled", f'Container image "{IMAGE}" already present on machine')
    ]
    assert not [e for e in _pull_events(client, "warm") if e[0] == "Pulling"]
    wait_for(lambda: client.get(Pod, "warm").status.phase == "Succeeded", what="warm done")
    client.delete(Pod, "warm")

    # the instance is replaced by one with a plain boot volume under the same name (IP)
    kube.remove_node("10.0.1.5")
    wait_for(lambda: not kube.objects("Pod", "default"), what="old pods collected")
    kube.add_node("10.0.1.5")
    apply_yaml(client, _pod("cold", "10.0.1.5"))
    message = _pulled(client, "cold")[0][1]
    assert message.startswith(f'Successfully pulled image "{IMAGE}"')
    assert ("Pulling", f'Pulling image "{IMAGE}"') in _pull_events(client, "cold")
    # the completed pull is published in the node's status, with the registry's size
    images = wait_for(lambda: _node_images(client, "10.0.1.5"), what="status.images")
    assert list(images) == [IMAGE]
    assert images[IMAGE] > 0


def test_node_ready_condition_follows_instance_stop_and_start(
    kube: KubeSimulator, client: Client
) -> None:
    kube.add_node("10.0.1.6")

    def ready() -> tuple[str, str, list[str]]:
        node = client.get(Node, "10.0.1.6")
        cond = next(c for c in node.status.conditions if c.type == "Ready")
        return str(cond.status), str(cond.reason), [str(t.key) for t in node.spec.taints or []]

    kube.set_node_ready("10.0.1.6", False)
    assert ready() == ("Unknown", "NodeStatusUnknown", ["node.kubernetes.io/unreachable"])
    kube.set_node_ready("10.0.1.6", True)
    assert ready() == ("True", "KubeletReady", [])
