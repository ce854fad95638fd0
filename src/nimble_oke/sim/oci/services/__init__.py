"""The simulated OCI services. ``build_router`` wires every service's routes and actions."""

from __future__ import annotations

from typing import Any

from nimble_oke.sim.oci.http import Router
from nimble_oke.sim.oci.services import (
    blockstorage,
    compute,
    containerengine,
    identity,
    images,
    loadbalancer,
    network,
    nodes,
    objectstorage,
    resourcescheduler,
    search,
    tagging,
    workrequests,
)
from nimble_oke.sim.oci.world import World


def _register_lifecycle(world: World) -> None:
    def lifecycle(a: dict[str, Any]) -> None:
        res = world.resources.get(a["id"])
        if res is None:
            return
        if a.get("deleted"):
            world.mark_deleted(res, a["state"])
        elif res.live and res.wire.get("lifecycleState") not in ("TERMINATING", "DELETING"):
            world.set_state(res, a["state"])

    world.actions["lifecycle"] = lifecycle


def build_router(world: World) -> Router:
    router = Router()
    _register_lifecycle(world)
    for module in (
        identity,
        network,
        compute,
        images,
        workrequests,
        containerengine,
        blockstorage,
        loadbalancer,
        objectstorage,
        search,
        tagging,
        resourcescheduler,
    ):
        module.register(router)
    for module_with_actions in (
        workrequests,
        nodes,
        containerengine,
        loadbalancer,
        objectstorage,
        images,
        resourcescheduler,
    ):
        module_with_actions.register_actions(world)
    return router
