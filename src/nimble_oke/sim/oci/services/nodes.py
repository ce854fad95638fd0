"""OKE worker nodes: launch (limit and capacity checks), ACTIVE, failure, termination, and
the power state of each node's compute instance (STOP, SOFTSTOP, START).

Each node is its own resource (kind ``node``, OCID ``ocid1.instance...``) whose wire form
is the Container Engine ``Node`` model plus ``nodeShape``; the same resource is the
instance the Compute API serves (services/compute.py). A node pool work request
finishes when every node it launched or deleted has resolved.

Power (``extra["power"]``): RUNNING → STOPPING → STOPPED → STARTING → RUNNING. A stopped
node stays ACTIVE in its node pool (OKE does not replace it) while its Node is NotReady in
Kubernetes (hooks ``node_stopped`` / ``node_started``); its boot volume, and so its
containerd images, and its volume attachments are kept. Billing while STOPPED follows the
shape's rule (``Shape.is_billed_for_stopped_instance``): the GPU/compute lines pause on
shapes that pause (the boot volume keeps billing) and resume at START.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from nimble_oke.sim.oci.api_error import ApiError, invalid
from nimble_oke.sim.oci.catalog import SHAPES
from nimble_oke.sim.oci.services import capacity, images, workrequests
from nimble_oke.sim.oci.services.power import BUSY_MESSAGE, power_state
from nimble_oke.sim.oci.world import Resource, World

# Messages as OCI shows them (reference/oci.md "Failure modes"; Compute LimitExceeded text).
OUT_OF_CAPACITY = ("InternalError", "Out of host capacity.")
LIMIT_MESSAGE = (
    "You have reached your service limit of {limit} in this Availability Domain for "
    "{limit_name}. Please try launching the instance in a different availability domain or "
    "Region, or try using a different shape. If you have reached all Service limits, please "
    "contact Oracle support to request a limit increase."
)
# terraform-provider-oci issue 963
NOT_REGISTERED = (
    "compute instance was created {created} ago and has not been seen in k8s nodes for "
    "20m0s - verify network pre-requisites are correct, and that the instance has the right "
    "ssh key"
)


def _allocate_ip(world: World, subnet_id: str) -> str:
    subnet = world.resources[subnet_id]
    used = set(subnet.extra.setdefault("ips", []))
    net = ipaddress.ip_network(subnet.wire["cidrBlock"])
    for n, host in enumerate(net.hosts()):
        if n < 2:  # .1 is the virtual router; OCI also reserves the next address
            continue
        if str(host) not in used:
            subnet.extra["ips"].append(str(host))
            return str(host)
    raise RuntimeError(f"subnet {subnet_id} is full")


def release_ip(world: World, node: Resource) -> None:
    subnet = world.resources.get(node.wire["subnetId"])
    if subnet is not None and node.wire["privateIp"] in subnet.extra.get("ips", []):
        subnet.extra["ips"].remove(node.wire["privateIp"])


def billing_lines(
    shape_name: str, boot_gb: float, shape_config: dict[str, Any] | None
) -> list[dict[str, Any]]:
    shape = SHAPES[shape_name]
    lines: list[dict[str, Any]] = []
    if shape.gpus:
        lines.append(
            {"price_key": f"gpu.{shape.gpu_family}", "quantity": shape.gpus, "unit": "gpu-hour"}
        )
    else:
        cfg = shape_config or {}
        lines.append(
            {
                "price_key": "compute.ocpu",
                "quantity": cfg.get("ocpus") or shape.ocpus,
                "unit": "ocpu-hour",
            }
        )
        lines.append(
            {
                "price_key": "compute.memory",
                "quantity": cfg.get("memoryInGBs") or shape.memory_gb,
                "unit": "gb-hour",
            }
        )
    # boot volume: Balanced performance = 10 VPU/GB (OCI block volume docs)
    lines.append({"price_key": "block.storage", "quantity": boot_gb, "unit": "gb-month"})
    lines.append({"price_key": "block.vpu", "quantity": boot_gb * 10, "unit": "vpu-gb-month"})
    return lines


def launch(
    world: World, pool: Resource, placement: dict[str, Any], index: int, wr: Resource, op: str
) -> Resource:
    shape = SHAPES[pool.wire["nodeShape"]]
    ad = placement["availabilityDomain"]
    fds = placement.get("faultDomains") or ["FAULT-DOMAIN-1", "FAULT-DOMAIN-2", "FAULT-DOMAIN-3"]
    ip = _allocate_ip(world, placement["subnetId"])
    preemptible = placement.get("preemptibleNodeConfig") is not None
    boot_gb = float((pool.wire.get("nodeSourceDetails") or {}).get("bootVolumeSizeInGBs") or 46.6)
    wire = {
        "id": world.ids.ocid("instance", pool.region),
        "name": ip,
        "kubernetesVersion": pool.wire["kubernetesVersion"],
        "availabilityDomain": ad,
        "subnetId": placement["subnetId"],
        "nodePoolId": pool.id,
        "faultDomain": fds[index % len(fds)],
        "privateIp": ip,
        "publicIp": None,
        "nodeError": None,
        "freeformTags": dict((pool.wire.get("nodeConfigDetails") or {}).get("freeformTags") or {}),
        "definedTags": {},
        "systemTags": {},
        "lifecycleState": "CREATING",
        "lifecycleDetails": "Instance is being launched",
        "nodeShape": shape.name,
    }
    node = world.add(
        "node",
        pool.region,
        wire,
        billing=billing_lines(shape.name, boot_gb, pool.wire.get("nodeShapeConfig")),
        extra={
            "cluster": pool.wire["clusterId"],
            "preemptible": preemptible,
            "boot_gb": boot_gb,
            # booted from a custom image: its containerd already holds the captured images
            "preloaded_images": images.preloaded_images(world, pool.wire.get("nodeImageId")),
            # the image this node booted from (the pool's image may change later)
            "image_id": pool.wire.get("nodeImageId"),
        },
    )
    wr.extra.setdefault("pending", []).append(node.id)
    limit_name = shape.limit_name
    error: tuple[str, str] | None = None
    # the new node is already live, so usage and host counts include it
    if limit_name:
        limit = capacity.limit_value(world, limit_name, ad)
        if capacity.limit_used(world, limit_name, ad) > limit:
            error = ("LimitExceeded", LIMIT_MESSAGE.format(limit=limit, limit_name=limit_name))
    if error is None:
        left = capacity.hosts_left(world, shape.name, ad)
        if (left is not None and left < 0) or world.injector.behaviour(
            op, "out_of_host_capacity", shape.name, ad
        ):
            error = OUT_OF_CAPACITY
    if error is not None:
        node.extra["failed_launch"] = True
        world.later(
            world.timings.launch_attempt_s,
            "node_failed",
            id=node.id,
            wr=wr.id,
            code=error[0],
            message=error[1],
        )
        return node
    world.start_billing(node)
    if world.injector.behaviour(op, "node_never_active", shape.name, ad):
        world.later(world.timings.node_registration_timeout_s, "node_stuck", id=node.id, wr=wr.id)
    else:
        world.later(world.timings.node_ready(world.rng, shape), "node_active", id=node.id, wr=wr.id)
    return node


def hook_payload(world: World, node: Resource) -> dict[str, Any]:
    pool = world.resources[node.wire["nodePoolId"]]
    shape = SHAPES[node.wire["nodeShape"]]
    shape_config: dict[str, Any] = pool.wire.get("nodeShapeConfig") or {}
    labels = {
        "node.kubernetes.io/instance-type": shape.name,
        "oke.oraclecloud.com/pool.name": pool.wire["name"],
        "oci.oraclecloud.com/fault-domain": node.wire["faultDomain"],
        "topology.kubernetes.io/zone": node.wire["availabilityDomain"].split(":")[-1],
        "kubernetes.io/hostname": node.wire["name"],
    }
    taints = []
    if shape.gpus:
        labels["nvidia.com/gpu"] = "true"
        taints.append({"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"})
    if node.extra.get("preemptible"):
        labels["oci.oraclecloud.com/oke-is-preemptible"] = "true"
    for item in pool.wire.get("initialNodeLabels") or []:
        labels[item["key"]] = item.get("value", "")
    return {
        "name": node.wire["name"],
        "node_id": node.id,
        "private_ip": node.wire["privateIp"],
        "shape": shape.name,
        "availability_domain": node.wire["availabilityDomain"],
        "fault_domain": node.wire["faultDomain"],
        "node_pool_id": pool.id,
        "node_pool_name": pool.wire["name"],
        "kubernetes_version": node.wire["kubernetesVersion"],
        "preemptible": bool(node.extra.get("preemptible")),
        "gpus": shape.gpus,
        # a flexible shape's size is the pool's nodeShapeConfig, else the shape's default
        "ocpus": float(shape_config.get("ocpus") or shape.ocpus),
        "memory_gb": float(shape_config.get("memoryInGBs") or shape.memory_gb),
        "region": pool.region,
        "boot_volume_gb": node.extra.get("boot_gb"),
        "labels": labels,
        "taints": taints,
        "preloaded_images": dict(node.extra.get("preloaded_images") or {}),
    }


def delete(world: World, node: Resource, wr: Resource | None) -> None:
    if node.wire["lifecycleState"] in ("DELETING", "DELETED"):
        return
    was_failed = not node.live
    node.wire["lifecycleState"] = "DELETING"
    node.wire["lifecycleDetails"] = "Instance is being terminated"
    world.touch(node)
    if wr is not None:
        wr.extra.setdefault("pending", []).append(node.id)
    delay = 0.0 if was_failed else world.timings.draw(world.rng, "node_delete")
    world.later(delay, "node_deleted", id=node.id, wr=wr.id if wr else None)


# --- the node's compute instance: lifecycle and power actions (InstanceAction) -----------

# InstanceAction's allowed values (API reference, oci.core.ComputeClient.instance_action).
POWER_ACTIONS = (
    "STOP",
    "START",
    "SOFTRESET",
    "RESET",
    "SOFTSTOP",
    "SENDDIAGNOSTICINTERRUPT",
    "DIAGNOSTICREBOOT",
    "REBOOTMIGRATE",
)
SIMULATED_ACTIONS = ("STOP", "SOFTSTOP", "START")
# Transitional states refuse every action: 409 Conflict with OCI's text (observed on a
# RESET sent to a STOPPING instance and on UpdateInstance while PROVISIONING).
TRANSITIONAL = ("PROVISIONING", "STARTING", "STOPPING", "CREATING_IMAGE", "MOVING")


def _kubelet(world: World, node: Resource, up: bool) -> None:
    node.extra["power"]["kubelet_up"] = up
    world.emit("node_started" if up else "node_stopped", node.extra["cluster"], node.wire["name"])


def instance_state(world: World, node: Resource) -> str:
    """The Compute API's ``Instance.lifecycle_state`` of the node's instance.

    A launching node's instance is PROVISIONING for the launch attempt, then RUNNING while
    OKE bootstraps and registers it; a deleting node's is TERMINATING; a failed launch, a
    deleted or preempted node's is TERMINATED; a node being captured is CREATING_IMAGE."""
    state = node.wire["lifecycleState"]
    if state == "DELETING":
        return "TERMINATING"
    if not node.live:
        return "TERMINATED"
    if state == "CREATING":
        booting = world.now() - node.created < world.timings.launch_attempt_s
        return "PROVISIONING" if booting or node.extra.get("failed_launch") else "RUNNING"
    if node.extra.get("capturing"):
        return "CREATING_IMAGE"
    return power_state(node)


