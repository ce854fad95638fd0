"""Block volume throughput by size and VPUs (calibration.md, "OCI timings and storage")."""

from __future__ import annotations

import pytest

from nimble_oke.sim.kube.volumes import block_volume_bytes_per_s

GIB = 2**30


@pytest.mark.parametrize(
    ("size_gb", "vpus", "mb_per_s"),
    [
        (50, 10, 24.0),  # Balanced: 480 KB/s per GB
        (100, 10, 48.0),
        (200, 10, 96.0),  # "a 200 GB Balanced volume reads at ≈96 MB/s"
        (1024, 10, 480.0),  # capped at 480 MB/s
        (200, 20, 120.0),  # Higher Performance: 600 KB/s per GB
        (2048, 120, 2680.0),  # Ultra High Performance cap
    ],
)
def test_block_volume_throughput(size_gb: int, vpus: int, mb_per_s: float) -> None:
    measured = block_volume_bytes_per_s(size_gb * GIB, vpus) / 1e6
    assert measured == pytest.approx(mb_per_s, rel=0.08)
