"""Container Engine for Kubernetes: clusters, node pools, options, kubeconfig, add-ons.

Create/update/delete return 202 with ``opc-work-request-id`` and no body (oci.md); the
resource then moves through its lifecycle on the simulated clock.
"""

from __future__ import annotations

import hashlib
from typing import Any

import yaml

from nimble_oke.sim.oci.api_error import ApiError, invalid, not_found
from nimble_oke.sim.oci.catalog import ADDONS, KUBERNETES_VERSIONS, SHAPES, node_images
from nimble_oke.sim.oci.http import (
    Ctx,
    Reply,
    Router,
    accepted,
    apply_updates,
    check_if_match,
    ok,
    paginate,
    tags,
)
from nimble_oke.sim.oci.ids import region_key
from nimble_oke.sim.oci.services import images, nodes, workrequests
from nimble_oke.sim.oci.world import Resource, World

V = "/20180222"
MIN_BOOT_VOLUME_GB = 50  # oke.md: minimum boot volume 50 GB
PREEMPTION_NOTICE_S = 120  # oci.md: preemption notice is about 2 minutes


def image_id(region: str, name: str) -> str:
    digest = hashlib.sha256(name.encode()).hexdigest()[:52]
    return f"ocid1.image.oc1.{region_key(region)}.aaaaaaaa{digest}"


def _images(region: str) -> dict[str, tuple[str, str]]:
    """image OCID -> (source name, kubernetes version)."""
    return {image_id(region, name): (name, ver) for name, ver in node_images()}


def _node_image(world: World, region: str, image_ocid: str | None, version: str) -> str:
    """The name of the node image ``image_ocid`` for a pool on Kubernetes ``version``: an OKE
    platform image, or an AVAILABLE custom image captured from an OKE node (whose version is
    its OKE base image's)."""
    platform = _images(region).get(image_ocid or "")
    if platform is not None:
        name, image_version = platform
    else:
        custom = images.custom_image(world, region, image_ocid or "")
        if custom is None:
            raise invalid(f"Invalid image {image_ocid} in nodeSourceDetails")
        if not images.usable(custom):
            state = "DELETED" if custom.extra.get("deleting") else custom.wire["lifecycleState"]
            raise invalid(
                f"Image {image_ocid} in nodeSourceDetails is {state}: a node pool can only "
                "use an AVAILABLE image"
            )
        name, image_version = custom.wire["displayName"], images.kubernetes_version(custom)
    if image_version != version:
        raise invalid(f"Image {name} is for Kubernetes {image_version}, not {version}")
    return str(name)


def _node_source(source: dict[str, Any], image_name: str) -> dict[str, Any]:
    return {"sourceType": "IMAGE", "sourceName": image_name, "imageId": source.get("imageId")}


def _live_subnet(ctx: Ctx, subnet_id: str | None, vcn_id: str | None = None) -> Resource:
    if not subnet_id:
        raise ApiError("MissingParameter", "subnetId is required")
    res = ctx.world.resources.get(subnet_id)
    if res is None or res.kind != "subnet" or not res.live:
        raise invalid(f"Subnet {subnet_id} does not exist")
    if vcn_id and res.wire["vcnId"] != vcn_id:
        raise invalid(f"Subnet {subnet_id} is not in VCN {vcn_id}")
    return res


def _check_version(version: str | None) -> str:
    if version not in KUBERNETES_VERSIONS:
        raise invalid(
            f"Invalid kubernetesVersion {version}; supported: {', '.join(KUBERNETES_VERSIONS)}"
        )
    return version


# --- clusters -------------------------------------------------------------------------------


