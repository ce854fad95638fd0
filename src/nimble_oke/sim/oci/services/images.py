"""Compute custom images captured from OKE worker nodes, and the IAAS work requests that
track their capture.

``CreateImage`` with ``instanceId`` (a node's ``ocid1.instance...``) stops the instance,
copies its boot volume into an image (PROVISIONING, 8-12 simulated minutes) and starts it
again (AVAILABLE). The image remembers what the node's containerd held at capture time
(``extra["images"]``: image ref -> size in bytes, asked from the ``node_images`` hook), so
nodes of a pool launched from it come up with those images already present. Only custom
images are served here: the OKE platform images stay in ``GetNodePoolOptions``.
"""

from __future__ import annotations

import math
from typing import Any

from nimble_oke.sim.oci.api_error import ApiError, invalid, not_found
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
from nimble_oke.sim.oci.services import power, workrequests
from nimble_oke.sim.oci.world import Resource, World

V = "/20160918"
GIB = 1024**3
# Used bytes of an OKE GPU node's boot volume before any container image is pulled:
# not published; assumption 15 GB (Oracle Linux 8 + NVIDIA driver/CUDA + kubelet/CRI-O).
BASE_IMAGE_USED_GB = 15
OPERATING_SYSTEM, OPERATING_SYSTEM_VERSION = "Oracle Linux", "8"  # the OKE images' OS (oke.md)
# What OCI reports for a paravirtualized image launched from an OKE (Gen2) image.
LAUNCH_OPTIONS = {
    "bootVolumeType": "PARAVIRTUALIZED",
    "firmware": "UEFI_64",
    "networkType": "PARAVIRTUALIZED",
    "remoteDataVolumeType": "PARAVIRTUALIZED",
    "isPvEncryptionInTransitEnabled": False,
    "isConsistentVolumeNamingEnabled": True,
}


# --- queries other services use ----------------------------------------------------------------


def custom_image(world: World, region: str, image_id: str) -> Resource | None:
    """The custom image ``image_id`` of ``region`` in any state (None if unknown)."""
    res = world.resources.get(image_id)
    if res is None or res.kind != "image" or res.region != region:
        return None
    return res


def usable(image: Resource) -> bool:
    """AVAILABLE and not being deleted: a node pool may launch nodes from it."""
    return (
        image.live
        and image.wire["lifecycleState"] == "AVAILABLE"
        and not image.extra.get("deleting")
    )


def kubernetes_version(image: Resource) -> str:
    """The Kubernetes version of the OKE image the captured node ran."""
    return str(image.extra["kubernetes_version"])


def preloaded_images(world: World, image_id: str | None) -> dict[str, int]:
    """Container images (ref -> bytes) on the boot volume of a node booted from ``image_id``:
    the captured ones for a custom image, none for an OKE platform image."""
    res = world.resources.get(image_id or "")
    if res is None or res.kind != "image":
        return {}
    return {str(ref): int(size) for ref, size in (res.extra.get("images") or {}).items()}


# --- work requests (oci.work_requests.WorkRequestClient, /20160918/workRequests) ---------------


def _create_work_request(
    world: World, region: str, operation: str, compartment_id: str, image_id: str
) -> Resource:
    return workrequests.create(
        world,
        region,
        operation,
        compartment_id,
        "image",
        image_id,
        f"{V}/images/{image_id}",
        kind="computeworkrequest",
        ocid_type="coreservicesworkrequest",
        wire_extra={"percentComplete": 0.0},
    )


_get_work_request, _work_request_errors, _work_request_logs = workrequests.read_handlers(
    "computeworkrequest", "work request"
)


def _list_work_requests(ctx: Ctx) -> Reply:
    comp = ctx.world.compartment_ok(ctx.q("compartmentId"))
    resource = ctx.q("resourceId")
    items = [
        r.wire
        for r in ctx.world.find("computeworkrequest", compartmentId=comp)
        if r.region == ctx.region
        and (not resource or any(x["identifier"] == resource for x in r.wire["resources"]))
    ]
    items.sort(key=lambda w: w["timeAccepted"], reverse=True)
    return paginate(ctx, items)


# --- images ------------------------------------------------------------------------------------


def _default_name(world: World) -> str:
    """OCI names an unnamed image like other resources: kind + creation time."""
    return "image" + world.timestamp()[:19].replace("-", "").replace(":", "").replace("T", "")


