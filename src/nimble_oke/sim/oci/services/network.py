"""Virtual Cloud Network: VCNs, gateways, route tables, security lists, subnets, services.

Create returns 200 with the resource in PROVISIONING (AVAILABLE a few simulated seconds
later); delete returns 204 and moves it through TERMINATING to TERMINATED. Dependency
rules follow OCI: a VCN with live children, a subnet in use, a gateway a route rule
targets, or a route table / security list a subnet uses cannot be deleted (409 Conflict).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nimble_oke.sim.oci.api_error import ApiError, conflict, invalid
from nimble_oke.sim.oci.http import (
    Ctx,
    Reply,
    Router,
    check_if_match,
    no_content,
    ok,
    paginate,
    sort_and_filter,
    tags,
)
from nimble_oke.sim.oci.ids import region_key
from nimble_oke.sim.oci.world import Resource, World

V = "/20160918"
Builder = Callable[[Ctx, dict[str, Any], dict[str, Any]], None]


@dataclass(frozen=True)
class Kind:
    kind: str  # also the OCID resource type
    path: str
    op: str  # e.g. "Vcn" -> CreateVcn, GetVcn, ListVcns, UpdateVcn, DeleteVcn
    id_param: str
    updatable: tuple[str, ...]
    build: Builder


def _vcn_of(ctx: Ctx, body: dict[str, Any]) -> Resource:
    vcn_id = body.get("vcnId")
    if not vcn_id:
        raise ApiError("MissingParameter", "vcnId is required")
    vcn = ctx.world.get(vcn_id, "vcn")
    if not vcn.live or vcn.region != ctx.region:
        raise invalid(f"VCN {vcn_id} is not available")
    return vcn


def _live(world: World, ident: str | None, kinds: tuple[str, ...]) -> Resource | None:
    res = world.resources.get(ident or "")
    return res if res is not None and res.kind in kinds and res.live else None


def _build_vcn(ctx: Ctx, body: dict[str, Any], wire: dict[str, Any]) -> None:
    cidrs = body.get("cidrBlocks") or ([body["cidrBlock"]] if body.get("cidrBlock") else [])
    if not cidrs:
        raise ApiError("MissingParameter", "cidrBlock or cidrBlocks is required")
    for cidr in cidrs:
        try:
            ipaddress.ip_network(cidr)
        except ValueError as exc:
            raise invalid(f"Invalid CIDR block {cidr}") from exc
    label = body.get("dnsLabel")
    wire.update(
        cidrBlock=cidrs[0],
        cidrBlocks=cidrs,
        dnsLabel=label,
        vcnDomainName=f"{label}.oraclevcn.com" if label else None,
    )
    # OCI creates a default route table, security list and DHCP options with every VCN.
    world = ctx.world
    for kind, key, extra in (
        ("routetable", "defaultRouteTableId", {"routeRules": []}),
        ("securitylist", "defaultSecurityListId", _default_security_rules(cidrs[0])),
        ("dhcpoptions", "defaultDhcpOptionsId", {"options": [], "domainNameType": "CUSTOM_DOMAIN"}),
    ):
        child = {
            "id": world.ids.ocid(kind, ctx.region),
            "compartmentId": wire["compartmentId"],
            "vcnId": wire["id"],
            "displayName": f"Default {kind} for {wire['displayName']}",
            "lifecycleState": "AVAILABLE",
            "timeCreated": wire["timeCreated"],
            "freeformTags": {},
            "definedTags": {},
            **extra,
        }
        res = world.add(kind, ctx.region, child, extra={"default": True})
        wire[key] = res.id


def _default_security_rules(cidr: str) -> dict[str, Any]:
    return {
        "ingressSecurityRules": [
            {
                "protocol": "6",
                "source": "0.0.0.0/0",
                "sourceType": "CIDR_BLOCK",
                "isStateless": False,
                "tcpOptions": {"destinationPortRange": {"min": 22, "max": 22}},
            },
            {
                "protocol": "1",
                "source": cidr,
                "sourceType": "CIDR_BLOCK",
                "isStateless": False,
                "icmpOptions": {"type": 3},
            },
        ],
        "egressSecurityRules": [
            {
                "protocol": "all",
                "destination": "0.0.0.0/0",
                "destinationType": "CIDR_BLOCK",
                "isStateless": False,
            },
        ],
    }


def _build_ig(ctx: Ctx, body: dict[str, Any], wire: dict[str, Any]) -> None:
    wire.update(
        vcnId=_vcn_of(ctx, body).id,
        isEnabled=body.get("isEnabled", True),
        routeTableId=body.get("routeTableId"),
    )


def _build_nat(ctx: Ctx, body: dict[str, Any], wire: dict[str, Any]) -> None:
    ip = f"129.213.{ctx.world.rng.randint(1, 254)}.{ctx.world.rng.randint(1, 254)}"
    wire.update(
        vcnId=_vcn_of(ctx, body).id,
        blockTraffic=bool(body.get("blockTraffic", False)),
        natIp=ip,
        publicIpId=ctx.world.ids.ocid("publicip", ctx.region),
        routeTableId=body.get("routeTableId"),
    )


def _build_sgw(ctx: Ctx, body: dict[str, Any], wire: dict[str, Any]) -> None:
    known = {s["id"]: s for s in services_for(ctx.world, ctx.region)}
    chosen = []
    for item in body.get("services") or []:
        svc = known.get(item.get("serviceId"))
        if svc is None:
            raise invalid(f"Unknown service {item.get('serviceId')}")
        chosen.append({"serviceId": svc["id"], "serviceName": svc["name"]})
    wire.update(
        vcnId=_vcn_of(ctx, body).id,
        services=chosen,
        blockTraffic=False,
        routeTableId=body.get("routeTableId"),
    )


def _check_route_rules(ctx: Ctx, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for rule in rules:
        target = rule.get("networkEntityId")
        gw = _live(ctx.world, target, ("internetgateway", "natgateway", "servicegateway"))
        if gw is None:
            raise invalid(f"Route rule target {target} does not exist")
        rule.setdefault("destinationType", "CIDR_BLOCK")
        rule.setdefault("routeType", "STATIC")
    return rules


def _build_rt(ctx: Ctx, body: dict[str, Any], wire: dict[str, Any]) -> None:
    wire.update(
        vcnId=_vcn_of(ctx, body).id,
        routeRules=_check_route_rules(ctx, list(body.get("routeRules") or [])),
    )


def _build_sl(ctx: Ctx, body: dict[str, Any], wire: dict[str, Any]) -> None:
    wire.update(
        vcnId=_vcn_of(ctx, body).id,
        ingressSecurityRules=list(body.get("ingressSecurityRules") or []),
        egressSecurityRules=list(body.get("egressSecurityRules") or []),
    )


def _build_dhcp(ctx: Ctx, body: dict[str, Any], wire: dict[str, Any]) -> None:
    wire.update(
        vcnId=_vcn_of(ctx, body).id,
        options=list(body.get("options") or []),
        domainNameType=body.get("domainNameType", "CUSTOM_DOMAIN"),
    )


def _build_subnet(ctx: Ctx, body: dict[str, Any], wire: dict[str, Any]) -> None:
    vcn = _vcn_of(ctx, body)
    try:
        net = ipaddress.ip_network(body.get("cidrBlock") or "")
    except ValueError as exc:
        raise invalid(f"Invalid cidrBlock {body.get('cidrBlock')}") from exc
    if not any(net.subnet_of(ipaddress.ip_network(c)) for c in vcn.wire["cidrBlocks"]):  # type: ignore[arg-type]
        raise invalid(f"The subnet CIDR {net} is not within the VCN's CIDR blocks")
    for other in ctx.world.find("subnet", vcnId=vcn.id):
        if other.live and net.overlaps(ipaddress.ip_network(other.wire["cidrBlock"])):
            raise invalid(f"The requested CIDR {net} overlaps with the CIDR of subnet {other.id}")
    ad = body.get("availabilityDomain")
    if ad:
        ctx.world.check_ad(ad, ctx.region)
    rt = body.get("routeTableId") or vcn.wire["defaultRouteTableId"]
    if _live(ctx.world, rt, ("routetable",)) is None:
        raise invalid(f"Route table {rt} does not exist")
    sls = body.get("securityListIds") or [vcn.wire["defaultSecurityListId"]]
    for sl in sls:
        if _live(ctx.world, sl, ("securitylist",)) is None:
            raise invalid(f"Security list {sl} does not exist")
    label = body.get("dnsLabel")
    hosts = net.hosts()
    wire.update(
        vcnId=vcn.id,
        cidrBlock=str(net),
        availabilityDomain=ad,
        dnsLabel=label,
        subnetDomainName=f"{label}.{vcn.wire['vcnDomainName']}"
        if label and vcn.wire.get("vcnDomainName")
        else None,
        prohibitPublicIpOnVnic=bool(body.get("prohibitPublicIpOnVnic", False)),
        prohibitInternetIngress=bool(
            body.get("prohibitInternetIngress", body.get("prohibitPublicIpOnVnic", False))
        ),
        routeTableId=rt,
        securityListIds=sls,
        dhcpOptionsId=body.get("dhcpOptionsId") or vcn.wire["defaultDhcpOptionsId"],
        virtualRouterIp=str(next(hosts)),
        virtualRouterMac="00:00:17:B6:4D:DD",
    )


KINDS = [
    Kind("vcn", "vcns", "Vcn", "vcnId", (), _build_vcn),
    Kind(
        "internetgateway",
        "internetGateways",
        "InternetGateway",
        "igId",
        ("isEnabled", "routeTableId"),
        _build_ig,
    ),
    Kind(
        "natgateway",
        "natGateways",
        "NatGateway",
        "natGatewayId",
        ("blockTraffic", "routeTableId"),
        _build_nat,
    ),
    Kind(
        "servicegateway",
        "serviceGateways",
        "ServiceGateway",
        "serviceGatewayId",
        ("blockTraffic", "routeTableId"),
        _build_sgw,
    ),
    Kind("routetable", "routeTables", "RouteTable", "rtId", ("routeRules",), _build_rt),
    Kind(
        "securitylist",
        "securityLists",
        "SecurityList",
        "securityListId",
        ("ingressSecurityRules", "egressSecurityRules"),
        _build_sl,
    ),
    Kind("dhcpoptions", "dhcps", "DhcpOptions", "dhcpId", ("options",), _build_dhcp),
    Kind(
        "subnet",
        "subnets",
        "Subnet",
        "subnetId",
        ("routeTableId", "securityListIds", "dhcpOptionsId"),
        _build_subnet,
    ),
]


def services_for(world: World, region: str) -> list[dict[str, Any]]:
    """The Oracle Services Network entries a service gateway can target (real names)."""
    key = region_key(region).upper()
    low = key.lower()
    return [
        {
            "id": f"ocid1.service.oc1.{low}.all",
            "name": f"All {key} Services In Oracle Services Network",
            "description": "All Services In Oracle Services Network",
            "cidrBlock": f"all-{low}-services-in-oracle-services-network",
        },
        {
            "id": f"ocid1.service.oc1.{low}.objectstorage",
            "name": f"OCI {key} Object Storage",
            "description": "OCI Object Storage",
            "cidrBlock": f"oci-{low}-objectstorage",
        },
    ]


# --- dependency rules ---------------------------------------------------------------------


def subnet_users(world: World, subnet_id: str) -> list[Resource]:
    """Live resources that hold a VNIC/endpoint in the subnet."""
    users = []
    for r in world.resources.values():
        if not r.live:
            continue
        w = r.wire
        if r.kind == "cluster":
            uses = (w.get("endpointConfig") or {}).get("subnetId") == subnet_id or subnet_id in (
                (w.get("options") or {}).get("serviceLbSubnetIds") or []
            )
        elif r.kind == "nodepool":
            placements = (w.get("nodeConfigDetails") or {}).get("placementConfigs") or []
            uses = any(p.get("subnetId") == subnet_id for p in placements)
        elif r.kind in ("node", "loadbalancer"):
            uses = w.get("subnetId") == subnet_id or subnet_id in (w.get("subnetIds") or [])
        else:
            uses = False
        if uses:
            users.append(r)
    return users


# OCI's names for the kinds, as its Conflict messages spell them.
_NAMES = {
    "vcn": "Vcn",
    "subnet": "Subnet",
    "internetgateway": "Internet Gateway",
    "natgateway": "NAT Gateway",
    "servicegateway": "Service Gateway",
    "routetable": "Route Table",
    "securitylist": "Security List",
    "dhcpoptions": "DHCP Options",
}
_GATEWAYS = ("internetgateway", "natgateway", "servicegateway")


def references(holder: Resource, target_kind: str, target_id: str) -> ApiError:
    """409 Conflict in the VCN service's words (as recorded from OCI: "The Subnet <id>
    references the VNIC <id>. You must remove the reference to proceed with this
    operation.")."""
    return conflict(
        f"The {_NAMES.get(holder.kind, holder.kind)} {holder.id} references the "
        f"{target_kind} {target_id}. You must remove the reference to proceed with this "
        "operation."
    )


