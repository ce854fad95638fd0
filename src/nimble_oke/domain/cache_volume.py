"""Cache volume size and performance as a lever on time to ready (pure).

A block volume's throughput grows with its size and VPUs per GB (calibration.md: Balanced
480 KB/s per GB up to 480 MB/s, Higher 600 KB/s per GB, Ultra High up to 2,680 MB/s), and
the GPU waits while NIM reads the weights from it — and, when the cache is filled on the
GPU node, while the download writes them. Faster volumes cost more per hour. The planner
prices each candidate (volume for the session and, if kept, a month; plus the GPU time the
volume's speed costs) and picks the cheapest; the table shows what the faster ones buy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from nimble_oke.domain import timings as t

# Candidate sizes (GB) and performance levels (VPUs per GB) the planner weighs.
SIZES_GB = (50, 100, 200, 500, 1000)
VPU_LEVELS = (10, 20, 30, 60, 120)
# The cache holds NIM's model store (weights, tokenizer, engine files) plus room for a second
# profile or version: twice the weights, and OCI's 50 GB minimum.
HEADROOM = 2.0
MIN_SIZE_GB = 50


@dataclass(frozen=True)
class VolumeOption:
    size_gb: int
    vpus_per_gb: int
    mb_per_s: float
    load_s: float  # weights read by NIM (always on the GPU's critical path)
    fill_s: float  # weights written by the download / hydrate
    gpu_wait_s: float  # GPU seconds the volume's speed costs
    volume_usd: float
    gpu_usd: float

    @property
    def total_usd(self) -> float:
        return self.volume_usd + self.gpu_usd

    def as_dict(self) -> dict[str, float | int]:
        return {
            "size_gb": self.size_gb,
            "vpus_per_gb": self.vpus_per_gb,
            "mb_per_s": round(self.mb_per_s, 1),
            "load_s": round(self.load_s, 1),
            "fill_s": round(self.fill_s, 1),
            "gpu_wait_s": round(self.gpu_wait_s, 1),
            "volume_usd": round(self.volume_usd, 4),
            "gpu_usd": round(self.gpu_usd, 4),
            "total_usd": round(self.total_usd, 4),
        }


@dataclass(frozen=True)
class VolumeCosts:
    """Prices and session facts the choice depends on."""

    storage_usd_per_gb_month: float
    vpu_usd_per_gb_month: float
    hours_per_month: float
    gpu_usd_per_hour: float
    session_hours: float
    keep_months: float  # 1 when the cache is kept after the session, else 0


def minimum_size_gb(weights_gb: float) -> int:
    return max(MIN_SIZE_GB, math.ceil(weights_gb * HEADROOM / 10) * 10)


def option(
    size_gb: int,
    vpus_per_gb: int,
    *,
    weights_gb: float,
    source_bytes_per_s: float,
    fill_slack_s: float | None,
    costs: VolumeCosts,
) -> VolumeOption:
    """One candidate. ``fill_slack_s``: seconds the fill may take without the GPU waiting
    (the cache is warmed off the GPU); None = the fill runs on the GPU node."""
    bps = t.volume_throughput_bytes_per_s(size_gb, vpus_per_gb)
    weights = weights_gb * t.GB
    load = weights / bps
    fill = weights / min(bps, source_bytes_per_s)
    fill_on_gpu = fill if fill_slack_s is None else max(0.0, fill - fill_slack_s)
    gpu_wait = load + fill_on_gpu
    per_gb_month = costs.storage_usd_per_gb_month + vpus_per_gb * costs.vpu_usd_per_gb_month
    months = costs.session_hours / costs.hours_per_month + costs.keep_months
    return VolumeOption(
        size_gb=size_gb,
        vpus_per_gb=vpus_per_gb,
        mb_per_s=bps / t.MB,
        load_s=load,
        fill_s=fill,
        gpu_wait_s=gpu_wait,
        volume_usd=size_gb * per_gb_month * months,
        gpu_usd=gpu_wait / 3600 * costs.gpu_usd_per_hour,
    )


def volume_options(
    *,
    weights_gb: float,
    source_bytes_per_s: float,
    fill_slack_s: float | None,
    costs: VolumeCosts,
    sizes_gb: tuple[int, ...] | None = None,
    vpu_levels: tuple[int, ...] = VPU_LEVELS,
) -> list[VolumeOption]:
    """Every candidate (by default: each size at least as large as the model needs, at
    each performance level), cheapest first."""
    smallest = minimum_size_gb(weights_gb)
    sizes = sorted(
        set(sizes_gb) if sizes_gb else {smallest, *(s for s in SIZES_GB if s >= smallest)}
    )
    found = [
        option(
            size,
            vpus,
            weights_gb=weights_gb,
            source_bytes_per_s=source_bytes_per_s,
            fill_slack_s=fill_slack_s,
            costs=costs,
        )
        for size in sizes
        for vpus in vpu_levels
    ]
    return sorted(found, key=lambda o: (round(o.total_usd, 4), o.gpu_wait_s, o.size_gb))


def trade_off(
    options: list[VolumeOption], chosen: VolumeOption, limit: int = 5
) -> list[VolumeOption]:
    """What to show: the efficient options (none other is both cheaper to keep and faster),
    slowest first, at most ``limit`` of them around the choice — minutes saved vs dollars."""
    frontier = [
        o
        for o in options
        if not any(
            (p.volume_usd < o.volume_usd and p.gpu_wait_s <= o.gpu_wait_s)
            or (p.volume_usd <= o.volume_usd and p.gpu_wait_s < o.gpu_wait_s)
            for p in options
        )
    ]
    if chosen not in frontier:
        frontier.append(chosen)
    frontier.sort(key=lambda o: (-o.gpu_wait_s, o.volume_usd))
    at = frontier.index(chosen)
    low = max(0, min(at - limit // 2, len(frontier) - limit))
    return frontier[low : low + limit]
