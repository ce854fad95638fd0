"""Block Volume: volumes (incl. clones from a volume or a backup) and volume backups."""

from __future__ import annotations

from typing import Any

from nimble_oke.sim.oci.api_error import ApiError, conflict, invalid
from nimble_oke.sim.oci.http import (
    Ctx,
    Reply,
    Router,
    apply_updates,
    check_if_match,
    no_content,
    ok,
    paginate,
    sort_and_filter,
    tags,
)
from nimble_oke.sim.oci.world import Resource, World

V = "/20160918"
DEFAULT_SIZE_GB = 1024  # OCI's default volume size when sizeInGBs is omitted
DEFAULT_VPUS = 10  # Balanced (calibration.md)


def volume_billing(size_gb: float, vpus: int) -> list[dict[str, Any]]:
    # $0.0255 per GB-month + $0.0017 per VPU per GB-month (reference/oci.md)
    return [
        {"price_key": "block.storage", "quantity": size_gb, "unit": "gb-month"},
        {"price_key": "block.vpu", "quantity": size_gb * vpus, "unit": "vpu-gb-month"},
    ]


def _vpus(value: Any) -> int:
    """Performance units per GB: 0 (Lower Cost), 10 (Balanced), 20 (Higher Performance),
    30-120 in steps of 10 (Ultra High Performance) — on create and on update alike."""
    vpus = int(value)
    if vpus not in (0, 10, 20, *range(30, 121, 10)):
        raise invalid("vpusPerGB must be 0, 10, 20 or 30-120 in steps of 10")
    return vpus


def create_volume_record(world: World, region: str, body: dict[str, Any]) -> Resource:
    comp = world.compartment_ok(body.get("compartmentId"))
    ad = world.check_ad(body.get("availabilityDomain"), region)
    source = body.get("sourceDetails")
    size = body.get("sizeInGBs")
    if source:
        src = world.resources.get(source.get("id") or "")
        kind = {"volume": "volume", "volumeBackup": "volumebackup"}.get(source.get("type", ""))
        if kind is None or src is None or src.kind != kind or not src.live:
            raise invalid(f"Invalid sourceDetails {source}")
        size = size or src.wire["sizeInGBs"]
        if int(size) < int(src.wire["sizeInGBs"]):
            raise invalid("A clone or restore cannot be smaller than its source")
    size = int(size or DEFAULT_SIZE_GB)
    if not 50 <= size <= 32768:
        raise invalid("sizeInGBs must be between 50 and 32768")
    vpus = _vpus(body.get("vpusPerGB", DEFAULT_VPUS))
    wire = {
        "id": world.ids.ocid("volume", region),
        "availabilityDomain": ad,
        "compartmentId": comp,
        "displayName": body.get("displayName") or f"volume{world.timestamp()[:19]}",
        **tags(body),
        "systemTags": {},
        "isHydrated": True,
        "kmsKeyId": body.get("kmsKeyId"),
        "lifecycleState": "PROVISIONING",
        "sizeInGBs": size,
        "sizeInMBs": size * 1024,
        "sourceDetails": source,
        "timeCreated": world.timestamp(),
        "vpusPerGB": vpus,
        "isAutoTuneEnabled": False,
    }
    res = world.add("volume", region, wire, billing=volume_billing(size, vpus))
    world.start_billing(res)
    world.later(world.timings.volume_create_s, "lifecycle", id=res.id, state="AVAILABLE")
    return res


def delete_volume_record(world: World, res: Resource) -> None:
    if not res.live or res.wire["lifecycleState"] == "TERMINATING":
        return
    if any(
        b.live and b.wire["lifecycleState"] == "CREATING" and b.wire["volumeId"] == res.id
        for b in world.find("volumebackup")
    ):
        raise conflict(f"Volume {res.id} has a backup in progress")
    world.set_state(res, "TERMINATING")
    world.later(
        world.timings.volume_delete_s, "lifecycle", id=res.id, state="TERMINATED", deleted=True
    )


def _create_volume(ctx: Ctx) -> Reply:
    res = create_volume_record(ctx.world, ctx.region, ctx.json())
    return ok(res.wire, res)


def _get_volume(ctx: Ctx) -> Reply:
    res = ctx.world.get(ctx.params["volumeId"], "volume")
    return ok(res.wire, res)


def _list(kind: str) -> Any:
    def handler(ctx: Ctx) -> Reply:
        comp = ctx.world.compartment_ok(ctx.q("compartmentId"))
        ad, vol = ctx.q("availabilityDomain"), ctx.q("volumeId")
        items = [
            r.wire
            for r in ctx.world.find(kind, compartmentId=comp)
            if r.region == ctx.region
            and (not ad or r.wire.get("availabilityDomain") == ad)
            and (not vol or r.wire.get("volumeId") == vol)
        ]
        return paginate(ctx, sort_and_filter(ctx, items))

    return handler


