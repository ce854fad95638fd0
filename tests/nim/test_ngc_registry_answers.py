"""check_ngc_access on the registry answers the nvcr.io fake does not give: an open
registry, odd challenges, failing token endpoints and manifest statuses other than
200/401/404. Each maps to one reason and one sentence (never the key)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web

from nimble_oke.ngc_keys import throwaway_key
from nimble_oke.nim.ngc import check_ngc_access_async

pytestmark = pytest.mark.anyio
KEY = throwaway_key()
IMAGE = "nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.0"
WHERE = "nim/meta/llama-3.1-8b-instruct:1.8.0"
DIGEST = "sha256:" + "cd" * 32


@dataclass
class Behaviour:
    """How each step of the token flow answers."""

    root_status: int = 401
    challenge: str = 'Bearer realm="{base}/token",service="registry"'
    token_status: int = 200
    token_body: str = '{"token": "t0k"}'
    manifest_status: int = 200
    manifest_challenge: str = ""


@contextlib.asynccontextmanager
async def registry(behaviour: Behaviour) -> AsyncIterator[str]:
    base = ""

    async def root(_request: web.Request) -> web.Response:
        headers = {"WWW-Authenticate": behaviour.challenge.format(base=base)}
        return web.Response(status=behaviour.root_status, headers=headers)

    async def token(_request: web.Request) -> web.Response:
        return web.Response(status=behaviour.token_status, text=behaviour.token_body)

    async def manifest(_request: web.Request) -> web.Response:
        headers = {"Docker-Content-Digest": DIGEST}
        if behaviour.manifest_challenge:
            headers["WWW-Authenticate"] = behaviour.manifest_challenge
        return web.Response(status=behaviour.manifest_status, headers=headers)

    app = web.Application()
    app.router.add_get("/v2/", root)
    app.router.add_get("/token", token)
    app.router.add_route("HEAD", "/v2/{repo:.+}/manifests/{ref}", manifest)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield base
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("behaviour", "reason", "detail"),
    [
        (Behaviour(root_status=200), "ok", f"the key can pull {WHERE}"),
        (Behaviour(root_status=503), "registry_error", "{host}/v2/ answered HTTP 503"),
        (
            Behaviour(challenge='Basic realm="registry"'),
            "registry_error",
            "{host} asked for unsupported auth 'basic'",
        ),
        (
            Behaviour(challenge='Bearer service="registry"'),
            "registry_error",
            "{host} asked for unsupported auth 'bearer'",
        ),
        (
            Behaviour(token_status=401),
            "unauthorized",
            "{host} rejected the NGC API key (401 Unauthorized)",
        ),
        (
            Behaviour(token_status=500),
            "registry_error",
            "token request to {host} answered HTTP 500",
        ),
        (Behaviour(token_body="not json"), "registry_error", "{host} returned no registry token"),
        (
            Behaviour(token_body='{"expires_in": 300}'),
            "registry_error",
            "{host} returned no registry token",
        ),
        (Behaviour(token_body='{"access_token": "t0k"}'), "ok", f"the key can pull {WHERE}"),
        (
            Behaviour(manifest_status=403),
            "no_entitlement",
            f"the key is valid but its NGC org is not entitled to {WHERE} "
            "(insufficient_scope: authorization failed)",
        ),
        (
            Behaviour(manifest_status=401, manifest_challenge='Bearer error="invalid_token"'),
            "unauthorized",
            f"{{host}} refused the registry token for {WHERE} (HTTP 401)",
        ),
        (
            Behaviour(manifest_status=500),
            "registry_error",
            f"manifest request for {WHERE} answered HTTP 500",
        ),
    ],
)
async def test_registry_answers(behaviour: Behaviour, reason: str, detail: str) -> None:
    async with registry(behaviour) as url:
        access = await check_ngc_access_async(KEY, IMAGE, url, timeout_s=5)
    host = url.removeprefix("http://")
    assert (access.reason, access.detail) == (reason, detail.format(host=host))
    assert access.ok is (reason == "ok")
    assert access.digest == (DIGEST if reason == "ok" else None)
    assert KEY not in repr(access)
