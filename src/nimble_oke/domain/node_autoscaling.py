"""OKE Cluster Autoscaler add-on settings for the GPU node pool (pure).

The add-on (enhanced clusters) takes key/value configuration arguments: ``nodes`` as
``min:max:<node pool OCID>`` and ``authType`` (``workload`` identity or ``instance``
principals) from OKE's "Cluster Autoscaler" configuration-arguments page; the timing keys
are cluster-autoscaler's own flags in the add-on's camelCase spelling.

Why the timings matter for GPUs: cluster-autoscaler gives up on a node that has not
registered after ``--max-node-provision-time`` (default 15 min) — and a GPU node takes 10-15
min on a VM, 15-25 min on bare metal (calibration.md). With the default, a slow but healthy
GPU node would be treated as failed and the scale-up retried elsewhere. So the limit is the
calibrated worst case plus half again. Scale-down waits long enough that a node which took
minutes (and GPU dollars) to arrive is not removed after a short lull.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nimble_oke.domain import timings as t
from nimble_oke.domain.catalog import Shape
from nimble_oke.domain.config import NimbleConfig

ADDON_NAME = "ClusterAutoscaler"


@dataclass(frozen=True)
class NodeBounds:
    min_nodes: int
    max_nodes: int


def node_bounds(cfg: NimbleConfig) -> NodeBounds:
    """One NIM replica per GPU node (a replica asks for every GPU of the shape), so the pool
    needs as many nodes as the most replicas the HPA may ask for."""
    low = max(1, cfg.gpu_pool.nodes)
    high = max(low, cfg.autoscaling.max_replicas, cfg.nim.replicas)
    return NodeBounds(low, high)


def max_node_provision_minutes(shape: Shape) -> int:
    pool = t.gpu_node_pool(shape.is_bare_metal)
    return math.ceil(pool.worst * 1.5 / 60)


def addon_configurations(cfg: NimbleConfig, shape: Shape, node_pool_id: str) -> dict[str, str]:
    bounds = node_bounds(cfg)
    return {
        "numOfReplicas": "1",
        "nodes": f"{bounds.min_nodes}:{bounds.max_nodes}:{node_pool_id}",
        # enhanced clusters have workload identity: no instance-principal dynamic group
        "authType": "workload",
        "maxNodeProvisionTime": f"{max_node_provision_minutes(shape)}m",
        "scaleDownUnneededTime": "15m",
        "scaleDownDelayAfterAdd": "15m",
    }