def _cached_images(world: World, node: Resource) -> dict[str, int]:
    """Ask the Kubernetes side what the node's containerd holds (optional hook)."""
    hook = getattr(world.hooks, "node_images", None)
    if hook is None:
        return {}
    found = hook(node.extra["cluster"], node.wire["name"]) or {}
    return {str(ref): int(size) for ref, size in found.items()}


def _capture_source(ctx: Ctx, instance_id: str | None) -> Resource:
    if not instance_id:
        raise ApiError("MissingParameter", "instanceId is required to create an image")
    node = ctx.world.resources.get(instance_id)
    if node is None or node.kind != "node" or not node.live or node.region != ctx.region:
        raise not_found("instance", instance_id)
    state = node.wire["lifecycleState"]
    if state != "ACTIVE":
        raise ApiError(
            "IncorrectState",
            f"Instance {instance_id} is in state {state}: an image can only be created from "
            "a running or stopped instance",
            409,
        )
    if node.extra.get("capturing"):
        raise ApiError(
            "IncorrectState",
            f"An image is already being created from instance {instance_id}",
            409,
        )
    if power.power_state(node) not in ("RUNNING", "STOPPED"):
        raise ApiError("Conflict", power.BUSY_MESSAGE.format(id=instance_id), 409)
    return node


def create_image(ctx: Ctx) -> Reply:
    world, body = ctx.world, ctx.json()
    comp = world.compartment_ok(body.get("compartmentId"))
    if body.get("imageSourceDetails"):
        raise invalid(
            "Importing an image from Object Storage (imageSourceDetails) is not supported by "
            "this simulator; create the image from an instance (instanceId)"
        )
    node = _capture_source(ctx, body.get("instanceId"))
    pool = world.resources[node.wire["nodePoolId"]]
    cached = _cached_images(world, node)
    used_bytes = BASE_IMAGE_USED_GB * GIB + sum(cached.values())
    billable_gb = math.ceil(used_bytes / GIB)
    image_id = world.ids.ocid("image", ctx.region)
    wr = _create_work_request(world, ctx.region, "CreateImage", comp, image_id)
    was_running = power.power_state(node) == "RUNNING"
    wire = {
        "id": image_id,
        "compartmentId": comp,
        "displayName": body.get("displayName") or _default_name(world),
        # OCI: "the OCID of the image originally used to launch the instance"
        "baseImageId": pool.wire.get("nodeImageId"),
        "createImageAllowed": True,
        "launchMode": body.get("launchMode") or "PARAVIRTUALIZED",
        "launchOptions": dict(LAUNCH_OPTIONS),
        "lifecycleState": "PROVISIONING",
        "operatingSystem": OPERATING_SYSTEM,
        "operatingSystemVersion": OPERATING_SYSTEM_VERSION,
        "agentFeatures": None,
        "listingType": "NONE",
        # OCI: sizeInMBs is "the boot volume size for an instance launched from this image"
        "sizeInMBs": round(float(node.extra.get("boot_gb") or 46.6) * 1024),
        "billableSizeInGBs": billable_gb,
        "timeCreated": world.timestamp(),
        **tags(body),
    }
    # Assumption (not in oci.md): custom image storage is billed at the Object Storage
    # standard rate, per GB-month of the image's billable size, from AVAILABLE until deleted.
    billing = [{"price_key": "object.storage", "quantity": billable_gb, "unit": "gb-month"}]
    world.add(
        "image",
        ctx.region,
        wire,
        billing=billing,
        extra={
            "images": cached,
            "kubernetes_version": node.wire["kubernetesVersion"],
            "source_instance": node.id,
            "cluster": node.extra["cluster"],
            "work_request": wr.id,
            "was_running": was_running,
        },
    )
    # OCI stops a running instance while it copies the boot volume and boots it again
    # afterwards; a stopped one stays stopped. The node's billing is left as it is (the
    # capture is not a STOP: calibration.md's stopped-instance rule does not apply).
    node.extra["capturing"] = image_id
    if was_running:
        world.emit("node_stopped", node.extra["cluster"], node.wire["name"])
    world.later(world.timings.draw(world.rng, "image_capture"), "image_captured", id=image_id)
    reply = ok(wire, world.resources[image_id])
    reply.headers["opc-work-request-id"] = wr.id
    return reply


