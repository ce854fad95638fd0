"""Compute: capacity reports, shapes, the instances behind OKE worker nodes (GetInstance,
ListInstances, InstanceAction STOP/SOFTSTOP/START), and the Limits service (GPU and
CPU-core limits per AD).

An OKE node IS a compute instance: the node pool's ``nodes[].id`` is the instance OCID the
Compute API serves here, in ``oci.core.models.Instance`` wire form. InstanceAction answers
as OCI's API does: 200 with the Instance in its new (transitional) state, ``etag`` and
``opc-request-id`` — the API defines no ``opc-work-request-id`` for it (the SDKs'
InstanceActionResponse has none; ``ComputeClientCompositeOperations`` waits on the
instance's lifecycle_state), so callers poll GetInstance.
"""

from __future__ import annotations

from typing import Any

from nimble_oke.sim.oci.api_error import ApiError, not_found
from nimble_oke.sim.oci.catalog import LIMIT_NAMES, SHAPES
from nimble_oke.sim.oci.http import (
    Ctx,
    Reply,
    Router,
    check_if_match,
    ok,
    paginate,
    sort_and_filter,
)
from nimble_oke.sim.oci.ids import region_key
from nimble_oke.sim.oci.services import capacity, images, nodes
from nimble_oke.sim.oci.world import Resource, World

V = "/20160918"
L = "/20190729"


def capacity_report(ctx: Ctx) -> Reply:
    world, body = ctx.world, ctx.json()
    comp = world.compartment_ok(body.get("compartmentId"))
    ad = world.check_ad(body.get("availabilityDomain"), ctx.region)
    rows = []
    for item in body.get("shapeAvailabilities") or []:
        shape = item.get("instanceShape")
        if shape not in SHAPES:
            status, count = "HARDWARE_NOT_SUPPORTED", 0
        else:
            left = capacity.hosts_left(world, shape, ad)
            if left is None:
                status, count = "AVAILABLE", 10  # OCI reports a capped count; 10 is illustrative
            else:
                status = "AVAILABLE" if left > 0 else "OUT_OF_HOST_CAPACITY"
                count = max(0, left)
            if world.injector.behaviour(
                "CreateComputeCapacityReport", "out_of_host_capacity", shape, ad
            ):
                status, count = "OUT_OF_HOST_CAPACITY", 0
        rows.append(
            {
                "instanceShape": shape,
                "instanceShapeConfig": item.get("instanceShapeConfig"),
                "faultDomain": item.get("faultDomain"),
                "availableCount": count,
                "availabilityStatus": status,
            }
        )
    return ok(
        {
            "compartmentId": comp,
            "availabilityDomain": ad,
            "shapeAvailabilities": rows,
            "timeCreated": world.timestamp(),
        }
    )


def list_shapes(ctx: Ctx) -> Reply:
    ctx.world.compartment_ok(ctx.q("compartmentId"))
    items = [
        {
            "shape": s.name,
            "ocpus": s.ocpus,
            "memoryInGBs": s.memory_gb,
            "gpus": s.gpus,
            "gpuDescription": f"NVIDIA {s.gpu_family}" if s.gpu_family else None,
            "isFlexible": s.name.endswith(".Flex"),
            "processorDescription": "x86_64",
            # OCI's rule (Resource Billing for Stopped Instances): only standard shapes and
            # the VM.GPU.A10 VMs pause billing while stopped
            "isBilledForStoppedInstance": s.is_billed_for_stopped_instance,
            "billingType": "PAID",
        }
        for s in SHAPES.values()
    ]
    return paginate(ctx, items)


# --- instances (the OKE worker nodes' compute instances) --------------------------------


def _display_name(world: World, node: Resource) -> str:
    """OKE's instance names: ``oke-`` + short cluster, pool and subnet ids + the node's index."""
    siblings = sorted(
        world.find("node", nodePoolId=node.wire["nodePoolId"]), key=lambda n: n.created
    )
    index = next(i for i, n in enumerate(siblings) if n.id == node.id)
    short = [str(x)[-11:] for x in (node.extra["cluster"], node.wire["nodePoolId"])]
    return f"oke-c{short[0]}-n{short[1]}-s{str(node.wire['subnetId'])[-11:]}-{index}"


