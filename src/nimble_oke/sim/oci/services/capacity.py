"""Host capacity and service limits per availability domain, derived from live nodes."""

from __future__ import annotations

from nimble_oke.sim.oci.catalog import DEFAULT_GPU_LIMIT_PER_AD, SHAPES
from nimble_oke.sim.oci.world import World


def _live_nodes(world: World, ad: str) -> list[tuple[str, int]]:
    return [
        (r.wire["nodeShape"], SHAPES[r.wire["nodeShape"]].gpus)
        for r in world.resources.values()
        if r.kind == "node"
        and r.live
        and r.wire.get("availabilityDomain") == ad
        and r.wire.get("nodeShape") in SHAPES
    ]


def limit_value(world: World, limit_name: str, ad: str) -> int:
    value = world.injector.limit(limit_name, ad)
    return DEFAULT_GPU_LIMIT_PER_AD if value is None else value


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
