"""Object Storage: namespace, buckets (versioning), objects, multipart uploads,
pre-authenticated requests (usable without a signature) and cross-region replication.

Object bytes live in ``world.blobs`` keyed by ``region/bucket``; the region is the one
whose port was called, so a replication policy copies between two simulated regions.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import datetime
from typing import Any

from nimble_oke.sim.oci.api_error import ApiError, invalid, not_found
from nimble_oke.sim.oci.http import (
    Ctx,
    Reply,
    Router,
    apply_updates,
    no_content,
    ok,
    paginate,
    tags,
)
from nimble_oke.sim.oci.world import Resource, World

GB = 1024**3
_PAR_TYPES = {
    "ObjectRead": ({"GET", "HEAD"}, False),
    "ObjectWrite": ({"PUT"}, False),
    "ObjectReadWrite": ({"GET", "HEAD", "PUT"}, False),
    "AnyObjectRead": ({"GET", "HEAD"}, True),
    "AnyObjectWrite": ({"PUT"}, True),
    "AnyObjectReadWrite": ({"GET", "HEAD", "PUT"}, True),
}


def _store(world: World) -> dict[str, Any]:
    store = world.blobs
    for key in ("objects", "uploads", "pars"):
        store.setdefault(key, {})
    return store


def _check_ns(ctx: Ctx) -> None:
    if ctx.params["namespaceName"] != ctx.world.namespace:
        raise ApiError(
            "NotAuthorizedOrNotFound", f"Namespace {ctx.params['namespaceName']} not found", 404
        )


def _preconditions(ctx: Ctx, etag: str | None, *, on_write: bool = False) -> Reply | None:
    """``if-match`` / ``if-none-match`` as Object Storage checks them: a mismatched
    if-match is 412 IfMatchFailed; an if-none-match that matches (or ``*`` on an existing
    entity) is 412 IfNoneMatchFailed on a write, 304 Not Modified on a read. ``etag`` None:
    the entity does not exist. Texts as recorded by oci-cli's tests against OCI."""
    wanted = ctx.headers.get("if-match")
    if wanted and wanted != etag:
        if ctx.method == "DELETE":
            message = "FAILED_PRECONDITION: The current entity tag did not match"
        else:
            message = f"The If-Match header is '{wanted}' but the current entity tag is '{etag}'"
        raise ApiError("IfMatchFailed", message, 412)
    unwanted = ctx.headers.get("if-none-match")
    if unwanted and etag is not None and unwanted in ("*", etag):
        if on_write:
            raise ApiError(
                "IfNoneMatchFailed",
                f"The If-None-Match header is '{unwanted}' but the current entity tag is '{etag}'",
                412,
            )
        return Reply(304, None, {"etag": etag})
    return None


def _bucket(world: World, region: str, name: str) -> Resource:
    for r in world.find("bucket", name=name):
        if r.region == region and r.live:
            return r
    raise ApiError(
        "BucketNotFound",
        f"Either the bucket named '{name}' does not exist in the "
        f"namespace '{world.namespace}' or you are not authorized to access it",
        404,
    )


def _objects(world: World, bucket: Resource) -> dict[str, list[dict[str, Any]]]:
    objects: dict[str, dict[str, list[dict[str, Any]]]] = _store(world)["objects"]
    return objects.setdefault(f"{bucket.region}/{bucket.wire['name']}", {})


def _latest(world: World, bucket: Resource, name: str) -> dict[str, Any]:
    versions = _objects(world, bucket).get(name) or []
    if not versions or versions[-1].get("deleteMarker"):
        raise ApiError(
            "ObjectNotFound",
            f"The object '{name}' was not found in the bucket '{bucket.wire['name']}'",
            404,
        )
    return versions[-1]


def _size_bytes(world: World, bucket: Resource) -> int:
    return sum(
        len(v["data"])
        for versions in _objects(world, bucket).values()
        for v in versions
        if not v.get("deleteMarker")
    )


def _bill_bucket(world: World, bucket: Resource) -> None:
    # $0.0255 per GB-month standard tier (reference/oci.md)
    gb = _size_bytes(world, bucket) / GB
    world.rebill(bucket, [{"price_key": "object.storage", "quantity": gb, "unit": "gb-month"}])


