"""The kubelet: runs scheduled pods as local containers, on the simulated clock.

Per pod: volumes (a block volume attaches to one node at a time: Multi-Attach wait, then
a modeled attach), then per container image pull (duration from image size and pull
bandwidth; nvcr.io needs a pull secret), init containers in order, main containers with
real HTTP/TCP startup/liveness/readiness probes, restarts with back-off (CrashLoopBackOff),
OOMKilled, and graceful deletion. The pod's ``status`` is rewritten after every change.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from nimble_oke.sim.clock import ACTIVITY, SAMPLE, SCHEDULED

from . import quantity
from .admission import qos_class
from .cluster import (
    CONFIGMAPS,
    NODES,
    PODS,
    PVCS,
    PVS,
    Cluster,
)
from .container_env import ContainerConfigError, EnvBuilder
from .images import (
    UNEMULATED,
    Container,
    ContainerContext,
    ImageEntry,
    missing_executable,
    normalize,
)
from .probes import PROBE_DEFAULTS, run_probe
from .pulls import PULL_BYTES_PER_S, go_duration, pull_error
from .shapes import gpu_model
from .store import Obj
from .streams import ExecError, ExecResult
from .volumes import is_single_node_volume, pv_bytes_per_s

log = logging.getLogger(__name__)

# Kubelet back-off: 10 s doubling up to 5 min, for image pulls and container restarts;
# reset after a container ran 10 min without trouble (kubelet defaults).
BACKOFF_INITIAL_S = 10.0
BACKOFF_MAX_S = 300.0
BACKOFF_RESET_S = 600.0
OOM_CHECK_AFTER_S = 5.0
# The kubelet reports a volume it cannot mount after 2 minutes (volume manager timeout).
MOUNT_TIMEOUT_S = 120.0
# Attaching an OCI block volume to an instance: no figure in reference/oci.md or
# calibration.md; assumed 30 s (paravirtualized attachments take tens of seconds).
ATTACH_S = 30.0
# The attach/detach controller retries every reconcile; its Multi-Attach event repeats.
# We re-report at most once a minute (simulated) so the event count grows, bounded.
MULTI_ATTACH_REPORT_S = 60.0
ATTACH_COMPONENT = "attachdetach-controller"
# A pull whose layers are all present only resolves the manifest: assumed 0.5 s (no figure
# in calibration.md; a registry round trip or two).
MANIFEST_CHECK_S = 0.5
_TERMINAL = ("Succeeded", "Failed")


@dataclass
class CState:
    spec: Obj
    init: bool
    state: Obj = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: Obj = field(default_factory=dict)
    ready: bool = False
    started: bool = False
    restarts: int = 0
    container_id: str = ""
    port: int | None = None
    instance: Container | None = None

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    def status(self) -> Obj:
        out: Obj = {
            "name": self.name,
            "image": self.spec["image"],
            "imageID": "",
            "ready": self.ready,
            "restartCount": self.restarts,
            "started": self.started,
            "state": copy.deepcopy(self.state),
            "lastState": copy.deepcopy(self.last_state),
        }
        if self.container_id:
            out["containerID"] = self.container_id
            out["imageID"] = normalize(self.spec["image"]).split(":")[0] + "@sha256:" + ("0" * 64)
        return out


class Kubelet:
    """One kubelet for all nodes: a :class:`PodWorker` per pod bound to an existing node."""

    def __init__(self, cluster: Cluster) -> None:
        self.c = cluster
        self.workers: dict[str, PodWorker] = {}
        self.node_images: dict[str, set[str]] = {}
        # (node, image) -> simulated time the pull in progress on that node completes
        self.pulls_in_flight: dict[tuple[str, str], float] = {}
        # block volume attachments: PV name -> (node, simulated time the attach completes)
        self.attachments: dict[str, tuple[str, float]] = {}
        self._ip_counter: dict[str, int] = {}
        self._node_index: dict[str, int] = {}
        self._node_uids: dict[str, str] = {}
        self._session: aiohttp.ClientSession | None = None
        self._shutdowns: set[asyncio.Task[None]] = set()
        cluster.api.runtime = self  # port-forward and exec reach containers through us
        cluster.logs.now = cluster.clock.wall  # log lines carry simulated timestamps

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
        return self._session

    def allocate_ip(self, node: str) -> str:
        index = self._node_index.setdefault(node, len(self._node_index) + 1)
        n = self._ip_counter.get(node, 1) + 1
        self._ip_counter[node] = n
        return f"10.244.{index}.{n % 250 + 2}"

    def reconcile(self) -> None:
        node_objs = self.c.store.list(NODES)
        current = {n["metadata"]["name"]: n["metadata"]["uid"] for n in node_objs}
        self._forget_gone_nodes(current)
        self._meet_new_nodes(node_objs)
        nodes = set(current)
        live: set[str] = set()
        for pod in self.c.store.list(PODS):
            meta = pod["metadata"]
            node = pod["spec"].get("nodeName")
            if not node or node not in nodes:
                continue
            uid = meta["uid"]
            live.add(uid)
            worker = self.workers.get(uid)
            deleting = bool(meta.get("deletionTimestamp"))
            if worker is None:
                if deleting:
                    self.c.api.remove(PODS, meta["namespace"], meta["name"])
                elif (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                    self.workers[uid] = PodWorker(self, pod)
            elif deleting:
                worker.terminate(remove=True)
        for uid, worker in list(self.workers.items()):
            if uid not in live:
                worker.terminate(remove=False)

    def _forget_gone_nodes(self, current: dict[str, str]) -> None:
        """A node that went away takes its image cache and volume attachments with it —
        also when a new node later gets the same name (OKE names nodes by private IP, and
        a new pool may reuse an address)."""
        for name, uid in list(self._node_uids.items()):
            if current.get(name) != uid:
                self.node_images.pop(name, None)
                for key in [k for k in self.pulls_in_flight if k[0] == name]:
                    del self.pulls_in_flight[key]
                for pv, (node, _ready) in list(self.attachments.items()):
                    if node == name:
                        del self.attachments[pv]
                del self._node_uids[name]

    def _meet_new_nodes(self, nodes: list[Obj]) -> None:
        """A node seen for the first time starts with the images its boot volume already
        holds (``status.images``: e.g. booted from a custom image with the NIM image in
        containerd); a later node reusing the name starts from its own, not these."""
        for node in nodes:
            name, uid = node["metadata"]["name"], node["metadata"]["uid"]
            if name in self._node_uids:
                continue
            self._node_uids[name] = uid
            entries = (node.get("status") or {}).get("images") or []
            self.node_images[name] = {ref for e in entries for ref in e.get("names") or []}

    def record_image(self, node: str, image: str, size_bytes: int) -> None:
        """A pull completed: publish the image in the Node's ``status.images``."""

        def add(obj: Obj) -> None:
            entries = obj.setdefault("status", {}).setdefault("images", [])
            if not any(image in (e.get("names") or []) for e in entries):
                entries.append({"names": [image], "sizeBytes": size_bytes})

        self.c.store.mutate(NODES, "", node, add)

    # --- streaming: port-forward and exec --------------------------------------------------
    def local_port(self, namespace: str, pod: str, port: int) -> int | None:
        """The real local port of a running container's declared (or listening) port."""
        return (self.c.pod_ports.get((namespace, pod)) or {}).get(port)

    async def exec(
        self, namespace: str, pod: str, container: str, argv: list[str], stdin: bytes | None
    ) -> ExecResult:
        """Run ``argv`` in a running container. Images whose filesystem the simulator does
        not model have no executables: the runtime's error for a missing one."""
        worker = next(
            (w for w in self.workers.values() if w.ns == namespace and w.name == pod), None
        )
        states = (worker.inits + worker.mains) if worker is not None else []
        cs = next((c for c in states if c.name == container and c.instance is not None), None)
        if cs is None:
            raise ExecError(f'container not found ("{container}")')
        run = getattr(cs.instance, "exec_command", None)
        if run is None:
            raise ExecError(missing_executable(argv))
        result: ExecResult = await run(argv, stdin)
        return result

    def forget(self, worker: PodWorker) -> None:
        if self.workers.get(worker.uid) is worker:
            del self.workers[worker.uid]

    async def close(self) -> None:
        for worker in list(self.workers.values()):
            worker.terminate(remove=False)
        for worker in list(self.workers.values()):
            await worker.finished()
        if self._shutdowns:
            await asyncio.gather(*self._shutdowns, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None


class PodWorker:
    def __init__(self, kubelet: Kubelet, pod: Obj) -> None:
        self.k = kubelet
        self.c = kubelet.c
        meta = pod["metadata"]
        self.ns: str = meta["namespace"]
        self.name: str = meta["name"]
        self.uid: str = meta["uid"]
        self.node: str = pod["spec"]["nodeName"]
        self.spec: Obj = pod["spec"]
        self.pod_ip = kubelet.allocate_ip(self.node)
        self.inits = [CState(c, True) for c in self.spec.get("initContainers") or []]
        self.mains = [CState(c, False) for c in self.spec["containers"]]
        self.final_phase: str | None = None
        self.initialized = not self.inits
        self.sandbox_ready = False
        self.start_time = self.c.store.now_iso()
        self._transitions: dict[str, tuple[str, str]] = {}
        self._mounts: dict[str, Path] = {}
        self._volume_rates: dict[str, float] = {}  # claim name -> block volume bytes/s
        self._stopping = False
        self._done = asyncio.Event()
        self.task = asyncio.create_task(self._lifecycle(), name=f"pod-{self.ns}/{self.name}")

    # --- lifecycle ------------------------------------------------------------------------
    async def _lifecycle(self) -> None:
        try:
            self.publish()
            await self._prepare_volumes()
            self.sandbox_ready = True
            self.publish()
            for cs in self.inits:
                if not await self._run_init(cs):
                    self.final_phase = "Failed"
                    self.publish()
                    return
            self.initialized = True
            self.publish()
            await asyncio.gather(*(self._container_loop(cs) for cs in self.mains))
            codes = [cs.state.get("terminated", {}).get("exitCode", 1) for cs in self.mains]
            self.final_phase = "Succeeded" if all(c == 0 for c in codes) else "Failed"
            self.publish()
        except asyncio.CancelledError:
            pass
        except Exception:  # a simulator bug must not kill the loop; surface it in the log
            log.exception("pod worker %s/%s failed", self.ns, self.name)
        finally:
            self._done.set()

    async def finished(self) -> None:
        await self._done.wait()

    def terminate(self, *, remove: bool) -> None:
        """Stop every container (graceful deletion), then remove the pod if asked."""
        if self._stopping:
            return
        self._stopping = True
        task = asyncio.create_task(self._shutdown(remove))
        self.k._shutdowns.add(task)
        task.add_done_callback(self.k._shutdowns.discard)

    async def _shutdown(self, remove: bool) -> None:
        # A container being stopped at this moment may swallow one cancellation (its own
        # stop awaits under suppress(CancelledError)): cancel until the task is really done.
        while not self.task.done():
            self.task.cancel()
            await asyncio.wait([self.task], timeout=0.5)
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        pod = self.c.store.get(PODS, self.ns, self.name)
        for cs in self.inits + self.mains:
            if cs.instance is not None:
                if pod is not None:
                    self.c.events.record(
                        pod,
                        "Killing",
                        f"Stopping container {cs.name}",
                        host=self.node,
                        field_path=f"spec.containers{{{cs.name}}}",
                    )
                await self._stop_instance(cs)
        self.k.forget(self)
        self.c.logs.forget_pod(self.ns, self.name)
        self.c.pod_ports.pop((self.ns, self.name), None)
        pod = self.c.store.get(PODS, self.ns, self.name)
        if remove and pod is not None and pod["metadata"]["uid"] == self.uid:
            self.c.api.remove(PODS, self.ns, self.name)
        self.c.nudge()

    async def _stop_instance(self, cs: CState) -> None:
        instance, cs.instance = cs.instance, None
        if instance is not None:
            try:
                await instance.stop()
            except Exception:
                log.exception("stopping container %s of %s/%s", cs.name, self.ns, self.name)
        self.c.logs.close((self.ns, self.name, cs.name))

    def _pod(self) -> Obj | None:
        pod = self.c.store.get(PODS, self.ns, self.name)
        if pod is None or pod["metadata"]["uid"] != self.uid:
            return None
        return pod

    def event(
        self, reason: str, message: str, *, warning: bool = False, cs: CState | None = None
    ) -> None:
        pod = self._pod()
        if pod is None:
            return
        field_path = None
        if cs is not None:
            field_path = f"spec.{'initContainers' if cs.init else 'containers'}{{{cs.name}}}"
        self.c.events.record(
            pod,
            reason,
            message,
            type_="Warning" if warning else "Normal",
            host=self.node,
            field_path=field_path,
        )

    async def sleep(self, sim_seconds: float, kind: str = ACTIVITY) -> None:
        """Wait on the simulated clock: an *activity* (a pull, an attach: slow work the
        event clock may jump over) or a *scheduled* wait (a back-off: a pod failing over
        and over is not provisioning, and must not fast-forward other sessions)."""
        await self.c.clock.wait_until(self.c.clock.now() + sim_seconds, kind=kind)

    # --- volumes ----------------------------------------------------------------------------
    async def _prepare_volumes(self) -> None:
        for vol in self.spec.get("volumes") or []:
            name = vol["name"]
            claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
            if claim:
                self._mounts[name] = await self._claim_dir(claim)
            elif "configMap" in vol:
                self._mounts[name] = self._config_map_dir(name, vol["configMap"])
            elif "hostPath" in vol:
                path = self.c.state_dir / "hostpath" / vol["hostPath"]["path"].lstrip("/")
                path.mkdir(parents=True, exist_ok=True)
                self._mounts[name] = path
            else:  # emptyDir, secret, projected, downwardAPI: a private directory
                path = self.c.state_dir / "pods" / self.uid / name
                path.mkdir(parents=True, exist_ok=True)
                self._mounts[name] = path

    async def _claim_dir(self, claim: str) -> Path:
        deadline = self.c.clock.now() + MOUNT_TIMEOUT_S
        while True:
            if self.c.clock.now() > deadline:
                deadline = self.c.clock.now() + MOUNT_TIMEOUT_S
                self.event(
                    "FailedMount",
                    f"Unable to attach or mount volumes: unmounted volumes=[{claim}], "
                    "unattached volumes=[], failed to process volumes=[]: timed out waiting "
                    "for the condition",
                    warning=True,
                )
            pvc = self.c.store.get(PVCS, self.ns, claim)
            if pvc is not None and (pvc.get("status") or {}).get("phase") == "Bound":
                pv = self.c.store.get(PVS, "", pvc["spec"].get("volumeName", ""))
                if pv is not None:
                    handle = (pv["spec"].get("csi") or {}).get("volumeHandle") or pv["metadata"][
                        "name"
                    ]
                    if is_single_node_volume(pv):
                        await self._attach(pv, claim)
                    else:
                        self._attach_event(
                            "SuccessfulAttachVolume",
                            f'AttachVolume.Attach succeeded for volume "{pv["metadata"]["name"]}"',
                        )
                    rate = pv_bytes_per_s(pv)
                    if rate is not None:
                        self._volume_rates[claim] = rate
                    return self.c.volume_dir(str(handle))
            await asyncio.sleep(0.05)

    async def _attach(self, pv: Obj, claim: str) -> None:
        """The attach/detach controller's part for a block volume, which attaches to one
        node at a time: wait while pods on the node it is attached to still use it
        (Multi-Attach error), then detach it there and attach it here (``ATTACH_S``). A
        pod on the node the volume is already attached to does not wait. Cancelled with
        the pod; the wait re-reports once a minute instead of spinning on events."""
        name = pv["metadata"]["name"]
        clock = self.c.clock
        reported = -MULTI_ATTACH_REPORT_S
        deadline = clock.now() + MOUNT_TIMEOUT_S
        while True:
            current = self.k.attachments.get(name)
            if current is not None and current[0] == self.node:
                if current[1] > clock.now():  # being attached for another pod here
                    await clock.wait_until(current[1])
                return
            users = [] if current is None else self._volume_users(name, current[0])
            if not users:
                break
            now = clock.now()
            if now - reported >= MULTI_ATTACH_REPORT_S:
                reported = now
                self._attach_event(
                    "FailedAttachVolume",
                    f'Multi-Attach error for volume "{name}" {self._users_text(users)}',
                    warning=True,
                )
            if now > deadline:
                deadline = now + MOUNT_TIMEOUT_S
                self.event(
                    "FailedMount",
                    f"Unable to attach or mount volumes: unmounted volumes=[{claim}], "
                    f"unattached volumes=[{claim}], failed to process volumes=[]: timed out "
                    "waiting for the condition",
                    warning=True,
                )
            await asyncio.sleep(0.05)
        ready_at = clock.now() + ATTACH_S
        self.k.attachments[name] = (self.node, ready_at)  # detached from the old node
        await clock.wait_until(ready_at)
        self._attach_event(
            "SuccessfulAttachVolume", f'AttachVolume.Attach succeeded for volume "{name}"'
        )

    def _volume_users(self, pv_name: str, node: str) -> list[tuple[str, str]]:
        """(namespace, name) of the other non-terminated pods on ``node`` whose claims are
        bound to ``pv_name``."""
        users = []
        for pod in self.c.store.list(PODS):
            meta = pod["metadata"]
            if (
                meta["uid"] == self.uid
                or pod["spec"].get("nodeName") != node
                or (pod.get("status") or {}).get("phase") in _TERMINAL
            ):
                continue
            for vol in pod["spec"].get("volumes") or []:
                claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
                pvc = self.c.store.get(PVCS, meta["namespace"], claim) if claim else None
                if pvc is not None and pvc["spec"].get("volumeName") == pv_name:
                    users.append((meta["namespace"], meta["name"]))
                    break
        return users

    def _users_text(self, users: list[tuple[str, str]]) -> str:
        """The attach/detach controller's wording: pod names from this pod's namespace only
        (kubernetes pkg/controller/volume/attachdetach/reconciler, reportMultiAttachError)."""
        local = [name for ns, name in users if ns == self.ns]
        others = len(users) - len(local)
        if not local:
            return f"Volume is already used by {others} pod(s) in different namespaces"
        text = f"Volume is already used by pod(s) {', '.join(local)}"
        return f"{text} and {others} pod(s) in different namespaces" if others else text

    def _attach_event(self, reason: str, message: str, *, warning: bool = False) -> None:
        pod = self._pod()
        if pod is not None:
            self.c.events.record(
                pod,
                reason,
                message,
                type_="Warning" if warning else "Normal",
                component=ATTACH_COMPONENT,
            )

    def _config_map_dir(self, name: str, source: Obj) -> Path:
        path = self.c.state_dir / "pods" / self.uid / name
        path.mkdir(parents=True, exist_ok=True)
        cm = self.c.store.get(CONFIGMAPS, self.ns, source.get("name", ""))
        data = (cm or {}).get("data") or {}
        items = source.get("items")
        pairs = (
            [(i["key"], i.get("path", i["key"])) for i in items]
            if items
            else [(k, k) for k in data]
        )
        for key, rel in pairs:
            if key in data:
                target = path / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(str(data[key]))
        return path

    def _mount_rates(self, cs: CState) -> dict[str, float]:
        """Container mount path -> throughput of the block volume behind it."""
        claims = {
            vol["name"]: vol["persistentVolumeClaim"]["claimName"]
            for vol in self.spec.get("volumes") or []
            if vol.get("persistentVolumeClaim")
        }
        out: dict[str, float] = {}
        for mount in cs.spec.get("volumeMounts") or []:
            rate = self._volume_rates.get(claims.get(mount["name"], ""))
            if rate is not None:
                out[mount["mountPath"]] = rate
        return out

    def _container_mounts(self, cs: CState) -> dict[str, Path]:
        out: dict[str, Path] = {}
        for mount in cs.spec.get("volumeMounts") or []:
            base = self._mounts.get(mount["name"])
            if base is None:
                continue
            path = base / mount["subPath"] if mount.get("subPath") else base
            path.mkdir(parents=True, exist_ok=True)
            out[mount["mountPath"]] = path
        return out

    # --- image pull ------------------------------------------------------------------------
    async def _pull(self, cs: CState) -> ImageEntry:
        image = cs.spec["image"]
        entry = self.c.images.lookup(image)
        cache = self.k.node_images.setdefault(self.node, set())
        if cs.spec.get("imagePullPolicy") != "Always" and image in cache and entry is not None:
            self.event("Pulled", f'Container image "{image}" already present on machine', cs=cs)
            return entry
        backoff = BACKOFF_INITIAL_S
        while True:
            self.event("Pulling", f'Pulling image "{image}"', cs=cs)
            error = pull_error(self.c.store, self.ns, self.spec, image, entry, self.c.pull_auth)
            if error is None and entry is not None:
                # with every layer already on the node (pullPolicy Always after an earlier
                # pull, e.g. a pre-pull pod) only the manifest is fetched
                cached = image in cache
                seconds = MANIFEST_CHECK_S if cached else entry.size_bytes / PULL_BYTES_PER_S
                # containerd shares an in-flight pull of the same image on the node: a
                # second pull waits for the layers the first is fetching
                key = (self.node, image)
                now = self.c.clock.now()
                in_flight = self.k.pulls_in_flight.get(key)
                if not cached and in_flight is not None and in_flight > now:
                    seconds = in_flight - now
                elif not cached:
                    self.k.pulls_in_flight[key] = now + seconds
                await self.sleep(seconds)
                cache.add(image)
                self.k.record_image(self.node, image, entry.size_bytes)
                if self.k.pulls_in_flight.get(key, now + 1) <= self.c.clock.now():
                    self.k.pulls_in_flight.pop(key, None)
                took = go_duration(seconds)
                self.event(
                    "Pulled",
                    f'Successfully pulled image "{image}" in {took} ({took} '
                    f"including waiting). Image size: {entry.size_bytes} bytes.",
                    cs=cs,
                )
                return entry
            self.event("Failed", f'Failed to pull image "{image}": {error}', warning=True, cs=cs)
            self.event("Failed", "Error: ErrImagePull", warning=True, cs=cs)
            cs.state = {"waiting": {"reason": "ErrImagePull", "message": error}}
            self.publish()
            await self.sleep(1, SCHEDULED)
            cs.state = {
                "waiting": {
                    "reason": "ImagePullBackOff",
                    "message": f'Back-off pulling image "{image}": ErrImagePull: {error}',
                }
            }
            self.publish()
            self.event("BackOff", f'Back-off pulling image "{image}"', cs=cs)
            self.event("Failed", "Error: ImagePullBackOff", warning=True, cs=cs)
            await self.sleep(backoff, SCHEDULED)
            backoff = min(backoff * 2, BACKOFF_MAX_S)
            entry = self.c.images.lookup(image)

    # --- environment -----------------------------------------------------------------------
    def _env_builder(self) -> EnvBuilder:
        return EnvBuilder(
            store=self.c.store,
            service_ports=self.c.service_ports,
            api_address=self.c.api_address,
            ns=self.ns,
            name=self.name,
            uid=self.uid,
            node=self.node,
            pod_ip=self.pod_ip,
            spec=self.spec,
        )

    async def _config(self, cs: CState) -> dict[str, str]:
        while True:
            try:
                return self._env_builder().build(cs.spec)
            except ContainerConfigError as problem:
                cs.state = {
                    "waiting": {"reason": "CreateContainerConfigError", "message": str(problem)}
                }
                self.publish()
                self.event("Failed", f"Error: {problem}", warning=True, cs=cs)
                await self.sleep(BACKOFF_INITIAL_S, SCHEDULED)

    def _gpu(self) -> tuple[str | None, int]:
        node = self.c.store.get(NODES, "", self.node)
        labels = (node or {}).get("metadata", {}).get("labels") or {}
        gpu = gpu_model(labels.get("node.kubernetes.io/instance-type", ""))
        count = 0
        for c in self.spec["containers"]:
            limits = (c.get("resources") or {}).get("limits") or {}
            count += int(quantity.parse(limits.get("nvidia.com/gpu", 0)))
        return gpu, count

    def _context(self, cs: CState, env: dict[str, str]) -> ContainerContext:
        key = (self.ns, self.name, cs.name)
        gpu, count = self._gpu()
        ports = [int(p["containerPort"]) for p in cs.spec.get("ports") or []]
        return ContainerContext(
            image=cs.spec["image"],
            name=cs.name,
            pod=self.name,
            namespace=self.ns,
            env=env,
            command=list(cs.spec.get("command") or []),
            args=list(cs.spec.get("args") or []),
            mounts=self._container_mounts(cs),
            ports=ports,
            clock=self.c.clock,
            log=lambda line: self.c.logs.write(key, line),
            gpu=gpu,
            gpu_count=count,
            resolve=self.c.resolve,
            extra={
                "nim_overrides": self.c.nim_overrides,
                "mount_bytes_per_s": self._mount_rates(cs),
            },
        )

    # --- containers ------------------------------------------------------------------------
    async def _start(self, cs: CState) -> tuple[Container | None, str | None]:
        entry = await self._pull(cs)
        env = await self._config(cs)
        ctx = self._context(cs, env)
        self.c.logs.start((self.ns, self.name, cs.name))
        instance = None
        starting: asyncio.Future[int | None] | None = None
        try:
            instance = entry.factory(ctx)
            # Shielded: a cancellation inside the container's own start (e.g. in the middle
            # of loop.create_server) would leave a bound, registered socket nobody owns.
            starting = asyncio.ensure_future(instance.start())
            port = await asyncio.shield(starting)
        except asyncio.CancelledError:
            # the pod is being stopped while this container starts: let the start finish,
            # stop what it opened, then let the cancellation through
            if instance is not None:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    if starting is not None:
                        await starting
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.shield(instance.stop())
            raise
        except Exception as exc:  # noqa: BLE001 - the image's code failed: a container error
            log.warning(
                "container %s of %s/%s failed to start: %s", cs.name, self.ns, self.name, exc
            )
            self.c.logs.write((self.ns, self.name, cs.name), f"error: {exc}")
            return None, str(exc)
        cs.instance = instance
        cs.port = port
        cs.container_id = "cri-o://" + self.uid.replace("-", "") + f"{cs.restarts:08x}"
        if port is not None:
            ports = self.c.pod_ports.setdefault((self.ns, self.name), {})
            for p in cs.spec.get("ports") or []:
                ports[int(p["containerPort"])] = port
                if p.get("name"):
                    ports[str(p["name"])] = port
        cs.state = {"running": {"startedAt": self.c.store.now_iso()}}
        cs.started = not cs.init and "startupProbe" not in cs.spec
        cs.ready = False
        self.event("Created", f"Created container: {cs.name}", cs=cs)
        self.event("Started", f"Started container {cs.name}", cs=cs)
        if entry.name == UNEMULATED:
            self.event(
                "NotEmulated",
                f'The simulator does not run image "{cs.spec["image"]}": the container is '
                "Running and does nothing (no process, no open port)",
                warning=True,
                cs=cs,
            )
        self.publish()
        return instance, None

    async def _run_once(self, cs: CState) -> int:
        started_at = self.c.store.now_iso()
        instance, error = await self._start(cs)
        if instance is None:
            code, reason = 128, "StartError"
            message = error
        else:
            code, reason = await self._supervise(cs, instance)
            message = None
            started_at = cs.state.get("running", {}).get("startedAt", started_at)
            await self._stop_instance(cs)
        ports = self.c.pod_ports.get((self.ns, self.name))
        if ports is not None and cs.port is not None:
            for k in [k for k, v in ports.items() if v == cs.port]:
                del ports[k]
        cs.port = None
        cs.ready = False
        cs.started = False
        terminated: Obj = {
            "exitCode": code,
            "reason": reason,
            "startedAt": started_at,
            "finishedAt": self.c.store.now_iso(),
            "containerID": cs.container_id,
        }
        if message:
            terminated["message"] = message
        cs.state = {"terminated": terminated}
        cs.last_state = {"terminated": terminated}
        self.publish()
        return code

    def _will_restart(self, code: int, init: bool) -> bool:
        policy = self.spec.get("restartPolicy", "Always")
        if init:
            return code != 0 and policy != "Never"
        return policy == "Always" or (policy == "OnFailure" and code != 0)

    async def _backoff(self, cs: CState, attempt: int) -> None:
        cs.restarts += 1
        delay = 0.0 if attempt == 0 else min(BACKOFF_INITIAL_S * 2 ** (attempt - 1), BACKOFF_MAX_S)
        if delay <= 0:
            return
        ident = f"{self.name}_{self.ns}({self.uid})"
        cs.state = {
            "waiting": {
                "reason": "CrashLoopBackOff",
                "message": f"back-off {go_duration(delay)} restarting failed "
                f"container={cs.name} pod={ident}",
            }
        }
        self.publish()
        self.event(
            "BackOff",
            f"Back-off restarting failed container {cs.name} in pod {ident}",
            warning=True,
            cs=cs,
        )
        await self.sleep(delay, SCHEDULED)

    async def _run_init(self, cs: CState) -> bool:
        attempt = 0
        while True:
            code = await self._run_once(cs)
            if code == 0:
                cs.state["terminated"]["reason"] = "Completed"
                self.publish()
                return True
            if not self._will_restart(code, True):
                return False
            await self._backoff(cs, attempt)
            attempt += 1

    async def _container_loop(self, cs: CState) -> None:
        attempt = 0
        while True:
            began = self.c.clock.now()
            code = await self._run_once(cs)
            if not self._will_restart(code, False):
                return
            if self.c.clock.now() - began > BACKOFF_RESET_S:
                attempt = 0
            await self._backoff(cs, attempt)
            attempt += 1

    async def _supervise(self, cs: CState, instance: Container) -> tuple[int, str]:
        """Wait for exit while running probes; returns (exit code, terminated reason)."""
        clock = self.c.clock
        t0 = clock.now()
        probes = {
            kind: {**PROBE_DEFAULTS, **cs.spec[f"{kind}Probe"]}
            for kind in ("startup", "liveness", "readiness")
            if f"{kind}Probe" in cs.spec
        }
        due = {kind: t0 + float(p["initialDelaySeconds"]) for kind, p in probes.items()}
        fails = dict.fromkeys(probes, 0)
        oks = dict.fromkeys(probes, 0)
        if "readiness" not in probes and cs.started:
            cs.ready = True
            self.publish()
        limit = ((cs.spec.get("resources") or {}).get("limits") or {}).get("memory")
        limit_bytes = int(quantity.parse(limit)) if limit is not None else None
        oom_at = t0 + OOM_CHECK_AFTER_S if limit_bytes is not None else None
        waiter = asyncio.ensure_future(instance.wait())
        try:
            while True:
                if "startup" in probes and not cs.started:
                    active = ["startup"]
                else:
                    active = [k for k in ("liveness", "readiness") if k in probes]
                times = [due[k] for k in active] + ([oom_at] if oom_at is not None else [])
                # the next probe is a sample the event clock stops at (never jumped over);
                # with nothing to probe, only the container's exit is awaited
                waits: set[asyncio.Future[Any]] = {waiter}
                if times:
                    waits.add(asyncio.ensure_future(clock.wait_until(min(times), kind=SAMPLE)))
                done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for tick in pending - {waiter}:
                    tick.cancel()
                if waiter in done:
                    code = waiter.result()
                    return code, "Completed" if code == 0 else "Error"
                now = clock.now()
                if oom_at is not None and now >= oom_at and limit_bytes is not None:
                    oom_at = None
                    need = int(getattr(instance, "required_memory_bytes", 0) or 0)
                    if need > limit_bytes:
                        self.c.logs.write((self.ns, self.name, cs.name), "Killed")
                        return 137, "OOMKilled"
                for kind in active:
                    if now < due[kind]:
                        continue
                    probe = probes[kind]
                    due[kind] = now + float(probe["periodSeconds"])
                    ok, message = await run_probe(
                        probe,
                        session=self.k.session(),
                        clock=clock,
                        pod_ip=self.pod_ip,
                        local_port=cs.port,
                        instance=instance,
                    )
                    verdict = self._probe_result(cs, kind, probe, ok, message, fails, oks)
                    if verdict is not None:
                        return verdict
                    if kind == "startup" and cs.started:
                        for other in ("liveness", "readiness"):
                            if other in due:
                                due[other] = max(due[other], clock.now())
                        break
        finally:
            if not waiter.done():
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter

    def _probe_result(
        self,
        cs: CState,
        kind: str,
        probe: Obj,
        ok: bool,
        message: str,
        fails: dict[str, int],
        oks: dict[str, int],
    ) -> tuple[int, str] | None:
        title = kind.capitalize()
        if ok:
            fails[kind] = 0
            oks[kind] += 1
            if kind == "startup":
                cs.started = True
                if "readinessProbe" not in cs.spec:
                    cs.ready = True
                self.publish()
            elif (
                kind == "readiness"
                and oks[kind] >= int(probe["successThreshold"])
                and (not cs.ready)
            ):
                cs.ready = True
                self.publish()
            return None
        oks[kind] = 0
        fails[kind] += 1
        self.event("Unhealthy", f"{title} probe failed: {message}", warning=True, cs=cs)
        if fails[kind] < int(probe["failureThreshold"]):
            return None
        if kind == "readiness":
            if cs.ready:
                cs.ready = False
                self.publish()
            return None
        self.event("Killing", f"Container {cs.name} failed {kind} probe, will be restarted", cs=cs)
        return 137, "Error"

    # --- status -----------------------------------------------------------------------------
    def _condition(self, kind: str, ok: bool, reason: str | None = None) -> Obj:
        value = "True" if ok else "False"
        last = self._transitions.get(kind)
        if last is None or last[0] != value:
            last = (value, self.c.store.now_iso())
            self._transitions[kind] = last
        cond: Obj = {
            "type": kind,
            "status": value,
            "lastProbeTime": None,
            "lastTransitionTime": last[1],
        }
        if reason and not ok:
            cond["reason"] = reason
        return cond

    def phase(self) -> str:
        if self.final_phase:
            return self.final_phase
        if self.initialized and any(cs.container_id for cs in self.mains):
            return "Running"
        return "Pending"

    def publish(self) -> None:
        ready = self.initialized and all(cs.ready for cs in self.mains)
        phase = self.phase()
        if phase in ("Succeeded", "Failed"):
            ready = False
        containers_reason = "PodCompleted" if phase == "Succeeded" else "ContainersNotReady"
        status: Obj = {
            "phase": phase,
            "conditions": [
                self._condition("PodReadyToStartContainers", self.sandbox_ready),
                self._condition("Initialized", self.initialized, "ContainersNotInitialized"),
                self._condition("Ready", ready, containers_reason),
                self._condition("ContainersReady", ready, containers_reason),
                self._condition("PodScheduled", True),
            ],
            "hostIP": self.node,
            "hostIPs": [{"ip": self.node}],
            "podIP": self.pod_ip,
            "podIPs": [{"ip": self.pod_ip}],
            "startTime": self.start_time,
            "qosClass": qos_class(self.spec),
            "containerStatuses": [cs.status() for cs in self.mains],
        }
        if self.inits:
            status["initContainerStatuses"] = [cs.status() for cs in self.inits]

        def write(pod: Obj) -> None:
            pod["status"] = status

        if self._pod() is not None:
            self.c.store.mutate(PODS, self.ns, self.name, write)