def _shape_config(world: World, node: Resource, pool: Resource | None) -> dict[str, Any]:
    shape = SHAPES[node.wire["nodeShape"]]
    config = (pool.wire.get("nodeShapeConfig") if pool else None) or {}
    ocpus = float(config.get("ocpus") or shape.ocpus)
    return {
        "ocpus": ocpus,
        "memoryInGBs": float(config.get("memoryInGBs") or shape.memory_gb),
        "baselineOcpuUtilization": None,
        "processorDescription": "x86_64",
        "networkingBandwidthInGbps": None,
        "maxVnicAttachments": None,
        "gpus": shape.gpus,
        "gpuDescription": f"NVIDIA {shape.gpu_family}" if shape.gpu_family else None,
        "localDisks": 0,
        "localDisksTotalSizeInGBs": None,
        "localDiskDescription": None,
        "vcpus": int(ocpus * 2),
    }


def effective_defined_tags(world: World, node: Resource) -> dict[str, Any]:
    """OKE puts the pool's ``nodeConfigDetails.definedTags`` on the instances it launches
    (a Resource Scheduler schedule selects them by such a tag)."""
    pool = world.resources.get(str(node.wire["nodePoolId"]))
    from_pool = ((pool.wire.get("nodeConfigDetails") or {}) if pool else {}).get("definedTags")
    merged: dict[str, Any] = {k: dict(v) for k, v in (from_pool or {}).items()}
    for namespace, values in (node.wire.get("definedTags") or {}).items():
        merged.setdefault(namespace, {}).update(values)
    return merged


def instance_view(world: World, node: Resource) -> dict[str, Any]:
    """The node's instance in ``oci.core.models.Instance`` wire form."""
    pool = world.resources.get(str(node.wire["nodePoolId"]))
    source = (pool.wire.get("nodeSourceDetails") if pool else None) or {}
    image_id = node.extra.get("image_id") or (pool.wire.get("nodeImageId") if pool else None)
    boot_gb = source.get("bootVolumeSizeInGBs")
    preemptible = {"preemptionAction": {"type": "TERMINATE", "preserveBootVolume": False}}
    return {
        "availabilityDomain": node.wire["availabilityDomain"],
        "capacityReservationId": None,
        "compartmentId": pool.wire["compartmentId"] if pool else None,
        "clusterPlacementGroupId": None,
        "dedicatedVmHostId": None,
        "definedTags": effective_defined_tags(world, node),
        "displayName": _display_name(world, node),
        "extendedMetadata": {},
        "faultDomain": node.wire["faultDomain"],
        "freeformTags": dict(node.wire.get("freeformTags") or {}),
        "id": node.id,
        "imageId": image_id,
        "ipxeScript": None,
        "launchMode": "PARAVIRTUALIZED",
        "launchOptions": dict(images.LAUNCH_OPTIONS),
        "instanceOptions": {"areLegacyImdsEndpointsDisabled": False},
        "availabilityConfig": {
            "isLiveMigrationPreferred": None,
            "recoveryAction": "RESTORE_INSTANCE",
        },
        "preemptibleInstanceConfig": preemptible if node.extra.get("preemptible") else None,
        "lifecycleState": nodes.instance_state(world, node),
        "metadata": {},
        "region": region_key(node.region),
        "shape": node.wire["nodeShape"],
        "shapeConfig": _shape_config(world, node, pool),
        "sourceDetails": {
            "sourceType": "image",
            "imageId": image_id,
            "bootVolumeSizeInGBs": int(boot_gb) if boot_gb else None,
            "bootVolumeVpusPerGB": 10,
        },
        "systemTags": {},
        "timeCreated": world.timestamp(node.created),
        "agentConfig": None,
        "timeMaintenanceRebootDue": None,
        "platformConfig": None,
        "instanceConfigurationId": None,
    }


def _instance(ctx: Ctx) -> Resource:
    node = ctx.world.get(ctx.params["instanceId"], "node", "instance")
    if node.region != ctx.region:
        raise not_found("instance", node.id)
    return node


def get_instance(ctx: Ctx) -> Reply:
    node = _instance(ctx)
    return ok(instance_view(ctx.world, node), node)