def _refuse(world: World, node: Resource, action: str) -> None:
    """Raise the error OCI returns for ``action`` in the instance's current state."""
    if action not in POWER_ACTIONS:
        raise invalid(f"Invalid action {action}; allowed values: {', '.join(POWER_ACTIONS)}")
    if action not in SIMULATED_ACTIONS:
        raise invalid(
            f"The power action {action} is not supported by this simulator; it simulates "
            f"{', '.join(SIMULATED_ACTIONS)}"
        )
    state = instance_state(world, node)
    if state in TRANSITIONAL or node.wire["lifecycleState"] == "CREATING":
        raise ApiError("Conflict", BUSY_MESSAGE.format(id=node.id), 409)
    # Messages below are the simulator's (OCI's exact text for them is not published).
    if state in ("TERMINATING", "TERMINATED"):
        raise ApiError("IncorrectState", f"Instance {node.id} is {state}", 409)
    if node.extra.get("preemptible"):
        raise ApiError(
            "IncorrectState",
            f"Instance {node.id} is a preemptible instance: it cannot be started, stopped or "
            "rebooted, only terminated",
            409,
        )
    if (action == "START") == (state == "RUNNING"):
        raise ApiError(
            "IncorrectState",
            f"Instance {node.id} is {state}: the {action} action is not allowed in this state",
            409,
        )