def _check_vcn_deletable(world: World, vcn: Resource) -> None:
    children = [
        r
        for r in world.resources.values()
        if r.live and r.wire.get("vcnId") == vcn.id and not r.extra.get("default")
    ]
    # subnets first: they hold what the others serve
    others = sorted(
        (r for r in children if r.kind not in _GATEWAYS), key=lambda r: r.kind != "subnet"
    )
    if others:
        raise references(vcn, _NAMES.get(others[0].kind, others[0].kind), others[0].id)
    if children:
        # with only gateways left OCI answers this one generic 409 IncorrectState whatever
        # the gateway (oracle/oci-cli issue #1108); SDK and CLI retry it by default
        raise ApiError("IncorrectState", f"{vcn.id} is associated with Gateway that is in use", 409)


def _check_deletable(world: World, res: Resource) -> None:
    if res.extra.get("default") and res.kind != "vcn":
        raise conflict(f"The default {res.kind} of a VCN cannot be deleted; delete the VCN")
    if res.kind == "vcn":
        _check_vcn_deletable(world, res)
    elif res.kind == "subnet":
        users = subnet_users(world, res.id)
        if users:  # OCI names the VNIC; the simulator names the resource that holds it
            raise references(res, "VNIC of", f"{users[0].kind} {users[0].id}")
    elif res.kind in _GATEWAYS:
        for rt in world.find("routetable"):
            if rt.live and any(
                x.get("networkEntityId") == res.id for x in rt.wire.get("routeRules", [])
            ):
                raise references(rt, _NAMES[res.kind], res.id)
    elif res.kind in ("routetable", "securitylist", "dhcpoptions"):
        for sn in world.find("subnet"):
            refs = [
                sn.wire.get("routeTableId"),
                sn.wire.get("dhcpOptionsId"),
                *sn.wire.get("securityListIds", []),
            ]
            if sn.live and res.id in refs:
                raise references(sn, _NAMES[res.kind], res.id)


