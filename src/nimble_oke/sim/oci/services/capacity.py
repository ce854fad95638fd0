"""Host capacity and service limits per availability domain, derived from live nodes.

GPU limits count GPUs; CPU limits (``standard-e5-core-count`` …) count OCPUs, taken from the
node pool's ``nodeShapeConfig`` for flexible shapes."""

from __future__ import annotations

import math

from nimble_oke.sim.oci.catalog import (
    CPU_LIMIT_NAMES,
    DEFAULT_CPU_CORE_LIMIT_PER_AD,
    DEFAULT_GPU_LIMIT_PER_AD,
    SHAPES,
)
from nimble_oke.sim.oci.world import Resource, World


def _units(world: World, node: Resource) -> int:
    shape = SHAPES[node.wire["nodeShape"]]
    if shape.gpus:
        return shape.gpus
    pool = world.resources.get(str(node.wire.get("nodePoolId")))
    config = (pool.wire.get("nodeShapeConfig") if pool else None) or {}
    return math.ceil(float(config.get("ocpus") or shape.ocpus))


def _live_nodes(world: World, ad: str) -> list[tuple[str, int]]:
    return [
        (r.wire["nodeShape"], _units(world, r))
        for r in world.resources.values()
        if r.kind == "node"
        and r.live
        and r.wire.get("availabilityDomain") == ad
        and r.wire.get("nodeShape") in SHAPES
    ]


def limit_value(world: World, limit_name: str, ad: str) -> int:
    value = world.injector.limit(limit_name, ad)
    if value is not None:
        return value
    return (
        DEFAULT_CPU_CORE_LIMIT_PER_AD if limit_name in CPU_LIMIT_NAMES else DEFAULT_GPU_LIMIT_PER_AD
    )


def limit_used(world: World, limit_name: str, ad: str) -> int:
    return sum(
        gpus for shape, gpus in _live_nodes(world, ad) if SHAPES[shape].limit_name == limit_name
    )


def hosts_left(world: World, shape: str, ad: str) -> int | None:
    """Hosts of ``shape`` in ``ad`` not taken by live nodes (negative: over-committed);
    None = unconstrained."""
    total = world.injector.capacity(shape, ad)
    if total is None:
        return None
    used = sum(1 for s, _ in _live_nodes(world, ad) if s == shape)
    return total - used
