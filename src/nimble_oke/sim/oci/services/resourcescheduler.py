"""Resource Scheduler (``oci.resource_scheduler``, API 20240430): schedules that start or
stop resources on a recurrence, selected statically (``resources``) or at each run by
``resourceFilters`` (compartment, resource type, *defined* tags, lifecycle state, creation
time — freeform tags are not selectable).

What the simulator models (from the SDK models and Oracle's Resource Scheduler docs):
actions START_RESOURCE / STOP_RESOURCE (BACKUP_RESOURCE is accepted and does nothing here),
on compute instances (the nodes of OKE pools: services/nodes.py says what a stopped
instance bills per shape); CRON recurrences (five fields, evaluated in UTC) between
``timeStarts`` and ``timeEnds``; a dynamic filter is evaluated at each run, so instances
launched after the schedule was made are found. ``lastRunStatus`` / ``timeLastRun`` /
``timeNextRun`` tell what it did. Not modelled (refused with a clear 400): ICAL
recurrences, time zones other than UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from nimble_oke.sim.oci.api_error import ApiError, invalid
from nimble_oke.sim.oci.http import Ctx, Reply, Router, accepted, ok, paginate, tags
from nimble_oke.sim.oci.services import compute, nodes, tagging
from nimble_oke.sim.oci.world import Resource, World

V = "/20240430"
ACTIONS = ("START_RESOURCE", "STOP_RESOURCE", "BACKUP_RESOURCE")
FILTERS = ("COMPARTMENT_ID", "RESOURCE_TYPE", "DEFINED_TAGS", "TIME_CREATED", "LIFECYCLE_STATE")
RESOURCE_TYPES = ("instance", "instancepool", "autonomousdatabase", "functionsfunction")
KIND = "resourceschedule"
_SCAN_MINUTES = 32 * 24 * 60  # look this far ahead for the next run of a recurrence


def _parse_time(value: Any, field: str) -> float | None:
    if value in (None, ""):
        return None
    text = str(value)
    if not re.match(r"^\d{4}-\d{2}-\d{2}T", text):
        raise invalid(f"{field} must be an RFC 3339 date-time, got {text}")
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise invalid(f"{field} must be an RFC 3339 date-time, got {text}") from exc


def _to_sim(world: World, wall: float) -> float:
    return wall - (world.clock.wall() - world.clock.now())


def _validate(world: World, body: dict[str, Any]) -> None:
    from nimble_oke.sim.kube.cron import CronSchedule

    if body.get("action") not in ACTIONS:
        raise invalid(f"Invalid action {body.get('action')}; allowed: {', '.join(ACTIONS)}")
    kind = body.get("recurrenceType")
    if kind == "ICAL":
        raise invalid("ICAL recurrences are not supported by the simulator (use CRON)")
    if kind != "CRON":
        raise invalid(f"Invalid recurrenceType {kind}; allowed: CRON, ICAL")
    try:
        CronSchedule(str(body.get("recurrenceDetails") or ""))
    except ValueError as exc:
        raise invalid(f"Invalid recurrenceDetails: {exc}") from exc
    if body.get("localTimeZone") not in (None, "UTC", "Etc/UTC"):
        raise invalid("Only the UTC time zone is supported by the simulator")
    if not body.get("resources") and not body.get("resourceFilters"):
        raise invalid("You must provide either resources or resourceFilters")
    for flt in body.get("resourceFilters") or []:
        _validate_filter(world, flt)
    starts = _parse_time(body.get("timeStarts"), "timeStarts")
    ends = _parse_time(body.get("timeEnds"), "timeEnds")
    if starts is not None and ends is not None and ends <= starts:
        raise invalid("timeEnds must be after timeStarts")


def _validate_filter(world: World, flt: dict[str, Any]) -> None:
    attribute = flt.get("attribute")
    if attribute not in FILTERS:
        raise invalid(
            f"Invalid resource filter attribute {attribute}; allowed: {', '.join(FILTERS)}"
        )
    if attribute == "RESOURCE_TYPE":
        unknown = [v for v in flt.get("value") or [] if str(v).lower() not in RESOURCE_TYPES]
        if unknown:
            raise invalid(f"Unsupported resource types {unknown}; see ListResourceTypes")
    if attribute == "DEFINED_TAGS":
        for item in flt.get("value") or []:
            ns, key = item.get("namespace"), item.get("tagKey")
            if not ns or not key or not tagging.key_exists(world, str(ns), str(key)):
                raise invalid(f"The defined tag {ns}.{key} does not exist in the tenancy")


def _wire(world: World, body: dict[str, Any], ident: str, comp: str) -> dict[str, Any]:
    now = world.timestamp()
    return {
        "id": ident,
        "compartmentId": comp,
        "displayName": body.get("displayName") or ident[-12:],
        "description": body.get("description"),
        "action": body["action"],
        "recurrenceDetails": body["recurrenceDetails"],
        "recurrenceType": body["recurrenceType"],
        "resourceFilters": list(body.get("resourceFilters") or []),
        "resources": list(body.get("resources") or []),
        "timeStarts": body.get("timeStarts"),
        "timeEnds": body.get("timeEnds"),
        "localTimeZone": body.get("localTimeZone"),
        "timeCreated": now,
        "timeUpdated": now,
        "timeLastRun": None,
        "timeNextRun": None,
        "lastRunStatus": None,
        "lifecycleState": "ACTIVE",
        **tags(body),
        "systemTags": {},
    }


def create_schedule(ctx: Ctx) -> Reply:
    world, body = ctx.world, ctx.json()
    comp = world.compartment_ok(body.get("compartmentId"))
    _validate(world, body)
    ident = world.ids.ocid("resourceschedule", ctx.region)
    res = world.add(KIND, ctx.region, _wire(world, body, ident, comp), extra={"version": 0})
    _plan_next(world, res)
    return ok(res.wire, res)


def get_schedule(ctx: Ctx) -> Reply:
    res = ctx.world.get(ctx.params["scheduleId"], KIND, "schedule")
    return ok(res.wire, res)


def list_schedules(ctx: Ctx) -> Reply:
    world = ctx.world
    comp = ctx.q("compartmentId")
    name = ctx.q("displayName")
    state = ctx.q("lifecycleState")
    items = [
        r.wire
        for r in world.resources.values()
        if r.kind == KIND
        and r.region == ctx.region
        and (comp is None or r.wire["compartmentId"] == comp)
        and (name is None or r.wire["displayName"] == name)
        and (state is None or r.wire["lifecycleState"] == state)
        and (state is not None or r.live)
    ]
    page = paginate(ctx, items)
    return Reply(200, {"items": page.body}, page.headers)


UPDATABLE = (
    "displayName",
    "description",
    "action",
    "recurrenceDetails",
    "recurrenceType",
    "resourceFilters",
    "resources",
    "timeStarts",
    "timeEnds",
    "freeformTags",
    "definedTags",
)


def update_schedule(ctx: Ctx) -> Reply:
    world, body = ctx.world, ctx.json()
    res = _live(world, ctx.params["scheduleId"])
    merged = {**res.wire, **{k: v for k, v in body.items() if k in UPDATABLE and v is not None}}
    _validate(world, merged)
    res.wire.update({k: merged[k] for k in UPDATABLE})
    res.wire["timeUpdated"] = world.timestamp()
    res.extra["version"] += 1
    world.touch(res)
    _plan_next(world, res)
    return accepted(world.ids.ocid("resourceschedulerworkrequest", ctx.region))


def delete_schedule(ctx: Ctx) -> Reply:
    world = ctx.world
    res = world.get(ctx.params["scheduleId"], KIND, "schedule")
    if res.live:
        res.extra["version"] += 1
        world.mark_deleted(res, "DELETED")
    return accepted(world.ids.ocid("resourceschedulerworkrequest", ctx.region))


def _set_active(ctx: Ctx, active: bool) -> Reply:
    world = ctx.world
    res = _live(world, ctx.params["scheduleId"])
    res.wire["lifecycleState"] = "ACTIVE" if active else "INACTIVE"
    res.extra["version"] += 1
    world.touch(res)
    _plan_next(world, res)
    return ok(res.wire, res)


def _live(world: World, ident: str) -> Resource:
    res = world.get(ident, KIND, "schedule")
    if not res.live:
        raise ApiError("IncorrectState", f"Schedule {ident} is DELETED")
    return res


def list_resource_types(ctx: Ctx) -> Reply:
    return ok({"items": [{"name": name} for name in RESOURCE_TYPES]})


# -- running -----------------------------------------------------------------------------


def _plan_next(world: World, res: Resource) -> None:
    """Queue the schedule's next run (a changed schedule's old queued run is ignored)."""
    from nimble_oke.sim.kube.cron import CronSchedule

    res.wire["timeNextRun"] = None
    if not res.live or res.wire["lifecycleState"] != "ACTIVE":
        return
    cron = CronSchedule(str(res.wire["recurrenceDetails"]))
    now_wall = world.wall_of(world.now())
    starts = _parse_time(res.wire.get("timeStarts"), "timeStarts") or now_wall
    ends = _parse_time(res.wire.get("timeEnds"), "timeEnds")
    # the first whole minute at or after both now and timeStarts
    minute = -(-max(now_wall, starts) // 60) * 60
    if res.extra.get("last_wall") is not None:
        minute = max(minute, res.extra["last_wall"] + 60)
    for _ in range(_SCAN_MINUTES):
        if ends is not None and minute > ends:
            return
        if cron.matches(minute):
            res.wire["timeNextRun"] = _stamp(minute)
            delay = _to_sim(world, minute) - world.now()
            world.later(delay, "schedule_run", id=res.id, version=res.extra["version"], at=minute)
            return
        minute += 60


def _stamp(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _matches(world: World, node: Resource, filters: list[dict[str, Any]]) -> bool:
    view = compute.instance_view(world, node)
    for flt in filters:
        attribute, value = flt.get("attribute"), flt.get("value")
        if attribute == "COMPARTMENT_ID" and view["compartmentId"] != value:
            return False
        if attribute == "RESOURCE_TYPE" and "instance" not in [str(v).lower() for v in value or []]:
            return False
        if attribute == "LIFECYCLE_STATE" and view["lifecycleState"].lower() not in [
            str(v).lower() for v in value or []
        ]:
            return False
        if attribute == "DEFINED_TAGS":
            defined = view["definedTags"]
            for item in value or []:
                got = (defined.get(item.get("namespace")) or {}).get(item.get("tagKey"))
                if got is None or (item.get("value") not in (None, "") and got != item["value"]):
                    return False
        if attribute == "TIME_CREATED" and not _created_ok(world, node, flt):
            return False
    return True


def _created_ok(world: World, node: Resource, flt: dict[str, Any]) -> bool:
    when = _parse_time(flt.get("value"), "value")
    created = world.wall_of(node.created)
    condition = flt.get("condition") or "AFTER"
    if when is None:
        return True
    if condition == "BEFORE":
        return created < when
    if condition == "EQUAL":
        return abs(created - when) < 1
    return created > when


def _targets(world: World, res: Resource) -> list[Resource]:
    nodes = [r for r in world.resources.values() if r.kind == "node" and r.live]
    static = {str(item.get("id")) for item in res.wire.get("resources") or []}
    if static:
        return [n for n in nodes if n.id in static]
    return [n for n in nodes if _matches(world, n, res.wire.get("resourceFilters") or [])]


def _power(world: World, node: Resource, action: str) -> int:
    """The schedule's action on one instance: 1 when applied, 0 when the instance refuses
    it (409: already in that state, or busy)."""
    try:
        nodes.power_action(world, node, action)
    except ApiError:
        return 0
    return 1


def register_actions(world: World) -> None:
    def schedule_run(a: dict[str, Any]) -> None:
        res = world.resources.get(a["id"])
        if res is None or not res.live or res.extra.get("version") != a["version"]:
            return
        if res.wire["lifecycleState"] != "ACTIVE":
            return
        acted = 0
        for node in _targets(world, res):
            if res.wire["action"] == "STOP_RESOURCE":
                acted += _power(world, node, "STOP")
            elif res.wire["action"] == "START_RESOURCE":
                acted += _power(world, node, "START")
        res.extra["last_wall"] = a["at"]
        res.extra["runs"] = res.extra.get("runs", 0) + 1
        res.extra["acted"] = res.extra.get("acted", 0) + acted
        res.wire["timeLastRun"] = world.timestamp()
        res.wire["lastRunStatus"] = "SUCCEEDED"
        world.touch(res)
        _plan_next(world, res)

    world.actions["schedule_run"] = schedule_run


def register(router: Router) -> None:
    router.add("POST", f"{V}/schedules", "CreateSchedule", create_schedule)
    router.add("GET", f"{V}/schedules", "ListSchedules", list_schedules)
    router.add("GET", f"{V}/schedules/resourceTypes", "ListResourceTypes", list_resource_types)
    router.add("GET", f"{V}/schedules/{{scheduleId}}", "GetSchedule", get_schedule)
    router.add("PUT", f"{V}/schedules/{{scheduleId}}", "UpdateSchedule", update_schedule)
    router.add("DELETE", f"{V}/schedules/{{scheduleId}}", "DeleteSchedule", delete_schedule)
    router.add(
        "POST",
        f"{V}/schedules/{{scheduleId}}/actions/activateSchedule",
        "ActivateSchedule",
        lambda ctx: _set_active(ctx, True),
    )
    router.add(
        "POST",
        f"{V}/schedules/{{scheduleId}}/actions/deactivateSchedule",
        "DeactivateSchedule",
        lambda ctx: _set_active(ctx, False),
    )