# --- generic handlers ---------------------------------------------------------------------


def _create(k: Kind) -> Callable[[Ctx], Reply]:
    def handler(ctx: Ctx) -> Reply:
        body = ctx.json()
        world = ctx.world
        comp = world.compartment_ok(body.get("compartmentId"))
        stamp = world.timestamp()
        wire: dict[str, Any] = {
            "id": world.ids.ocid(k.kind, ctx.region),
            "compartmentId": comp,
            "displayName": body.get("displayName") or f"{k.kind}{stamp[:19].replace(':', '')}",
            "lifecycleState": "PROVISIONING",
            "timeCreated": stamp,
            **tags(body),
        }
        k.build(ctx, body, wire)
        res = world.add(k.kind, ctx.region, wire)
        world.later(world.timings.network_create_s, "lifecycle", id=res.id, state="AVAILABLE")
        return ok(res.wire, res)

    return handler


def _get(k: Kind) -> Callable[[Ctx], Reply]:
    def handler(ctx: Ctx) -> Reply:
        res = ctx.world.get(ctx.params[k.id_param], k.kind)
        return ok(res.wire, res)

    return handler


def _list(k: Kind) -> Callable[[Ctx], Reply]:
    def handler(ctx: Ctx) -> Reply:
        comp = ctx.world.compartment_ok(ctx.q("compartmentId"))
        vcn = ctx.q("vcnId")
        items = [
            r.wire
            for r in ctx.world.resources.values()
            if r.kind == k.kind
            and r.region == ctx.region
            and r.wire["compartmentId"] == comp
            and (not vcn or r.wire.get("vcnId") == vcn)
        ]
        return paginate(ctx, sort_and_filter(ctx, items))

    return handler