def create_cluster(ctx: Ctx) -> Reply:
    world, body = ctx.world, ctx.json()
    comp = world.compartment_ok(body.get("compartmentId"))
    if not body.get("name"):
        raise ApiError("MissingParameter", "name is required")
    vcn = world.resources.get(body.get("vcnId") or "")
    if vcn is None or vcn.kind != "vcn" or not vcn.live:
        raise invalid(f"VCN {body.get('vcnId')} does not exist")
    version = _check_version(body.get("kubernetesVersion"))
    endpoint = dict(body.get("endpointConfig") or {})
    if endpoint:
        subnet = _live_subnet(ctx, endpoint.get("subnetId"), vcn.id)
        if endpoint.get("isPublicIpEnabled") and subnet.wire.get("prohibitPublicIpOnVnic"):
            raise invalid("A public API endpoint needs a public subnet")
    options = dict(body.get("options") or {})
    for sn in options.get("serviceLbSubnetIds") or []:
        _live_subnet(ctx, sn, vcn.id)
    options.setdefault(
        "kubernetesNetworkConfig", {"podsCidr": "10.244.0.0/16", "servicesCidr": "10.96.0.0/16"}
    )
    ctype = body.get("type") or "BASIC_CLUSTER"
    if ctype not in ("BASIC_CLUSTER", "ENHANCED_CLUSTER"):
        raise invalid(f"Invalid cluster type {ctype}")
    cid = world.ids.ocid("cluster", ctx.region)
    wr = workrequests.create(
        world, ctx.region, "CLUSTER_CREATE", comp, "cluster", cid, f"/clusters/{cid}"
    )
    wire = {
        "id": cid,
        "name": body["name"],
        "compartmentId": comp,
        "endpointConfig": endpoint or None,
        "vcnId": vcn.id,
        "kubernetesVersion": version,
        "kmsKeyId": body.get("kmsKeyId"),
        **tags(body),
        "systemTags": {},
        "options": options,
        "metadata": {
            "timeCreated": world.timestamp(),
            "createdByUserId": world.api_key.user,
            "createdByWorkRequestId": wr.id,
        },
        "lifecycleState": "CREATING",
        "lifecycleDetails": "Creating control plane",
        "endpoints": None,
        "availableKubernetesUpgrades": [v for v in KUBERNETES_VERSIONS if v > version],
        "imagePolicyConfig": body.get("imagePolicyConfig"),
        "clusterPodNetworkOptions": body.get("clusterPodNetworkOptions")
        or [{"cniType": "FLANNEL_OVERLAY"}],
        "type": ctype,
    }
    key = "oke.enhanced" if ctype == "ENHANCED_CLUSTER" else "oke.basic"
    res = world.add(
        "cluster",
        ctx.region,
        wire,
        billing=[{"price_key": key, "quantity": 1, "unit": "cluster-hour"}],
        extra={"addons": {}},
    )
    world.start_billing(res)
    # the control plane (its own Kubernetes API server) comes up while the cluster creates
    world.emit("cluster_created", cid, {"name": body["name"], "region": ctx.region})
    duration = world.timings.draw(world.rng, "cluster_create")
    rule = world.injector.behaviour("CreateCluster", "work_request_fail")
    if rule is not None:
        world.later(
            duration * rule.at,
            "cluster_failed",
            id=cid,
            wr=wr.id,
            message=rule.message or "Internal error occurred",
        )
    else:
        world.later(duration, "cluster_active", id=cid, wr=wr.id)
    return accepted(wr.id)


def _cluster_endpoints(world: World, res: Resource) -> dict[str, Any]:
    private_ip = "10.0.0.2"
    subnet = world.resources.get((res.wire.get("endpointConfig") or {}).get("subnetId") or "")
    if subnet is not None:
        private_ip = str(subnet.wire.get("virtualRouterIp", "10.0.0.1")).rsplit(".", 1)[0] + ".2"
    public = None
    if (res.wire.get("endpointConfig") or {}).get("isPublicIpEnabled"):
        public = f"129.146.{world.rng.randint(1, 254)}.{world.rng.randint(1, 254)}:6443"
    url, _ca = world.kube_api(res.id)
    if url:
        public = url.split("://", 1)[-1].rstrip("/")
    return {
        "kubernetes": public or f"{private_ip}:6443",
        "publicEndpoint": public,
        "privateEndpoint": f"{private_ip}:6443",
    }


def get_cluster(ctx: Ctx) -> Reply:
    res = ctx.world.get(ctx.params["clusterId"], "cluster")
    return ok(res.wire, res)


def list_clusters(ctx: Ctx) -> Reply:
    comp = ctx.world.compartment_ok(ctx.q("compartmentId"))
    states = set(ctx.query.getall("lifecycleState", []))
    name = ctx.q("name")
    items = [
        r.wire
        for r in ctx.world.find("cluster", compartmentId=comp)
        if r.region == ctx.region
        and (not states or r.wire["lifecycleState"] in states)
        and (not name or r.wire["name"] == name)
    ]
    return paginate(ctx, sorted(items, key=lambda w: w["metadata"]["timeCreated"], reverse=True))


def update_cluster(ctx: Ctx) -> Reply:
    world, body = ctx.world, ctx.json()
    res = world.get(ctx.params["clusterId"], "cluster")
    check_if_match(ctx, res)
    if res.wire["lifecycleState"] != "ACTIVE":
        raise ApiError("IncorrectState", f"Cluster {res.id} is {res.wire['lifecycleState']}", 409)
    if body.get("kubernetesVersion"):
        res.wire["kubernetesVersion"] = _check_version(body["kubernetesVersion"])
    if body.get("type") == "ENHANCED_CLUSTER":
        res.wire["type"] = "ENHANCED_CLUSTER"
        res.billing = [{"price_key": "oke.enhanced", "quantity": 1, "unit": "cluster-hour"}]
    apply_updates(res.wire, body, ("name", "freeformTags", "definedTags", "imagePolicyConfig"))
    if body.get("options"):
        res.wire["options"] = {**res.wire["options"], **body["options"]}
    res.wire["lifecycleState"] = "UPDATING"
    world.touch(res)
    wr = workrequests.create(
        world,
        ctx.region,
        "CLUSTER_UPDATE",
        res.wire["compartmentId"],
        "cluster",
        res.id,
        f"/clusters/{res.id}",
    )
    res.wire["metadata"]["updatedByWorkRequestId"] = wr.id
    world.later(60, "cluster_active", id=res.id, wr=wr.id, action="UPDATED")
    return accepted(wr.id)


