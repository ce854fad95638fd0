# mypy: disable-error-code="union-attr,index,operator,arg-type,attr-defined"
# (lightkube models type every field Optional; the servers always set them.)
"""Custom worker images through the real OCI SDK: capture an OKE GPU node's boot volume
(ComputeClient.create_image from the node's instance), poll the image and its IAAS work
request, find, bill and delete it, and launch node pools from it — on the joined stack, a
node from it has the NIM image in containerd already, so its pod does not pull."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import oci
import pytest
from lightkube import Client, KubeConfig
from lightkube.codecs import load_all_yaml
from lightkube.resources.core_v1 import Event, Node, Pod
from ocisim_helpers import (
    client_kwargs,
    create_active_cluster,
    create_cluster,
    make_network,
    pool_details,
    settle,
)

from nimble_oke.kube.deploy import ensure_ngc_secrets
from nimble_oke.ngc_keys import throwaway_key
from nimble_oke.sim.oci import OciSimulator
from nimble_oke.sim.stack import SimStack
from polling import wait_for

C = oci.core.models
M = oci.container_engine.models
ServiceError = oci.exceptions.ServiceError
NIM_IMAGE = "nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.0"
GIB = 1024**3
BASE_USED_GB = 15  # the simulator's assumed used size of an OKE GPU boot volume


def _capture(compute: Any, compartment_id: str, instance_id: str, **kw: Any) -> Any:
    return compute.create_image(
        C.CreateImageDetails(compartment_id=compartment_id, instance_id=instance_id, **kw)
    )


def _pool_from(sim_or_stack: Any, ce: Any, cluster_id: str, subnet: str, image_id: str) -> Any:
    details = pool_details(sim_or_stack, ce, cluster_id, subnet)
    details.name = "gpu-warm"
    details.node_source_details = M.NodeSourceViaImageDetails(
        source_type="IMAGE", image_id=image_id, boot_volume_size_in_gbs=200
    )
    return details


def _error(call: Callable[[], Any]) -> Any:
    """The ``oci.exceptions.ServiceError`` that ``call`` raises."""
    with pytest.raises(ServiceError) as info:
        call()
    return info.value


def test_capture_poll_list_search_bill_launch_and_delete(
    clients: dict[str, Any], sim: OciSimulator
) -> None:
    ce, compute, comp = clients["ce"], clients["compute"], sim.compartment_id
    net = make_network(sim, clients["vn"])
    cluster_id = create_cluster(sim, ce, net)
    missing = "ocid1.instance.oc1.iad.aaaaaaaanosuchinstance"
    gone = _error(lambda: _capture(compute, comp, missing))
    assert (gone.status, gone.code) == (404, "NotAuthorizedOrNotFound")

    resp = ce.create_node_pool(pool_details(sim, ce, cluster_id, net["workers"]))
    pool_id = ce.get_work_request(resp.headers["opc-work-request-id"]).data.resources[0].identifier
    pool = ce.get_node_pool(pool_id).data
    node_id = pool.nodes[0].id
    booting = _error(lambda: _capture(compute, comp, node_id))
    assert (booting.status, booting.code) == (409, "IncorrectState")
    settle(sim, 13 * 60)
    imported = _error(
        lambda: compute.create_image(
            C.CreateImageDetails(
                compartment_id=comp,
                image_source_details=C.ImageSourceViaObjectStorageUriDetails(
                    source_uri="https://objectstorage.example/image.oci"
                ),
            )
        )
    )
    assert imported.status == 400 and "not supported" in imported.message

    tags = {"nimble-session": "t1", "nimble-node-image": "llama"}
    resp = _capture(compute, comp, node_id, display_name="nim-node", freeform_tags=tags)
    image = resp.data
    assert image.id.startswith("ocid1.image.oc1.iad.")
    assert image.lifecycle_state == "PROVISIONING"
    assert image.base_image_id == pool.node_image_id
    assert (image.operating_system, image.operating_system_version) == ("Oracle Linux", "8")
    assert image.launch_mode == "PARAVIRTUALIZED" and image.create_image_allowed
    assert image.size_in_mbs == 200 * 1024  # the source node's boot volume
    assert image.billable_size_in_gbs == BASE_USED_GB  # no Kubernetes joined: no images
    assert image.freeform_tags == tags
    unnamed = _error(lambda: _capture(compute, comp, node_id))  # one capture at a time
    assert unnamed.status == 409

    wr_id = resp.headers["opc-work-request-id"]
    work = oci.work_requests.WorkRequestClient(sim.oci_config(), **client_kwargs(sim))
    try:
        assert work.get_work_request(wr_id).data.status in ("ACCEPTED", "IN_PROGRESS")
        early = _error(
            lambda: ce.create_node_pool(_pool_from(sim, ce, cluster_id, net["workers"], image.id))
        )
        assert early.status == 400 and image.id in early.message
        assert "PROVISIONING" in early.message
        settle(sim, 7 * 60)  # 8-12 min: still copying
        assert compute.get_image(image.id).data.lifecycle_state == "PROVISIONING"
        settle(sim, 5 * 60)
        assert compute.get_image(image.id).data.lifecycle_state == "AVAILABLE"
        done = work.get_work_request(wr_id).data
        assert done.status == "SUCCEEDED" and done.percent_complete == 100.0
        assert done.resources[0].identifier == image.id
        assert done.resources[0].action_type == "CREATED"
        listed = work.list_work_requests(comp, resource_id=image.id).data
        assert [w.id for w in listed] == [wr_id]
    finally:
        work.base_client.session.close()

    available = compute.list_images(comp, lifecycle_state="AVAILABLE").data
    assert [(i.id, i.freeform_tags) for i in available] == [(image.id, tags)]
    assert [i.id for i in compute.list_images(comp, display_name="nim-node").data] == [image.id]
    assert compute.list_images(comp, display_name="other").data == []
    search = oci.resource_search.ResourceSearchClient(sim.oci_config(), **client_kwargs(sim))
    try:
        query = (
            "query all resources where (freeformTags.key = 'nimble-session' "
            "&& freeformTags.value = 't1')"
        )
        hits = search.search_resources(
            oci.resource_search.models.StructuredSearchDetails(query=query, type="Structured")
        ).data.items
        assert ("Image", image.id) in {(h.resource_type, h.identifier) for h in hits}
    finally:
        search.base_client.session.close()

    # a pool from the custom image: named after it, its version is its OKE base image's
    warm = ce.create_node_pool(_pool_from(sim, ce, cluster_id, net["workers"], image.id))
    warm_id = ce.get_work_request(warm.headers["opc-work-request-id"]).data.resources[0]
    warm_pool = ce.get_node_pool(warm_id.identifier).data
    assert warm_pool.node_image_name == "nim-node"
    assert warm_pool.node_source.image_id == image.id
    assert warm_pool.node_source.source_name == "nim-node"
    wrong = _pool_from(sim, ce, cluster_id, net["workers"], image.id)
    wrong.kubernetes_version = "v1.34.10"
    version = _error(lambda: ce.create_node_pool(wrong))
    assert version.status == 400
    assert version.message == "Image nim-node is for Kubernetes v1.35.2, not v1.34.10"

    renamed = compute.update_image(image.id, C.UpdateImageDetails(display_name="nim-node-2"))
    assert renamed.data.display_name == "nim-node-2"
    settle(sim, 3600)
    rows = [r for r in sim.billing() if r["id"] == image.id]
    assert [(r["price_key"], r["quantity"], r["unit"]) for r in rows] == [
        ("object.storage", BASE_USED_GB, "gb-month")
    ]
    assert 3600 <= rows[0]["seconds"] <= 3600 + 5 * 60

    assert compute.delete_image(image.id).status == 204
    deleted = _error(
        lambda: ce.create_node_pool(_pool_from(sim, ce, cluster_id, net["workers"], image.id))
    )
    assert deleted.status == 400 and "DELETED" in deleted.message
    settle(sim, 30)
    assert compute.get_image(image.id).data.lifecycle_state == "DELETED"
    assert compute.list_images(comp).data == []
    assert _error(lambda: compute.delete_image(image.id)).status == 404
    (row,) = [r for r in sim.billing() if r["id"] == image.id]
    assert not row["live"]
    # OCI allows deleting an image in use: the pool's nodes launched from it keep running
    assert {n.lifecycle_state for n in ce.get_node_pool(warm_id.identifier).data.nodes} == {
        "ACTIVE"
    }


# --- on the joined stack: the NIM image travels in the custom image --------------------------

SCALE = 3000.0  # a VM GPU node (10-12 min) is ACTIVE in ≈0.25 s; a capture in ≈0.25 s


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[SimStack]:
    with SimStack(tmp_path / "sim", time_scale=SCALE, seed=11) as s:
        yield s


def _nim_pod(name: str, node: str) -> Any:
    text = f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: default}}
spec:
  nodeName: "{node}"
  restartPolicy: Never
  imagePullSecrets: [{{name: ngc-secret}}]
  tolerations: [{{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}}]
  containers: [{{name: nim, image: "{NIM_IMAGE}"}}]
"""
    (pod,) = load_all_yaml(text)
    return pod