def power_action(world: World, node: Resource, action: str) -> None:
    """Apply an InstanceAction to the node's instance or raise OCI's error for it."""
    _refuse(world, node, action)
    if action == "START":
        _check_host(world, node)
    power = node.extra.setdefault("power", {"state": "RUNNING", "seq": 0})
    power["seq"] = int(power.get("seq", 0)) + 1
    power["action"] = action
    if action == "START":
        _start(world, node, power)
    else:
        _stop(world, node, power, action)
    world.touch(node)


def _stop(world: World, node: Resource, power: dict[str, Any], action: str) -> None:
    power["state"] = "STOPPING"
    if action == "STOP":
        _kubelet(world, node, False)  # powered off at once: the kubelet stops posting status
        delay = world.timings.draw(world.rng, "instance_stop")
    elif world.injector.behaviour(
        "InstanceAction",
        "os_shutdown_hang",
        node.wire["nodeShape"],
        node.wire["availabilityDomain"],
    ):
        delay = world.timings.softstop_timeout_s  # OCI powers it off after 15 minutes
    else:
        delay = world.timings.draw(world.rng, "os_shutdown")
    world.later(delay, "instance_powered_off", id=node.id, seq=power["seq"])


def _check_host(world: World, node: Resource) -> None:
    """A stopped instance of a shape that pauses billing gave its host back: START needs a
    host again and fails as a launch does when there is none (the instance stays STOPPED)."""
    shape = SHAPES[node.wire["nodeShape"]]
    if shape.is_billed_for_stopped_instance:
        return  # its host (and GPUs) stayed reserved
    ad = node.wire["availabilityDomain"]
    left = capacity.hosts_left(world, shape.name, ad)
    if (left is not None and left < 1) or world.injector.behaviour(
        "InstanceAction", "out_of_host_capacity", shape.name, ad
    ):
        raise ApiError(OUT_OF_CAPACITY[0], OUT_OF_CAPACITY[1], 500)