def delete_cluster(ctx: Ctx) -> Reply:
    world = ctx.world
    res = world.get(ctx.params["clusterId"], "cluster")
    check_if_match(ctx, res)
    if res.wire["lifecycleState"] in ("DELETING", "DELETED"):
        raise ApiError(
            "IncorrectState", f"Cluster {res.id} is already {res.wire['lifecycleState']}", 409
        )
    wr = workrequests.create(
        world,
        ctx.region,
        "CLUSTER_DELETE",
        res.wire["compartmentId"],
        "cluster",
        res.id,
        f"/clusters/{res.id}",
    )
    res.wire["lifecycleState"] = "DELETING"
    res.wire["metadata"]["deletedByWorkRequestId"] = wr.id
    world.touch(res)
    # OKE deletes the cluster's node pools (and their instances) with the cluster.
    for pool in world.find("nodepool", clusterId=res.id):
        if pool.live:
            _start_pool_delete(world, pool, None)
    world.later(
        world.timings.draw(world.rng, "cluster_delete"), "cluster_deleted", id=res.id, wr=wr.id
    )
    return accepted(wr.id)


# --- node pools -----------------------------------------------------------------------------


def _pool_view(world: World, pool: Resource, with_nodes: bool) -> dict[str, Any]:
    view = dict(pool.wire)
    if with_nodes:
        view["nodes"] = [
            {k: v for k, v in n.wire.items() if k != "nodeShape"}
            for n in world.find("node", nodePoolId=pool.id)
            if n.wire["lifecycleState"] != "DELETED"
        ]
    else:
        view.pop("nodes", None)
    return view


def create_node_pool(ctx: Ctx) -> Reply:
    world, body = ctx.world, ctx.json()
    comp = world.compartment_ok(body.get("compartmentId"))
    cluster = world.get(body.get("clusterId") or "", "cluster")
    if cluster.wire["lifecycleState"] != "ACTIVE":
        raise ApiError(
            "IncorrectState",
            f"Cluster {cluster.id} is {cluster.wire['lifecycleState']}, not ACTIVE",
            409,
        )
    if not body.get("name"):
        raise ApiError("MissingParameter", "name is required")
    shape_name = body.get("nodeShape")
    if shape_name not in SHAPES:
        raise invalid(f"Invalid nodeShape {shape_name}")
    shape = SHAPES[shape_name]
    version = _check_version(body.get("kubernetesVersion") or cluster.wire["kubernetesVersion"])
    if version > cluster.wire["kubernetesVersion"]:
        raise invalid("The node pool's Kubernetes version cannot be newer than the cluster's")
    source = dict(body.get("nodeSourceDetails") or {})
    image_name = _node_image(world, ctx.region, source.get("imageId"), version)
    boot = source.get("bootVolumeSizeInGBs")
    if boot is not None and float(boot) < MIN_BOOT_VOLUME_GB:
        raise invalid(f"bootVolumeSizeInGBs must be at least {MIN_BOOT_VOLUME_GB}")
    cfg = dict(body.get("nodeConfigDetails") or {})
    placements = list(cfg.get("placementConfigs") or [])
    if not placements:
        raise ApiError("MissingParameter", "nodeConfigDetails.placementConfigs is required")
    for p in placements:
        world.check_ad(p.get("availabilityDomain"), ctx.region)
        _live_subnet(ctx, p.get("subnetId"), cluster.wire["vcnId"])
        if p.get("preemptibleNodeConfig") is not None and shape.bare_metal:
            raise invalid(f"Preemptible instances are not supported for shape {shape.name}")
    size = int(cfg.get("size") or 0)
    if size < 0:
        raise invalid("size must be >= 0")
    pid = world.ids.ocid("nodepool", ctx.region)
    wr = workrequests.create(
        world, ctx.region, "NODEPOOL_CREATE", comp, "nodepool", pid, f"/nodePools/{pid}"
    )
    wr.extra["related"] = [cluster.id]
    cfg["size"] = size
    wire = {
        "id": pid,
        "lifecycleState": "CREATING",
        "lifecycleDetails": "",
        "compartmentId": comp,
        "clusterId": cluster.id,
        "name": body["name"],
        "kubernetesVersion": version,
        "nodeMetadata": body.get("nodeMetadata"),
        "nodeImageId": source.get("imageId"),
        "nodeImageName": image_name,
        "nodeShapeConfig": body.get("nodeShapeConfig"),
        "nodeSource": _node_source(source, image_name),
        "nodeSourceDetails": source,
        "nodeShape": shape.name,
        "initialNodeLabels": body.get("initialNodeLabels") or [],
        "sshPublicKey": body.get("sshPublicKey"),
        "quantityPerSubnet": 0,
        "subnetIds": [],
        "nodeConfigDetails": cfg,
        **tags(body),
        "systemTags": {},
        "nodeEvictionNodePoolSettings": body.get("nodeEvictionNodePoolSettings"),
        "nodePoolCyclingDetails": body.get("nodePoolCyclingDetails"),
    }
    pool = world.add("nodepool", ctx.region, wire, extra={"launched": 0})
    wr.extra.update(pool=pid, mode="create", pending=[])
    _launch(world, pool, size, wr, "CreateNodePool")
    return accepted(wr.id)


