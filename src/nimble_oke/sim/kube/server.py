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

from aiohttp import web

from . import apierrors, content, resources, reviews, streams, tables, versions, watch
from .api import Api
from .logs import LogBook, LogOptions
from .openapi import OpenApi
from .resources import ResourceType
from .selectors import parse_field_selector, parse_label_selector
from .store import Obj
from .version import KUBE_VERSION
from .wire import protobuf

log = logging.getLogger(__name__)

__all__ = ["KUBE_VERSION", "ApiServer", "TokenCheck"]

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


def _error(exc: apierrors.ApiError, request: web.Request | None = None) -> web.Response:
    """A Status body in the media type the client accepts (JSON when it accepts none)."""
    media = content.JSON
    if request is not None:
        with contextlib.suppress(apierrors.ApiError):
            media = content.choose(request.headers.get("Accept"), True)
    return content.render(exc.status(), exc.code, media)


_OPTIONS_KIND = {
    "POST": "CreateOptions",
    "PUT": "UpdateOptions",
    "PATCH": "PatchOptions",
    "DELETE": "DeleteOptions",
}


_VERB_OF = {"GET": "list", "POST": "create", "DELETE": "deletecollection"}


def _dry_run(values: list[str], method: str = "POST") -> bool:
    """``dryRun`` holds directives; ``All`` is the only one defined (ValidateDryRun)."""
    for value in values:
        if value != "All":
            kind = _OPTIONS_KIND.get(method, "CreateOptions")
            raise apierrors.invalid(
                kind,
                "",
                [
                    (
                        "dryRun",
                        "FieldValueNotSupported",
                        f'Unsupported value: "{value}": supported values: "All"',
                    )
                ],
                "meta.k8s.io",
            )
    return bool(values)


async def _write_limited(
    response: web.StreamResponse, data: bytes, budget: int | None
) -> int | None:
    """Write at most ``budget`` bytes (None: no limit); the budget left."""
    if budget is not None:
        data = data[: max(budget, 0)]
        budget -= len(data)
    if data:
        await response.write(data)
    return budget


