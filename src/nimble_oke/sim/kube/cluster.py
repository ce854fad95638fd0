"""What every controller shares: store, verbs, clock, events, logs, images, directories."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nimble_oke.sim.clock import SCHEDULED, SimClock, Timer

from .api import Api
from .events import EventRecorder
from .images import ImageRegistry
from .logs import LogBook
from .provisioners import LoadBalancerProvisioner, PullAuth, VolumeProvisioner
from .resources import by_name
from .store import Obj, Store

NODES = by_name("Node")
PODS = by_name("Pod")
PVCS = by_name("PersistentVolumeClaim")
PVS = by_name("PersistentVolume")
STORAGE_CLASSES = by_name("StorageClass")
SERVICES = by_name("Service")
ENDPOINTS = by_name("Endpoints")
SECRETS = by_name("Secret")
CONFIGMAPS = by_name("ConfigMap")
NAMESPACES = by_name("Namespace")
DEPLOYMENTS = by_name("Deployment")
REPLICASETS = by_name("ReplicaSet")
STATEFULSETS = by_name("StatefulSet")
DAEMONSETS = by_name("DaemonSet")
JOBS = by_name("Job")
CRONJOBS = by_name("CronJob")
SERVICE_ACCOUNTS = by_name("ServiceAccount")


@dataclass
class Cluster:
    store: Store
    api: Api
    clock: SimClock
    events: EventRecorder
    logs: LogBook
    images: ImageRegistry
    state_dir: Path
    volume_provisioner: VolumeProvisioner
    lb_provisioner: LoadBalancerProvisioner
    pull_auth: PullAuth
    lb_provision_seconds: float
    # Serve a LoadBalancer Service on 127.0.0.1:<service port> when that port is free.
    lb_bind_service_port: bool = False
    # (namespace, pod name) -> {declared container port: real local port}
    pod_ports: dict[tuple[str, str], dict[int | str, int]] = field(default_factory=dict)
    # (namespace, service name) -> {service port: local forwarder port}
    service_ports: dict[tuple[str, str], dict[int, int]] = field(default_factory=dict)
    wake: Any = None  # callable: nudge the controller loop
    api_address: str = "127.0.0.1:0"  # host:port of the API server (KUBERNETES_SERVICE_*)
    # Extra NimSettings fields for NIM containers (e.g. download_bytes_per_s for a slow NGC).
    nim_overrides: dict[str, Any] = field(default_factory=dict)
    # Where volume data lives, by volume handle (default ``state_dir/volumes``). Shared by
    # every cluster of a simulated cloud: a block volume outlives the cluster that made it
    # and can be attached to the next one (a kept cache).
    volumes_root: Path | None = None
    # controller wake-ups on the simulated clock, by key (see wake_at)
    timers: dict[str, Timer] = field(default_factory=dict)

    def resolve(self, host: str, port: int) -> tuple[str, int]:
        """In-cluster ``svc[.ns[.svc.cluster.local]]:port`` -> the local forwarder address
        (unknown names pass through unchanged)."""
        parts = host.split(".")
        if len(parts) == 1:
            candidates = [(ns, parts[0]) for ns, name in self.service_ports if name == parts[0]]
        else:
            candidates = [(parts[1], parts[0])]
        for key in candidates:
            local = (self.service_ports.get(key) or {}).get(port)
            if local is not None:
                return "127.0.0.1", local
        return host, port

    def owner_ref(self, owner: Obj, controller: bool = True) -> Obj:
        meta = owner["metadata"]
        return {
            "apiVersion": owner["apiVersion"],
            "kind": owner["kind"],
            "name": meta["name"],
            "uid": meta["uid"],
            "controller": controller,
            "blockOwnerDeletion": True,
        }

    def owned_by(self, obj: Obj, owner: Obj) -> bool:
        uid = owner["metadata"]["uid"]
        return any(
            r.get("uid") == uid and r.get("controller")
            for r in obj["metadata"].get("ownerReferences") or []
        )

    def volume_dir(self, handle: str) -> Path:
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in handle)
        path = (self.volumes_root or self.state_dir / "volumes") / safe
        path.mkdir(parents=True, exist_ok=True)
        return path

    def nudge(self) -> None:
        if self.wake is not None:
            self.wake()

    def wake_at(self, key: str, sim_time: float | None, kind: str = SCHEDULED) -> None:
        """Run the controllers when simulated time reaches ``sim_time`` (a CronJob's next
        run, a Job's deadline, an HPA's next sync): one timer per ``key``, replaced when the
        time changes, cancelled with None. A time-driven controller registers its next
        moment here, so the clock's jumps and ``advance`` stop there, in order. Call from
        the simulator's loop."""
        current = self.timers.get(key)
        if current is not None and not current.done and sim_time == current.due:
            return
        if current is not None:
            current.cancel()
            del self.timers[key]
        if sim_time is None:
            return
        loop = asyncio.get_running_loop()

        def fire() -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self.nudge)

        self.timers[key] = self.clock.schedule(sim_time, kind, fire)

    def sim_time_of(self, wall: float) -> float:
        """Simulated seconds (``clock.now()`` scale) of a simulated Unix time."""
        return wall - self.clock.epoch

    def cancel_timers(self) -> None:
        for timer in self.timers.values():
            timer.cancel()
        self.timers.clear()