def _launch(world: World, pool: Resource, count: int, wr: Resource, op: str) -> None:
    placements = pool.wire["nodeConfigDetails"]["placementConfigs"]
    rule = world.injector.behaviour(op, "work_request_fail")
    for _ in range(count):
        index = pool.extra["launched"]
        pool.extra["launched"] += 1
        nodes.launch(
            world, pool, placements[index % len(placements)], index // len(placements), wr, op
        )
    if rule is not None:
        delay = world.timings.vm_gpu_node_min_s * rule.at
        world.later(
            delay, "pool_wr_fail", wr=wr.id, message=rule.message or "Internal error occurred"
        )
    if count == 0:
        world.later(world.timings.work_request_start_s + 1, "pool_wr_done", wr=wr.id)


def get_node_pool(ctx: Ctx) -> Reply:
    pool = ctx.world.get(ctx.params["nodePoolId"], "nodepool")
    return ok(_pool_view(ctx.world, pool, True), pool)


def list_node_pools(ctx: Ctx) -> Reply:
    comp = ctx.world.compartment_ok(ctx.q("compartmentId"))
    cluster, name = ctx.q("clusterId"), ctx.q("name")
    states = set(ctx.query.getall("lifecycleState", []))
    items = [
        _pool_view(ctx.world, r, False)
        for r in ctx.world.find("nodepool", compartmentId=comp)
        if r.region == ctx.region
        and (not cluster or r.wire["clusterId"] == cluster)
        and (not name or r.wire["name"] == name)
        and (not states or r.wire["lifecycleState"] in states)
    ]
    return paginate(ctx, items)


def _live_nodes(world: World, pool: Resource) -> list[Resource]:
    return [
        n
        for n in world.find("node", nodePoolId=pool.id)
        if n.wire["lifecycleState"] in ("CREATING", "ACTIVE", "UPDATING")
    ]


def update_node_pool(ctx: Ctx) -> Reply:
    world, body = ctx.world, ctx.json()
    pool = world.get(ctx.params["nodePoolId"], "nodepool")
    check_if_match(ctx, pool)
    if pool.wire["lifecycleState"] in ("DELETING", "DELETED"):
        raise ApiError(
            "IncorrectState", f"Node pool {pool.id} is {pool.wire['lifecycleState']}", 409
        )
    apply_updates(
        pool.wire,
        body,
        (
            "name",
            "initialNodeLabels",
            "freeformTags",
            "definedTags",
            "nodeMetadata",
            "nodeEvictionNodePoolSettings",
            "nodeShapeConfig",
            "sshPublicKey",
        ),
    )
    if body.get("kubernetesVersion"):
        pool.wire["kubernetesVersion"] = _check_version(body["kubernetesVersion"])
    if body.get("nodeSourceDetails"):
        # only nodes launched from now on boot from the new image (OKE docs: update node pool)
        source = {**(pool.wire.get("nodeSourceDetails") or {}), **body["nodeSourceDetails"]}
        image_name = _node_image(
            world, ctx.region, source.get("imageId"), pool.wire["kubernetesVersion"]
        )
        boot = source.get("bootVolumeSizeInGBs")
        if boot is not None and float(boot) < MIN_BOOT_VOLUME_GB:
            raise invalid(f"bootVolumeSizeInGBs must be at least {MIN_BOOT_VOLUME_GB}")
        pool.wire.update(
            nodeSourceDetails=source,
            nodeSource=_node_source(source, image_name),
            nodeImageId=source.get("imageId"),
            nodeImageName=image_name,
        )
    cfg = body.get("nodeConfigDetails") or {}
    if cfg.get("placementConfigs"):
        for p in cfg["placementConfigs"]:
            world.check_ad(p.get("availabilityDomain"), ctx.region)
            _live_subnet(ctx, p.get("subnetId"))
        pool.wire["nodeConfigDetails"]["placementConfigs"] = cfg["placementConfigs"]
        pool.extra["launched"] = 0
    wr = workrequests.create(
        world,
        ctx.region,
        "NODEPOOL_UPDATE",
        pool.wire["compartmentId"],
        "nodepool",
        pool.id,
        f"/nodePools/{pool.id}",
    )
    wr.extra.update(pool=pool.id, mode="update", pending=[], related=[pool.wire["clusterId"]])
    pool.wire["lifecycleState"] = "UPDATING"
    world.touch(pool)
    current = _live_nodes(world, pool)
    size = cfg.get("size")
    if size is not None:
        size = int(size)
        if size < 0:
            raise invalid("size must be >= 0")
        pool.wire["nodeConfigDetails"]["size"] = size
        if size > len(current):
            _launch(world, pool, size - len(current), wr, "UpdateNodePool")
            return accepted(wr.id)
        for node in sorted(current, key=lambda n: n.created, reverse=True)[: len(current) - size]:
            nodes.delete(world, node, wr)
    if not wr.extra["pending"]:
        world.later(world.timings.work_request_start_s + 1, "pool_wr_done", wr=wr.id)
    return accepted(wr.id)


