"""Modeled durations of the session's phases, calibrated from published figures.

Every constant cites its source in ../shared/reference/calibration.md or oci.md. Each has
a *typical* value (used for the estimate and the timeline) and a *worst* value (used for the
worst-case cost the budget guard checks). Durations are seconds.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

MB = 1_000_000
GB = 1_000_000_000


@dataclass(frozen=True)
class Span:
    typical: float
    worst: float


# oci.md "Time figures": network objects are created in seconds each.
NETWORK = Span(typical=60, worst=180)
# calibration.md: enhanced cluster to ACTIVE 5-10 min (CLI); oci.md: OKE cluster create
# 10-15 min. Basic and enhanced take the same time.
CLUSTER_CREATE = Span(typical=7 * 60, worst=15 * 60)
# calibration.md: GPU node pool node to ACTIVE 10-15 min (VM); bare metal +5-10 min.
NODE_POOL_VM = Span(typical=11 * 60, worst=15 * 60)
NODE_POOL_BM = Span(typical=18 * 60, worst=30 * 60)


def gpu_node_pool(bare_metal: bool) -> Span:
    """Time until a GPU node pool's nodes are ACTIVE, for a VM or a bare-metal shape."""
    return NODE_POOL_BM if bare_metal else NODE_POOL_VM


# CPU node pool node to ACTIVE: not published; assumed 5-7 min (a CPU VM boots faster than a
# GPU VM and needs no GPU driver set-up) — the OCI simulator uses the same assumption.
CPU_NODE_POOL = Span(typical=6 * 60, worst=10 * 60)
# Block volume attach (paravirtualized) and mount on a new node: not published; assumed
# ≈30 s typical, 2 min worst.
VOLUME_ATTACH = Span(typical=30, worst=120)
# calibration.md (KAITO issue 2325): node init after the instance is up ≈ 126 s; included
# in the node pool figures above, which measure node ACTIVE in Kubernetes.
# calibration.md: LoadBalancer external IP 1-2 min.
LOAD_BALANCER = Span(typical=90, worst=180)
# calibration.md: image pull ≈ 55 MB/s observed (5.6 GB in 101 s); oci.md: up to 26 min on
# a slow path for a 10-15 GB NIM image.
IMAGE_PULL_BYTES_PER_S = Span(typical=55 * MB, worst=10 * MB)
# nimble's own tool image (python slim + nimble): assumed ≈150 MB, the size the simulator
# gives it; it hydrates the cache from Object Storage.
TOOLS_IMAGE_BYTES = 150 * MB
# calibration.md: NGC weight download ≈ 15 GB in 46-72 s (≈210-330 MB/s); slow storage ≈ 8
# min for 8B (≈ 31 MB/s).
NGC_DOWNLOAD_BYTES_PER_S = Span(typical=250 * MB, worst=31 * MB)
# Object Storage on OCI: not published; modeled like NGC (same-region service gateway).
OBJECT_STORAGE_BYTES_PER_S = Span(typical=250 * MB, worst=31 * MB)
# calibration.md (NVCF log): profile selection +2 s, KV sizing / CUDA graphs +9 s.
ENGINE_START = Span(typical=11, worst=60)
# Smoke suite and the default benchmark on a ready endpoint (our own measurements are
# seconds; a minute is a generous typical figure for a remote endpoint).
SMOKE = Span(typical=30, worst=120)
BENCH = Span(typical=120, worst=300)
# Teardown: LB delete ≈ 1 min, node pool delete with PT0M eviction ≈ 3-5 min, cluster
# delete ≈ 4-8 min, network ≈ 1-2 min (oci.md: deletes are faster than creates).
TEARDOWN_LB = Span(typical=60, worst=180)
TEARDOWN_NODE_POOL = Span(typical=4 * 60, worst=10 * 60)
TEARDOWN_CLUSTER = Span(typical=5 * 60, worst=12 * 60)
TEARDOWN_NETWORK = Span(typical=60, worst=180)

# calibration.md "block volume": Balanced (10 VPU/GB) 480 KB/s per GB up to 480 MB/s; Higher
# (20 VPU/GB) 600 KB/s per GB up to 480 MB/s; Ultra High at 120 VPU/GB 1,800 KB/s per GB up
# to 2,680 MB/s. Between 30 and 120 VPU/GB we interpolate linearly (documented tiers).
_VOLUME_TIERS = (
    # vpus_per_gb, KB/s per GB, cap MB/s
    (0, 240, 480),  # Lower Cost: 240 KB/s per GB (OCI docs), cap 480 MB/s
    (10, 480, 480),
    (20, 600, 480),
    (30, 720, 2680),
    (120, 1800, 2680),
)


def volume_throughput_bytes_per_s(size_gb: float, vpus_per_gb: int) -> float:
    """Block volume throughput for a size and performance level (see tiers above)."""
    tiers = _VOLUME_TIERS
    per_gb_kb, cap_mb = float(tiers[-1][1]), float(tiers[-1][2])
    for (v0, k0, c0), (v1, k1, c1) in itertools.pairwise(tiers):
        if v0 <= vpus_per_gb <= v1:
            frac = 0.0 if v1 == v0 else (vpus_per_gb - v0) / (v1 - v0)
            per_gb_kb = k0 + frac * (k1 - k0)
            cap_mb = c0 if vpus_per_gb < v1 else c1
            break
    return min(size_gb * per_gb_kb * 1000, cap_mb * MB)
