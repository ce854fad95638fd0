"""Identity: tenancy, compartments, availability and fault domains, region subscriptions."""

from __future__ import annotations

import hashlib
import string
from typing import Any

from nimble_oke.sim.oci.api_error import not_found
from nimble_oke.sim.oci.http import Ctx, Reply, Router, ok, paginate, tags
from nimble_oke.sim.oci.ids import REGION_KEYS, region_key
from nimble_oke.sim.oci.world import World

V = "/20160918"


def seed_compartment(world: World, name: str) -> str:
    """Create a child compartment of the tenancy (the one the simulator hands out)."""
    existing = world.find("compartment", name=name)
    if existing:
        return existing[0].id
    wire = {
        "id": world.ids.ocid("compartment"),
        "compartmentId": world.tenancy,
        "name": name,
        "description": "Nimble OKE simulated compartment",
        "timeCreated": world.timestamp(),
        "lifecycleState": "ACTIVE",
        "freeformTags": {},
        "definedTags": {},
    }
    return world.add("compartment", world.home_region, wire).id


def _tenancy_as_compartment(world: World) -> dict[str, Any]:
    return {
        "id": world.tenancy,
        "compartmentId": world.tenancy,
        "name": "nimblesim",
        "description": "Simulated tenancy",
        "timeCreated": world.timestamp(0),
        "lifecycleState": "ACTIVE",
        "freeformTags": {},
        "definedTags": {},
    }


def stable_ocid(world: World, kind: str, region: str, name: str) -> str:
    """The OCID of a fixed thing (an AD, a fault domain): the same on every call, as in OCI
    (and drawing nothing from the seeded id stream, so listing ADs shifts no other OCID)."""
    digest = hashlib.sha256(f"{world.tenancy}|{kind}|{region}|{name}".encode()).digest()
    alphabet = string.ascii_lowercase + string.digits
    body = "".join(alphabet[b % len(alphabet)] for b in (digest + digest)[:52])
    return f"ocid1.{kind}.oc1.{REGION_KEYS.get(region, region)}.aaaaaaaa{body}"


def list_ads(ctx: Ctx) -> Reply:
    comp = ctx.world.compartment_ok(ctx.q("compartmentId"))
    ads = ctx.world.ads(ctx.region)
    items = [
        {
            "name": ad,
            "id": stable_ocid(ctx.world, "availabilitydomain", ctx.region, ad),
            "compartmentId": comp,
        }
        for ad in ads
    ]
    return Reply(200, items)


def list_fds(ctx: Ctx) -> Reply:
    comp = ctx.world.compartment_ok(ctx.q("compartmentId"))
    ad = ctx.world.check_ad(ctx.q("availabilityDomain"), ctx.region)
    items = [
        {
            "name": f"FAULT-DOMAIN-{n}",
            "id": stable_ocid(ctx.world, "faultdomain", ctx.region, f"{ad}|{n}"),
            "compartmentId": comp,
            "availabilityDomain": ad,
        }
        for n in (1, 2, 3)
    ]
    return Reply(200, items)


def get_compartment(ctx: Ctx) -> Reply:
    ident = ctx.params["compartmentId"]
    if ident == ctx.world.tenancy:
        return ok(_tenancy_as_compartment(ctx.world))
    res = ctx.world.get(ident, "compartment")
    return ok(res.wire, res)


def list_compartments(ctx: Ctx) -> Reply:
    parent = ctx.world.compartment_ok(ctx.q("compartmentId"))
    items = [r.wire for r in ctx.world.find("compartment", compartmentId=parent)]
    return paginate(ctx, items)


def create_compartment(ctx: Ctx) -> Reply:
    body = ctx.json()
    parent = ctx.world.compartment_ok(body.get("compartmentId"))
    wire = {
        "id": ctx.world.ids.ocid("compartment"),
        "compartmentId": parent,
        "name": body.get("name") or "compartment",
        "description": body.get("description") or "",
        "timeCreated": ctx.world.timestamp(),
        "lifecycleState": "ACTIVE",
        **tags(body),
    }
    res = ctx.world.add("compartment", ctx.region, wire)
    return ok(res.wire, res)


def get_tenancy(ctx: Ctx) -> Reply:
    if ctx.params["tenancyId"] != ctx.world.tenancy:
        raise not_found("tenancy", ctx.params["tenancyId"])
    return ok(
        {
            "id": ctx.world.tenancy,
            "name": "nimblesim",
            "description": "Simulated tenancy",
            "homeRegionKey": region_key(ctx.world.home_region).upper(),
            "freeformTags": {},
            "definedTags": {},
        }
    )


def region_subscriptions(ctx: Ctx) -> Reply:
    if ctx.params["tenancyId"] != ctx.world.tenancy:
        raise not_found("tenancy", ctx.params["tenancyId"])
    items = [
        {
            "regionKey": region_key(r).upper(),
            "regionName": r,
            "status": "READY",
            "isHomeRegion": r == ctx.world.home_region,
        }
        for r in ctx.world.regions
    ]
    return Reply(200, items)


def get_user(ctx: Ctx) -> Reply:
    user = ctx.params["userId"]
    if user != ctx.world.api_key.user:
        raise not_found("user", user)
    return ok(
        {
            "id": user,
            "compartmentId": ctx.world.tenancy,
            "name": "nimble-sim-user",
            "description": "Simulated API user",
            "timeCreated": ctx.world.timestamp(0),
            "lifecycleState": "ACTIVE",
        }
    )


def register(router: Router) -> None:
    router.add("GET", f"{V}/availabilityDomains", "ListAvailabilityDomains", list_ads)
    router.add("GET", f"{V}/faultDomains", "ListFaultDomains", list_fds)
    router.add("GET", f"{V}/compartments/{{compartmentId}}", "GetCompartment", get_compartment)
    router.add("GET", f"{V}/compartments", "ListCompartments", list_compartments)
    router.add("POST", f"{V}/compartments", "CreateCompartment", create_compartment)
    router.add("GET", f"{V}/tenancies/{{tenancyId}}", "GetTenancy", get_tenancy)
    router.add(
        "GET",
        f"{V}/tenancies/{{tenancyId}}/regionSubscriptions",
        "ListRegionSubscriptions",
        region_subscriptions,
    )
    router.add("GET", f"{V}/users/{{userId}}", "GetUser", get_user)