def _start_pool_delete(world: World, pool: Resource, wr: Resource | None) -> None:
    pool.wire["lifecycleState"] = "DELETING"
    world.touch(pool)
    for node in world.find("node", nodePoolId=pool.id):
        nodes.delete(world, node, wr)
    if wr is None or not wr.extra["pending"]:
        world.later(
            world.timings.node_delete_min_s, "pool_deleted", id=pool.id, wr=wr.id if wr else None
        )


def delete_node_pool(ctx: Ctx) -> Reply:
    world = ctx.world
    pool = world.get(ctx.params["nodePoolId"], "nodepool")
    check_if_match(ctx, pool)
    if pool.wire["lifecycleState"] in ("DELETING", "DELETED"):
        raise ApiError(
            "IncorrectState", f"Node pool {pool.id} is already {pool.wire['lifecycleState']}", 409
        )
    wr = workrequests.create(
        world,
        ctx.region,
        "NODEPOOL_DELETE",
        pool.wire["compartmentId"],
        "nodepool",
        pool.id,
        f"/nodePools/{pool.id}",
    )
    wr.extra.update(pool=pool.id, mode="delete", pending=[], related=[pool.wire["clusterId"]])
    _start_pool_delete(world, pool, wr)
    return accepted(wr.id)


def delete_node(ctx: Ctx) -> Reply:
    world = ctx.world
    pool = world.get(ctx.params["nodePoolId"], "nodepool")
    node = world.get(ctx.params["nodeId"], "node")
    if node.wire["nodePoolId"] != pool.id:
        raise not_found("node", node.id)
    wr = workrequests.create(
        world,
        ctx.region,
        "NODEPOOL_UPDATE",
        pool.wire["compartmentId"],
        "nodepool",
        pool.id,
        f"/nodePools/{pool.id}",
    )
    wr.extra.update(pool=pool.id, mode="update", pending=[])
    if (ctx.q("isDecrementSize") or "false").lower() == "true":
        pool.wire["nodeConfigDetails"]["size"] = max(0, pool.wire["nodeConfigDetails"]["size"] - 1)
        nodes.delete(world, node, wr)
    else:  # OKE replaces the node to keep the pool at its size
        nodes.delete(world, node, wr)
        _launch(world, pool, 1, wr, "DeleteNode")
    return accepted(wr.id)


def preempt(world: World, node: Resource) -> None:
    """Compute reclaims a preemptible node; OKE then launches a replacement to keep the
    pool at its size (which is why a leaked preemptible pool keeps recreating GPUs)."""
    if not node.extra.get("preemptible") or node.wire["lifecycleState"] != "ACTIVE":
        raise invalid(f"Node {node.id} is not an ACTIVE preemptible node")
    node.wire["lifecycleDetails"] = "Instance is being preempted"
    world.touch(node)
    # preemption notice is about 2 minutes (oci.md)
    world.later(PREEMPTION_NOTICE_S, "node_preempted", id=node.id)


# --- options, kubeconfig, add-ons -----------------------------------------------------------