def _update(k: Kind) -> Callable[[Ctx], Reply]:
    def handler(ctx: Ctx) -> Reply:
        res = ctx.world.get(ctx.params[k.id_param], k.kind)
        check_if_match(ctx, res)
        if not res.live:
            raise ApiError(
                "IncorrectState", f"{k.kind} {res.id} is {res.wire['lifecycleState']}", 409
            )
        body = ctx.json()
        for key in ("displayName", "freeformTags", "definedTags", *k.updatable):
            if key in body and body[key] is not None:
                value = body[key]
                if key == "routeRules":
                    value = _check_route_rules(ctx, list(value))
                res.wire[key] = value
        ctx.world.touch(res)
        return ok(res.wire, res)

    return handler


def _delete(k: Kind) -> Callable[[Ctx], Reply]:
    def handler(ctx: Ctx) -> Reply:
        world = ctx.world
        res = world.get(ctx.params[k.id_param], k.kind)
        check_if_match(ctx, res)
        if not res.live or res.wire["lifecycleState"] == "TERMINATING":
            return no_content()
        _check_deletable(world, res)
        world.set_state(res, "TERMINATING")
        world.later(
            world.timings.network_delete_s, "lifecycle", id=res.id, state="TERMINATED", deleted=True
        )
        if k.kind == "vcn":
            for child in world.resources.values():
                if child.wire.get("vcnId") == res.id and child.extra.get("default") and child.live:
                    world.set_state(child, "TERMINATING")
                    world.later(
                        world.timings.network_delete_s,
                        "lifecycle",
                        id=child.id,
                        state="TERMINATED",
                        deleted=True,
                    )
        return no_content()

    return handler


def list_services(ctx: Ctx) -> Reply:
    return paginate(ctx, services_for(ctx.world, ctx.region))


def register(router: Router) -> None:
    for k in KINDS:
        base = f"{V}/{k.path}"
        item = f"{base}/{{{k.id_param}}}"
        plural = k.op + ("es" if k.op.endswith("s") else "s")
        if k.op == "DhcpOptions":
            plural = "DhcpOptions"
        router.add("POST", base, f"Create{k.op}", _create(k))
        router.add("GET", base, f"List{plural}", _list(k))
        router.add("GET", item, f"Get{k.op}", _get(k))
        router.add("PUT", item, f"Update{k.op}", _update(k))
        router.add("DELETE", item, f"Delete{k.op}", _delete(k))
    router.add("GET", f"{V}/services", "ListServices", list_services)
