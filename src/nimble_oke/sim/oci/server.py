"""The aiohttp front door: one app per simulated region, all sharing one :class:`World`.

Pipeline per request: route -> signature check -> fault injection -> retry-token replay ->
handler (under the world lock) -> ``opc-request-id`` on every response.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging

from aiohttp import web

from nimble_oke.sim.oci.api_error import ApiError
from nimble_oke.sim.oci.http import Ctx, Reply, Router
from nimble_oke.sim.oci.world import World

log = logging.getLogger(__name__)


# Replies never cached for retry-token replay (nor persisted): they carry secrets.
NO_REPLAY_OPS = {"CreatePreauthenticatedRequest"}


def _render(reply: Reply, request_id: str) -> web.Response:
    headers = {"opc-request-id": request_id, **reply.headers}
    if reply.body is None:
        return web.Response(status=reply.status, headers=headers)
    if isinstance(reply.body, bytes):
        return web.Response(
            status=reply.status, body=reply.body, headers=headers, content_type=reply.content_type
        )
    return web.Response(
        status=reply.status,
        text=json.dumps(reply.body),
        headers=headers,
        content_type="application/json",
    )


def _retry_key(region: str, token: str) -> str:
    return f"{region}|{token}"


def _fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


def _request_id(world: World, client_rid: str | None) -> str:
    """The opc-request-id of an answer: OCI keeps the caller's id as the first of the three
    groups (e.g. "f14a70.../5053FB.../D3F2FE..." for a client id "f14a70...")."""
    with world.lock:
        request_id = world.ids.request_id()
    if client_rid:
        request_id = client_rid + request_id[request_id.index("/") :]
    return request_id


def make_app(world: World, router: Router, region: str) -> web.Application:
    async def dispatch(request: web.Request) -> web.Response:
        with world.clock.busy():  # the simulated clock does not jump while a call runs
            try:
                return await _dispatch(request)
            finally:
                if request.method != "GET":  # the cloud may have changed: wake its waiters
                    world.clock.notify("oci")

    async def _dispatch(request: web.Request) -> web.Response:
        request_id = _request_id(world, request.headers.get("opc-request-id"))
        try:
            route, params = router.match(request.method, request.path)
            body = await request.read()
            if not route.public:
                world.keys.verify(
                    request.method,
                    request.raw_path,
                    request.headers,
                    body,
                    body_signed=not route.streamed_body,
                )
            with world.lock:
                latency, fault = world.injector.on_request(route.op)
            if latency:
                await asyncio.sleep(latency)
            if fault is not None:
                raise fault
            token = request.headers.get("opc-retry-token") if request.method == "POST" else None
            fingerprint = _fingerprint(request.method, request.path_qs, body)
            ctx = Ctx(
                world,
                region,
                request.method,
                route.op,
                params,
                request.query,
                request.headers,
                body,
                request_id,
            )
            with world.lock:
                if token:
                    cached = world.retry_tokens.get(_retry_key(region, token))
                    if cached is not None:
                        if cached["fingerprint"] != fingerprint:
                            raise ApiError(
                                "InvalidatedRetryToken",
                                "The retry token was already used for a different request",
                                409,
                            )
                        reply = Reply(cached["status"], cached["body"], dict(cached["headers"]))
                        return _render(reply, request_id)
                reply = route.handler(ctx)
                replayable = route.op not in NO_REPLAY_OPS and not isinstance(reply.body, bytes)
                if token and 200 <= reply.status < 300 and replayable:
                    world.retry_tokens[_retry_key(region, token)] = {
                        "fingerprint": fingerprint,
                        "status": reply.status,
                        "body": reply.body,
                        "headers": reply.headers,
                        "time": world.now(),
                    }
                if request.method != "GET":
                    world.dirty = True
            return _render(reply, request_id)
        except ApiError as err:
            if err.status >= 500:
                log.info(
                    "OCI sim %s %s -> %s %s", request.method, request.path, err.status, err.code
                )
            return _render(Reply(err.status, err.body()), request_id)

    app = web.Application(client_max_size=1024**3)
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app