def node_pool_options(ctx: Ctx) -> Reply:
    wanted = ctx.q("nodePoolK8sVersion")
    sources = [
        {"sourceType": "IMAGE", "sourceName": name, "imageId": image_id(ctx.region, name)}
        for name, ver in node_images()
        if not wanted or ver == wanted
    ]
    return ok(
        {
            "kubernetesVersions": KUBERNETES_VERSIONS,
            "shapes": sorted(SHAPES),
            "images": [s["sourceName"] for s in sources],
            "sources": sources,
        }
    )


def cluster_options(ctx: Ctx) -> Reply:
    return ok(
        {
            "kubernetesVersions": KUBERNETES_VERSIONS,
            "clusterPodNetworkOptions": [
                {"cniType": "FLANNEL_OVERLAY"},
                {"cniType": "OCI_VCN_IP_NATIVE"},
            ],
        }
    )


def create_kubeconfig(ctx: Ctx) -> Reply:
    world = ctx.world
    res = world.get(ctx.params["clusterId"], "cluster")
    if res.wire["lifecycleState"] not in ("ACTIVE", "UPDATING"):
        raise ApiError("IncorrectState", f"Cluster {res.id} is {res.wire['lifecycleState']}", 409)
    short = res.id.rsplit(".", 1)[-1][-11:]
    endpoints = res.wire.get("endpoints") or {}
    url, ca_data = world.kube_api(res.id)
    server = url or f"https://{endpoints.get('publicEndpoint') or endpoints.get('privateEndpoint')}"
    cluster_entry: dict[str, Any] = {"server": server}
    if ca_data:
        cluster_entry["certificate-authority-data"] = ca_data
    doc = {
        "apiVersion": "v1",
        "kind": "",
        "clusters": [{"name": f"cluster-{short}", "cluster": cluster_entry}],
        "users": [
            {
                "name": f"user-{short}",
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": "oci",
                        "args": [
                            "ce",
                            "cluster",
                            "generate-token",
                            "--cluster-id",
                            res.id,
                            "--region",
                            ctx.region,
                        ],
                        "env": [],
                    }
                },
            }
        ],
        "contexts": [
            {
                "name": f"context-{short}",
                "context": {"cluster": f"cluster-{short}", "user": f"user-{short}"},
            }
        ],
        "current-context": f"context-{short}",
    }
    text = "---\n" + yaml.safe_dump(doc, sort_keys=False)
    return Reply(200, text.encode(), {}, "application/x-yaml")


def list_addons(ctx: Ctx) -> Reply:
    res = ctx.world.get(ctx.params["clusterId"], "cluster")
    return paginate(ctx, [dict(a) for a in res.extra["addons"].values()])


def get_addon(ctx: Ctx) -> Reply:
    res = ctx.world.get(ctx.params["clusterId"], "cluster")
    addon = res.extra["addons"].get(ctx.params["addonName"])
    if addon is None:
        raise not_found("addon", ctx.params["addonName"])
    return ok(addon)


def install_addon(ctx: Ctx) -> Reply:
    world, body = ctx.world, ctx.json()
    res = world.get(ctx.params["clusterId"], "cluster")
    name = body.get("addonName")
    if name not in ADDONS:
        raise not_found("addon", str(name))
    versions, enhanced_only = ADDONS[name]
    if enhanced_only and res.wire["type"] != "ENHANCED_CLUSTER":
        raise invalid(f"Add-on {name} can only be installed on an enhanced cluster")
    if res.wire["lifecycleState"] != "ACTIVE":
        raise ApiError("IncorrectState", f"Cluster {res.id} is {res.wire['lifecycleState']}", 409)
    existing = res.extra["addons"].get(name)
    if existing and existing["lifecycleState"] != "DELETED" and not body.get("isOverrideExisting"):
        raise ApiError("Conflict", f"Add-on {name} is already installed", 409)
    version = body.get("version") or versions[-1]
    if version not in versions:
        raise invalid(f"Add-on {name} has no version {version}")
    res.extra["addons"][name] = {
        "name": name,
        "version": version,
        "currentInstalledVersion": None,
        "timeCreated": world.timestamp(),
        "lifecycleState": "CREATING",
        "configurations": body.get("configurations") or [],
        "addonError": None,
    }
    wr = workrequests.create(
        world,
        ctx.region,
        "ENABLE_ADDON",
        res.wire["compartmentId"],
        "addon",
        res.id,
        f"/clusters/{res.id}/addons/{name}",
    )
    world.later(world.timings.addon_install_s, "addon_active", id=res.id, name=name, wr=wr.id)
    return accepted(wr.id)


def disable_addon(ctx: Ctx) -> Reply:
    world = ctx.world
    res = world.get(ctx.params["clusterId"], "cluster")
    addon = res.extra["addons"].get(ctx.params["addonName"])
    if addon is None:
        raise not_found("addon", ctx.params["addonName"])
    addon["lifecycleState"] = "DELETING"
    wr = workrequests.create(
        world,
        ctx.region,
        "DISABLE_ADDON",
        res.wire["compartmentId"],
        "addon",
        res.id,
        f"/clusters/{res.id}/addons/{addon['name']}",
    )
    world.later(30, "addon_removed", id=res.id, name=addon["name"], wr=wr.id)
    return accepted(wr.id)


