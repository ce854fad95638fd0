"""A stateful fake of nvcr.io's Docker registry token flow (never the internet)."""

from __future__ import annotations

import base64
import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Registry:
    """Keys map to the repositories their org is entitled to; manifests are repo → tags."""

    entitlements: dict[str, set[str]]
    manifests: dict[str, set[str]]
    tokens: dict[str, set[str]] = field(default_factory=dict)
    token_requests: int = 0
    seen_authorization: list[str] = field(default_factory=list)
    base: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v2/", self.root)
        app.router.add_get("/proxy_auth", self.token)
        app.router.add_route("HEAD", "/v2/{repo:.+}/manifests/{ref}", self.manifest)
        return app

    async def root(self, request: web.Request) -> web.Response:
        challenge = f'Bearer realm="{self.base}/proxy_auth",service="registry"'
        return web.json_response(
            {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
            status=401,
            headers={"WWW-Authenticate": challenge},
        )

    async def token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        header = request.headers.get("Authorization", "")
        self.seen_authorization.append(header)
        assert request.query.get("service") == "registry"
        scope = request.query["scope"]
        assert scope.startswith("repository:") and scope.endswith(":pull")
        repo = scope[len("repository:") : -len(":pull")]
        if not header.startswith("Basic "):
            return web.json_response({"errors": [{"code": "UNAUTHORIZED"}]}, status=401)
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        if user != "$oauthtoken" or password not in self.entitlements:
            return web.json_response(
                {"errors": [{"code": "UNAUTHORIZED", "message": "auth failed"}]}, status=401
            )
        token = secrets.token_hex(8)
        # nvcr.io grants a token even without entitlement; the token just has no access.
        self.tokens[token] = {repo} & self.entitlements[password]
        return web.json_response({"token": token, "expires_in": 300})

    async def manifest(self, request: web.Request) -> web.Response:
        repo, ref = request.match_info["repo"], request.match_info["ref"]
        granted = self.tokens.get(
            request.headers.get("Authorization", "").removeprefix("Bearer "), set()
        )
        if repo not in granted:
            challenge = (
                f'Bearer realm="{self.base}/proxy_auth",service="registry",'
                f'scope="repository:{repo}:pull",error="insufficient_scope"'
            )
            return web.Response(status=401, headers={"WWW-Authenticate": challenge})
        if ref not in self.manifests.get(repo, set()):
            return web.Response(status=404)
        return web.Response(status=200, headers={"Docker-Content-Digest": "sha256:" + "ab" * 32})


@contextlib.asynccontextmanager
async def serve_registry(registry: Registry) -> AsyncIterator[str]:
    runner = web.AppRunner(registry.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    registry.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield registry.base
    finally:
        await runner.cleanup()
