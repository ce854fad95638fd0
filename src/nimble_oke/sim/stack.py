"""The whole simulated stack: the OCI API simulator and one Kubernetes API server per OKE
cluster, on one simulated clock, joined the way OKE joins them.

- Each cluster has its own Kubernetes API server (its own store, nodes, namespaces,
  volumes, controllers, port, admin kubeconfig), started while ``CreateCluster`` runs and
  stopped when the cluster is deleted: one session's ``down`` touches nothing of another's.
  Its kubeconfig (``CreateKubeconfig``) names that server, and the server accepts the
  cluster's OKE tokens (``oci ce cluster generate-token``) and its admin token only.
- Nodes come from node pools: when the OCI side reports a node ACTIVE, a Node with
  OKE's labels and allocatable appears in the Kubernetes simulator (and goes away when the
  node is deleted): GPU shapes with the GPU label, taint and ``nvidia.com/gpu``; CPU
  (flexible) shapes sized by the pool's nodeShapeConfig, without either.
- PVCs create block volumes: the Kubernetes simulator's CSI seam creates/deletes volumes in
  the OCI simulator, with the freeform tags from the StorageClass annotation.
- LoadBalancer Services create flexible load balancers in the OCI simulator, tagged.
- Block volume data lives in one directory for the whole cloud (by volume OCID): a volume
  outlives its cluster and attaches to the next one (a kept cache).

So one ``nimble up`` on the sim target walks the same code as on OCI, and the OCI
simulator's inventory and billing meter see everything a real tenancy would bill.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nimble_oke.sim.clock import SimClock
from nimble_oke.sim.kube import KubeSimulator
from nimble_oke.sim.kube.images import ContainerContext
from nimble_oke.sim.kube.provisioners import LoadBalancerRequest, VolumeRequest
from nimble_oke.sim.kube.shapes import GPU_SHAPES
from nimble_oke.sim.kube.simulator import (
    ALLOCATABLE_MEMORY_FRACTION,
    MAX_PODS,
    PREEMPTIBLE_KEY,
    SYSTEM_RESERVED_CPU,
    oke_node_labels,
)
from nimble_oke.sim.oci import FaultPlan, OciSimulator

ENDPOINTS_FILE = "endpoints.json"
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
TOKEN_CACHE_S = 60.0  # real seconds a verified OKE token is trusted without checking again


def cpu_node_spec(
    *,
    shape: str,
    name: str,
    ocpus: float,
    memory_gb: float,
    ad: str,
    fault_domain: str,
    pool_name: str,
    region: str,
    preemptible: bool = False,
    boot_volume_gb: float = 46.6,
    extra_labels: dict[str, str] | None = None,
) -> tuple[str, dict[str, str], dict[str, str], list[dict[str, Any]], dict[str, str]]:
    """(name, labels, allocatable, taints, capacity) of an OKE worker on a CPU shape: the
    labels OKE puts on every worker (no GPU label, no GPU taint); 2 vCPUs per OCPU (OCI
    compute shape docs); allocatable reserved as on GPU nodes (calibration.md, VM.GPU.A10.2
    node: 0.3 CPU for the system, 455 of 480 GB memory)."""
    labels = oke_node_labels(shape, pool_name, fault_domain, ad, region, preemptible, extra_labels)
    taints: list[dict[str, Any]] = []
    if preemptible:
        taints.append({"key": PREEMPTIBLE_KEY, "value": "present", "effect": "NoSchedule"})
    vcpus = ocpus * 2
    capacity = {
        "cpu": f"{round(vcpus * 1000)}m",
        "memory": f"{round(memory_gb * 1024)}Mi",
        "pods": MAX_PODS,
        # the boot volume holds images and ephemeral storage (oci.md: default ≈46.6 GB)
        "ephemeral-storage": f"{round(boot_volume_gb * 1024)}Mi",
    }
    allocatable = {
        "cpu": f"{round((vcpus - SYSTEM_RESERVED_CPU) * 1000)}m",
        "memory": f"{round(memory_gb * ALLOCATABLE_MEMORY_FRACTION * 1024)}Mi",
        "pods": MAX_PODS,
        "ephemeral-storage": f"{round(boot_volume_gb * 0.9 * 1024)}Mi",
    }
    return name, labels, allocatable, taints, capacity


@dataclass
class ClusterApi:
    """One simulated OKE cluster's Kubernetes API server."""

    cluster_id: str
    name: str
    kube: KubeSimulator
    kubeconfig_path: Path  # an admin kubeconfig (static token), for tests and operators
    state_dir: Path


