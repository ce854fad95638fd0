"""KubeSimulator: the API server plus controllers on their own thread and event loop.

    with KubeSimulator(state_dir=tmp_path, clock=SimClock(60)) as kube:
        kube.add_gpu_node(shape="VM.GPU.A10.1")
        kube.write_kubeconfig(tmp_path / "kubeconfig")   # for lightkube / kubectl

Inside an existing event loop use ``await kube.astart()`` / ``await kube.astop()`` instead.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import logging
import ssl
import threading
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import yaml
from aiohttp import web

from nimble_oke.sim.clock import SimClock

from .api import Api
from .builtin_images import builtin_registry
from .cluster import NAMESPACES, NODES, STORAGE_CLASSES, Cluster
from .events import EventRecorder
from .gc import GarbageCollector
from .hpa import HpaController
from .images import Factory, ImageRegistry, Matcher
from .kubelet import Kubelet
from .logs import LogBook
from .network import LOCAL_PORTS_ANNOTATION, ServiceController
from .provisioners import (
    LoadBalancerProvisioner,
    LocalLoadBalancerProvisioner,
    LocalVolumeProvisioner,
    PullAuth,
    VolumeProvisioner,
    default_pull_auth,
)
from .resources import by_name
from .scheduler import Scheduler
from .server import KUBE_VERSION, ApiServer, TokenCheck
from .shapes import GPU_SHAPES
from .store import Obj, Store
from .volumes import VolumeController, default_storage_classes
from .workloads import Workloads

log = logging.getLogger(__name__)
T = TypeVar("T")

# Allocatable vs. capacity on an OKE node, derived from a VM.GPU.A10.2 node
# (calibration.md: 60 vCPU -> ≈59.7 allocatable; 480 GB -> ≈455 GiB).
SYSTEM_RESERVED_CPU = 0.3
ALLOCATABLE_MEMORY_FRACTION = 455 / 480
# Load balancer external IP after 1-2 min (calibration.md, "LoadBalancer external IP").
LB_PROVISION_SECONDS = 90.0
# OKE labels and taints nodes on preemptible capacity with this key (Oracle docs, "Using
# Preemptible Capacity to Provision Worker Nodes"); pods need a toleration to land there.
PREEMPTIBLE_KEY = "oci.oraclecloud.com/oke-is-preemptible"
# OKE flannel clusters: 110 pods per node (kubelet default).
MAX_PODS = "110"


def oke_node_labels(
    shape: str,
    pool_name: str,
    fault_domain: str,
    ad: str,
    region: str,
    preemptible: bool,
    extra_labels: dict[str, str] | None = None,
) -> dict[str, str]:
    """The labels OKE puts on every worker node (calibration.md), plus the node pool's
    initial_node_labels (``extra_labels``)."""
    labels = {
        "node.kubernetes.io/instance-type": shape,
        "beta.kubernetes.io/instance-type": shape,
        "oke.oraclecloud.com/pool.name": pool_name,
        "oci.oraclecloud.com/fault-domain": fault_domain,
        "topology.kubernetes.io/zone": ad,
        "failure-domain.beta.kubernetes.io/zone": ad,
        "topology.kubernetes.io/region": region,
        "failure-domain.beta.kubernetes.io/region": region,
    }
    if preemptible:
        labels[PREEMPTIBLE_KEY] = "true"
    labels.update(extra_labels or {})
    return labels


class ControllerLoop:
    """Runs every controller when something changed, and at least every 100 ms (real).

    A wake-up and the pass it causes are work the simulated clock waits for: it does not
    jump between a change and the controllers' reaction to it."""

    def __init__(self, reconcilers: list[Callable[[], None]], clock: SimClock) -> None:
        self.reconcilers = reconcilers
        self.clock = clock
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._pending = False  # a wake-up the next pass will serve (counted busy)

    def wake(self, *_: object) -> None:
        if not self._pending and not self._stop.is_set():
            self._pending = True
            self.clock.enter_busy()
        self._wake.set()

    async def run(self) -> None:
        try:
            while not self._stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 0.1)
                self._wake.clear()
                await asyncio.sleep(0.005)  # let a burst of writes settle
                with self.clock.busy():
                    served, self._pending = self._pending, False
                    try:
                        self._pass()
                    finally:
                        if served:
                            self.clock.exit_busy()
        finally:
            if self._pending:
                self._pending = False
                self.clock.exit_busy()

    def _pass(self) -> None:
        for reconcile in self.reconcilers:
            try:
                reconcile()
            except Exception:
                log.exception("controller %s failed", getattr(reconcile, "__qualname__", ""))

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()


