"""Compute instances behind OKE nodes: ``GetInstance`` and ``InstanceAction`` (STOP/START).

An OKE managed node is a compute instance (the simulator's ``node`` resource, OCID
``ocid1.instance...``). Stopping one through the API (or a Resource Scheduler schedule)
changes what it bills, per OCI's "Resource Billing for Stopped Instances"
(reference/calibration.md): standard shapes and VM instances of the VM.GPU.A10 series
pause billing; every other GPU shape (bare metal A10 included) keeps billing while
stopped, because the GPU stays reserved. The boot volume always bills. A stopped instance
still counts toward service limits. Its Kubernetes node goes away while stopped (the
kubelet is down; the simulator removes the Node object) and comes back on START.
"""

from __future__ import annotations

from typing import Any

from nimble_oke.sim.oci.api_error import ApiError, invalid, not_found
from nimble_oke.sim.oci.catalog import SHAPES
from nimble_oke.sim.oci.http import Ctx, Reply, Router, ok
from nimble_oke.sim.oci.services import nodes
from nimble_oke.sim.oci.world import Resource, World

V = "/20160918"
ACTIONS = ("STOP", "START", "SOFTSTOP", "RESET", "SOFTRESET")
BOOT_VOLUME_KEYS = ("block.storage", "block.vpu")


def billed_while_stopped(shape_name: str) -> bool:
    """Whether a stopped instance of this shape keeps billing its compute (GPU) lines."""
    shape = SHAPES.get(shape_name)
    if shape is None or not shape.gpus:
        return False
    return not shape_name.startswith("VM.GPU.A10")


def _instance(world: World, ident: str) -> Resource:
    res = world.resources.get(ident)
    if res is None or res.kind != "node":
        raise not_found("instance", ident)
    return res


def _state(node: Resource) -> str:
    if node.extra.get("stopped"):
        return "STOPPED"
    return {
        "CREATING": "PROVISIONING",
        "ACTIVE": "RUNNING",
        "DELETING": "TERMINATING",
        "DELETED": "TERMINATED",
        "FAILING": "TERMINATED",
    }.get(str(node.wire.get("lifecycleState")), "RUNNING")


def instance_view(world: World, node: Resource) -> dict[str, Any]:
    pool = world.resources.get(node.wire["nodePoolId"])
    pool_wire = pool.wire if pool is not None else {}
    return {
        "id": node.id,
        "displayName": node.wire["name"],
        "compartmentId": pool_wire.get("compartmentId"),
        "availabilityDomain": node.wire["availabilityDomain"],
        "faultDomain": node.wire["faultDomain"],
        "shape": node.wire["nodeShape"],
        "lifecycleState": _state(node),
        "timeCreated": world.timestamp(node.created),
        "freeformTags": dict(node.wire.get("freeformTags") or {}),
        "definedTags": effective_defined_tags(world, node),
        "metadata": {},
    }


def effective_defined_tags(world: World, node: Resource) -> dict[str, Any]:
    """OKE puts the pool's ``nodeConfigDetails.definedTags`` on the instances it launches."""
    pool = world.resources.get(node.wire["nodePoolId"])
    from_pool = ((pool.wire.get("nodeConfigDetails") or {}) if pool else {}).get("definedTags")
    merged: dict[str, Any] = {k: dict(v) for k, v in (from_pool or {}).items()}
    for namespace, values in (node.wire.get("definedTags") or {}).items():
        merged.setdefault(namespace, {}).update(values)
    return merged


def stop(world: World, node: Resource) -> bool:
    """Stop a running instance (True) — a no-op for one already stopped or not running."""
    if node.extra.get("stopped") or node.wire.get("lifecycleState") != "ACTIVE":
        return False
    node.extra["stopped"] = True
    node.extra["lines_running"] = list(node.billing)
    if not billed_while_stopped(node.wire["nodeShape"]):
        world.rebill(node, [ln for ln in node.billing if ln["price_key"] in BOOT_VOLUME_KEYS])
    node.wire["lifecycleState"] = "INACTIVE"
    node.wire["lifecycleDetails"] = "the instance is STOPPED"
    world.touch(node)
    world.emit("node_removed", node.extra["cluster"], node.wire["name"])
    return True


def start(world: World, node: Resource) -> bool:
    """Start a stopped instance again: it bills as before and its node registers."""
    if not node.extra.get("stopped") or not node.live:
        return False
    node.extra["stopped"] = False
    lines = node.extra.pop("lines_running", None)
    if lines is not None and lines != node.billing:
        world.rebill(node, lines)
    node.wire["lifecycleState"] = "ACTIVE"
    node.wire["lifecycleDetails"] = ""
    world.touch(node)
    world.emit("node_ready", node.extra["cluster"], nodes.hook_payload(world, node))
    return True


def get_instance(ctx: Ctx) -> Reply:
    node = _instance(ctx.world, ctx.params["instanceId"])
    return ok(instance_view(ctx.world, node), node)


def instance_action(ctx: Ctx) -> Reply:
    world = ctx.world
    node = _instance(world, ctx.params["instanceId"])
    action = (ctx.q("action") or "").upper()
    if action not in ACTIONS:
        raise invalid(f"Invalid action {ctx.q('action')}; allowed: {', '.join(ACTIONS)}")
    if not node.live or node.wire.get("lifecycleState") in ("DELETING", "DELETED"):
        raise ApiError(
            "IncorrectState", f"Instance {node.id} is {_state(node)} and cannot be acted on"
        )
    if action in ("STOP", "SOFTSTOP"):
        stop(world, node)
    elif action == "START":
        start(world, node)
    return ok(instance_view(world, node), node)


def register(router: Router) -> None:
    router.add("GET", f"{V}/instances/{{instanceId}}", "GetInstance", get_instance)
    router.add("POST", f"{V}/instances/{{instanceId}}", "InstanceAction", instance_action)