def put_version(
    world: World,
    bucket: Resource,
    name: str,
    data: bytes,
    content_type: str,
    metadata: dict[str, str],
) -> dict[str, Any]:
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324 - OCI's content-md5
    version = {
        "data": data,
        "md5": md5,
        "etag": world.ids.etag(),
        "versionId": world.ids.token(20),
        "timeCreated": world.timestamp(),
        "contentType": content_type,
        "metadata": metadata,
    }
    versions = _objects(world, bucket).setdefault(name, [])
    if bucket.wire["versioning"] != "Enabled":
        versions.clear()
    versions.append(version)
    _bill_bucket(world, bucket)
    _replicate(world, bucket, name)
    return version


def _object_headers(version: dict[str, Any]) -> dict[str, str]:
    headers = {
        "etag": version["etag"],
        "content-md5": version["md5"],
        "version-id": version["versionId"],
        "last-modified": _http_date(version["timeCreated"]),
        "content-length": str(len(version["data"])),
        "opc-multipart-md5": version.get("multipartMd5", ""),
    }
    headers.update({f"opc-meta-{k}": v for k, v in version["metadata"].items()})
    return {k: v for k, v in headers.items() if v}


def _http_date(stamp: str) -> str:
    dt = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return dt.strftime("%a, %d %b %Y %H:%M:%S GMT")


# --- namespace and buckets ------------------------------------------------------------------


def get_namespace(ctx: Ctx) -> Reply:
    return ok(ctx.world.namespace)


def create_bucket(ctx: Ctx) -> Reply:
    _check_ns(ctx)
    world, body = ctx.world, ctx.json()
    comp = world.compartment_ok(body.get("compartmentId"))
    name = body.get("name") or ""
    if not name:
        raise ApiError("MissingParameter", "name is required")
    if any(r.region == ctx.region and r.live for r in world.find("bucket", name=name)):
        raise ApiError(
            "BucketAlreadyExists",
            f"Either the bucket '{name}' in namespace '{world.namespace}' already exists or "
            "you are not authorized to create it",
            409,
        )
    wire = {
        "id": world.ids.ocid("bucket", ctx.region),
        "namespace": world.namespace,
        "name": name,
        "compartmentId": comp,
        "metadata": body.get("metadata") or {},
        "createdBy": world.api_key.user,
        "timeCreated": world.timestamp(),
        "etag": world.ids.etag(),
        "publicAccessType": body.get("publicAccessType") or "NoPublicAccess",
        "storageTier": body.get("storageTier") or "Standard",
        "objectEventsEnabled": bool(body.get("objectEventsEnabled", False)),
        **tags(body),
        "versioning": body.get("versioning") or "Disabled",
        "replicationEnabled": False,
        "isReadOnly": False,
        "approximateCount": 0,
        "approximateSize": 0,
    }
    res = world.add("bucket", ctx.region, wire)
    world.start_billing(res)
    _bill_bucket(world, res)
    return ok(_bucket_view(world, res), res)


def _bucket_view(world: World, bucket: Resource) -> dict[str, Any]:
    view = dict(bucket.wire)
    objects = _objects(world, bucket)
    view["approximateCount"] = sum(
        1 for v in objects.values() if v and not v[-1].get("deleteMarker")
    )
    view["approximateSize"] = _size_bytes(world, bucket)
    return view


def get_bucket(ctx: Ctx) -> Reply:
    _check_ns(ctx)
    res = _bucket(ctx.world, ctx.region, ctx.params["bucketName"])
    return _preconditions(ctx, res.etag) or ok(_bucket_view(ctx.world, res), res)


def head_bucket(ctx: Ctx) -> Reply:
    _check_ns(ctx)
    res = _bucket(ctx.world, ctx.region, ctx.params["bucketName"])
    return _preconditions(ctx, res.etag) or Reply(200, None, {"etag": res.etag})


def update_bucket(ctx: Ctx) -> Reply:
    _check_ns(ctx)
    body = ctx.json()
    res = _bucket(ctx.world, ctx.region, ctx.params["bucketName"])
    apply_updates(
        res.wire,
        body,
        ("versioning", "freeformTags", "definedTags", "metadata", "publicAccessType"),
    )
    ctx.world.touch(res)
    return ok(_bucket_view(ctx.world, res), res)