def _pull_events(kc: Client, pod: str) -> list[tuple[str, str]]:
    return [
        (str(e.reason), str(e.message))
        for e in kc.list(Event, namespace="default")
        if e.involvedObject.name == pod and e.reason in ("Pulling", "Pulled")
    ]


def _ready(kc: Client, node: str) -> str:
    conditions = kc.get(Node, node).status.conditions
    return str(next(c.status for c in conditions if c.type == "Ready"))


def _pool_node(ce: Any, pool_id: str) -> Any:
    nodes = ce.get_node_pool(pool_id).data.nodes
    return nodes[0] if nodes and nodes[0].lifecycle_state == "ACTIVE" else None


def test_a_node_from_a_captured_image_has_the_nim_image_already(stack: SimStack) -> None:
    kwargs = client_kwargs(stack.oci)
    config = stack.oci.oci_config()
    ce = oci.container_engine.ContainerEngineClient(config, **kwargs)
    vn = oci.core.VirtualNetworkClient(config, **kwargs)
    compute = oci.core.ComputeClient(config, **kwargs)
    comp = stack.oci.compartment_id
    net = make_network(stack.oci, vn)
    cluster_id = create_active_cluster(stack.oci, ce, net)
    # the cluster's own API server, through its admin kubeconfig
    kc = Client(KubeConfig.from_file(str(stack.kubeconfig_for(cluster_id))), field_manager="t")
    try:
        resp = ce.create_node_pool(pool_details(stack.oci, ce, cluster_id, net["workers"]))
        pool_id = ce.get_work_request(resp.headers["opc-work-request-id"]).data.resources[0]
        node = wait_for(
            lambda: _pool_node(ce, pool_id.identifier), timeout=20.0, what="the first GPU node"
        )
        wait_for(
            lambda: _ready(kc, node.name) == "True", timeout=20.0, what="the node in Kubernetes"
        )

        # the pull Secret the chart names (the NGC key Secret comes with it)
        ensure_ngc_secrets(kc, "default", throwaway_key(), session="test")
        kc.create(_nim_pod("cold", node.name))
        pulled = wait_for(
            lambda: [m for r, m in _pull_events(kc, "cold") if r == "Pulled"],
            timeout=20.0,
            what="the NIM pull",
        )
        assert pulled[0].startswith(f'Successfully pulled image "{NIM_IMAGE}"')
        kc.delete(Pod, "cold", grace_period=0)
        status_images = {n for e in kc.get(Node, node.name).status.images for n in e.names}
        assert NIM_IMAGE in status_images

        resp = _capture(compute, comp, node.id, display_name="nim-warm")
        image = resp.data
        nim_bytes = 12_000_000_000  # the simulator's NIM image size
        assert image.billable_size_in_gbs == -(-(BASE_USED_GB * GIB + nim_bytes) // GIB)
        # OCI stops the instance for the copy: the Node is NotReady, then Ready again
        wait_for(lambda: _ready(kc, node.name) == "Unknown", timeout=20.0, what="the node stopped")
        wait_for(
            lambda: compute.get_image(image.id).data.lifecycle_state == "AVAILABLE",
            timeout=20.0,
            what="the image",
        )
        wait_for(
            lambda: _ready(kc, node.name) == "True", timeout=20.0, what="the node started again"
        )

        wrong = _pool_from(stack.oci, ce, cluster_id, net["workers"], image.id)
        wrong.kubernetes_version = "v1.34.10"
        assert "not v1.34.10" in _error(lambda: ce.create_node_pool(wrong)).message
        resp = ce.create_node_pool(_pool_from(stack.oci, ce, cluster_id, net["workers"], image.id))
        warm_pool = ce.get_work_request(resp.headers["opc-work-request-id"]).data.resources[0]
        warm_node = wait_for(
            lambda: _pool_node(ce, warm_pool.identifier), timeout=20.0, what="the warm GPU node"
        )
        assert warm_node.name != node.name
        wait_for(
            lambda: _ready(kc, warm_node.name) == "True",
            timeout=20.0,
            what="the warm node in Kubernetes",
        )
        images = {n for e in kc.get(Node, warm_node.name).status.images for n in e.names}
        assert NIM_IMAGE in images

        kc.create(_nim_pod("warm", warm_node.name))
        events = wait_for(
            lambda: _pull_events(kc, "warm"), timeout=20.0, what="the warm pod's image check"
        )
        assert events == [("Pulled", f'Container image "{NIM_IMAGE}" already present on machine')]
        kc.delete(Pod, "warm", grace_period=0)
    finally:
        kc.close()
        for client in (ce, vn, compute):
            client.base_client.session.close()