def get_image(ctx: Ctx) -> Reply:
    res = ctx.world.get(ctx.params["imageId"], "image")
    return ok(res.wire, res)


def list_images(ctx: Ctx) -> Reply:
    """The compartment's custom images (platform images are not listed by the simulator)."""
    comp = ctx.world.compartment_ok(ctx.q("compartmentId"))
    wanted_state = ctx.q("lifecycleState")
    os_name, os_version = ctx.q("operatingSystem"), ctx.q("operatingSystemVersion")
    items = [
        r.wire
        for r in ctx.world.find("image", compartmentId=comp)
        if r.region == ctx.region
        and (r.live or wanted_state == "DELETED")
        and (not os_name or r.wire["operatingSystem"] == os_name)
        and (not os_version or r.wire["operatingSystemVersion"] == os_version)
    ]
    return paginate(ctx, sort_and_filter(ctx, items))


def update_image(ctx: Ctx) -> Reply:
    world, body = ctx.world, ctx.json()
    res = world.get(ctx.params["imageId"], "image")
    check_if_match(ctx, res)
    if not res.live:
        raise ApiError("IncorrectState", f"Image {res.id} is {res.wire['lifecycleState']}", 409)
    apply_updates(
        res.wire,
        body,
        (
            "displayName",
            "freeformTags",
            "definedTags",
            "operatingSystem",
            "operatingSystemVersion",
        ),
    )
    world.touch(res)
    return ok(res.wire, res)


def delete_image(ctx: Ctx) -> Reply:
    """OCI allows deleting an image a node pool uses: the pool's existing nodes keep running."""
    world = ctx.world
    res = world.get(ctx.params["imageId"], "image")
    check_if_match(ctx, res)
    if not res.live:
        raise not_found("image", res.id)
    if res.wire["lifecycleState"] == "PROVISIONING":
        raise ApiError(
            "IncorrectState",
            f"Image {res.id} is PROVISIONING: it can be deleted once it is AVAILABLE",
            409,
        )
    if not res.extra.get("deleting"):
        res.extra["deleting"] = True
        world.touch(res)
        world.later(
            world.timings.image_delete_s, "lifecycle", id=res.id, state="DELETED", deleted=True
        )
    return no_content()


# --- lifecycle actions -------------------------------------------------------------------------


def register_actions(world: World) -> None:
    def image_captured(a: dict[str, Any]) -> None:
        image = world.resources.get(a["id"])
        if image is None or not image.live:
            return
        wr = world.resources[image.extra["work_request"]]
        node = world.resources.get(image.extra["source_instance"])
        if node is not None and node.extra.get("capturing") == image.id:
            del node.extra["capturing"]
        if node is None or not node.live or node.wire["lifecycleState"] != "ACTIVE":
            world.mark_deleted(image, "DELETED")
            message = "The instance was terminated before the image was created"
            workrequests.finish(world, wr, "CREATED", ("InternalError", message))
            return
        world.set_state(image, "AVAILABLE")
        world.start_billing(image)
        workrequests.finish(world, wr, "CREATED")
        wr.wire["percentComplete"] = 100.0
        if image.extra.get("was_running", True):
            world.emit("node_started", image.extra["cluster"], node.wire["name"])

    world.actions.update(image_captured=image_captured)


def register(router: Router) -> None:
    router.add("POST", f"{V}/images", "CreateImage", create_image)
    router.add("GET", f"{V}/images", "ListImages", list_images)
    router.add("GET", f"{V}/images/{{imageId}}", "GetImage", get_image)
    router.add("PUT", f"{V}/images/{{imageId}}", "UpdateImage", update_image)
    router.add("DELETE", f"{V}/images/{{imageId}}", "DeleteImage", delete_image)
    router.add("GET", f"{V}/workRequests", "ListWorkRequests", _list_work_requests)
    router.add("GET", f"{V}/workRequests/{{workRequestId}}", "GetWorkRequest", _get_work_request)
    router.add(
        "GET",
        f"{V}/workRequests/{{workRequestId}}/errors",
        "ListWorkRequestErrors",
        _work_request_errors,
    )
    router.add(
        "GET",
        f"{V}/workRequests/{{workRequestId}}/logs",
        "ListWorkRequestLogs",
        _work_request_logs,
    )