def addon_options(ctx: Ctx) -> Reply:
    items = [
        {
            "name": name,
            "addonGroup": "CUSTOMER_MANAGED",
            "description": name,
            "isEssential": False,
            "lifecycleState": "ACTIVE",
            "timeCreated": ctx.world.timestamp(0),
            "versions": [
                {
                    "versionNumber": v,
                    "status": "ACTIVE",
                    "kubernetesVersionFilters": {"exactKubernetesVersions": KUBERNETES_VERSIONS},
                }
                for v in versions
            ],
        }
        for name, (versions, _) in ADDONS.items()
    ]
    return paginate(ctx, items)


# --- lifecycle actions ----------------------------------------------------------------------


def register_actions(world: World) -> None:
    """Container Engine's timed actions (``world.later`` names them): clusters, node
    pools, add-ons, preempted nodes."""
    _register_cluster_actions(world)
    _register_pool_actions(world)
    _register_addon_actions(world)
    _register_node_actions(world)


def _wr(world: World, a: dict[str, Any]) -> Resource:
    """The work request an action reports to (its ``wr`` argument)."""
    return world.resources[a["wr"]]


def _register_cluster_actions(world: World) -> None:
    def cluster_active(a: dict[str, Any]) -> None:
        res = world.resources[a["id"]]
        if res.wire["lifecycleState"] not in ("CREATING", "UPDATING"):
            return
        if world.waits_for_cluster_api(res.id):  # its API server is still starting
            world.later(1.0, "cluster_active", **a)
            return
        res.wire["lifecycleState"] = "ACTIVE"
        res.wire["lifecycleDetails"] = ""
        res.wire["endpoints"] = _cluster_endpoints(world, res)
        res.wire["metadata"]["timeUpdated"] = world.timestamp()
        world.touch(res)
        workrequests.finish(world, _wr(world, a), a.get("action", "CREATED"))

    def cluster_failed(a: dict[str, Any]) -> None:
        res = world.resources[a["id"]]
        res.wire["lifecycleDetails"] = a["message"]
        world.mark_deleted(res, "FAILED")
        workrequests.finish(world, _wr(world, a), "CREATED", ("InternalError", a["message"]))
        world.emit("cluster_deleted", res.id, None)  # its control plane never came up

    def cluster_deleted(a: dict[str, Any]) -> None:
        res = world.resources[a["id"]]
        pools_left = [p for p in world.find("nodepool", clusterId=res.id) if p.live]
        if pools_left:  # wait for the node pools to go first
            world.later(30, "cluster_deleted", **a)
            return
        world.mark_deleted(res, "DELETED")
        res.wire["metadata"]["timeDeleted"] = world.timestamp()
        workrequests.finish(world, _wr(world, a), "DELETED")
        world.emit("cluster_deleted", res.id, None)

    world.actions.update(
        cluster_active=cluster_active,
        cluster_failed=cluster_failed,
        cluster_deleted=cluster_deleted,
    )


def _register_pool_actions(world: World) -> None:
    def pool_wr_done(a: dict[str, Any]) -> None:
        req = _wr(world, a)
        pool = world.resources[req.extra["pool"]]
        mode = req.extra.get("mode")
        if mode == "delete":
            world.actions["pool_deleted"]({"id": pool.id, "wr": req.id})
            return
        failures = req.extra.get("failures") or []
        if failures:
            pool.wire["lifecycleState"] = "NEEDS_ATTENTION"
            pool.wire["lifecycleDetails"] = failures[0][1]
            workrequests.finish(world, req, "CREATED", (failures[0][0], failures[0][1]))
        else:
            pool.wire["lifecycleState"] = "ACTIVE"
            pool.wire["lifecycleDetails"] = ""
            workrequests.finish(world, req, "CREATED" if mode == "create" else "UPDATED")
        world.touch(pool)

    def pool_wr_fail(a: dict[str, Any]) -> None:
        req = _wr(world, a)
        if req.wire["status"] not in ("ACCEPTED", "IN_PROGRESS"):
            return
        pool = world.resources[req.extra["pool"]]
        for node_id in list(req.extra.get("pending", [])):
            node = world.resources[node_id]
            if node.wire["lifecycleState"] == "CREATING":
                node.wire["nodeError"] = {
                    "code": "InternalError",
                    "message": a["message"],
                    "status": "500",
                }
                world.mark_deleted(node, "FAILING")
        req.extra["pending"] = []
        pool.wire["lifecycleState"] = "FAILED"
        pool.wire["lifecycleDetails"] = a["message"]
        world.touch(pool)
        workrequests.finish(world, req, "CREATED", ("InternalError", a["message"]))

    def pool_deleted(a: dict[str, Any]) -> None:
        pool = world.resources[a["id"]]
        if any(
            n.wire["lifecycleState"] == "DELETING" for n in world.find("node", nodePoolId=pool.id)
        ):
            world.later(15, "pool_deleted", **a)
            return
        world.mark_deleted(pool, "DELETED")
        if a.get("wr"):
            workrequests.finish(world, world.resources[a["wr"]], "DELETED")

    world.actions.update(
        pool_wr_done=pool_wr_done,
        pool_wr_fail=pool_wr_fail,
        pool_deleted=pool_deleted,
    )


