"""Work requests: ACCEPTED -> IN_PROGRESS -> SUCCEEDED | FAILED.

Container Engine's (kind ``workrequest``, served here) and Compute's (kind
``computeworkrequest``, served by ``images``) share the life cycle and the read handlers
(:func:`read_handlers`); they differ in OCID type and Compute's ``percentComplete``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nimble_oke.sim.oci.api_error import invalid
from nimble_oke.sim.oci.http import Ctx, Reply, Router, ok, paginate
from nimble_oke.sim.oci.world import Resource, World

V = "/20180222"


def create(
    world: World,
    region: str,
    operation_type: str,
    compartment_id: str,
    entity_type: str,
    entity_id: str,
    entity_uri: str,
    *,
    kind: str = "workrequest",
    ocid_type: str = "clustersworkrequest",
    wire_extra: dict[str, Any] | None = None,
) -> Resource:
    wire = {
        "id": world.ids.ocid(ocid_type, region),
        "operationType": operation_type,
        "status": "ACCEPTED",
        "compartmentId": compartment_id,
        "resources": [
            {
                "actionType": "IN_PROGRESS",
                "entityType": entity_type,
                "identifier": entity_id,
                "entityUri": entity_uri,
            }
        ],
        "timeAccepted": world.timestamp(),
        "timeStarted": None,
        "timeFinished": None,
        **(wire_extra or {}),
    }
    res = world.add(kind, region, wire, extra={"errors": [], "logs": []})
    log(world, res, f"{operation_type} accepted")
    world.later(world.timings.work_request_start_s, "wr_start", id=res.id)
    return res


def log(world: World, wr: Resource, message: str) -> None:
    wr.extra["logs"].append({"message": message, "timestamp": world.timestamp()})


def start(world: World, wr: Resource) -> None:
    if wr.wire["status"] == "ACCEPTED":
        wr.wire["status"] = "IN_PROGRESS"
        wr.wire["timeStarted"] = world.timestamp()
        log(world, wr, "work request in progress")
        world.touch(wr)


def finish(
    world: World, wr: Resource, action_type: str, error: tuple[str, str] | None = None
) -> None:
    """Close the work request; with ``error`` (code, message) it FAILS."""
    if wr.wire["status"] in ("SUCCEEDED", "FAILED", "CANCELED"):
        return
    if wr.wire["timeStarted"] is None:
        wr.wire["timeStarted"] = world.timestamp()
    wr.wire["status"] = "FAILED" if error else "SUCCEEDED"
    wr.wire["timeFinished"] = world.timestamp()
    for item in wr.wire["resources"]:
        item["actionType"] = "FAILED" if error else action_type
    if error:
        code, message = error
        wr.extra["errors"].append(
            {"code": code, "message": message, "timestamp": world.timestamp()}
        )
        log(world, wr, f"work request failed: {message}")
    else:
        log(world, wr, "work request succeeded")
    world.touch(wr)


def register_actions(world: World) -> None:
    world.actions["wr_start"] = lambda a: start(world, world.resources[a["id"]])


Handler = Callable[[Ctx], Reply]


def read_handlers(kind: str, what: str = "") -> tuple[Handler, Handler, Handler]:
    """GetWorkRequest, ListWorkRequestErrors and ListWorkRequestLogs for ``kind``."""

    def get(ctx: Ctx) -> Reply:
        wr = ctx.world.get(ctx.params["workRequestId"], kind, what)
        return ok(wr.wire, wr)

    def errors(ctx: Ctx) -> Reply:
        wr = ctx.world.get(ctx.params["workRequestId"], kind, what)
        return paginate(ctx, list(wr.extra["errors"]))

    def logs(ctx: Ctx) -> Reply:
        wr = ctx.world.get(ctx.params["workRequestId"], kind, what)
        return paginate(ctx, list(wr.extra["logs"]))

    return get, errors, logs


_get, _errors, _logs = read_handlers("workrequest")


def _list(ctx: Ctx) -> Reply:
    comp = ctx.world.compartment_ok(ctx.q("compartmentId"))
    cluster, resource = ctx.q("clusterId"), ctx.q("resourceId")
    statuses = set(ctx.query.getall("status", []))
    items: list[dict[str, Any]] = []
    for r in ctx.world.find("workrequest", compartmentId=comp):
        ids = {x["identifier"] for x in r.wire["resources"]} | set(r.extra.get("related", []))
        if cluster and cluster not in ids:
            continue
        if resource and resource not in ids:
            continue
        if statuses and r.wire["status"] not in statuses:
            continue
        items.append(r.wire)
    items.sort(key=lambda w: w["timeAccepted"], reverse=True)
    return paginate(ctx, items)


def _cancel(ctx: Ctx) -> Reply:
    wr = ctx.world.get(ctx.params["workRequestId"], "workrequest")
    if wr.wire["status"] in ("SUCCEEDED", "FAILED", "CANCELED"):
        raise invalid(f"Work request {wr.id} has already finished")
    wr.wire["status"] = "CANCELED"
    wr.wire["timeFinished"] = ctx.world.timestamp()
    ctx.world.touch(wr)
    return Reply(204, None)


def register(router: Router) -> None:
    router.add("GET", f"{V}/workRequests", "ListWorkRequests", _list)
    router.add("GET", f"{V}/workRequests/{{workRequestId}}", "GetWorkRequest", _get)
    router.add("DELETE", f"{V}/workRequests/{{workRequestId}}", "DeleteWorkRequest", _cancel)
    router.add(
        "GET", f"{V}/workRequests/{{workRequestId}}/errors", "ListWorkRequestErrors", _errors
    )
    router.add("GET", f"{V}/workRequests/{{workRequestId}}/logs", "ListWorkRequestLogs", _logs)
