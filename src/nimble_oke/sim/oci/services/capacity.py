"""Host capacity and service limits per availability domain, derived from live nodes.

GPU limits count GPUs; CPU limits (``standard-e5-core-count`` …) count OCPUs, taken from the
node pool's ``nodeShapeConfig`` for flexible shapes. A stopped instance still counts toward
its service limit (OCI docs, "Resource Billing for Stopped Instances"); it gives its host
back only on a shape that pauses billing while stopped (the others keep their GPUs reserved),
so a START may find no host left."""

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


def _live_nodes(world: World, ad: str) -> list[Resource]:
    return [
        r
        for r in world.resources.values()
        if r.kind == "node"
        and r.live
        and r.wire.get("availabilityDomain") == ad
        and r.wire.get("nodeShape") in SHAPES
    ]


def holds_host(node: Resource) -> bool:
    """False for a STOPPED instance whose shape pauses billing: its host went back to OCI."""
    stopped = (node.extra.get("power") or {}).get("state") == "STOPPED"
    return not stopped or SHAPES[node.wire["nodeShape"]].is_billed_for_stopped_instance


def limit_value(world: World, limit_name: str, ad: str) -> int:
    value = world.injector.limit(limit_name, ad)
    if value is not None:
        return value
    return (
        DEFAULT_CPU_CORE_LIMIT_PER_AD if limit_name in CPU_LIMIT_NAMES else DEFAULT_GPU_LIMIT_PER_AD
    )


def limit_used(world: World, limit_name: str, ad: str) -> int:
    return sum(
        _units(world, node)
        for node in _live_nodes(world, ad)
        if SHAPES[node.wire["nodeShape"]].limit_name == limit_name
    )


def hosts_left(world: World, shape: str, ad: str) -> int | None:
    """Hosts of ``shape`` in ``ad`` not taken by live nodes (negative: over-committed);
    None = unconstrained."""
    total = world.injector.capacity(shape, ad)
    if total is None:
        return None
    used = sum(
        1 for node in _live_nodes(world, ad) if node.wire["nodeShape"] == shape and holds_host(node)
    )
    return total - used
