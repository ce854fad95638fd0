"""Resource Search: structured queries over every simulated resource.

Supported grammar (a subset of OCI's): ``query <Type>[, <Type>...] | all resources
[where <cond> [&& | || <cond>]...]`` with conditions ``field = 'v'`` / ``field != 'v'`` on
``freeformTags.key``, ``freeformTags.value``, ``lifecycleState``, ``displayName``,
``compartmentId``, ``identifier``. ``freeformTags.key`` and ``freeformTags.value`` joined by
``&&`` match one tag pair, as in OCI.
"""

from __future__ import annotations

import re
from typing import Any

from nimble_oke.sim.oci.api_error import invalid
from nimble_oke.sim.oci.http import Ctx, Reply, Router
from nimble_oke.sim.oci.world import Resource

V = "/20180409"
RESOURCE_TYPES = {
    "vcn": "Vcn",
    "subnet": "Subnet",
    "internetgateway": "InternetGateway",
    "natgateway": "NatGateway",
    "servicegateway": "ServiceGateway",
    "routetable": "RouteTable",
    "securitylist": "SecurityList",
    "dhcpoptions": "DHCPOptions",
    "cluster": "ClustersCluster",
    "nodepool": "ClustersNodePool",
    "node": "Instance",
    "volume": "Volume",
    "volumebackup": "VolumeBackup",
    "loadbalancer": "LoadBalancer",
    "bucket": "Bucket",
    "image": "Image",
    "compartment": "Compartment",
}
_QUERY = re.compile(r"^\s*query\s+(.+?)\s+resources(?:\s+where\s+(.+))?\s*$", re.I | re.S)
_ATOM = re.compile(r"^\s*([\w.]+)\s*(!=|=)\s*'([^']*)'\s*$")


def _parse(query: str) -> tuple[set[str] | None, list[list[tuple[str, str, str]]]]:
    m = _QUERY.match(query)
    if not m:
        raise invalid(f"Unsupported or malformed query: {query}")
    types_text, where = m.group(1), m.group(2)
    types = (
        None
        if types_text.strip().lower() == "all"
        else {t.strip().lower() for t in types_text.split(",")}
    )
    groups: list[list[tuple[str, str, str]]] = []
    if where:
        for alt in where.replace("(", " ").replace(")", " ").split("||"):
            atoms = []
            for part in alt.split("&&"):
                a = _ATOM.match(part)
                if not a:
                    raise invalid(f"Unsupported condition: {part.strip()}")
                atoms.append((a.group(1), a.group(2), a.group(3)))
            groups.append(atoms)
    return types, groups


def _field(res: Resource, name: str) -> Any:
    w = res.wire
    return {
        "lifecyclestate": w.get("lifecycleState"),
        "displayname": w.get("displayName") or w.get("name"),
        "compartmentid": w.get("compartmentId"),
        "identifier": res.id,
    }.get(name.lower())


def _matches(res: Resource, atoms: list[tuple[str, str, str]]) -> bool:
    tags = res.wire.get("freeformTags") or {}
    keys = [v for f, op, v in atoms if f.lower() == "freeformtags.key" and op == "="]
    values = [v for f, op, v in atoms if f.lower() == "freeformtags.value" and op == "="]
    if keys and values:
        tags_ok = any(tags.get(k) == v for k in keys for v in values)
    else:
        tags_ok = all(k in tags for k in keys) and (
            not values or any(v in tags.values() for v in values)
        )
    if not tags_ok:
        return False
    for f, op, v in atoms:
        if f.lower().startswith("freeformtags."):
            continue
        actual = _field(res, f)
        if (actual == v) != (op == "="):
            return False
    return True


def _summary(res: Resource) -> dict[str, Any]:
    w = res.wire
    return {
        "resourceType": RESOURCE_TYPES[res.kind],
        "identifier": res.id,
        "compartmentId": w.get("compartmentId"),
        "timeCreated": w.get("timeCreated") or (w.get("metadata") or {}).get("timeCreated"),
        "displayName": w.get("displayName") or w.get("name"),
        "availabilityDomain": w.get("availabilityDomain"),
        "lifecycleState": w.get("lifecycleState"),
        "freeformTags": w.get("freeformTags") or {},
        "definedTags": w.get("definedTags") or {},
        "systemTags": {},
    }


def search_resources(ctx: Ctx) -> Reply:
    body = ctx.json()
    if body.get("type") != "Structured":
        raise invalid("Only Structured search is supported by the simulator")
    types, groups = _parse(str(body.get("query") or ""))
    hits = [
        _summary(r)
        for r in ctx.world.resources.values()
        if r.kind in RESOURCE_TYPES
        and r.region == ctx.region
        and (types is None or RESOURCE_TYPES[r.kind].lower() in types)
        and (not groups or any(_matches(r, g) for g in groups))
    ]
    limit = int(ctx.q("limit") or 100)
    start = int(ctx.q("page") or 0)
    headers = {"opc-next-page": str(start + limit)} if start + limit < len(hits) else {}
    return Reply(200, {"items": hits[start : start + limit]}, headers)


def register(router: Router) -> None:
    router.add("POST", f"{V}/resources", "SearchResources", search_resources)
