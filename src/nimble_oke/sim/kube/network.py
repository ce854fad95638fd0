"""Services: Endpoints, a real local TCP forwarder per service port (round-robin over ready
pods), and LoadBalancer provisioning through a :class:`LoadBalancerProvisioner`.

A forwarder's local port is published in the annotation ``sim.nimble-oke.io/local-ports``
(JSON ``{"<service port>": <local port>}``); LoadBalancer Services also get, once the load
balancer is "provisioned", ``status.loadBalancer.ingress[0]`` = ip ``127.0.0.1`` with
``ports[i].port`` the real local port of ``spec.ports[i]``: the advertised address answers
(every Service has its own local port, so several clusters' LBs never collide).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from nimble_oke.sim.clock import SimClock

from .cluster import ENDPOINTS, PODS, SERVICES, Cluster
from .provisioners import LoadBalancerRequest
from .resources import ResourceType
from .store import Obj

log = logging.getLogger(__name__)

LOCAL_PORTS_ANNOTATION = "sim.nimble-oke.io/local-ports"
SHAPE = "service.beta.kubernetes.io/oci-load-balancer-shape"
FLEX_MIN = "service.beta.kubernetes.io/oci-load-balancer-shape-flex-min"
FLEX_MAX = "service.beta.kubernetes.io/oci-load-balancer-shape-flex-max"
TAGS = "oci.oraclecloud.com/initial-freeform-tags-override"


# Real seconds a connection counts as busy after its last byte: tokens of a streamed
# completion arrive tens of milliseconds apart.
TRAFFIC_HOLD_S = 0.1


class _Exchange:
    """One connection's request/response rhythm, as the simulated clock sees it: busy from
    a request's first byte until its answer starts, then held while bytes keep flowing (an
    inference request in flight is work the clock does not jump over)."""

    def __init__(self, clock: SimClock | None) -> None:
        self.clock = clock
        self.waiting = False

    def sent(self) -> None:
        if self.clock is None:
            return
        if not self.waiting:
            self.waiting = True
            self.clock.enter_busy()
        self.clock.hold(TRAFFIC_HOLD_S)

    def answered(self) -> None:
        if self.clock is None:
            return
        if self.waiting:
            self.waiting = False
            self.clock.exit_busy()
        self.clock.hold(TRAFFIC_HOLD_S)

    def close(self) -> None:
        if self.waiting and self.clock is not None:
            self.waiting = False
            self.clock.exit_busy()


class Forwarder:
    """A TCP listener on 127.0.0.1 that pipes each connection to one backend port."""

    def __init__(self, backends: Callable[[], list[int]], clock: SimClock | None = None) -> None:
        self.backends = backends
        self.clock = clock
        self.port = 0
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()
        self._rr = itertools.count()

    async def start(self, preferred_port: int = 0) -> int:
        """Listen on ``preferred_port`` when it is free, else on any free port."""
        try:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", preferred_port)
        except OSError:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            pass
        finally:
            self._conns.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        backends = self.backends()
        if not backends:
            return  # no ready endpoint: the connection is closed, as kube-proxy rejects it
        port = backends[next(self._rr) % len(backends)]
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return
        exchange = _Exchange(self.clock)
        try:
            await asyncio.gather(
                _pipe(reader, up_writer, exchange.sent), _pipe(up_reader, writer, exchange.answered)
            )
        finally:
            exchange.close()
            up_writer.close()
            with contextlib.suppress(Exception):
                await up_writer.wait_closed()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._conns):
            task.cancel()
        if self._conns:
            await asyncio.gather(*self._conns, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None


async def _pipe(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    on_data: Callable[[], None] = lambda: None,
) -> None:
    try:
        while data := await reader.read(65536):
            on_data()
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


def _pod_ready(pod: Obj) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def _target_port(pod: Obj, target: int | str) -> int | None:
    if isinstance(target, int) or str(target).isdigit():
        return int(target)
    for c in pod["spec"].get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") == target:
                return int(p["containerPort"])
    return None


class ServiceController:
    def __init__(self, cluster: Cluster) -> None:
        self.c = cluster
        self._forwarders: dict[tuple[str, str, int], Forwarder] = {}
        self._starting: dict[tuple[str, str, int], asyncio.Task[None]] = {}
        self._lbs: dict[str, asyncio.Task[None]] = {}  # service uid -> provisioning task
        self._tasks: set[asyncio.Task[None]] = set()
        cluster.api.delete_hooks.append(self._on_delete)

    def _selected_pods(self, svc: Obj) -> list[Obj]:
        selector = svc["spec"].get("selector")
        if not selector:
            return []
        ns = svc["metadata"]["namespace"]
        return [
            p
            for p in self.c.store.list(PODS, ns)
            if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
            and (p.get("status") or {}).get("podIP")
        ]

    def backends(self, ns: str, name: str, port: int) -> list[int]:
        svc = self.c.store.get(SERVICES, ns, name)
        if svc is None:
            return []
        spec_port = next((p for p in svc["spec"].get("ports") or [] if p.get("port") == port), None)
        if spec_port is None:
            return []
        out = []
        for pod in self._selected_pods(svc):
            if not _pod_ready(pod):
                continue
            target = _target_port(pod, spec_port.get("targetPort", port))
            local = (self.c.pod_ports.get((ns, pod["metadata"]["name"])) or {}).get(
                target if target is not None else -1
            )
            if local is not None:
                out.append(local)
        return out

    def reconcile(self) -> None:
        seen: set[tuple[str, str, int]] = set()
        for svc in self.c.store.list(SERVICES):
            meta, spec = svc["metadata"], svc["spec"]
            ns, name = meta["namespace"], meta["name"]
            if spec.get("selector"):
                self._endpoints(svc)
            if spec.get("type") == "ExternalName" or spec.get("clusterIP") == "None":
                continue
            for port in spec.get("ports") or []:
                key = (ns, name, int(port["port"]))
                seen.add(key)
                if key not in self._forwarders and key not in self._starting:
                    task = asyncio.create_task(self._start_forwarder(key))
                    self._starting[key] = task
            if spec.get("type") == "LoadBalancer" and meta["uid"] not in self._lbs:
                ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress")
                if not ingress:
                    self._lbs[meta["uid"]] = asyncio.create_task(self._provision_lb(svc))
        for key in [k for k in self._forwarders if k not in seen]:
            self._spawn(self._forwarders.pop(key).close())
            self._unpublish(key)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _start_forwarder(self, key: tuple[str, str, int]) -> None:
        ns, name, port = key
        forwarder = Forwarder(lambda: self.backends(ns, name, port), self.c.clock)
        svc = self.c.store.get(SERVICES, ns, name)
        is_lb = bool(svc and svc["spec"].get("type") == "LoadBalancer")
        try:
            local = await forwarder.start(port if is_lb and self.c.lb_bind_service_port else 0)
        finally:
            self._starting.pop(key, None)
        self._forwarders[key] = forwarder
        self.c.service_ports.setdefault((ns, name), {})[port] = local
        self._publish(ns, name)

    def _publish(self, ns: str, name: str) -> None:
        ports = self.c.service_ports.get((ns, name)) or {}

        def annotate(o: Obj) -> None:
            annotations = o["metadata"].setdefault("annotations", {})
            annotations[LOCAL_PORTS_ANNOTATION] = json.dumps(
                {str(k): v for k, v in sorted(ports.items())}
            )

        self.c.store.mutate(SERVICES, ns, name, annotate)

    def _unpublish(self, key: tuple[str, str, int]) -> None:
        ports = self.c.service_ports.get(key[:2])
        if ports is not None:
            ports.pop(key[2], None)
            if not ports:
                del self.c.service_ports[key[:2]]

    def _endpoints(self, svc: Obj) -> None:
        meta = svc["metadata"]
        ns, name = meta["namespace"], meta["name"]
        ready: list[Obj] = []
        not_ready: list[Obj] = []
        ports: list[Obj] = []
        for pod in self._selected_pods(svc):
            pm = pod["metadata"]
            address = {
                "ip": pod["status"]["podIP"],
                "nodeName": pod["spec"].get("nodeName"),
                "targetRef": {"kind": "Pod", "name": pm["name"], "namespace": ns, "uid": pm["uid"]},
            }
            (ready if _pod_ready(pod) else not_ready).append(address)
            if not ports:
                for p in svc["spec"].get("ports") or []:
                    target = _target_port(pod, p.get("targetPort", p["port"]))
                    entry = {"port": target or p["port"], "protocol": p.get("protocol", "TCP")}
                    if p.get("name"):
                        entry["name"] = p["name"]
                    ports.append(entry)
        subsets: list[Obj] = []
        if ready or not_ready:
            subset: Obj = {"ports": ports}
            if ready:
                subset["addresses"] = ready
            if not_ready:
                subset["notReadyAddresses"] = not_ready
            subsets = [subset]
        existing = self.c.store.get(ENDPOINTS, ns, name)
        if existing is None:
            self.c.store.create(
                ENDPOINTS,
                {
                    "metadata": {
                        "name": name,
                        "namespace": ns,
                        "labels": dict(meta.get("labels") or {}),
                    },
                    "subsets": subsets,
                },
            )
        elif existing.get("subsets") != subsets:

            def update(o: Obj) -> None:
                o["subsets"] = subsets

            self.c.store.mutate(ENDPOINTS, ns, name, update)

    async def _provision_lb(self, svc: Obj) -> None:
        meta = svc["metadata"]
        ns, name = meta["namespace"], meta["name"]
        annotations = meta.get("annotations") or {}
        self.c.events.record(
            svc, "EnsuringLoadBalancer", "Ensuring load balancer", component="service-controller"
        )
        # Without the annotation OKE's cloud controller uses the fixed "100Mbps" shape.
        shape = annotations.get(SHAPE, "100Mbps")
        if shape == "flexible" and not (annotations.get(FLEX_MIN) and annotations.get(FLEX_MAX)):
            self.c.events.record(
                svc,
                "SyncLoadBalancerFailed",
                f"Error syncing load balancer: failed to ensure load balancer: {SHAPE}=flexible "
                f"requires {FLEX_MIN} and {FLEX_MAX} to be set",
                type_="Warning",
                component="service-controller",
            )
            return
        tags: dict[str, str] = {}
        with contextlib.suppress(ValueError, AttributeError):
            tags = {str(k): str(v) for k, v in json.loads(annotations.get(TAGS, "{}")).items()}
        request = LoadBalancerRequest(
            namespace=ns,
            name=name,
            uid=meta["uid"],
            ports=[int(p["port"]) for p in svc["spec"].get("ports") or []],
            shape=shape,
            min_mbps=int(annotations[FLEX_MIN]) if annotations.get(FLEX_MIN) else None,
            max_mbps=int(annotations[FLEX_MAX]) if annotations.get(FLEX_MAX) else None,
            freeform_tags=tags,
        )
        try:
            await self.c.clock.wait_until(self.c.clock.now() + self.c.lb_provision_seconds)
            await self.c.lb_provisioner.ensure_load_balancer(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a provisioner failure becomes an Event
            self.c.events.record(
                svc,
                "SyncLoadBalancerFailed",
                f"Error syncing load balancer: failed to ensure load balancer: {exc}",
                type_="Warning",
                component="service-controller",
            )
            return
        current = self.c.store.get(SERVICES, ns, name)
        if current is None or current["metadata"]["uid"] != meta["uid"]:
            return

        local = await self._local_ports(ns, name, request.ports)

        def publish(o: Obj) -> None:
            o.setdefault("status", {})["loadBalancer"] = {
                "ingress": [
                    {
                        "ip": "127.0.0.1",
                        "ipMode": "VIP",
                        "ports": [{"port": p, "protocol": "TCP"} for p in local],
                    }
                ]
            }

        self.c.store.mutate(SERVICES, ns, name, publish)
        self.c.events.record(
            current, "EnsuredLoadBalancer", "Ensured load balancer", component="service-controller"
        )

    async def _local_ports(self, ns: str, name: str, ports: list[int]) -> list[int]:
        """The real local port answering for each service port, in ``spec.ports`` order:
        what the simulated LB advertises (``ingress[0].ip`` 127.0.0.1 + ``ingress[0].ports``),
        so the address it shows is one that answers. The forwarders start within
        milliseconds of the Service; a port without one yet is waited for briefly."""
        for _ in range(200):
            known = self.c.service_ports.get((ns, name)) or {}
            if all(p in known for p in ports):
                return [known[p] for p in ports]
            await asyncio.sleep(0.01)
        known = self.c.service_ports.get((ns, name)) or {}
        return [known.get(p, p) for p in ports]

    def _on_delete(self, rt: ResourceType, obj: Obj) -> None:
        if rt.kind != "Service":
            return
        meta = obj["metadata"]
        ns, name = meta["namespace"], meta["name"]
        if self.c.store.get(ENDPOINTS, ns, name) is not None:
            self.c.api.remove(ENDPOINTS, ns, name)
        task = self._lbs.pop(meta["uid"], None)
        if task is not None:
            task.cancel()
        if obj["spec"].get("type") == "LoadBalancer":
            self._spawn(self.c.lb_provisioner.delete_load_balancer(ns, name, meta["uid"]))
        for key in [k for k in self._forwarders if k[:2] == (ns, name)]:
            self._spawn(self._forwarders.pop(key).close())
            self._unpublish(key)

    async def close(self) -> None:
        for task in [*self._lbs.values(), *self._starting.values()]:
            task.cancel()
        await asyncio.gather(*self._lbs.values(), *self._starting.values(), return_exceptions=True)
        for forwarder in self._forwarders.values():
            await forwarder.close()
        self._forwarders.clear()
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