def _field_validation(request: web.Request) -> str:
    """The directive for unknown fields; the server's default is Warn."""
    return request.query.get("fieldValidation") or "Warn"


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
        self.openapi = OpenApi(resources.REGISTRY, KUBE_VERSION)

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
        app.router.add_get("/openapi/v2", self._openapi_v2)
        app.router.add_get("/openapi/v3", self._openapi_v3_discovery)
        app.router.add_get("/openapi/v3/{gv:.+}", self._openapi_v3)
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
            return _error(exc, request)
        except web.HTTPException:
            raise
        except Exception as exc:  # a bug in the simulator: answer like the real server would
            log.exception("internal error on %s %s", request.method, request.path)
            return _error(
                apierrors.ApiError(500, "InternalError", f"Internal error: {exc}"), request
            )

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

    # --- openapi -------------------------------------------------------------------------------
    def _openapi_doc(self, request: web.Request, doc: bytes | None) -> web.Response:
        if doc is None or not self.openapi.available:
            raise apierrors.ApiError(
                404, "NotFound", "the server could not find the requested resource"
            )
        accept = request.headers.get("Accept") or "application/json"
        if not any(
            m.type in ("application/json", "*/*", "application/*")
            for m in content.parse_accept(accept)
        ):
            raise apierrors.ApiError(
                406,
                "NotAcceptable",
                "only the following media types are accepted: application/json",
            )
        return web.Response(body=doc, content_type="application/json")

    async def _openapi_v2(self, request: web.Request) -> web.Response:
        return self._openapi_doc(request, self.openapi.v2 if self.openapi.available else None)

    async def _openapi_v3_discovery(self, request: web.Request) -> web.Response:
        doc = self.openapi.v3_discovery() if self.openapi.available else None
        return self._openapi_doc(request, doc)

    async def _openapi_v3(self, request: web.Request) -> web.Response:
        return self._openapi_doc(request, self.openapi.v3(request.match_info["gv"]))

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
        if target.name is None:
            return await self._collection(request, target)
        if target.subresource == "log":
            return await self._log(request, target.namespace or "", target.name)
        if target.subresource == "scale":
            return await self._scale(request, target.rt, target.namespace or "", target.name)
        if target.subresource in ("exec", "attach", "portforward"):
            return await self._connect(request, target)
        return await self._item(request, target)

    async def _connect(self, request: web.Request, target: Target) -> web.StreamResponse:
        """exec / attach / portforward: WebSocket upgrades to the pod's containers."""
        if request.method not in ("GET", "POST"):
            raise apierrors.ApiError(405, "MethodNotAllowed", "method not allowed")
        pod = self.store.require(target.rt, target.namespace or "", target.name or "")
        runtime = self.api.runtime
        if runtime is None:
            raise apierrors.ApiError(503, "ServiceUnavailable", "no kubelet serves this pod")
        q = request.query
        container = ""
        if target.subresource != "portforward":
            container = streams.require_running(pod, q.get("container"))
        if request.headers.get("Upgrade", "").lower() != "websocket":
            raise apierrors.bad_request(
                "Upgrade request required"
                if "upgrade" not in request.headers.get("Connection", "").lower()
                else "unable to upgrade connection: this server only speaks WebSocket "
                "(SPDY/3.1 is accepted tunnelled in WebSocket)"
            )
        if target.subresource == "portforward":
            return await streams.PortForward(runtime, pod).serve(request)
        if target.subresource == "attach":
            return await self._attach(request, pod, container)
        argv = q.getall("command", [])
        if not argv:
            raise apierrors.bad_request("you must specify at least 1 command")
        exec_ = streams.Exec(runtime, pod, container, argv, _truthy(q.get("stdin")))
        return await exec_.serve(request)

    async def _attach(self, request: web.Request, pod: Obj, container: str) -> web.StreamResponse:
        """attach: the container's output from now on, on the stdout channel."""
        ws = web.WebSocketResponse(protocols=streams.EXEC_PROTOCOLS, autoping=True)
        await ws.prepare(request)
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"], container)
        cursor = self.logs.cursor(key)
        with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
            async for line in self.logs.follow(key, cursor, self.stopping):
                if ws.closed:
                    break
                await ws.send_bytes(bytes([streams.STDOUT]) + (line + "\n").encode())
        if not ws.closed:
            status = {"metadata": {}, "status": "Success"}
            await ws.send_bytes(bytes([streams.ERROR]) + json.dumps(status).encode())
            await ws.close()
        return ws

    async def _collection(self, request: web.Request, target: Target) -> web.StreamResponse:
        q = request.query
        method = request.method
        if target.rt.verbs and _VERB_OF.get(method, "") not in target.rt.verbs:
            raise apierrors.ApiError(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        if target.rt.kind in reviews.KINDS:
            body = await self._body(request, target.rt)
            return self._reply(request, reviews.answer(target.rt, body, self.store.now_iso()), 201)
        if method == "GET":
            if _truthy(q.get("watch")):
                return await self._watch(request, target)
            return self._list(request, target)
        if method == "POST":
            if target.rt.namespaced and target.namespace is None:
                raise apierrors.ApiError(
                    404, "NotFound", "the server could not find the requested resource"
                )
            body = await self._body(request, target.rt)
            warnings: list[str] = []
            obj = self.api.create(
                target.rt,
                target.namespace or "",
                body,
                manager=self._manager(request),
                dry_run=_dry_run(q.getall("dryRun", [])),
                field_validation=_field_validation(request),
                warnings=warnings,
            )
            return self._reply(request, obj, 201, warnings)
        if method == "DELETE":
            opts = await self._delete_options(request)
            deleted = self.api.delete_collection(
                target.rt, target.namespace, self._predicate(request), **opts
            )
            return self._reply(request, self._list_body(target.rt, deleted))
        raise apierrors.ApiError(405, "MethodNotAllowed", "method not allowed")

    async def _item(self, request: web.Request, target: Target) -> web.StreamResponse:
        q = request.query
        method = request.method
        ns, name = target.namespace or "", target.name or ""
        dry_run = _dry_run(q.getall("dryRun", []), method)
        if method == "GET":
            obj = self.store.require(target.rt, ns, name)
            if "as=Table" in request.headers.get("Accept", ""):
                return _json(tables.table(target.rt, [obj], self.store.clock.wall()))
            return self._reply(request, versions.from_storage(target.rt, obj))
        if method == "PUT":
            body = await self._body(request, target.rt)
            warnings: list[str] = []
            obj = self.api.replace(
                target.rt,
                ns,
                name,
                body,
                manager=self._manager(request),
                subresource=target.subresource,
                dry_run=dry_run,
                field_validation=_field_validation(request),
                warnings=warnings,
            )
            return self._reply(request, obj, 200, warnings)
        if method == "PATCH":
            raw = await request.read()
            content_type = request.headers.get("Content-Type", "")
            existed = self.store.get(target.rt, ns, name) is not None
            patch_warnings: list[str] = []
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
                dry_run=dry_run,
                field_validation=_field_validation(request),
                warnings=patch_warnings,
            )
            return self._reply(request, obj, 200 if existed else 201, patch_warnings)
        if method == "DELETE":
            opts = await self._delete_options(request)
            return self._reply(request, self.api.delete(target.rt, ns, name, **opts))
        raise apierrors.ApiError(405, "MethodNotAllowed", "method not allowed")

    # --- helpers -------------------------------------------------------------------------------
    def _reply(
        self,
        request: web.Request,
        body: Obj,
        status: int = 200,
        warnings: list[str] | None = None,
    ) -> web.Response:
        """``body`` in the media type the client accepts (protobuf for built-in kinds);
        ``warnings`` become ``Warning`` headers (kubectl prints them)."""
        supported = protobuf.supports(str(body.get("apiVersion", "")), str(body.get("kind", "")))
        media = content.choose(request.headers.get("Accept"), supported)
        response = content.render(body, status, media)
        for text in warnings or []:
            response.headers.add("Warning", f"299 - {json.dumps(text)}")
        return response

    def _manager(self, request: web.Request) -> str:
        if request.query.get("fieldManager"):
            return request.query["fieldManager"]
        agent = request.headers.get("User-Agent", "unknown")
        return agent.split("/")[0].split(" ")[0] or "unknown"

    async def _body(self, request: web.Request, rt: ResourceType) -> Any:
        raw = await request.read()
        builtin = protobuf.supports(rt.api_version, rt.kind)
        return content.decode_body(raw, request.headers.get("Content-Type"), rt.kind, builtin)

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        """DeleteOptions from the query and the body (JSON or protobuf, as client-go sends
        them): propagation, grace period and dryRun."""
        q = request.query
        body: dict[str, Any] = {}
        if request.can_read_body:
            raw = await request.read()
            if raw:
                loaded = content.decode_body(
                    raw, request.headers.get("Content-Type"), "DeleteOptions", True
                )
                body = loaded if isinstance(loaded, dict) else {}
        propagation = q.get("propagationPolicy") or body.get("propagationPolicy")
        if propagation is None and body.get("orphanDependents") is True:
            propagation = "Orphan"
        grace = q.get("gracePeriodSeconds") or body.get("gracePeriodSeconds")
        dry_run = _dry_run([*q.getall("dryRun", []), *(body.get("dryRun") or [])], "DELETE")
        return {
            "propagation": propagation,
            "grace": int(grace) if grace is not None else None,
            "dry_run": dry_run,
        }

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
        items = [versions.from_storage(target.rt, o) for o in items]
        return self._reply(request, self._list_body(target.rt, items))

    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        req = watch.parse(request, target.rt, target.namespace, self._predicate(request))
        return await watch.WatchStream(self.store, self.stopping, req).serve(request)

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
        opts = LogOptions(request.query, self.store.clock.wall())
        chunks = [
            opts.line(stamp, text) for stamp, text in opts.select(self.logs.entries(key, previous))
        ]
        budget = opts.limit
        if not _truthy(request.query.get("follow")) or previous:
            body = b"".join(chunks)
            return web.Response(
                body=body[:budget] if budget is not None else body, content_type="text/plain"
            )
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        cursor = self.logs.cursor(key)
        try:
            for chunk in chunks:
                budget = await _write_limited(response, chunk, budget)
            async for line in self.logs.follow(key, cursor, self.stopping):
                if budget is not None and budget <= 0:
                    break
                budget = await _write_limited(response, opts.line(self.logs.now(), line), budget)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response

    async def _scale(
        self, request: web.Request, rt: ResourceType, ns: str, name: str
    ) -> web.Response:
        """The ``/scale`` subresource (autoscaling/v1 Scale), used by kubectl scale and HPA:
        a PUT/PATCH changes the parent's ``spec.replicas`` (a dry run only answers)."""
        if request.method not in ("GET", "PUT", "PATCH"):
            raise apierrors.ApiError(405, "MethodNotAllowed", "method not allowed")
        if request.method == "GET":
            return self._reply(request, self._scale_doc(rt, ns, name))
        raw = await request.read()
        content_type = request.headers.get("Content-Type")
        if request.method == "PUT" or "protobuf" in (content_type or ""):
            body = content.decode_body(raw, content_type, "Scale", True)
        else:
            try:
                body = json.loads(raw or b"{}")
            except ValueError as exc:
                raise apierrors.bad_request(f"error decoding patch: {exc}") from exc
        doc = self._scale_doc(rt, ns, name)
        if isinstance(body, list):  # JSON patch against the Scale document
            from .patching import json_patch

            body = json_patch(doc, body)
        replicas = (body.get("spec") or {}).get("replicas") if isinstance(body, dict) else None
        if replicas is None:
            return self._reply(request, doc)
        dry_run = _dry_run(request.query.getall("dryRun", []), request.method)
        patch = json.dumps({"spec": {"replicas": replicas}}).encode()
        updated = self.api.patch(
            rt,
            ns,
            name,
            patch,
            "application/merge-patch+json",
            manager=self._manager(request),
            dry_run=dry_run,
        )
        return self._reply(request, self._scale_doc(rt, ns, name, updated))

    def _scale_doc(self, rt: ResourceType, ns: str, name: str, obj: Obj | None = None) -> Obj:
        obj = obj if obj is not None else self.store.require(rt, ns, name)
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


class _Answer(Exception):  # noqa: N818 - control flow: a ready response from the parser
    def __init__(self, response: web.Response) -> None:
        super().__init__("answer")
        self.response = response