def _update_volume(ctx: Ctx) -> Reply:
    world, body = ctx.world, ctx.json()
    res = world.get(ctx.params["volumeId"], "volume")
    check_if_match(ctx, res)
    if not res.live:
        raise ApiError("IncorrectState", f"Volume {res.id} is {res.wire['lifecycleState']}", 409)
    new_size = body.get("sizeInGBs")
    new_vpus = None if body.get("vpusPerGB") is None else _vpus(body["vpusPerGB"])
    if new_size is not None and int(new_size) < res.wire["sizeInGBs"]:
        raise invalid("A volume can only grow")
    # checked first: a refused update changes nothing
    apply_updates(res.wire, body, ("displayName", "freeformTags", "definedTags"))
    if new_size is not None:
        res.wire["sizeInGBs"] = int(new_size)
        res.wire["sizeInMBs"] = int(new_size) * 1024
    if new_vpus is not None:
        res.wire["vpusPerGB"] = new_vpus
    if new_size is not None or new_vpus is not None:
        world.rebill(res, volume_billing(res.wire["sizeInGBs"], res.wire["vpusPerGB"]))
    world.touch(res)
    return ok(res.wire, res)


def _delete_volume(ctx: Ctx) -> Reply:
    res = ctx.world.get(ctx.params["volumeId"], "volume")
    check_if_match(ctx, res)
    delete_volume_record(ctx.world, res)
    return no_content()


def _create_backup(ctx: Ctx) -> Reply:
    world, body = ctx.world, ctx.json()
    vol = world.get(body.get("volumeId") or "", "volume")
    if vol.wire["lifecycleState"] != "AVAILABLE":
        raise ApiError("IncorrectState", f"Volume {vol.id} is {vol.wire['lifecycleState']}", 409)
    wire = {
        "id": world.ids.ocid("volumebackup", ctx.region),
        "compartmentId": vol.wire["compartmentId"],
        "displayName": body.get("displayName") or f"backup-{vol.wire['displayName']}",
        **tags(body),
        "systemTags": {},
        "lifecycleState": "CREATING",
        "sizeInGBs": vol.wire["sizeInGBs"],
        "sizeInMBs": vol.wire["sizeInMBs"],
        "uniqueSizeInGBs": vol.wire["sizeInGBs"],
        "uniqueSizeInMbs": vol.wire["sizeInMBs"],
        "sourceType": "MANUAL",
        "type": body.get("type") or "INCREMENTAL",
        "timeCreated": world.timestamp(),
        "timeRequestReceived": world.timestamp(),
        "volumeId": vol.id,
        "expirationTime": None,
    }
    # backups are stored in Object Storage and billed at its rate (OCI block volume pricing)
    res = world.add(
        "volumebackup",
        ctx.region,
        wire,
        billing=[
            {"price_key": "object.storage", "quantity": vol.wire["sizeInGBs"], "unit": "gb-month"}
        ],
    )
    world.start_billing(res)
    world.later(world.timings.backup_create_s, "lifecycle", id=res.id, state="AVAILABLE")
    return ok(res.wire, res)


def _get_backup(ctx: Ctx) -> Reply:
    res = ctx.world.get(ctx.params["volumeBackupId"], "volumebackup")
    return ok(res.wire, res)


def _delete_backup(ctx: Ctx) -> Reply:
    world = ctx.world
    res = world.get(ctx.params["volumeBackupId"], "volumebackup")
    if res.live and res.wire["lifecycleState"] != "TERMINATING":
        world.set_state(res, "TERMINATING")
        world.later(
            world.timings.volume_delete_s, "lifecycle", id=res.id, state="TERMINATED", deleted=True
        )
    return no_content()


def register(router: Router) -> None:
    router.add("POST", f"{V}/volumes", "CreateVolume", _create_volume)
    router.add("GET", f"{V}/volumes", "ListVolumes", _list("volume"))
    router.add("GET", f"{V}/volumes/{{volumeId}}", "GetVolume", _get_volume)
    router.add("PUT", f"{V}/volumes/{{volumeId}}", "UpdateVolume", _update_volume)
    router.add("DELETE", f"{V}/volumes/{{volumeId}}", "DeleteVolume", _delete_volume)
    router.add("POST", f"{V}/volumeBackups", "CreateVolumeBackup", _create_backup)
    router.add("GET", f"{V}/volumeBackups", "ListVolumeBackups", _list("volumebackup"))
    router.add("GET", f"{V}/volumeBackups/{{volumeBackupId}}", "GetVolumeBackup", _get_backup)
    router.add(
        "DELETE", f"{V}/volumeBackups/{{volumeBackupId}}", "DeleteVolumeBackup", _delete_backup
    )
