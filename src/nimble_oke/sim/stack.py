"""The whole simulated stack: the OCI API simulator and the Kubernetes simulator on one
simulated clock, joined the way OKE joins them.

- Nodes come from node pools: when the OCI side reports a node ACTIVE, a Node with
  OKE's labels and allocatable appears in the Kubernetes simulator (and goes away when the
  node is deleted): GPU shapes with the GPU label, taint and ``nvidia.com/gpu``; CPU
  (flexible) shapes sized by the pool's nodeShapeConfig, without either.
- PVCs create block volumes: the Kubernetes simulator's CSI seam creates/deletes volumes in
  the OCI simulator, with the freeform tags from the StorageClass annotation.
- LoadBalancer Services create flexible load balancers in the OCI simulator, tagged.
- The cluster's kubeconfig points at the Kubernetes simulator.

So one ``nimble up`` on the sim target walks the same code as on OCI, and the OCI
simulator's inventory and billing meter see everything a real tenancy would bill.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

from nimble_oke.sim.clock import SimClock
from nimble_oke.sim.kube import KubeSimulator
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
DEFAULT_TIME_SCALE = 600.0


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


class _Join:
    """NodeHooks for the OCI side, CSI/CCM provisioners for the Kubernetes side."""

    def __init__(self, stack: SimStack) -> None:
        self.stack = stack
        self._lbs: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    # OCI → Kubernetes
    def node_ready(self, cluster_id: str, node: dict[str, Any]) -> None:
        shape = str(node["shape"])
        ad = str(node.get("availability_domain", "")).split(":")[-1] or "US-ASHBURN-AD-1"
        fault_domain = str(node.get("fault_domain") or "FAULT-DOMAIN-1")
        region = str(node.get("region") or self.stack.oci.world.home_region)
        # the payload's labels include the pool's initial_node_labels
        labels = {str(k): str(v) for k, v in (node.get("labels") or {}).items()}
        # booted from a custom image: these are already in the node's containerd
        preloaded = {str(k): int(v) for k, v in (node.get("preloaded_images") or {}).items()}
        if int(node.get("gpus") or 0) > 0 or shape in GPU_SHAPES:
            self.stack.kube.add_gpu_node(
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
        self.stack.kube.add_node(name, labels, allocatable, taints, capacity, preloaded)

    def node_images(self, cluster_id: str, node_name: str) -> dict[str, int]:
        """For an image capture: what the node's containerd holds (its ``status.images``)."""
        return self.stack.kube.node_images(node_name)

    def node_stopped(self, cluster_id: str, node_name: str) -> None:
        """The instance stopped for an image capture: its Node goes NotReady."""
        self.stack.kube.set_node_ready(node_name, False)

    def node_started(self, cluster_id: str, node_name: str) -> None:
        self.stack.kube.set_node_ready(node_name, True)

    def node_removed(self, cluster_id: str, node_name: str) -> None:
        self.stack.kube.remove_node(node_name)

    def cluster_deleted(self, cluster_id: str) -> None:
        """The cluster is gone, and so is its API: wipe the Kubernetes objects. As on OKE,
        the block volumes behind its PVs survive (volume data stays on disk)."""
        self.stack.wipe_kube_objects()

    # Kubernetes → OCI (block volume CSI driver)
    async def create_volume(self, request: VolumeRequest) -> str:
        size_gb = max(50, -(-request.size_bytes // 1024**3))
        return await asyncio.to_thread(
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
        await asyncio.to_thread(self.stack.oci.api.delete_volume, volume_id)

    # Kubernetes → OCI (cloud controller manager)
    async def ensure_load_balancer(self, request: LoadBalancerRequest) -> str:
        key = (request.namespace, request.name)
        with self._lock:
            existing = self._lbs.get(key)
        if existing is not None:
            alive: bool = await asyncio.to_thread(self._alive, str(existing))
            if alive:
                return existing
        lb_id = await asyncio.to_thread(
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
            await asyncio.to_thread(self.stack.oci.api.delete_load_balancer, lb_id)


class SimStack:
    """OCI simulator + Kubernetes simulator, joined (context manager)."""

    def __init__(
        self,
        state_dir: Path | str,
        *,
        time_scale: float = DEFAULT_TIME_SCALE,
        faults: FaultPlan | None = None,
        seed: int | None = None,
        nim_overrides: dict[str, Any] | None = None,
        kube_options: dict[str, Any] | None = None,
    ) -> None:
        """``kube_options`` go to :class:`KubeSimulator` (e.g. ``pull_auth`` to model a
        registry that refuses a revoked NGC key)."""
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.clock = SimClock(time_scale)
        self.join = _Join(self)
        self.kubeconfig_path = self.state_dir / "kubeconfig"
        from nimble_oke.sim.admin import AdminServer

        self.admin = AdminServer(self)
        self.oci = OciSimulator(self.state_dir, faults=faults, seed=seed, clock=self.clock)
        self.kube = KubeSimulator(
            self.state_dir / "kube-sim",
            self.clock,
            volume_provisioner=self.join,
            lb_provisioner=self.join,
            nim_overrides=nim_overrides,
            **(kube_options or {}),
        )

    def start(self) -> SimStack:
        from nimble_oke.sim.tools_image import TOOLS_PREFIX, ToolsContainer, watchdog_runner

        self.oci.start()
        try:
            self.kube.start()
            self.kubeconfig_path = self.kube.write_kubeconfig(self.state_dir / "kubeconfig")
            runner = watchdog_runner(self)
            self.kube.register_image(
                TOOLS_PREFIX, lambda ctx: ToolsContainer(ctx, runner), size_bytes=150_000_000
            )
            self.oci.attach_kube(self.kube.url, self.join)
            self.admin.start()
        except BaseException:
            self.kube.stop()
            self.oci.stop()
            raise
        return self

    def stop(self) -> None:
        try:
            self.admin.stop()
            self.kube.stop()
        finally:
            self.oci.stop()

    def __enter__(self) -> SimStack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def oci_config_path(self) -> Path:
        return Path(self.oci.write_config_file())

    def endpoints(self) -> dict[str, Any]:
        kubeconfig = self.kubeconfig_path
        return {
            "oci": self.oci.endpoint,
            "oci_regions": dict(self.oci.endpoints),
            "oci_config": str(self.oci_config_path),
            "compartment_id": self.oci.compartment_id,
            "kube": self.kube.url,
            "kubeconfig": str(kubeconfig),
            "time_scale": self.clock.scale,
            "admin": self.admin.url,
        }

    def write_endpoints(self) -> Path:
        path = self.state_dir / ENDPOINTS_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.endpoints(), indent=2) + "\n")
        tmp.replace(path)
        return path

    def wipe_kube_objects(self) -> None:
        from lightkube import Client, KubeConfig
        from lightkube.resources.core_v1 import Namespace, PersistentVolume
        from lightkube.resources.storage_v1 import StorageClass

        client = Client(config=KubeConfig.from_file(str(self.kubeconfig_path)))
        try:
            # Deleting a cluster never deletes the block volumes behind its PVs: retain them
            # all first, so that wiping the namespaces (and their claims) cannot either.
            pvs = [pv.metadata.name for pv in client.list(PersistentVolume) if pv.metadata]
            for name in pvs:
                if name:
                    client.patch(
                        PersistentVolume,
                        name,
                        {"spec": {"persistentVolumeReclaimPolicy": "Retain"}},
                    )
            for ns in client.list(Namespace):
                ns_name = ns.metadata.name if ns.metadata else None
                if ns_name and ns_name not in SYSTEM_NAMESPACES:
                    client.delete(Namespace, ns_name)
            for name in pvs:
                if name:
                    client.delete(PersistentVolume, name)
            for sc in client.list(StorageClass):
                name = sc.metadata.name if sc.metadata else None
                if name and name not in ("oci-bv", "oci"):
                    client.delete(StorageClass, name)
        finally:
            client.close()

    def leftovers(self) -> dict[str, int]:
        """What is still alive in both simulators (the leak check)."""
        oci_live = self.oci.inventory()
        kube_nodes = len(self.kube.objects("Node"))
        namespaces = [
            n
            for n in self.kube.objects("Namespace")
            if n["metadata"]["name"]
            not in ("default", "kube-system", "kube-public", "kube-node-lease")
        ]
        return {
            "oci_resources": len(oci_live),
            "kube_nodes": kube_nodes,
            "kube_namespaces": len(namespaces),
            "kube_pvs": len(self.kube.objects("PersistentVolume")),
        }