def _start(world: World, node: Resource, power: dict[str, Any]) -> None:
    power["state"] = "STARTING"
    paused = power.pop("paused_billing", None)
    if paused is not None:  # billing resumes with the START
        world.rebill(node, paused)
    world.later(
        world.timings.draw(world.rng, "instance_start"),
        "instance_running",
        id=node.id,
        seq=power["seq"],
    )


def _current(world: World, a: dict[str, Any], state: str) -> Resource | None:
    """The node an instance event is about, if nothing overtook the event."""
    node = world.resources.get(a["id"])
    if node is None or not node.live or node.wire["lifecycleState"] != "ACTIVE":
        return None
    power = node.extra.get("power") or {}
    if power.get("seq") != a["seq"] or power.get("state") != state:
        return None
    return node


def _register_power_actions(world: World) -> None:
    def instance_powered_off(a: dict[str, Any]) -> None:
        node = _current(world, a, "STOPPING")
        if node is None:
            return
        power = node.extra["power"]
        power["state"] = "STOPPED"
        if power.get("action") == "SOFTSTOP":
            _kubelet(world, node, False)
        if not SHAPES[node.wire["nodeShape"]].is_billed_for_stopped_instance:
            # the compute (GPU/OCPU) lines pause; the boot volume keeps billing
            power["paused_billing"] = node.billing
            world.rebill(node, [x for x in node.billing if x["price_key"].startswith("block.")])
        world.touch(node)

    def instance_running(a: dict[str, Any]) -> None:
        node = _current(world, a, "STARTING")
        if node is None:
            return
        node.extra["power"]["state"] = "RUNNING"
        world.touch(node)
        world.later(
            world.timings.draw(world.rng, "node_rejoin"), "node_rejoined", id=node.id, seq=a["seq"]
        )

    def node_rejoined(a: dict[str, Any]) -> None:
        node = _current(world, a, "RUNNING")
        if node is not None:
            _kubelet(world, node, True)

    world.actions.update(
        instance_powered_off=instance_powered_off,
        instance_running=instance_running,
        node_rejoined=node_rejoined,
    )