class KubeSimulator:
    def __init__(
        self,
        state_dir: Path | str,
        clock: SimClock | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        require_token: TokenCheck | None = None,
        volume_provisioner: VolumeProvisioner | None = None,
        lb_provisioner: LoadBalancerProvisioner | None = None,
        pull_auth: PullAuth | None = None,
        lb_provision_seconds: float = LB_PROVISION_SECONDS,
        nim_overrides: dict[str, Any] | None = None,
        lb_bind_service_port: bool = False,
        gpu_device_plugin: bool = False,
        token: str = "nimble-sim-token",  # noqa: S107 - a fake bearer token for the sim
        volumes_root: Path | None = None,
        tls: bool = False,
    ) -> None:
        """``volumes_root``: where volume data lives (default ``state_dir/volumes``); several
        clusters of one simulated cloud share it, since a volume outlives its cluster.
        ``tls``: serve HTTPS with a certificate from the cluster's own CA (as an OKE
        control plane does); its kubeconfig carries the CA."""
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.clock = clock or SimClock()
        self.host = host
        self.port = port
        self.token = token
        self.require_token = require_token
        self.images: ImageRegistry = builtin_registry()
        self._volume_provisioner = volume_provisioner or LocalVolumeProvisioner()
        self._lb_provisioner = lb_provisioner or LocalLoadBalancerProvisioner()
        self._pull_auth = pull_auth or default_pull_auth
        self._lb_seconds = lb_provision_seconds
        self._nim_overrides = dict(nim_overrides or {})
        self._lb_bind_service_port = lb_bind_service_port
        self._gpu_device_plugin = gpu_device_plugin
        self._volumes_root = volumes_root
        self._tls = tls
        self.ca_pem: bytes | None = None  # the cluster CA's certificate (PEM), with tls
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._controllers: asyncio.Task[None] | None = None
        self.cluster: Cluster | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._stopped: asyncio.Event | None = None
        self._loop_thread_id: int | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://{self.host}:{self.port}"

    @property
    def ca_data(self) -> str | None:
        """The cluster CA as kubeconfig's ``certificate-authority-data`` (base64 PEM)."""
        return base64.b64encode(self.ca_pem).decode() if self.ca_pem else None

    async def astart(self) -> KubeSimulator:
        """Start on the running event loop (for ``serve`` and async callers)."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread_id = threading.get_ident()
        store = Store(self.clock)
        api = Api(store)
        cluster = Cluster(
            store=store,
            api=api,
            clock=self.clock,
            events=EventRecorder(store),
            logs=LogBook(),
            images=self.images,
            state_dir=self.state_dir,
            volume_provisioner=self._volume_provisioner,
            lb_provisioner=self._lb_provisioner,
            pull_auth=self._pull_auth,
            lb_provision_seconds=self._lb_seconds,
            nim_overrides=self._nim_overrides,
            lb_bind_service_port=self._lb_bind_service_port,
            volumes_root=self._volumes_root,
        )
        self.cluster = cluster
        self._server = ApiServer(api, cluster.logs, self.require_token)
        self._kubelet = Kubelet(cluster)
        self._volumes = VolumeController(cluster)
        self._services = ServiceController(cluster)
        self._hpa = HpaController(cluster)
        self._loop_ctl = ControllerLoop(
            [
                GarbageCollector(cluster).reconcile,
                Scheduler(cluster).reconcile,
                Workloads(cluster).reconcile,
                self._volumes.reconcile,
                self._services.reconcile,
                self._kubelet.reconcile,
                self._hpa.reconcile,
            ],
            self.clock,
        )
        self.clock.watch_loop(self._loop)
        cluster.wake = self._loop_ctl.wake
        store.on_change(self._loop_ctl.wake)
        self._bootstrap()
        app = self._server.app()
        app.middlewares.insert(0, _busy_middleware(self.clock))
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self._ssl_context())
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1])
        self._server.host_port = f"{self.host}:{self.port}"
        cluster.api_address = self._server.host_port
        self._controllers = asyncio.create_task(self._loop_ctl.run())
        return self

    def _ssl_context(self) -> ssl.SSLContext | None:
        """With ``tls``: a fresh cluster CA and a serving certificate for 127.0.0.1 signed
        by it (kept under ``state_dir/pki``, mode 0600)."""
        if not self._tls:
            return None
        from nimble_oke.sim.pki import cluster_certificates

        ca_pem, cert_pem, key_pem = cluster_certificates(self.host)
        pki = self.state_dir / "pki"
        pki.mkdir(parents=True, exist_ok=True)
        cert_file, key_file = pki / "apiserver.crt", pki / "apiserver.key"
        cert_file.write_bytes(cert_pem)
        key_file.touch(mode=0o600)
        key_file.write_bytes(key_pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self.ca_pem = ca_pem
        return context

    async def astop(self) -> None:
        self._server.stopping.set()
        self._loop_ctl.stop()
        if self._controllers is not None:
            await self._controllers
        if self.cluster is not None:
            self.cluster.cancel_timers()
        await self._hpa.close()
        await self._kubelet.close()
        await self._volumes.close()
        await self._services.close()
        if self._runner is not None:
            server = self._runner.server
            if self._tls and server is not None:
                # A TLS connection's close waits for the client's close_notify, which an
                # idle client never sends: the API server is going away, end them now.
                for handler in server.connections:
                    if handler.transport is not None:
                        handler.transport.abort()
            await self._runner.cleanup()
            self._runner = None

    def _bootstrap(self) -> None:
        assert self.cluster is not None
        store = self.cluster.store
        for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
            store.create(
                NAMESPACES,
                {
                    "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"},
                },
            )
        for sc in default_storage_classes():
            store.create(STORAGE_CLASSES, sc)
        if self._gpu_device_plugin:
            self.cluster.api.create(
                by_name("DaemonSet"), "kube-system", _device_plugin_daemonset(), manager="oke"
            )

    def start(self) -> KubeSimulator:
        """Start on a background thread with its own event loop."""
        self._thread = threading.Thread(target=self._thread_main, name="kube-sim", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._startup_error is not None:
            raise RuntimeError("Kubernetes simulator failed to start") from self._startup_error
        return self

    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._thread_body())
        finally:
            _finish_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _thread_body(self) -> None:
        self._stopped = asyncio.Event()
        try:
            await self.astart()
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._startup_error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stopped.wait()
        await self.astop()

    def stop(self) -> None:
        if self._thread is None or self._loop is None or self._stopped is None:
            return
        self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(60)
        self._thread = None

    def __enter__(self) -> KubeSimulator:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _on_loop_thread(self) -> bool:
        return threading.get_ident() == self._loop_thread_id

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the simulator's loop thread and return its result (directly when
        already on it, e.g. inside ``serve``)."""
        if self._on_loop_thread():
            return fn()
        return self.run(_as_coroutine(fn))

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the simulator's loop from another thread and wait for it."""
        assert self._loop is not None, "the simulator is not started"
        if self._on_loop_thread():
            coro.close()
            raise RuntimeError("on the simulator's loop: await the a* method instead")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(60)

    # --- client configuration -----------------------------------------------------------------
    def kubeconfig(self, namespace: str = "default", name: str = "nimble-sim") -> Obj:
        cluster: Obj = {"server": self.url}
        if self.ca_data:
            cluster["certificate-authority-data"] = self.ca_data
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": cluster}],
            "users": [{"name": name, "user": {"token": self.token}}],
            "contexts": [
                {"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}
            ],
            "current-context": name,
            "preferences": {},
        }

    def write_kubeconfig(self, path: Path | str, namespace: str = "default") -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(self.kubeconfig(namespace), sort_keys=False))
        target.chmod(0o600)
        return target

    # --- nodes ------------------------------------------------------------------------------------
    def add_node(
        self,
        name: str,
        labels: dict[str, str] | None = None,
        allocatable: dict[str, str] | None = None,
        taints: list[Obj] | None = None,
        capacity: dict[str, str] | None = None,
        images: dict[str, int] | None = None,
    ) -> Obj:
        """``images``: ref -> size in bytes already in the node's containerd (a node booted
        from a custom image); published as ``status.images``, seen by the kubelet as cached."""
        node = _node(
            name,
            labels or {},
            allocatable or {"cpu": "4", "memory": "16Gi"},
            taints or [],
            capacity,
        )
        if images:
            node["status"]["images"] = [
                {"names": [ref], "sizeBytes": int(size)} for ref, size in images.items()
            ]

        def create() -> Obj:
            now = self._store().now_iso()
            for condition in node["status"]["conditions"]:
                condition["lastHeartbeatTime"] = condition["lastTransitionTime"] = now
            return copy.deepcopy(self._store().create(NODES, node))

        return self.call(create)

    def add_gpu_node(
        self,
        shape: str = "VM.GPU.A10.1",
        name: str | None = None,
        ad: str = "US-ASHBURN-AD-1",
        fault_domain: str = "FAULT-DOMAIN-1",
        pool_name: str = "gpu-pool",
        preemptible: bool = False,
        region: str = "us-ashburn-1",
        extra_labels: dict[str, str] | None = None,
        preloaded_images: dict[str, int] | None = None,
    ) -> Obj:
        """A node with OKE's labels, taint and allocatable for ``shape`` (calibration.md);
        ``preloaded_images`` as :meth:`add_node`'s ``images``."""
        if shape not in GPU_SHAPES:
            raise ValueError(f"unknown GPU shape {shape!r}; known: {', '.join(GPU_SHAPES)}")
        ocpus, memory_gb, gpus, _model = GPU_SHAPES[shape]
        name = name or self._next_private_ip()
        labels = oke_node_labels(
            shape, pool_name, fault_domain, ad, region, preemptible, extra_labels
        )
        labels["nvidia.com/gpu"] = "true"
        vcpus = ocpus * 2
        capacity = {
            "cpu": str(vcpus),
            "memory": f"{memory_gb}Gi",
            "nvidia.com/gpu": str(gpus),
            "pods": MAX_PODS,
            "ephemeral-storage": "200Gi",
        }
        allocatable = {
            "cpu": f"{int((vcpus - SYSTEM_RESERVED_CPU) * 1000)}m",
            "memory": f"{int(memory_gb * ALLOCATABLE_MEMORY_FRACTION * 1024)}Mi",
            "nvidia.com/gpu": str(gpus),
            "pods": MAX_PODS,
            "ephemeral-storage": "180Gi",
        }
        taints = [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
        if preemptible:
            taints.append({"key": PREEMPTIBLE_KEY, "value": "present", "effect": "NoSchedule"})
        return self.add_node(name, labels, allocatable, taints, capacity, preloaded_images)

    def node_images(self, name: str) -> dict[str, int]:
        """ref -> size in bytes of the images in the node's containerd (``status.images``);
        empty for an unknown node."""

        def read() -> dict[str, int]:
            node = self._store().get(NODES, "", name)
            entries = ((node or {}).get("status") or {}).get("images") or []
            return {ref: int(e.get("sizeBytes") or 0) for e in entries for ref in e["names"]}

        return self.call(read)

    def set_node_ready(self, name: str, ready: bool) -> None:
        """The instance stopped (kubelet silent: Ready Unknown, as the node lifecycle
        controller marks it, plus its ``unreachable`` NoSchedule taint) or is back. Pods on
        it are left as they are (the sim does not restart them)."""

        def change(node: Obj) -> None:
            now = self._store().now_iso()
            for cond in node["status"]["conditions"]:
                if cond["type"] != "Ready":
                    continue
                if ready:
                    cond.update(_node_condition("Ready", "True", *READY_REASON))
                else:
                    cond.update(_node_condition("Ready", "Unknown", *NOT_READY_REASON))
                cond["lastHeartbeatTime"] = cond["lastTransitionTime"] = now
            taints = [
                t for t in node["spec"].get("taints") or [] if t.get("key") != UNREACHABLE_KEY
            ]
            if not ready:
                taints.append({"key": UNREACHABLE_KEY, "effect": "NoSchedule", "timeAdded": now})
            if taints:
                node["spec"]["taints"] = taints
            else:
                node["spec"].pop("taints", None)

        self.call(lambda: self._store().mutate(NODES, "", name, change))

    def _next_private_ip(self) -> str:
        used = {n["metadata"]["name"] for n in self.objects("Node")}
        for i in range(10, 250):
            candidate = f"10.0.1.{i}"
            if candidate not in used:
                return candidate
        raise RuntimeError("no free worker subnet address")

    def remove_node(self, name: str) -> None:
        """The node vanishes at once (its pods are garbage-collected)."""

        def remove() -> None:
            self._api().remove(NODES, "", name)

        self.call(remove)

    def preempt_node(self, name: str, timeout: float = 30.0) -> None:
        """What OKE does before reclaiming preemptible capacity: cordon the node, evict its
        pods gracefully, then the instance (and node) goes away. Blocks until done."""
        self.run(self.apreempt_node(name, timeout))

    async def apreempt_node(self, name: str, timeout: float = 30.0) -> None:
        """:meth:`preempt_node` for callers on the simulator's own loop."""
        api, store = self._api(), self._store()

        def cordon(node: Obj) -> None:
            node["spec"]["unschedulable"] = True
            taints = node["spec"].setdefault("taints", [])
            taints.append(
                {
                    "key": "node.kubernetes.io/unschedulable",
                    "effect": "NoSchedule",
                    "timeAdded": store.now_iso(),
                }
            )

        store.mutate(NODES, "", name, cordon)
        pods = by_name("Pod")

        def on_node() -> list[Obj]:
            return [p for p in store.list(pods) if p["spec"].get("nodeName") == name]

        for pod in on_node():
            if not pod["metadata"].get("deletionTimestamp"):
                api.delete(pods, pod["metadata"]["namespace"], pod["metadata"]["name"])
        deadline = asyncio.get_running_loop().time() + timeout
        while on_node() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        if store.get(NODES, "", name) is not None:
            api.remove(NODES, "", name)

    # --- inspection and images --------------------------------------------------------------------
    def objects(self, kind: str, namespace: str | None = None) -> list[Obj]:
        rt = by_name(kind)
        return self.call(lambda: copy.deepcopy(self._store().list(rt, namespace)))

    def logs(self, namespace: str, pod: str, container: str, previous: bool = False) -> list[str]:
        def read() -> list[str]:
            assert self.cluster is not None
            return self.cluster.logs.lines((namespace, pod, container), previous)

        return self.call(read)

    def service_address(self, namespace: str, name: str, port: int) -> tuple[str, int] | None:
        """The local (host, port) forwarding to ``name:port``'s ready endpoints."""
        for svc in self.objects("Service", namespace):
            if svc["metadata"]["name"] == name:
                import json

                raw = (svc["metadata"].get("annotations") or {}).get(LOCAL_PORTS_ANNOTATION)
                local = json.loads(raw).get(str(port)) if raw else None
                return ("127.0.0.1", int(local)) if local else None
        return None

    def register_image(
        self, match: Matcher | str, factory: Factory, *, size_bytes: int = 50_000_000
    ) -> None:
        """Run images matching ``match`` (predicate or prefix) with ``factory``."""
        self.images.register(match, factory, size_bytes=size_bytes)

    def _store(self) -> Store:
        assert self.cluster is not None
        return self.cluster.store

    def _api(self) -> Api:
        assert self.cluster is not None
        return self.cluster.api


def _long_lived(request: web.Request) -> bool:
    """Watches, log follows and streams stay open for as long as the client wants: they are
    not work the simulated clock waits for."""
    query = request.query
    streaming = any(query.get(k, "").lower() in ("1", "true") for k in ("watch", "follow"))
    return streaming or request.path.rsplit("/", 1)[-1] in ("portforward", "exec", "attach")


def _busy_middleware(clock: SimClock) -> Any:
    @web.middleware
    async def busy(request: web.Request, handler: Any) -> web.StreamResponse:
        if _long_lived(request):
            response: web.StreamResponse = await handler(request)
            return response
        with clock.busy():
            response = await handler(request)
            return response

    return busy


READY_REASON = ("KubeletReady", "kubelet is posting ready status")
# what the node lifecycle controller writes when the kubelet stops posting status
NOT_READY_REASON = ("NodeStatusUnknown", "Kubelet stopped posting node status.")
UNREACHABLE_KEY = "node.kubernetes.io/unreachable"


def _node(
    name: str,
    labels: dict[str, str],
    allocatable: dict[str, str],
    taints: list[Obj],
    capacity: dict[str, str] | None,
) -> Obj:
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        **labels,
    }
    allocatable = {"pods": MAX_PODS, **allocatable}
    spec: Obj = {"providerID": f"ocid1.instance.oc1.sim.{uuid.uuid4().hex}"}
    if taints:
        spec["taints"] = taints
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
        "status": {
            "capacity": capacity or dict(allocatable),
            "allocatable": allocatable,
            "conditions": [
                _node_condition(
                    "MemoryPressure",
                    "False",
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available",
                ),
                _node_condition(
                    "DiskPressure",
                    "False",
                    "KubeletHasNoDiskPressure",
                    "kubelet has no disk pressure",
                ),
                _node_condition(
                    "PIDPressure",
                    "False",
                    "KubeletHasSufficientPID",
                    "kubelet has sufficient PID available",
                ),
                _node_condition("Ready", "True", *READY_REASON),
            ],
            "addresses": [
                {"type": "InternalIP", "address": name},
                {"type": "Hostname", "address": name},
            ],
            "nodeInfo": {
                "kubeletVersion": KUBE_VERSION,
                "kubeProxyVersion": KUBE_VERSION,
                "containerRuntimeVersion": "cri-o://1.35.1",
                "osImage": "Oracle Linux Server 8.10",
                "kernelVersion": "5.15.0-304.171.4.el8uek.x86_64",
                "operatingSystem": "linux",
                "architecture": "amd64",
                "machineID": uuid.uuid4().hex,
                "systemUUID": str(uuid.uuid4()),
                "bootID": str(uuid.uuid4()),
            },
        },
    }


def _device_plugin_daemonset() -> Obj:
    """OKE's NvidiaGpuPlugin add-on: DaemonSet ``nvidia-gpu-device-plugin`` in kube-system
    (reference/oke.md)."""
    labels = {"app": "nvidia-gpu-device-plugin"}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": "nvidia-gpu-device-plugin",
            "namespace": "kube-system",
            "labels": dict(labels),
        },
        "spec": {
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "nodeSelector": {"nvidia.com/gpu": "true"},
                    "tolerations": [
                        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
                    ],
                    "containers": [
                        {
                            "name": "nvidia-gpu-device-plugin",
                            "image": "nvcr.io/nvidia/k8s-device-plugin:v0.17.0",
                        }
                    ],
                },
            },
        },
    }


def _node_condition(kind: str, status: str, reason: str, message: str) -> Obj:
    return {"type": kind, "status": status, "reason": reason, "message": message}


async def _as_coroutine(fn: Callable[[], T]) -> T:
    return fn()


def _finish_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is still pending and let it finish, as ``asyncio.run`` does: a request
    handler created for a connection that arrived while the server stopped would otherwise
    be dropped unstarted ("coroutine … was never awaited") with its TLS transport open."""
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
