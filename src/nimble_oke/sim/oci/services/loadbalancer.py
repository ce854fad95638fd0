"""Flexible load balancers; create/update/delete run as load balancer work requests."""

from __future__ import annotations

from typing import Any

from nimble_oke.sim.oci.api_error import ApiError, invalid
from nimble_oke.sim.oci.http import (
    Ctx,
    Reply,
    Router,
    accepted,
    ok,
    paginate,
    sort_and_filter,
    tags,
)
from nimble_oke.sim.oci.world import Resource, World

V = "/20170115"


def lb_billing(min_mbps: float) -> list[dict[str, Any]]:
    # $0.0113 per LB-hour base + $0.0001 per Mbps-hour (reference/oci.md, correction C4)
    return [
        {"price_key": "lb.flexible.base", "quantity": 1, "unit": "lb-hour"},
        {"price_key": "lb.flexible.bandwidth", "quantity": min_mbps, "unit": "mbps-hour"},
    ]


def _work_request(world: World, region: str, lb: Resource, kind: str) -> Resource:
    wire = {
        "id": world.ids.ocid("loadbalancerworkrequest", region),
        "loadBalancerId": lb.id,
        "type": kind,
        "compartmentId": lb.wire["compartmentId"],
        "lifecycleState": "ACCEPTED",
        "message": f"{kind} accepted",
        "timeAccepted": world.timestamp(),
        "timeFinished": None,
        "errorDetails": [],
    }
    return world.add("lbworkrequest", region, wire)


def create_lb_record(world: World, region: str, body: dict[str, Any]) -> tuple[Resource, Resource]:
    comp = world.compartment_ok(body.get("compartmentId"))
    shape = body.get("shapeName") or "flexible"
    if shape != "flexible":
        raise invalid("Only the flexible shape is offered (fixed shapes are retired)")
    details = body.get("shapeDetails") or {}
    lo = int(details.get("minimumBandwidthInMbps", 10))
    hi = int(details.get("maximumBandwidthInMbps", lo))
    if not 10 <= lo <= hi <= 8000:
        raise invalid("Bandwidth must satisfy 10 <= minimum <= maximum <= 8000 Mbps")
    subnets = list(body.get("subnetIds") or [])
    for sn in subnets:
        res = world.resources.get(sn)
        if res is None or res.kind != "subnet" or not res.live:
            raise invalid(f"Subnet {sn} does not exist")
    private = bool(body.get("isPrivate", False))
    octets = (world.rng.randint(1, 254), world.rng.randint(1, 254))
    ip = f"10.0.2.{octets[1]}" if private else f"150.136.{octets[0]}.{octets[1]}"
    wire = {
        "id": world.ids.ocid("loadbalancer", region),
        "compartmentId": comp,
        "displayName": body.get("displayName") or "lb",
        "lifecycleState": "CREATING",
        "timeCreated": world.timestamp(),
        "ipAddresses": [{"ipAddress": ip, "isPublic": not private}],
        "shapeName": "flexible",
        "shapeDetails": {"minimumBandwidthInMbps": lo, "maximumBandwidthInMbps": hi},
        "isPrivate": private,
        "subnetIds": subnets,
        "networkSecurityGroupIds": body.get("networkSecurityGroupIds") or [],
        "listeners": body.get("listeners") or {},
        "backendSets": body.get("backendSets") or {},
        **tags(body),
        "systemTags": {},
    }
    lb = world.add("loadbalancer", region, wire, billing=lb_billing(lo))
    world.start_billing(lb)
    wr = _work_request(world, region, lb, "CreateLoadBalancer")
    world.later(
        world.timings.draw(world.rng, "lb_create"), "lb_done", id=lb.id, wr=wr.id, state="ACTIVE"
    )
    return lb, wr


def delete_lb_record(world: World, lb: Resource) -> Resource | None:
    if not lb.live or lb.wire["lifecycleState"] == "DELETING":
        return None
    lb.wire["lifecycleState"] = "DELETING"
    world.touch(lb)
    wr = _work_request(world, lb.region, lb, "DeleteLoadBalancer")
    world.later(world.timings.lb_delete_s, "lb_done", id=lb.id, wr=wr.id, state="DELETED")
    return wr


