"""Identity tag namespaces and their tag keys (defined tags), as far as sessions use them.

A defined tag ``namespace.key = value`` is what Resource Scheduler's dynamic filters select
resources by (freeform tags are not selectable there). A namespace is created once per
tenancy (``CreateTagNamespace``, names unique per tenancy → 409 otherwise), its keys with
``CreateTag``; both come back ACTIVE at once.

They are tenancy metadata, not billed resources, so they are kept beside the world's
resources (``world.blobs["tag_namespaces"]``, persisted with it) and never show in the
inventory a leak check counts.
"""

from __future__ import annotations

from typing import Any

from nimble_oke.sim.oci.api_error import ApiError, invalid, not_found
from nimble_oke.sim.oci.http import Ctx, Reply, Router, ok, paginate
from nimble_oke.sim.oci.world import World

V = "/20160918"


def _namespaces(world: World) -> dict[str, dict[str, Any]]:
    """id -> {"wire": namespace, "tags": [tag wire, ...]}"""
    store: dict[str, dict[str, Any]] = world.blobs.setdefault("tag_namespaces", {})
    return store


def _namespace(world: World, ident: str) -> dict[str, Any]:
    found = _namespaces(world).get(ident)
    if found is None:
        raise not_found("tag namespace", ident)
    return found


def key_exists(world: World, namespace: str, key: str) -> bool:
    """Whether ``namespace.key`` is a defined tag of the tenancy."""
    for ns in _namespaces(world).values():
        if ns["wire"]["name"].lower() == namespace.lower():
            return any(t["name"].lower() == key.lower() for t in ns["tags"])
    return False


def create_tag_namespace(ctx: Ctx) -> Reply:
    world, body = ctx.world, ctx.json()
    comp = world.compartment_ok(body.get("compartmentId"))
    name = str(body.get("name") or "")
    if not name or not body.get("description"):
        raise ApiError("MissingParameter", "name and description are required")
    if any(ns["wire"]["name"].lower() == name.lower() for ns in _namespaces(world).values()):
        raise ApiError(
            "NotAuthorizedOrResourceAlreadyExists", f"Tag namespace {name} already exists"
        )
    wire = {
        "id": world.ids.ocid("tagnamespace", ctx.region),
        "compartmentId": comp,
        "name": name,
        "description": body["description"],
        "freeformTags": dict(body.get("freeformTags") or {}),
        "definedTags": {},
        "isRetired": False,
        "lifecycleState": "ACTIVE",
        "timeCreated": world.timestamp(),
    }
    _namespaces(world)[wire["id"]] = {"wire": wire, "tags": []}
    world.dirty = True
    return ok(wire)


def list_tag_namespaces(ctx: Ctx) -> Reply:
    comp = ctx.world.compartment_ok(ctx.q("compartmentId"))
    items = [ns["wire"] for ns in _namespaces(ctx.world).values()]
    return paginate(ctx, [w for w in items if w["compartmentId"] == comp])


def get_tag_namespace(ctx: Ctx) -> Reply:
    return ok(_namespace(ctx.world, ctx.params["tagNamespaceId"])["wire"])


def create_tag(ctx: Ctx) -> Reply:
    world, body = ctx.world, ctx.json()
    ns = _namespace(world, ctx.params["tagNamespaceId"])
    name = str(body.get("name") or "")
    if not name or not body.get("description"):
        raise ApiError("MissingParameter", "name and description are required")
    if any(t["name"].lower() == name.lower() for t in ns["tags"]):
        raise ApiError("NotAuthorizedOrResourceAlreadyExists", f"Tag {name} already exists")
    if body.get("isCostTracking") not in (None, False, True):
        raise invalid("isCostTracking must be a boolean")
    tag = {
        "id": world.ids.ocid("tagdefinition", ctx.region),
        "compartmentId": ns["wire"]["compartmentId"],
        "tagNamespaceId": ns["wire"]["id"],
        "tagNamespaceName": ns["wire"]["name"],
        "name": name,
        "description": body["description"],
        "isCostTracking": bool(body.get("isCostTracking")),
        "isRetired": False,
        "lifecycleState": "ACTIVE",
        "timeCreated": world.timestamp(),
        "freeformTags": {},
        "definedTags": {},
    }
    ns["tags"].append(tag)
    world.dirty = True
    return ok(tag)


def list_tags(ctx: Ctx) -> Reply:
    return paginate(ctx, list(_namespace(ctx.world, ctx.params["tagNamespaceId"])["tags"]))


def get_tag(ctx: Ctx) -> Reply:
    for tag in _namespace(ctx.world, ctx.params["tagNamespaceId"])["tags"]:
        if tag["name"] == ctx.params["tagName"]:
            return ok(tag)
    raise not_found("tag", ctx.params["tagName"])


def register(router: Router) -> None:
    router.add("POST", f"{V}/tagNamespaces", "CreateTagNamespace", create_tag_namespace)
    router.add("GET", f"{V}/tagNamespaces", "ListTagNamespaces", list_tag_namespaces)
    router.add("GET", f"{V}/tagNamespaces/{{tagNamespaceId}}", "GetTagNamespace", get_tag_namespace)
    router.add("POST", f"{V}/tagNamespaces/{{tagNamespaceId}}/tags", "CreateTag", create_tag)
    router.add("GET", f"{V}/tagNamespaces/{{tagNamespaceId}}/tags", "ListTags", list_tags)
    router.add("GET", f"{V}/tagNamespaces/{{tagNamespaceId}}/tags/{{tagName}}", "GetTag", get_tag)