def list_buckets(ctx: Ctx) -> Reply:
    _check_ns(ctx)
    comp = ctx.world.compartment_ok(ctx.q("compartmentId"))
    items = [
        {
            k: r.wire[k]
            for k in (
                "namespace",
                "name",
                "compartmentId",
                "createdBy",
                "timeCreated",
                "etag",
                "freeformTags",
                "definedTags",
            )
        }
        for r in ctx.world.find("bucket", compartmentId=comp)
        if r.region == ctx.region and r.live
    ]
    return paginate(ctx, sorted(items, key=lambda b: b["name"]))


def delete_bucket(ctx: Ctx) -> Reply:
    _check_ns(ctx)
    world = ctx.world
    res = _bucket(world, ctx.region, ctx.params["bucketName"])
    _preconditions(ctx, res.etag, on_write=True)
    if res.extra.get("replication"):
        raise ApiError(
            "BucketReplicationEnabled",
            f"Bucket named '{res.wire['name']}' has replication enabled. ",
            403,
        )
    if any(v for v in _objects(world, res).values()):
        raise ApiError(
            "BucketNotEmpty",
            f"Bucket named '{res.wire['name']}' is not empty. Delete all object versions first.",
            409,
        )
    world.mark_deleted(res, "DELETED")
    return no_content()


# --- objects ------------------------------------------------------------------------------


def put_object(ctx: Ctx) -> Reply:
    _check_ns(ctx)
    bucket = _bucket(ctx.world, ctx.region, ctx.params["bucketName"])
    if bucket.wire.get("isReadOnly"):
        raise ApiError("BucketReadOnly", "The bucket is a replication destination (read-only)", 409)
    name = ctx.params["objectName"]
    versions = _objects(ctx.world, bucket).get(name) or []
    current = versions[-1] if versions and not versions[-1].get("deleteMarker") else None
    _preconditions(ctx, current["etag"] if current else None, on_write=True)
    expected = ctx.headers.get("content-md5")
    md5 = base64.b64encode(hashlib.md5(ctx.body).digest()).decode()  # noqa: S324
    if expected and expected != md5:
        raise ApiError(
            "InvalidParameter",
            f"The value of the Content-MD5 header '{expected}' was not the same as the "
            f"computed MD5 '{md5}' of the request body",
            400,
        )
    meta = {
        k[len("opc-meta-") :]: v
        for k, v in ctx.headers.items()
        if k.lower().startswith("opc-meta-")
    }
    version = put_version(
        ctx.world,
        bucket,
        name,
        ctx.body,
        ctx.headers.get("content-type", "application/octet-stream"),
        meta,
    )
    return Reply(
        200,
        None,
        {
            "etag": version["etag"],
            "opc-content-md5": version["md5"],
            "version-id": version["versionId"],
            "last-modified": _http_date(version["timeCreated"]),
        },
    )


