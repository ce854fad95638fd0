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
        node_pool_id, node_pool_name, preemptible, gpus, labels (dict), node_id."""

    def node_removed(self, cluster_id: str, node_name: str) -> None:
        """The node (by name = private IP) no longer exists in the cluster."""

    # Optional: ``cluster_deleted(cluster_id)`` — the cluster is gone, and with it every
    # Kubernetes API object (block volumes and load balancers it created are NOT deleted).