def _create(ctx: Ctx) -> Reply:
    _, wr = create_lb_record(ctx.world, ctx.region, ctx.json())
    return accepted(wr.id)


def _get(ctx: Ctx) -> Reply:
    lb = ctx.world.get(ctx.params["loadBalancerId"], "loadbalancer")
    return ok(lb.wire, lb)


def _list(ctx: Ctx) -> Reply:
    comp = ctx.world.compartment_ok(ctx.q("compartmentId"))
    items = [
        r.wire for r in ctx.world.find("loadbalancer", compartmentId=comp) if r.region == ctx.region
    ]
    return paginate(ctx, sort_and_filter(ctx, items))


def _delete(ctx: Ctx) -> Reply:
    lb = ctx.world.get(ctx.params["loadBalancerId"], "loadbalancer")
    wr = delete_lb_record(ctx.world, lb)
    if wr is None:
        raise ApiError(
            "IncorrectState", f"Load balancer {lb.id} is {lb.wire['lifecycleState']}", 409
        )
    return accepted(wr.id)


def _update_shape(ctx: Ctx) -> Reply:
    world, body = ctx.world, ctx.json()
    lb = world.get(ctx.params["loadBalancerId"], "loadbalancer")
    details = body.get("shapeDetails") or {}
    lo = int(details.get("minimumBandwidthInMbps", 10))
    hi = int(details.get("maximumBandwidthInMbps", lo))
    if not 10 <= lo <= hi <= 8000:
        raise invalid("Bandwidth must satisfy 10 <= minimum <= maximum <= 8000 Mbps")
    lb.wire["shapeDetails"] = {"minimumBandwidthInMbps": lo, "maximumBandwidthInMbps": hi}
    world.rebill(lb, lb_billing(lo))
    world.touch(lb)
    wr = _work_request(world, ctx.region, lb, "UpdateLoadBalancerShape")
    world.later(30, "lb_done", id=lb.id, wr=wr.id, state="ACTIVE")
    return accepted(wr.id)


def _get_wr(ctx: Ctx) -> Reply:
    wr = ctx.world.get(ctx.params["workRequestId"], "lbworkrequest")
    return ok(wr.wire, wr)


def _list_wr(ctx: Ctx) -> Reply:
    lb_id = ctx.params["loadBalancerId"]
    return paginate(ctx, [w.wire for w in ctx.world.find("lbworkrequest", loadBalancerId=lb_id)])


def register_actions(world: World) -> None:
    def lb_done(a: dict[str, Any]) -> None:
        lb, wr = world.resources[a["id"]], world.resources[a["wr"]]
        if a["state"] == "DELETED":
            world.mark_deleted(lb, "DELETED")
        else:
            world.set_state(lb, a["state"])
        wr.wire.update(
            lifecycleState="SUCCEEDED",
            message=f"{wr.wire['type']} succeeded",
            timeFinished=world.timestamp(),
        )
        world.touch(wr)

    world.actions["lb_done"] = lb_done


def register(router: Router) -> None:
    router.add("POST", f"{V}/loadBalancers", "CreateLoadBalancer", _create)
    router.add("GET", f"{V}/loadBalancers", "ListLoadBalancers", _list)
    router.add("GET", f"{V}/loadBalancers/{{loadBalancerId}}", "GetLoadBalancer", _get)
    router.add("DELETE", f"{V}/loadBalancers/{{loadBalancerId}}", "DeleteLoadBalancer", _delete)
    router.add(
        "PUT",
        f"{V}/loadBalancers/{{loadBalancerId}}/updateShape",
        "UpdateLoadBalancerShape",
        _update_shape,
    )
    router.add("GET", f"{V}/loadBalancerWorkRequests/{{workRequestId}}", "GetWorkRequest", _get_wr)
    router.add(
        "GET", f"{V}/loadBalancers/{{loadBalancerId}}/workRequests", "ListWorkRequests", _list_wr
    )