def get_object(ctx: Ctx) -> Reply:
    _check_ns(ctx)
    bucket = _bucket(ctx.world, ctx.region, ctx.params["bucketName"])
    version = _latest(ctx.world, bucket, ctx.params["objectName"])
    not_modified = _preconditions(ctx, version["etag"])
    if not_modified is not None:
        return not_modified
    data, headers = bytes(version["data"]), _object_headers(version)
    wanted = _byte_range(ctx.headers.get("range"), len(data))
    if wanted is None:
        return Reply(200, data, headers, version["contentType"])
    first, last = wanted
    headers.update(
        {
            "content-range": f"bytes {first}-{last}/{len(data)}",
            "content-length": str(last - first + 1),
        }
    )
    return Reply(206, data[first : last + 1], headers, version["contentType"])


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``Range: bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` (one range, as OCI serves it);
    None = the whole object. A range past the end is 416 InvalidRange."""
    m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header or "")
    if not m or not (m.group(1) or m.group(2)):
        return None
    if m.group(1):
        first = int(m.group(1))
        last = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    else:
        first, last = max(size - int(m.group(2)), 0), size - 1
    if first >= size or first > last:
        raise ApiError("InvalidRange", f"The requested range {header} is not satisfiable", 416)
    return first, last


def head_object(ctx: Ctx) -> Reply:
    reply = get_object(ctx)
    return Reply(200, None, reply.headers)


def delete_object(ctx: Ctx) -> Reply:
    _check_ns(ctx)
    world = ctx.world
    bucket = _bucket(world, ctx.region, ctx.params["bucketName"])
    name = ctx.params["objectName"]
    _preconditions(ctx, _latest(world, bucket, name)["etag"], on_write=True)
    versions = _objects(world, bucket)[name]
    if bucket.wire["versioning"] == "Enabled":
        versions.append(
            {
                "deleteMarker": True,
                "versionId": world.ids.token(20),
                "data": b"",
                "timeCreated": world.timestamp(),
            }
        )
    else:
        del _objects(world, bucket)[name]
    _bill_bucket(world, bucket)
    _replicate(world, bucket, name)
    return no_content()


def list_objects(ctx: Ctx) -> Reply:
    _check_ns(ctx)
    bucket = _bucket(ctx.world, ctx.region, ctx.params["bucketName"])
    prefix, start, delim = ctx.q("prefix") or "", ctx.q("start") or "", ctx.q("delimiter")
    limit = int(ctx.q("limit") or 1000)
    # OCI returns only each object's name unless ``fields`` asks for more (API reference,
    # ListObjects: "size", "etag", "md5", "timeCreated", "timeModified", "storageTier",
    # "archivalState")
    fields = {"name", *(f.strip() for f in (ctx.q("fields") or "").split(",") if f.strip())}
    names = sorted(
        n
        for n, v in _objects(ctx.world, bucket).items()
        if v and not v[-1].get("deleteMarker") and n.startswith(prefix) and n >= start
    )
    objects, prefixes = [], set()
    for name in names:
        if delim and delim in name[len(prefix) :]:
            prefixes.add(prefix + name[len(prefix) :].split(delim, 1)[0] + delim)
            continue
        v = _objects(ctx.world, bucket)[name][-1]
        summary = {
            "name": name,
            "size": len(v["data"]),
            "md5": v["md5"],
            "timeCreated": v["timeCreated"],
            "etag": v["etag"],
            "storageTier": "Standard",
            "timeModified": v["timeCreated"],
            "archivalState": None,
        }
        objects.append({k: summary[k] for k in summary if k in fields})
    page, rest = objects[:limit], objects[limit:]
    body = {
        "objects": page,
        "prefixes": sorted(prefixes),
        "nextStartWith": rest[0]["name"] if rest else None,
    }
    return ok(body)


# --- multipart ----------------------------------------------------------------------------


def create_multipart(ctx: Ctx) -> Reply:
    _check_ns(ctx)
    world, body = ctx.world, ctx.json()
    bucket = _bucket(world, ctx.region, ctx.params["bucketName"])
    if not body.get("object"):
        raise ApiError("MissingParameter", "object is required")
    upload_id = world.ids.token(36)
    upload = {
        "namespace": world.namespace,
        "bucket": bucket.wire["name"],
        "object": body["object"],
        "uploadId": upload_id,
        "timeCreated": world.timestamp(),
        "storageTier": "Standard",
    }
    _store(world)["uploads"][upload_id] = {
        **upload,
        "region": ctx.region,
        "parts": {},
        "contentType": body.get("contentType") or "application/octet-stream",
        "metadata": body.get("metadata") or {},
    }
    return ok(upload)


def _upload(ctx: Ctx) -> dict[str, Any]:
    upload_id = ctx.q("uploadId") or ""
    upload: dict[str, Any] | None = _store(ctx.world)["uploads"].get(upload_id)
    if (
        upload is None
        or upload["object"] != ctx.params["objectName"]
        or upload["region"] != ctx.region
    ):
        raise ApiError("UploadNotFound", "No such upload", 404)
    return upload


def upload_part(ctx: Ctx) -> Reply:
    _check_ns(ctx)
    upload = _upload(ctx)
    num = int(ctx.q("uploadPartNum") or 0)
    if not 1 <= num <= 10000:
        raise invalid("uploadPartNum must be between 1 and 10000")
    md5 = base64.b64encode(hashlib.md5(ctx.body).digest()).decode()  # noqa: S324
    etag = ctx.world.ids.etag()
    upload["parts"][str(num)] = {"data": ctx.body, "etag": etag, "md5": md5}
    return Reply(200, None, {"etag": etag, "opc-content-md5": md5})


def list_parts(ctx: Ctx) -> Reply:
    _check_ns(ctx)
    upload = _upload(ctx)
    items = [
        {"partNumber": int(n), "etag": p["etag"], "md5": p["md5"], "size": len(p["data"])}
        for n, p in sorted(upload["parts"].items(), key=lambda kv: int(kv[0]))
    ]
    return ok(items)


def commit_multipart(ctx: Ctx) -> Reply:
    _check_ns(ctx)
    world, body = ctx.world, ctx.json()
    upload = _upload(ctx)
    chunks, digests = [], b""
    for part in sorted(body.get("partsToCommit") or [], key=lambda p: int(p["partNum"])):
        stored = upload["parts"].get(str(part["partNum"]))
        if stored is None or stored["etag"] != part.get("etag"):
            raise invalid(f"Part {part['partNum']} was not uploaded with etag {part.get('etag')}")
        chunks.append(stored["data"])
        digests += base64.b64decode(stored["md5"])
    if not chunks:
        raise invalid("partsToCommit must not be empty")
    bucket = _bucket(world, ctx.region, upload["bucket"])
    version = put_version(
        world, bucket, upload["object"], b"".join(chunks), upload["contentType"], upload["metadata"]
    )
    multipart_md5 = base64.b64encode(hashlib.md5(digests).digest()).decode() + f"-{len(chunks)}"  # noqa: S324
    version["multipartMd5"] = multipart_md5
    del _store(world)["uploads"][upload["uploadId"]]
    return Reply(
        200,
        None,
        {
            "etag": version["etag"],
            "opc-multipart-md5": multipart_md5,
            "last-modified": _http_date(version["timeCreated"]),
        },
    )


def abort_multipart(ctx: Ctx) -> Reply:
    _check_ns(ctx)
    upload = _upload(ctx)
    del _store(ctx.world)["uploads"][upload["uploadId"]]
    return no_content()


# --- pre-authenticated requests -------------------------------------------------------------


def create_par(ctx: Ctx) -> Reply:
    _check_ns(ctx)
    world, body = ctx.world, ctx.json()
    bucket = _bucket(world, ctx.region, ctx.params["bucketName"])
    access = body.get("accessType")
    if access not in _PAR_TYPES:
        raise invalid(f"accessType must be one of {sorted(_PAR_TYPES)}")
    expires = body.get("timeExpires")
    try:
        expires_at = datetime.fromisoformat(str(expires).replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise invalid("timeExpires must be an RFC 3339 timestamp") from exc
    any_object = _PAR_TYPES[access][1]
    obj = "" if any_object else body.get("objectName") or ""
    if not any_object and not obj:
        raise ApiError("MissingParameter", "objectName is required for this access type")
    token = world.ids.token(64)
    par_id = world.ids.token(44)
    uri = f"/p/{token}/n/{world.namespace}/b/{bucket.wire['name']}/o/{obj}"
    par = {
        "id": par_id,
        "name": body.get("name") or par_id,
        "accessUri": uri,
        "objectName": obj or None,
        "accessType": access,
        "timeExpires": expires,
        "timeCreated": world.timestamp(),
        "bucketListingAction": body.get("bucketListingAction"),
    }
    stored = {k: v for k, v in par.items() if k != "accessUri"}  # the URI holds the token
    _store(world)["pars"][_token_key(token)] = {
        **stored,
        "region": ctx.region,
        "bucket": bucket.wire["name"],
        "expires_at": expires_at,
    }
    full = {**par, "fullPath": f"{world.endpoints.get(ctx.region, '')}{uri}"}
    return ok(full)


def _token_key(token: str) -> str:
    """PARs are stored by token hash: the state file never holds a usable PAR URL."""
    return hashlib.sha256(token.encode()).hexdigest()


def _par_public(par: dict[str, Any]) -> dict[str, Any]:
    return {
        k: par[k]
        for k in (
            "id",
            "name",
            "objectName",
            "accessType",
            "timeExpires",
            "timeCreated",
            "bucketListingAction",
        )
    }


def list_pars(ctx: Ctx) -> Reply:
    _check_ns(ctx)
    name = ctx.params["bucketName"]
    items = [
        _par_public(p)
        for p in _store(ctx.world)["pars"].values()
        if p["bucket"] == name and p["region"] == ctx.region
    ]
    return ok(items)


def _par_token(ctx: Ctx) -> str:
    """The stored key of the bucket's PAR ``parId`` (404 as OCI answers an unknown one)."""
    for token, par in _store(ctx.world)["pars"].items():
        if (
            par["id"] == ctx.params["parId"]
            and par["bucket"] == ctx.params["bucketName"]
            and par["region"] == ctx.region
        ):
            return str(token)
    raise not_found("preauthenticatedrequest", ctx.params["parId"])


def get_par(ctx: Ctx) -> Reply:
    _check_ns(ctx)
    return ok(_par_public(_store(ctx.world)["pars"][_par_token(ctx)]))


def delete_par(ctx: Ctx) -> Reply:
    _check_ns(ctx)
    del _store(ctx.world)["pars"][_par_token(ctx)]
    return no_content()


def use_par(ctx: Ctx) -> Reply:
    """``/p/{token}/n/{ns}/b/{bucket}/o/{object}``: no signature, the token is the credential."""
    world = ctx.world
    par = _store(world)["pars"].get(_token_key(ctx.params["token"]))
    denied = ApiError(
        "NotAuthorizedOrNotFound", "The pre-authenticated request is invalid or expired", 404
    )
    if par is None or par["region"] != ctx.region or par["bucket"] != ctx.params["bucketName"]:
        raise denied
    if world.clock.wall() > par["expires_at"]:
        raise denied
    methods, any_object = _PAR_TYPES[par["accessType"]]
    if ctx.method not in methods or (
        not any_object and ctx.params["objectName"] != par["objectName"]
    ):
        raise denied
    if ctx.params["namespaceName"] != world.namespace:
        raise denied
    handler = {"GET": get_object, "HEAD": head_object, "PUT": put_object}[ctx.method]
    return handler(ctx)


# --- replication ----------------------------------------------------------------------------


def create_replication_policy(ctx: Ctx) -> Reply:
    _check_ns(ctx)
    world, body = ctx.world, ctx.json()
    source = _bucket(world, ctx.region, ctx.params["bucketName"])
    if source.extra.get("replication"):
        raise ApiError(
            "ReplicationPolicyConflict",
            f"Replication policy exists for bucket '{source.wire['name']}' in namespace "
            f"'{world.namespace}'.",
            409,
        )
    region = body.get("destinationRegionName")
    if region not in world.regions or region == ctx.region:
        raise invalid(f"Invalid destinationRegionName {region}")
    dest = _bucket(world, region, body.get("destinationBucketName") or "")
    if any(v for v in _objects(world, dest).values()):
        raise invalid("The destination bucket must be empty")
    policy = {
        "id": world.ids.token(36),
        "name": body.get("name") or "replication",
        "destinationRegionName": region,
        "destinationBucketName": dest.wire["name"],
        "timeCreated": world.timestamp(),
        "timeLastSync": None,
        "status": "ACTIVE",
        "statusMessage": None,
    }
    source.extra.setdefault("replication", []).append(policy)
    source.wire["replicationEnabled"] = True
    dest.wire["isReadOnly"] = True
    world.touch(source)
    for name in list(_objects(world, source)):
        _replicate(world, source, name)
    return ok(policy)


def list_replication_policies(ctx: Ctx) -> Reply:
    _check_ns(ctx)
    source = _bucket(ctx.world, ctx.region, ctx.params["bucketName"])
    return ok(list(source.extra.get("replication", [])))


def delete_replication_policy(ctx: Ctx) -> Reply:
    _check_ns(ctx)
    world = ctx.world
    source = _bucket(world, ctx.region, ctx.params["bucketName"])
    policies = source.extra.get("replication", [])
    for policy in policies:
        if policy["id"] == ctx.params["replicationId"]:
            policies.remove(policy)
            dest = _bucket(world, policy["destinationRegionName"], policy["destinationBucketName"])
            dest.wire["isReadOnly"] = False
            source.wire["replicationEnabled"] = bool(policies)
            world.touch(source)
            return no_content()
    raise ApiError("NotAuthorizedOrNotFound", "No such replication policy", 404)


def _replicate(world: World, source: Resource, name: str) -> None:
    for policy in source.extra.get("replication", []):
        world.later(
            world.timings.replication_delay_s,
            "replicate",
            source=source.id,
            name=name,
            policy=policy["id"],
        )


def register_actions(world: World) -> None:
    def replicate(a: dict[str, Any]) -> None:
        source = world.resources[a["source"]]
        policy = next(
            (p for p in source.extra.get("replication", []) if p["id"] == a["policy"]), None
        )
        if policy is None or not source.live:
            return
        try:
            dest = _bucket(world, policy["destinationRegionName"], policy["destinationBucketName"])
        except ApiError:
            policy["status"], policy["statusMessage"] = "CLIENT_ERROR", "destination bucket is gone"
            return
        versions = _objects(world, source).get(a["name"]) or []
        target = _objects(world, dest)
        if not versions or versions[-1].get("deleteMarker"):
            target.pop(a["name"], None)
        else:
            target[a["name"]] = [dict(versions[-1])]
        policy["timeLastSync"] = world.timestamp()
        _bill_bucket(world, dest)

    world.actions["replicate"] = replicate


def register(router: Router) -> None:
    b = "/n/{namespaceName}/b"
    router.add("GET", "/n", "GetNamespace", get_namespace)
    router.add("GET", "/n/", "GetNamespace", get_namespace)
    router.add("POST", b, "CreateBucket", create_bucket)
    router.add("POST", f"{b}/", "CreateBucket", create_bucket)
    router.add("GET", b, "ListBuckets", list_buckets)
    router.add("GET", f"{b}/", "ListBuckets", list_buckets)
    bk = f"{b}/{{bucketName}}"
    router.add("GET", bk, "GetBucket", get_bucket)
    router.add("HEAD", bk, "HeadBucket", head_bucket)
    router.add("POST", bk, "UpdateBucket", update_bucket)
    router.add("DELETE", bk, "DeleteBucket", delete_bucket)
    router.add("GET", f"{bk}/o", "ListObjects", list_objects)
    router.add("GET", f"{bk}/o/", "ListObjects", list_objects)
    obj = f"{bk}/o/{{objectName:path}}"
    router.add("PUT", obj, "PutObject", put_object, streamed_body=True)
    router.add("GET", obj, "GetObject", get_object)
    router.add("HEAD", obj, "HeadObject", head_object)
    router.add("DELETE", obj, "DeleteObject", delete_object)
    router.add("POST", f"{bk}/u", "CreateMultipartUpload", create_multipart)
    up = f"{bk}/u/{{objectName:path}}"
    router.add("PUT", up, "UploadPart", upload_part, streamed_body=True)
    router.add("POST", up, "CommitMultipartUpload", commit_multipart)
    router.add("DELETE", up, "AbortMultipartUpload", abort_multipart)
    router.add("GET", up, "ListMultipartUploadParts", list_parts)
    router.add("POST", f"{bk}/p", "CreatePreauthenticatedRequest", create_par)
    router.add("POST", f"{bk}/p/", "CreatePreauthenticatedRequest", create_par)
    router.add("GET", f"{bk}/p", "ListPreauthenticatedRequests", list_pars)
    router.add("GET", f"{bk}/p/", "ListPreauthenticatedRequests", list_pars)
    # PAR ids hold '/' and '+' (OCI's are base64): the id spans the rest of the path
    router.add("GET", f"{bk}/p/{{parId:path}}", "GetPreauthenticatedRequest", get_par)
    router.add("DELETE", f"{bk}/p/{{parId:path}}", "DeletePreauthenticatedRequest", delete_par)
    rp = f"{bk}/replicationPolicies"
    router.add("POST", rp, "CreateReplicationPolicy", create_replication_policy)
    router.add("GET", rp, "ListReplicationPolicies", list_replication_policies)
    router.add(
        "DELETE", f"{rp}/{{replicationId}}", "DeleteReplicationPolicy", delete_replication_policy
    )
    par = "/p/{token}/n/{namespaceName}/b/{bucketName}/o/{objectName:path}"
    for method in ("GET", "HEAD", "PUT"):
        router.add(method, par, "UsePreauthenticatedRequest", use_par, public=True)