def list_instances(ctx: Ctx) -> Reply:
    world = ctx.world
    comp = world.compartment_ok(ctx.q("compartmentId"))
    ad = ctx.q("availabilityDomain")
    if ctx.q("capacityReservationId") or ctx.q("computeClusterId"):
        return paginate(ctx, [])  # OKE nodes here use neither
    items = []
    for node in world.find("node"):
        pool = world.resources.get(str(node.wire["nodePoolId"]))
        if node.region != ctx.region or pool is None or pool.wire.get("compartmentId") != comp:
            continue
        if ad and node.wire["availabilityDomain"] != ad:
            continue
        items.append(instance_view(world, node))
    return paginate(ctx, sort_and_filter(ctx, items))


def instance_action(ctx: Ctx) -> Reply:
    """POST /instances/{id}?action=STOP|SOFTSTOP|START (the other actions: 400)."""
    node = _instance(ctx)
    action = ctx.require_q("action").upper()
    check_if_match(ctx, node)
    ctx.json()  # an optional InstancePowerActionDetails: must be valid JSON
    nodes.power_action(ctx.world, node, action)
    return ok(instance_view(ctx.world, node), node)


def resource_availability(ctx: Ctx) -> Reply:
    world = ctx.world
    world.compartment_ok(ctx.q("compartmentId"))
    if ctx.params["serviceName"] != "compute":
        raise not_found("service", ctx.params["serviceName"])
    name = ctx.params["limitName"]
    if name not in LIMIT_NAMES:
        raise not_found("limit", name)
    ad = ctx.q("availabilityDomain")
    if not ad:
        raise ApiError(
            "MissingParameter", f"Limit {name} is AD-scoped: availabilityDomain is required"
        )
    world.check_ad(ad, ctx.region)
    value = capacity.limit_value(world, name, ad)
    used = capacity.limit_used(world, name, ad)
    available = max(0, value - used)
    return ok(
        {
            "used": used,
            "available": available,
            "fractionalUsage": float(used),
            "fractionalAvailability": float(available),
            "effectiveQuotaValue": None,
        }
    )


def limit_values(ctx: Ctx) -> Reply:
    world = ctx.world
    world.compartment_ok(ctx.q("compartmentId"))
    if (ctx.q("serviceName") or "") != "compute":
        return paginate(ctx, [])
    only, ad_filter = ctx.q("name"), ctx.q("availabilityDomain")
    items = [
        {
            "name": n,
            "scopeType": "AD",
            "availabilityDomain": ad,
            "value": capacity.limit_value(world, n, ad),
        }
        for n in LIMIT_NAMES
        if not only or n == only
        for ad in world.ads(ctx.region)
        if not ad_filter or ad == ad_filter
    ]
    return paginate(ctx, items)


def limit_services(ctx: Ctx) -> Reply:
    return paginate(
        ctx, [{"name": "compute", "description": "Compute", "supportedSubscriptions": []}]
    )


def limit_definitions(ctx: Ctx) -> Reply:
    if (ctx.q("serviceName") or "compute") != "compute":
        return paginate(ctx, [])
    items = [
        {
            "name": n,
            "serviceName": "compute",
            "description": f"{n} per AD",
            "scopeType": "AD",
            "areQuotasSupported": True,
            "isResourceAvailabilitySupported": True,
            "isDeprecated": False,
            "isEligibleForLimitIncrease": True,
            "isDynamic": False,
        }
        for n in LIMIT_NAMES
    ]
    return paginate(ctx, items)


def register(router: Router) -> None:
    router.add(
        "POST", f"{V}/computeCapacityReports", "CreateComputeCapacityReport", capacity_report
    )
    router.add("GET", f"{V}/shapes", "ListShapes", list_shapes)
    router.add("GET", f"{V}/instances", "ListInstances", list_instances)
    router.add("GET", f"{V}/instances/{{instanceId}}", "GetInstance", get_instance)
    router.add("POST", f"{V}/instances/{{instanceId}}", "InstanceAction", instance_action)
    router.add(
        "GET",
        f"{L}/services/{{serviceName}}/limits/{{limitName}}/resourceAvailability",
        "GetResourceAvailability",
        resource_availability,
    )
    router.add("GET", f"{L}/limitValues", "ListLimitValues", limit_values)
    router.add("GET", f"{L}/services", "ListServices", limit_services)
    router.add("GET", f"{L}/limitDefinitions", "ListLimitDefinitions", limit_definitions)