def _resolved(world: World, wr_id: str | None, node_id: str, error: tuple[str, str] | None) -> None:
    if wr_id is None:
        return
    wr = world.resources[wr_id]
    pending = wr.extra.setdefault("pending", [])
    if node_id in pending:
        pending.remove(node_id)
    if error:
        wr.extra.setdefault("failures", []).append(list(error))
    if not pending:
        world.actions["pool_wr_done"]({"wr": wr_id})


def register_actions(world: World) -> None:
    def node_active(a: dict[str, Any]) -> None:
        node = world.resources[a["id"]]
        if node.wire["lifecycleState"] != "CREATING":
            return
        node.wire["lifecycleState"] = "ACTIVE"
        node.wire["lifecycleDetails"] = ""
        world.touch(node)
        world.emit("node_ready", node.extra["cluster"], hook_payload(world, node))
        workrequests.log(world, world.resources[a["wr"]], f"node {node.wire['name']} is ACTIVE")
        _resolved(world, a["wr"], node.id, None)

    def node_failed(a: dict[str, Any]) -> None:
        node = world.resources[a["id"]]
        if node.wire["lifecycleState"] != "CREATING":
            return
        node.wire["nodeError"] = {
            "code": a["code"],
            "message": a["message"],
            "status": "500" if a["code"] == "InternalError" else "400",
            "opc-request-id": world.ids.request_id(),
        }
        node.wire["lifecycleDetails"] = a["message"]
        world.mark_deleted(node, "FAILING")
        release_ip(world, node)
        status = 500 if a["code"] == "InternalError" else 400
        _resolved(world, a["wr"], node.id, (a["code"], f"({status}, {a['code']}) {a['message']}"))

    def node_stuck(a: dict[str, Any]) -> None:
        node = world.resources[a["id"]]
        if node.wire["lifecycleState"] != "CREATING":
            return
        minutes = world.timings.node_registration_timeout_s / 60 + 28
        node.wire["lifecycleDetails"] = NOT_REGISTERED.format(created=f"{int(minutes)}m0s")
        node.wire["nodeError"] = {
            "code": "NodeRegistrationTimeout",
            "message": node.wire["lifecycleDetails"],
            "status": "409",
        }
        world.touch(node)
        _resolved(
            world, a["wr"], node.id, ("NodeRegistrationTimeout", node.wire["lifecycleDetails"])
        )

    def node_deleted(a: dict[str, Any]) -> None:
        node = world.resources[a["id"]]
        was_active = node.live and node.wire.get("nodeError") is None
        world.mark_deleted(node, "DELETED")
        node.wire["lifecycleDetails"] = ""
        release_ip(world, node)
        if was_active:
            world.emit("node_removed", node.extra["cluster"], node.wire["name"])
        _resolved(world, a.get("wr"), node.id, None)

    world.actions.update(
        node_active=node_active,
        node_failed=node_failed,
        node_stuck=node_stuck,
        node_deleted=node_deleted,
    )
    _register_power_actions(world)
