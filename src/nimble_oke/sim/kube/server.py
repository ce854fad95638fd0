"""The HTTP layer of the simulated API server (aiohttp): discovery, generic resource
handlers for every registered type, watch streams, pod logs, Table output for kubectl."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

from . import apierrors, resources, tables
from .api import Api
from .logs import LogBook
from .resources import ResourceType
from .selectors import parse_field_selector, parse_label_selector
from .store import Obj, Watcher, WatchEvent

log = logging.getLogger(__name__)

# The Kubernetes version the simulated control plane reports (OKE, reference/oke.md).
KUBE_VERSION = "v1.35.2"

TokenCheck = Callable[[str], bool]


@dataclass
class Target:
    rt: ResourceType
    namespace: str | None  # None: all namespaces (or cluster-scoped)
    name: str | None
    subresource: str


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
    )


def _error(exc: apierrors.ApiError) -> web.Response:
    return _json(exc.status(), exc.code)


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


class ApiServer:
    """Builds the aiohttp application; ``host_port`` is filled in once listening."""

    def __init__(self, api: Api, logs: LogBook, require_token: TokenCheck | None = None) -> None:
        self.api = api
        self.store = api.store
        self.logs = logs
        self.require_token = require_token
        self.host_port = "127.0.0.1:0"
        self.stopping = asyncio.Event()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_get("/version", self._version)
        app.router.add_get("/version/", self._version)
        for probe in ("/healthz", "/readyz", "/livez"):
            app.router.add_get(probe, self._ok)
        app.router.add_get("/api", self._api_versions)
        app.router.add_get("/api/", self._api_versions)
        app.router.add_get("/apis", self._api_groups)
        app.router.add_get("/apis/", self._api_groups)
        app.router.add_route("*", "/{tail:.*}", self._resource)
        return app

    # --- middleware ----------------------------------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.require_token is not None and request.path not in ("/healthz", "/livez", "/readyz"):
            header = request.headers.get("Authorization", "")
            token = header[7:] if header.startswith("Bearer ") else ""
            if not token or not self.require_token(token):
                return _json(apierrors.ApiError(401, "Unauthorized", "Unauthorized").status(), 401)
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except apierrors.ApiError as exc:
            return _error(exc)
        except web.HTTPException:
            raise
        except Exception as exc:  # a bug in the simulator: answer like the real server would
            log.exception("internal error on %s %s", request.method, request.path)
            return _error(apierrors.ApiError(500, "InternalError", f"Internal error: {exc}"))

    # --- discovery -----------------------------------------------------------------------------
    async def _ok(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _version(self, _request: web.Request) -> web.Response:
        major, minor, _ = KUBE_VERSION[1:].split(".")
        return _json(
            {
                "major": major,
                "minor": minor,
                "gitVersion": KUBE_VERSION,
                "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean",
                "buildDate": "2026-04-28T00:00:00Z",
                "goVersion": "go1.24.2",
                "compiler": "gc",
                "platform": "linux/amd64",
            }
        )

    async def _api_versions(self, _request: web.Request) -> web.Response:
        return _json(
            {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": self.host_port}
                ],
            }
        )

    def _group(self, name: str, versions: list[str]) -> Obj:
        gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": name,
            "versions": gvs,
            "preferredVersion": gvs[0],
        }

    async def _api_groups(self, _request: web.Request) -> web.Response:
        return _json(
            {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [self._group(g, vs) for g, vs in resources.groups().items()],
            }
        )

    def _resource_list(self, group: str, version: str) -> web.Response:
        types = resources.in_group_version(group, version)
        if not types:
            raise apierrors.ApiError(
                404, "NotFound", "the server could not find the requested resource"
            )
        return _json(
            {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": f"{group}/{version}" if group else version,
                "resources": [entry for rt in types for entry in rt.discovery()],
            }
        )

    # --- routing -------------------------------------------------------------------------------
    def _parse(self, path: str) -> tuple[str, str, list[str]]:
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["api"] and len(parts) >= 2:
            return "", parts[1], parts[2:]
        if parts[:1] == ["apis"] and len(parts) >= 3:
            return parts[1], parts[2], parts[3:]
        if parts[:1] == ["apis"] and len(parts) == 2:
            versions = resources.groups().get(parts[1])
            if versions:
                raise _Answer(_json(self._group(parts[1], versions)))
        raise apierrors.ApiError(
            404, "NotFound", "the server could not find the requested resource"
        )

    def _target(self, group: str, version: str, rest: list[str]) -> Target:
        not_found = apierrors.ApiError(
            404, "NotFound", "the server could not find the requested resource"
        )
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        if not rest:
            raise not_found
        rt = resources.by_path(group, version, rest[0])
        if rt is None:
            raise not_found
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else ""
        if len(rest) > 3 or (sub and sub not in (*rt.subresources, "finalize")):
            raise not_found
        if namespace is not None and not rt.namespaced:
            raise not_found
        if rt.namespaced and name is not None and namespace is None:
            raise not_found
        return Target(rt, namespace, name, sub)

    async def _resource(self, request: web.Request) -> web.StreamResponse:
        try:
            group, version, rest = self._parse(request.path)
        except _Answer as answer:
            return answer.response
        if not rest:
            if request.method != "GET":
                raise apierrors.ApiError(405, "MethodNotAllowed", "method not allowed")
            return self._resource_list(group, version)
        target = self._target(group, version, rest)
        q = request.query
        method = request.method
        ns = target.namespace or ""
        if target.name is None:
            if method == "GET":
                if _truthy(q.get("watch")):
                    return await self._watch(request, target)
                return self._list(request, target)
            if method == "POST":
                if target.rt.namespaced and target.namespace is None:
                    raise apierrors.ApiError(
                        404, "NotFound", "the server could not find the requested resource"
                    )
                body = await self._body(request)
                obj = self.api.create(
                    target.rt,
                    ns,
                    body,
                    manager=self._manager(request),
                    dry_run=q.get("dryRun") == "All",
                )
                return _json(obj, 201)
            if method == "DELETE":
                opts = await self._delete_options(request)
                deleted = self.api.delete_collection(
                    target.rt, target.namespace, self._predicate(request), **opts
                )
                return _json(self._list_body(target.rt, deleted))
            raise apierrors.ApiError(405, "MethodNotAllowed", "method not allowed")
        name = target.name
        if target.subresource == "log":
            return await self._log(request, ns, name)
        if target.subresource == "scale":
            return await self._scale(request, target.rt, ns, name)
        if method == "GET":
            obj = self.store.require(target.rt, ns, name)
            if "as=Table" in request.headers.get("Accept", ""):
                return _json(tables.table(target.rt, [obj], self.store.clock.wall()))
            return _json(obj)
        if method == "PUT":
            body = await self._body(request)
            return _json(
                self.api.replace(
                    target.rt,
                    ns,
                    name,
                    body,
                    manager=self._manager(request),
                    subresource=target.subresource,
                    dry_run=q.get("dryRun") == "All",
                )
            )
        if method == "PATCH":
            raw = await request.read()
            content_type = request.headers.get("Content-Type", "")
            existed = self.store.get(target.rt, ns, name) is not None
            obj = self.api.patch(
                target.rt,
                ns,
                name,
                raw,
                content_type,
                manager=q.get("fieldManager")
                or (None if "apply-patch" in content_type else self._manager(request)),
                force=_truthy(q.get("force")),
                subresource=target.subresource,
                dry_run=q.get("dryRun") == "All",
            )
            return _json(obj, 200 if existed else 201)
        if method == "DELETE":
            opts = await self._delete_options(request)
            return _json(
                self.api.delete(target.rt, ns, name, dry_run=q.get("dryRun") == "All", **opts)
            )
        raise apierrors.ApiError(405, "MethodNotAllowed", "method not allowed")

    # --- helpers -------------------------------------------------------------------------------
    def _manager(self, request: web.Request) -> str:
        if request.query.get("fieldManager"):
            return request.query["fieldManager"]
        agent = request.headers.get("User-Agent", "unknown")
        return agent.split("/")[0].split(" ")[0] or "unknown"

    async def _body(self, request: web.Request) -> Any:
        raw = await request.read()
        content_type = request.headers.get("Content-Type", "application/json")
        if "protobuf" in content_type:
            raise apierrors.ApiError(415, "UnsupportedMediaType", "protobuf is not supported")
        try:
            if "yaml" in content_type:
                return yaml.safe_load(raw)
            return json.loads(raw or b"{}")
        except (ValueError, yaml.YAMLError) as exc:
            raise apierrors.bad_request(f"error decoding the request body: {exc}") from exc

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        q = request.query
        body: dict[str, Any] = {}
        if request.can_read_body:
            with contextlib.suppress(ValueError):
                loaded = json.loads(await request.read() or b"{}")
                body = loaded if isinstance(loaded, dict) else {}
        propagation = q.get("propagationPolicy") or body.get("propagationPolicy")
        if propagation is None and body.get("orphanDependents") is True:
            propagation = "Orphan"
        grace = q.get("gracePeriodSeconds") or body.get("gracePeriodSeconds")
        return {"propagation": propagation, "grace": int(grace) if grace is not None else None}

    def _predicate(self, request: web.Request) -> Callable[[Obj], bool]:
        labels = parse_label_selector(request.query.get("labelSelector"))
        field_pred = parse_field_selector(request.query.get("fieldSelector"))
        return lambda o: labels(o) and field_pred(o)

    def _list_body(self, rt: ResourceType, items: list[Obj]) -> Obj:
        return {
            "kind": f"{rt.kind}List",
            "apiVersion": rt.api_version,
            "metadata": {"resourceVersion": str(self.store.rv)},
            "items": items,
        }

    def _list(self, request: web.Request, target: Target) -> web.Response:
        predicate = self._predicate(request)
        items = [o for o in self.store.list(target.rt, target.namespace) if predicate(o)]
        if "as=Table" in request.headers.get("Accept", ""):
            body = tables.table(target.rt, items, self.store.clock.wall())
            body["metadata"] = {"resourceVersion": str(self.store.rv)}
            return _json(body)
        return _json(self._list_body(target.rt, items))

    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        predicate = self._predicate(request)
        q = request.query
        timeout = float(q.get("timeoutSeconds") or 1800)
        table_of = target.rt if "as=Table" in request.headers.get("Accept", "") else None
        queue: asyncio.Queue[WatchEvent] = asyncio.Queue()
        watcher = Watcher(
            target.rt.key, target.namespace if target.rt.namespaced else None, queue.put_nowait
        )
        since = q.get("resourceVersion") or ""
        initial: list[WatchEvent]
        expired: apierrors.ApiError | None = None
        if since in ("", "0"):
            initial = [
                WatchEvent(self.store.rv, "ADDED", target.rt.key, o)
                for o in self.store.list(target.rt, target.namespace)
            ]
        else:
            try:
                initial = self.store.history_since(target.rt.key, int(since))
            except ValueError as exc:
                raise apierrors.bad_request(f"invalid resourceVersion {since!r}") from exc
            except apierrors.ApiError as exc:  # 410: told in-stream, as the real server does
                initial, expired = [], exc
            if target.namespace and target.rt.namespaced:
                initial = [
                    e for e in initial if e.obj["metadata"].get("namespace") == target.namespace
                ]
        self.store.subscribe(watcher)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        try:
            await response.prepare(request)
            if expired is not None:
                error = {"type": "ERROR", "object": expired.status()}
                await response.write(json.dumps(error).encode() + b"\n")
                return response
            visible: set[str] = set()
            for event in initial:
                shown = _filtered(event, predicate, visible, replay=since not in ("", "0"))
                if shown:
                    await response.write(_watch_line(shown, table_of, self.store.clock.wall()))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while not self.stopping.is_set():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    event = await asyncio.wait_for(queue.get(), min(remaining, 0.5))
                except TimeoutError:
                    continue
                shown = _filtered(event, predicate, visible, replay=since not in ("", "0"))
                if shown:
                    await response.write(_watch_line(shown, table_of, self.store.clock.wall()))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.store.unsubscribe(watcher)
        return response

    async def _log(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        pod = self.store.require(resources.by_name("Pod"), namespace, name)
        names = [
            c["name"] for c in (pod["spec"].get("initContainers") or []) + pod["spec"]["containers"]
        ]
        container = request.query.get("container")
        if not container:
            main = [c["name"] for c in pod["spec"]["containers"]]
            if len(main) > 1:
                raise apierrors.bad_request(
                    f"a container name must be specified for pod {name}, choose one of: "
                    f"[{' '.join(main)}]"
                )
            container = main[0]
        if container not in names:
            raise apierrors.bad_request(f"container {container} is not valid for pod {name}")
        previous = _truthy(request.query.get("previous"))
        key = (namespace, name, container)
        if not self.logs.has(key, previous):
            state = self._waiting_reason(pod, container)
            raise apierrors.bad_request(
                f'previous terminated container "{container}" in pod "{name}" not found'
                if previous
                else f'container "{container}" in pod "{name}" is waiting to start: {state}'
            )
        tail = request.query.get("tailLines")
        lines = self.logs.lines(key, previous)
        if tail is not None:
            lines = lines[-int(tail) :] if int(tail) > 0 else []
        if not _truthy(request.query.get("follow")) or previous:
            text = "".join(line + "\n" for line in lines)
            return web.Response(text=text, content_type="text/plain")
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        for line in lines:
            await response.write((line + "\n").encode())
        cursor = self.logs.cursor(key)
        try:
            async for line in self.logs.follow(key, cursor, self.stopping):
                await response.write((line + "\n").encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response

    async def _scale(
        self, request: web.Request, rt: ResourceType, ns: str, name: str
    ) -> web.Response:
        """The ``/scale`` subresource (autoscaling/v1 Scale), used by kubectl scale and HPA."""
        if request.method in ("PUT", "PATCH"):
            try:
                body = json.loads(await request.read() or b"{}")
            except ValueError as exc:
                raise apierrors.bad_request(f"error decoding the request body: {exc}") from exc
            if isinstance(body, list):  # JSON patch against the Scale document
                from .patching import json_patch

                body = json_patch(self._scale_doc(rt, ns, name), body)
            replicas = (body.get("spec") or {}).get("replicas")
            if replicas is not None:
                patch = json.dumps({"spec": {"replicas": int(replicas)}}).encode()
                self.api.patch(
                    rt,
                    ns,
                    name,
                    patch,
                    "application/merge-patch+json",
                    manager=self._manager(request),
                )
        elif request.method != "GET":
            raise apierrors.ApiError(405, "MethodNotAllowed", "method not allowed")
        return _json(self._scale_doc(rt, ns, name))

    def _scale_doc(self, rt: ResourceType, ns: str, name: str) -> Obj:
        obj = self.store.require(rt, ns, name)
        labels = (obj["spec"].get("selector") or {}).get("matchLabels") or {}
        meta = obj["metadata"]
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: meta[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in meta
            },
            "spec": {"replicas": obj["spec"].get("replicas", 0)},
            "status": {
                "replicas": (obj.get("status") or {}).get("replicas", 0),
                "selector": ",".join(f"{k}={v}" for k, v in labels.items()),
            },
        }

    def _waiting_reason(self, pod: Obj, container: str) -> str:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            if status["name"] == container:
                waiting = (status.get("state") or {}).get("waiting")
                if waiting:
                    return str(waiting.get("reason", "ContainerCreating"))
        return "ContainerCreating"


def _filtered(
    event: WatchEvent, predicate: Callable[[Obj], bool], visible: set[str], replay: bool
) -> WatchEvent | None:
    """Selector semantics of a filtered watch: an object that starts matching arrives as
    ADDED, one that stops matching as DELETED. ``replay``: events after a resourceVersion,
    whose earlier state the client is assumed to have seen (so MODIFIED stays MODIFIED)."""
    uid = event.obj["metadata"].get("uid", "")
    if event.type == "DELETED":
        if uid in visible or (replay and predicate(event.obj)):
            visible.discard(uid)
            return event
        return None
    if predicate(event.obj):
        kind = event.type
        if kind == "MODIFIED" and uid not in visible and not replay:
            kind = "ADDED"
        visible.add(uid)
        return WatchEvent(event.rv, kind, event.key, event.obj)
    if uid in visible:
        visible.discard(uid)
        return WatchEvent(event.rv, "DELETED", event.key, event.obj)
    return None


def _watch_line(event: WatchEvent, table_of: ResourceType | None, now: float) -> bytes:
    """One newline-delimited JSON event; a one-row Table when kubectl asked for Tables."""
    obj = event.obj
    if table_of is not None:
        obj = tables.table(table_of, [obj], now)
        obj["metadata"] = {"resourceVersion": event.obj["metadata"].get("resourceVersion")}
    line = {"type": event.type, "object": obj}
    return json.dumps(line, separators=(",", ":")).encode() + b"\n"


class _Answer(Exception):  # noqa: N818 - control flow: a ready response from the parser
    def __init__(self, response: web.Response) -> None:
        super().__init__("answer")
        self.response = response
