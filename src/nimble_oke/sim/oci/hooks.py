"""The seam between the OCI simulator and the Kubernetes simulator.

When an OKE node becomes ACTIVE the OCI side calls ``node_ready``; when it is deleted,
``node_removed``. The Kubernetes simulator registers/unregisters its Node objects there.
Hooks run on a single worker thread in event order; keep them quick.
"""

from __future__ import annotations

from typing import Any, Protocol


class NodeHooks(Protocol):
    def node_ready(self, cluster_id: str, node: dict[str, Any]) -> None:
        """``node``: name (private IP), shape, availability_domain, fault_domain,
        node_pool_id, node_pool_name, preemptible, gpus, labels (dict), node_id,
        preloaded_images ({image ref: size bytes})."""

    def node_removed(self, cluster_id: str, node_name: str) -> None:
        """The node (by name = private IP) no longer exists in the cluster."""

    # Optional hooks (a target without them is fine):
    # ``cluster_created(cluster_id, {"name", "region"})`` — a cluster's control plane is being
    #   created: start its own Kubernetes API server and tell the simulator where it listens
    #   (``OciSimulator.register_cluster_api``); the cluster stays CREATING until then. A
    #   target with this hook gets it once per live cluster when it attaches, too.
    # ``cluster_deleted(cluster_id)`` — the cluster is gone (or failed to create), and with it
    #   its API server and every Kubernetes object (block volumes and load balancers it
    #   created are NOT deleted).
    # ``node_images(cluster_id, node_name) -> dict[str, int]`` — image ref -> size in bytes of
    #   what the node's containerd holds; called synchronously (under the world lock) when a
    #   custom image is captured from the node (CreateImage). Absent -> no images recorded.
    # ``node_stopped(cluster_id, node_name)`` / ``node_started(cluster_id, node_name)`` — the
    #   instance stops for an image capture and boots again afterwards (Node NotReady/Ready).
    # ``node_ready``'s payload carries ``preloaded_images`` ({ref: size bytes}): the images
    # already in containerd because the node booted from a custom image (empty otherwise).
