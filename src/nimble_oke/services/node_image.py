"""A GPU worker image with the NIM image already in containerd (``down --keep-node-image``).

The NIM image is ≈12 GB; a new GPU node pulls it at ≈55 MB/s (calibration.md), so every
warm ``up`` spends ≈3.6 GPU-billed minutes on the pull. OKE accepts custom images built from
its own node images, so before the GPU pool is deleted ``down --keep-node-image`` captures
the GPU node's boot volume as a custom image (``ComputeClient.create_image`` from the node's
instance). The next ``up`` creates the pool from it when it still fits — same Kubernetes
version, same NIM image — and the kubelet finds the image "already present on machine".

Costs and caveats (said to the user, documented in README):
- the capture stops the node for its duration (not published; the simulator assumes 8-12
  min) and the GPU keeps billing while it is stopped (assumed, conservative);
- the custom image is stored at Object Storage rates while kept;
- the image carries what the node's boot volume held, including its kubelet credentials for
  this cluster: they die with the cluster, so keep the image only in a tenancy you trust.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nimble_oke.catalog import load_catalog
from nimble_oke.domain.config import NimbleConfig
from nimble_oke.domain.cost import object_storage_meters
from nimble_oke.errors import NimbleError
from nimble_oke.ports import Created
from nimble_oke.services.provision import TAG_ROLE, session_tags
from nimble_oke.services.targets import Target
from nimble_oke.state.store import ResourceRecord, StateStore

Say = Callable[[str], None]
KIND = "node_image"
ROLE_NODE_IMAGE = "gpu-node-image"
# What the image holds, as freeform tags on the image itself (so it describes itself even
# without the local journal).
TAG_NIM_IMAGE = "nimble-oke-nim-image"
TAG_KUBERNETES = "nimble-oke-kubernetes"


@dataclass(frozen=True)
class NodeImage:
    image_id: str
    name: str
    nim_image: str
    kubernetes_version: str


def nim_image_ref(cfg: NimbleConfig) -> str:
    model = load_catalog().model(cfg.nim.model)
    return f"{cfg.nim.image_repository or model.image}:{cfg.nim.image_tag or model.tag}"


def node_image_of(record: ResourceRecord) -> NodeImage:
    """A journaled node image with what its tags say it holds."""
    return NodeImage(
        record.resource_id,
        record.name or record.resource_id,
        record.tags.get(TAG_NIM_IMAGE, ""),
        record.tags.get(TAG_KUBERNETES, ""),
    )


def unfit(image: NodeImage, cfg: NimbleConfig) -> str | None:
    """Why a GPU pool of this session cannot start from the image (None: it can)."""
    if image.kubernetes_version != cfg.cluster.kubernetes_version:
        return (
            f"is for Kubernetes {image.kubernetes_version}, this session runs "
            f"{cfg.cluster.kubernetes_version}"
        )
    wanted = nim_image_ref(cfg)
    if image.nim_image != wanted:
        return f"holds {image.nim_image}, this session runs {wanted}"
    return None


def usable_node_image(
    cfg: NimbleConfig, target: Target, store: StateStore, session: str, say: Say
) -> NodeImage | None:
    """The newest kept node image the GPU pool can start from, or None (saying why not).
    Images gone from the cloud are marked deleted in the journal on the way."""
    records = [r for r in store.resources(session, live_only=True) if r.kind == KIND and r.kept]
    for record in reversed(records):
        state = target.provider.state(KIND, record.resource_id)
        if state is None:
            store.record_deleted(session, KIND, record.resource_id)
            continue
        image = node_image_of(record)
        reason = unfit(image, cfg)
        if reason is not None:
            say(f"node image  kept image {image.name} {reason}: not used")
        elif state == "AVAILABLE":
            return image
    return None


def keep_node_image(
    cfg: NimbleConfig,
    target: Target,
    store: StateStore,
    session: str,
    say: Say,
    *,
    timeout_s: float,
) -> str | None:
    """Before the GPU pool goes: make sure a node image with this session's NIM image is
    kept. Reuses the one the pool was created from; otherwise captures a GPU node. Returns
    the image id, or None when there is no GPU node to capture (said)."""
    current = usable_node_image(cfg, target, store, session, lambda _m: None)
    pools = [r for r in store.resources(session, live_only=True) if r.kind == "node_pool"]
    # the GPU pool, not the cache warm-up's CPU pool: its meters bill GPUs
    gpu_pools = [p for p in pools if any(m.price_key.startswith("gpu.") for m in p.meters)]
    if current is not None:
        say(f"node image  keeping {current.name} (this session's GPU pool started from it)")
        return current.image_id
    nodes = [
        n
        for pool in gpu_pools
        for n in target.provider.node_pool_nodes(pool.resource_id)
        if n.get("state") == "ACTIVE" and n.get("id")
    ]
    if not nodes:
        say("node image  no active GPU node to capture: nothing kept")
        return None
    node = nodes[0]
    name = f"{session}-gpu-node"
    tags = {
        **session_tags(session),
        TAG_ROLE: ROLE_NODE_IMAGE,
        TAG_NIM_IMAGE: nim_image_ref(cfg),
        TAG_KUBERNETES: cfg.cluster.kubernetes_version,
    }
    step = f"node-image/{node['id'][-12:]}"
    entry = store.intend(session, step, KIND)
    say(
        f"node image  capturing GPU node {node['name']} (the node stops while OCI copies its "
        "boot volume; the GPU bills meanwhile)"
    )
    created = target.provider.create(
        KIND,
        {"name": name, "instance_id": node["id"], "tags": tags},
        retry_token=entry.retry_token,
    )
    store.journal_update(session, step, status="done", resource_id=created.resource_id)
    store.record_created(session, KIND, created.resource_id, name=name, tags=tags)
    try:
        target.provider.await_ready(
            KIND, Created(created.resource_id, None, created.request_id), timeout_s=timeout_s
        )
    except NimbleError:
        # an image that never became usable is not kept: it goes with the session
        say("node image  the capture did not finish: the image is deleted with the session")
        raise
    size_gb = target.provider.node_image_size_gb(created.resource_id) or 0.0
    store.set_meters(
        session,
        KIND,
        created.resource_id,
        object_storage_meters(size_gb, item=f"Node image ({size_gb:.0f} GB)"),
    )
    store.mark_kept(session, KIND, created.resource_id)
    store.event(session, "INFO", f"kept node image {created.resource_id} ({size_gb:.0f} GB)")
    say(f"node image  kept {name} ({size_gb:.0f} GB, stored at Object Storage rates)")
    return created.resource_id