class _ClusterJoin:
    """OKE's CSI driver and cloud controller manager for one cluster: PVCs become block
    volumes and LoadBalancer Services become flexible LBs in the OCI simulator."""

    def __init__(self, stack: SimStack, cluster_id: str) -> None:
        self.stack = stack
        self.cluster_id = cluster_id
        self._lbs: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    async def create_volume(self, request: VolumeRequest) -> str:
        size_gb = max(50, -(-request.size_bytes // 1024**3))
        return await asyncio.to_thread(
            self.stack.busy_call,
            self.stack.oci.api.create_volume,
            int(size_gb),
            self._full_ad(request.availability_domain),
            vpus_per_gb=request.vpus_per_gb,
            display_name=f"csi-{request.pvc_namespace}-{request.pvc_name}",
            freeform_tags=dict(request.freeform_tags),
        )

    def _full_ad(self, zone: str | None) -> str | None:
        """The node's zone label (``US-ASHBURN-AD-1``) as the OCI AD name (``Uocm:US-…``):
        with WaitForFirstConsumer the CSI driver creates the volume in the node's AD."""
        if not zone:
            return None
        world = self.stack.oci.world
        names: list[str] = list(world.ads(world.home_region))
        return next((n for n in names if n.split(":")[-1] == zone.split(":")[-1]), None)

    async def delete_volume(self, volume_id: str) -> None:
        await asyncio.to_thread(self.stack.busy_call, self.stack.oci.api.delete_volume, volume_id)

    async def ensure_load_balancer(self, request: LoadBalancerRequest) -> str:
        key = (request.namespace, request.name)
        with self._lock:
            existing = self._lbs.get(key)
        if existing is not None:
            alive: bool = await asyncio.to_thread(self._alive, str(existing))
            if alive:
                return existing
        lb_id = await asyncio.to_thread(
            self.stack.busy_call,
            self.stack.oci.api.create_load_balancer,
            f"{request.namespace}-{request.name}",
            min_mbps=request.min_mbps or 10,
            max_mbps=request.max_mbps or request.min_mbps or 10,
            freeform_tags=dict(request.freeform_tags),
        )
        with self._lock:
            self._lbs[key] = lb_id
        return str(lb_id)

    def _alive(self, lb_id: str) -> bool:
        """An LB deleted behind Kubernetes' back (e.g. by the watchdog) is re-created."""
        try:
            state = self.stack.oci.api.get_load_balancer(lb_id).get("lifecycleState")
        except Exception:  # noqa: BLE001 - the simulator's own not-found error
            return False
        return state not in ("DELETING", "DELETED", "FAILED")

    async def delete_load_balancer(self, namespace: str, name: str, uid: str) -> None:
        with self._lock:
            lb_id = self._lbs.pop((namespace, name), None)
        if lb_id:
            await asyncio.to_thread(
                self.stack.busy_call, self.stack.oci.api.delete_load_balancer, lb_id
            )


class _Join:
    """NodeHooks for the OCI side: cluster and node events go to that cluster's API."""

    def __init__(self, stack: SimStack) -> None:
        self.stack = stack

    def cluster_created(self, cluster_id: str, info: dict[str, Any]) -> None:
        self.stack.open_cluster_api(cluster_id, str(info.get("name") or ""))

    def cluster_deleted(self, cluster_id: str) -> None:
        """The cluster is gone, and so is its API server with every object in it. As on
        OKE, the block volumes behind its PVs and the LBs its Services made survive."""
        self.stack.close_cluster_api(cluster_id)

    def node_ready(self, cluster_id: str, node: dict[str, Any]) -> None:
        kube = self.stack.open_cluster_api(cluster_id).kube
        shape = str(node["shape"])
        ad = str(node.get("availability_domain", "")).split(":")[-1] or "US-ASHBURN-AD-1"
        fault_domain = str(node.get("fault_domain") or "FAULT-DOMAIN-1")
        region = str(node.get("region") or self.stack.oci.world.home_region)
        # the payload's labels include the pool's initial_node_labels
        labels = {str(k): str(v) for k, v in (node.get("labels") or {}).items()}
        # booted from a custom image: these are already in the node's containerd
        preloaded = {str(k): int(v) for k, v in (node.get("preloaded_images") or {}).items()}
        if int(node.get("gpus") or 0) > 0 or shape in GPU_SHAPES:
            kube.add_gpu_node(
                shape=shape,
                name=str(node["name"]),
                ad=ad,
                fault_domain=fault_domain,
                pool_name=str(node.get("node_pool_name") or "gpu-pool"),
                preemptible=bool(node.get("preemptible")),
                region=region,
                extra_labels=labels,
                preloaded_images=preloaded,
            )
            return
        name, labels, allocatable, taints, capacity = cpu_node_spec(
            shape=shape,
            name=str(node["name"]),
            ocpus=float(node.get("ocpus") or 1),
            memory_gb=float(node.get("memory_gb") or 16),
            ad=ad,
            fault_domain=fault_domain,
            pool_name=str(node.get("node_pool_name") or "cpu-pool"),
            region=region,
            preemptible=bool(node.get("preemptible")),
            boot_volume_gb=float(node.get("boot_volume_gb") or 46.6),
            extra_labels=labels,
        )
        kube.add_node(name, labels, allocatable, taints, capacity, preloaded)

    def node_images(self, cluster_id: str, node_name: str) -> dict[str, int]:
        """For an image capture: what the node's containerd holds (its ``status.images``)."""
        kube = self.stack.live_kube(cluster_id)
        return kube.node_images(node_name) if kube is not None else {}

    def node_stopped(self, cluster_id: str, node_name: str) -> None:
        """The instance stopped for an image capture: its Node goes NotReady."""
        kube = self.stack.live_kube(cluster_id)
        if kube is not None:
            kube.set_node_ready(node_name, False)

    def node_started(self, cluster_id: str, node_name: str) -> None:
        kube = self.stack.live_kube(cluster_id)
        if kube is not None:
            kube.set_node_ready(node_name, True)

    def node_removed(self, cluster_id: str, node_name: str) -> None:
        kube = self.stack.live_kube(cluster_id)
        if kube is not None:
            kube.remove_node(node_name)


@dataclass(frozen=True)
class ClusterImage:
    """An image every cluster's kubelet runs with code the simulator does not own:
    ``factory(stack, cluster)`` gives the container factory for that cluster."""

    prefix: str
    factory: Callable[[SimStack, ClusterApi], Callable[[ContainerContext], Any]]
    size_bytes: int


class SimStack:
    """OCI simulator + one Kubernetes API server per cluster, joined (context manager)."""

    def __init__(
        self,
        state_dir: Path | str,
        *,
        time_scale: float | None = None,
        faults: FaultPlan | None = None,
        seed: int | None = None,
        nim_overrides: dict[str, Any] | None = None,
        kube_options: dict[str, Any] | None = None,
        images: Sequence[ClusterImage] = (),
    ) -> None:
        """``time_scale`` None runs the event clock (:mod:`nimble_oke.sim.clock`), a number
        a scaled one. ``kube_options`` go to every cluster's :class:`KubeSimulator` (e.g.
        ``pull_auth`` to model a registry that refuses a revoked NGC key); ``images`` are
        run by every cluster's kubelet (code the simulator does not own, such as nimble's
        tool image: ``nimble_oke.services.sim_tools.product_stack``)."""
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # the event clock by default; a scaled one (tests) when a time scale is given
        self.clock = SimClock.event() if time_scale is None else SimClock(time_scale)
        self.join = _Join(self)
        from nimble_oke.sim.admin import AdminServer

        self.admin = AdminServer(self)
        self.oci = OciSimulator(self.state_dir, faults=faults, seed=seed, clock=self.clock)
        self._nim_overrides = dict(nim_overrides or {})
        self._kube_options = dict(kube_options or {})
        self._images = tuple(images)
        self._clusters: dict[str, ClusterApi] = {}
        self._clusters_lock = threading.RLock()
        self._tokens: dict[str, tuple[str, float]] = {}  # OKE token -> (cluster id, checked)

    def start(self) -> SimStack:
        self.oci.start()
        try:
            self.oci.attach_kube(None, self.join)
            self.admin.start()
        except BaseException:
            self.oci.stop()
            raise
        return self

    def stop(self) -> None:
        try:
            self.admin.stop()
            with self._clusters_lock:
                apis = list(self._clusters.values())
                self._clusters.clear()
            for api in apis:
                api.kube.stop()
        finally:
            self.oci.stop()
            self.clock.close()

    def __enter__(self) -> SimStack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def busy_call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Call ``fn`` (a join into the OCI simulator) as work the clock waits for."""
        return fn(*args, **kwargs)

    # --- one API server per cluster ---------------------------------------------------------
    @property
    def clusters_dir(self) -> Path:
        return self.state_dir / "clusters"

    def open_cluster_api(self, cluster_id: str, name: str = "") -> ClusterApi:
        """Start the cluster's own Kubernetes API server (idempotent) and tell the OCI
        simulator where it listens."""
        with self._clusters_lock:
            existing = self._clusters.get(cluster_id)
            if existing is not None:
                return existing
            short = cluster_id.rsplit(".", 1)[-1][-11:]
            directory = self.clusters_dir / short
            admin_token = secrets.token_urlsafe(24)
            join = _ClusterJoin(self, cluster_id)
            kube = KubeSimulator(
                directory,
                self.clock,
                volume_provisioner=join,
                lb_provisioner=join,
                nim_overrides=self._nim_overrides,
                require_token=self._token_check(cluster_id, admin_token),
                token=admin_token,
                volumes_root=self.state_dir / "volumes",
                tls=True,  # its own CA, in the kubeconfig CreateKubeconfig returns
                **self._kube_options,
            )
            kube.start()
            api = ClusterApi(
                cluster_id,
                name,
                kube,
                kube.write_kubeconfig(directory / "kubeconfig"),
                directory,
            )
            for image in self._images:
                kube.register_image(
                    image.prefix, image.factory(self, api), size_bytes=image.size_bytes
                )
            self._clusters[cluster_id] = api
        self.oci.register_cluster_api(cluster_id, kube.url, kube.ca_data)
        return api

    def close_cluster_api(self, cluster_id: str) -> None:
        with self._clusters_lock:
            api = self._clusters.pop(cluster_id, None)
        self.oci.forget_cluster_api(cluster_id)
        if api is None:
            return
        api.kube.stop()
        # pods' private directories go with the cluster; volume data does not (shared root)
        shutil.rmtree(api.state_dir, ignore_errors=True)

    def _token_check(self, cluster_id: str, admin_token: str) -> Any:
        """The cluster's API accepts its admin token and OKE tokens for this cluster only
        (checked by the OCI simulator: signature, date, a live cluster)."""

        def check(token: str) -> bool:
            if secrets.compare_digest(token, admin_token):
                return True
            cached = self._tokens.get(token)
            if cached is not None and time.monotonic() - cached[1] < TOKEN_CACHE_S:
                return cached[0] == cluster_id
            try:
                owner = self.oci.verify_cluster_token(token)
            except Exception:  # noqa: BLE001 - any malformed or foreign token is a 401
                return False
            self._tokens[token] = (owner, time.monotonic())
            return owner == cluster_id

        return check

    def cluster_apis(self) -> list[ClusterApi]:
        with self._clusters_lock:
            return list(self._clusters.values())

    def live_kube(self, cluster_id: str) -> KubeSimulator | None:
        with self._clusters_lock:
            api = self._clusters.get(cluster_id)
        return api.kube if api is not None else None

    def kube_for(self, cluster_id: str) -> KubeSimulator:
        """The Kubernetes API server of ``cluster_id`` (the cluster of one session)."""
        kube = self.live_kube(cluster_id)
        if kube is None:
            raise KeyError(f"no live cluster {cluster_id} in the simulator")
        return kube

    def kubeconfig_for(self, cluster_id: str) -> Path:
        """An admin kubeconfig of ``cluster_id``'s API server (users get theirs from
        ``CreateKubeconfig``, authenticated by OKE tokens)."""
        with self._clusters_lock:
            api = self._clusters.get(cluster_id)
        if api is None:
            raise KeyError(f"no live cluster {cluster_id} in the simulator")
        return api.kubeconfig_path

    def _only_cluster(self) -> ClusterApi:
        apis = self.cluster_apis()
        if len(apis) != 1:
            names = ", ".join(a.name or a.cluster_id for a in apis) or "none"
            raise LookupError(
                f"the simulator has {len(apis)} clusters ({names}): use kube_for(cluster_id)"
            )
        return apis[0]

    @property
    def kube(self) -> KubeSimulator:
        """The Kubernetes API server of the one live cluster (tests with one session)."""
        return self._only_cluster().kube

    @property
    def kubeconfig_path(self) -> Path:
        """The admin kubeconfig of the one live cluster (tests with one session)."""
        return self._only_cluster().kubeconfig_path

    # --- views ---------------------------------------------------------------------------
    @property
    def oci_config_path(self) -> Path:
        return Path(self.oci.write_config_file())

    def endpoints(self) -> dict[str, Any]:
        return {
            "oci": self.oci.endpoint,
            "oci_regions": dict(self.oci.endpoints),
            "oci_config": str(self.oci_config_path),
            "compartment_id": self.oci.compartment_id,
            # one Kubernetes API per cluster: listed by the admin API; users get a
            # cluster's kubeconfig from CreateKubeconfig, admin ones live in this folder
            "kube": f"{self.admin.url}/admin/clusters",
            "kubeconfig": str(self.clusters_dir),
            "time_scale": self.clock.scale,
            "clock": self.clock.mode,
            "admin": self.admin.url,
        }

    def write_endpoints(self) -> Path:
        path = self.state_dir / ENDPOINTS_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.endpoints(), indent=2) + "\n")
        tmp.replace(path)
        return path

    def clusters(self) -> list[dict[str, Any]]:
        """Every live cluster's API server: id, name, URL, admin kubeconfig."""
        return [
            {
                "cluster_id": api.cluster_id,
                "name": api.name,
                "url": api.kube.url,
                "kubeconfig": str(api.kubeconfig_path),
            }
            for api in self.cluster_apis()
        ]

    def leftovers(self) -> dict[str, int]:
        """What is still alive in the OCI simulator and in every cluster's API (the leak
        check)."""
        out = {
            "oci_resources": len(self.oci.inventory()),
            "kube_nodes": 0,
            "kube_namespaces": 0,
            "kube_pvs": 0,
        }
        for api in self.cluster_apis():
            try:
                namespaces = [
                    n
                    for n in api.kube.objects("Namespace")
                    if n["metadata"]["name"] not in SYSTEM_NAMESPACES
                ]
                out["kube_nodes"] += len(api.kube.objects("Node"))
                out["kube_namespaces"] += len(namespaces)
                out["kube_pvs"] += len(api.kube.objects("PersistentVolume"))
            except (AssertionError, RuntimeError):
                continue  # deleted while we looked
        return out
