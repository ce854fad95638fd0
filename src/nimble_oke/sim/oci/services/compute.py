"""Compute capacity reports and shapes, and the Limits service (GPU and CPU-core limits per AD)."""

from __future__ import annotations

from nimble_oke.sim.oci.api_error import ApiError, not_found
from nimble_oke.sim.oci.catalog import LIMIT_NAMES, SHAPES
from nimble_oke.sim.oci.http import Ctx, Reply, Router, ok, paginate
from nimble_oke.sim.oci.services import capacity

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
        }
        for s in SHAPES.values()
    ]
    return paginate(ctx, items)


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
    router.add(
        "GET",
        f"{L}/services/{{serviceName}}/limits/{{limitName}}/resourceAvailability",
        "GetResourceAvailability",
        resource_availability,
    )
    router.add("GET", f"{L}/limitValues", "ListLimitValues", limit_values)
    router.add("GET", f"{L}/services", "ListServices", limit_services)
    router.add("GET", f"{L}/limitDefinitions", "ListLimitDefinitions", limit_definitions)