def _register_addon_actions(world: World) -> None:
    def addon_active(a: dict[str, Any]) -> None:
        res = world.resources[a["id"]]
        addon = res.extra["addons"].get(a["name"])
        if addon and addon["lifecycleState"] == "CREATING":
            addon["lifecycleState"] = "ACTIVE"
            addon["currentInstalledVersion"] = addon["version"]
            world.touch(res)
        workrequests.finish(world, _wr(world, a), "CREATED")

    def addon_removed(a: dict[str, Any]) -> None:
        res = world.resources[a["id"]]
        res.extra["addons"].pop(a["name"], None)
        world.touch(res)
        workrequests.finish(world, _wr(world, a), "DELETED")

    world.actions.update(addon_active=addon_active, addon_removed=addon_removed)


def _register_node_actions(world: World) -> None:
    def node_preempted(a: dict[str, Any]) -> None:
        node = world.resources[a["id"]]
        if node.wire["lifecycleState"] != "ACTIVE":
            return
        world.mark_deleted(node, "DELETED")
        node.wire["lifecycleDetails"] = "Instance was preempted"
        nodes.release_ip(world, node)
        world.emit("node_removed", node.extra["cluster"], node.wire["name"])
        pool = world.resources[node.wire["nodePoolId"]]
        if pool.wire["lifecycleState"] in ("ACTIVE", "UPDATING", "NEEDS_ATTENTION"):
            req = workrequests.create(
                world,
                pool.region,
                "NODEPOOL_RECONCILE",
                pool.wire["compartmentId"],
                "nodepool",
                pool.id,
                f"/nodePools/{pool.id}",
            )
            req.extra.update(
                pool=pool.id, mode="update", pending=[], related=[pool.wire["clusterId"]]
            )
            _launch(world, pool, 1, req, "ReconcileNodePool")

    world.actions.update(node_preempted=node_preempted)


def register(router: Router) -> None:
    c = f"{V}/clusters"
    router.add("POST", c, "CreateCluster", create_cluster)
    router.add("GET", c, "ListClusters", list_clusters)
    router.add("GET", f"{c}/{{clusterId}}", "GetCluster", get_cluster)
    router.add("PUT", f"{c}/{{clusterId}}", "UpdateCluster", update_cluster)
    router.add("DELETE", f"{c}/{{clusterId}}", "DeleteCluster", delete_cluster)
    router.add(
        "POST", f"{c}/{{clusterId}}/kubeconfig/content", "CreateKubeconfig", create_kubeconfig
    )
    router.add("GET", f"{c}/{{clusterId}}/addons", "ListAddons", list_addons)
    router.add("POST", f"{c}/{{clusterId}}/addons", "InstallAddon", install_addon)
    router.add("GET", f"{c}/{{clusterId}}/addons/{{addonName}}", "GetAddon", get_addon)
    router.add("DELETE", f"{c}/{{clusterId}}/addons/{{addonName}}", "DisableAddon", disable_addon)
    router.add("GET", f"{V}/addonOptions", "ListAddonOptions", addon_options)
    n = f"{V}/nodePools"
    router.add("POST", n, "CreateNodePool", create_node_pool)
    router.add("GET", n, "ListNodePools", list_node_pools)
    router.add("GET", f"{n}/{{nodePoolId}}", "GetNodePool", get_node_pool)
    router.add("PUT", f"{n}/{{nodePoolId}}", "UpdateNodePool", update_node_pool)
    router.add("DELETE", f"{n}/{{nodePoolId}}", "DeleteNodePool", delete_node_pool)
    router.add("DELETE", f"{n}/{{nodePoolId}}/node/{{nodeId}}", "DeleteNode", delete_node)
    router.add(
        "GET", f"{V}/nodePoolOptions/{{nodePoolOptionId}}", "GetNodePoolOptions", node_pool_options
    )
    router.add(
        "GET", f"{V}/clusterOptions/{{clusterOptionId}}", "GetClusterOptions", cluster_options
    )
