"""Does this NGC API key give access to this NIM image? (correction C5)

Speaks the Docker registry token flow against nvcr.io, as ``docker login nvcr.io`` with
user ``$oauthtoken`` and the key as password does:

1. ``GET /v2/`` → ``401`` with ``WWW-Authenticate: Bearer realm="…",service="…"``;
2. ``GET <realm>?service=<service>&scope=repository:<repo>:pull`` with basic auth
   ``$oauthtoken:<key>`` → a bearer token (401 here: the key is wrong);
3. ``HEAD /v2/<repo>/manifests/<tag>`` with the token → 200 (access), or 401/403 with
   ``error="insufficient_scope"`` (the key's org is not entitled to the image), or 404.

The key is only ever sent in the basic-auth header; results and errors never contain it.
"""

from __future__ import annotations

import asyncio
import base64
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from nimble_oke.ngc_keys import NGC_KEY_RE

_CHALLENGE_RE = re.compile(r'(\w+)="([^"]*)"')
_MANIFEST_ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
REASONS = (
    "ok",
    "missing_key",
    "bad_key_format",
    "unauthorized",
    "no_entitlement",
    "not_found",
    "unreachable",
    "registry_error",
)


@dataclass(frozen=True)
class ImageRef:
    registry: str
    repository: str
    reference: str

    @property
    def is_digest(self) -> bool:
        return self.reference.startswith("sha256:")


@dataclass(frozen=True)
class NgcAccess:
    """The answer: ``ok`` and one of :data:`REASONS` with a sentence for the user."""

    ok: bool
    reason: str
    detail: str
    image: str
    digest: str | None = None


def parse_image(image: str) -> ImageRef:
    """``nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.0`` → registry, repository, tag."""
    name = image.strip()
    registry = "nvcr.io"
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, name = first, rest
    if "@" in name:
        name, reference = name.split("@", 1)
    elif ":" in name.rsplit("/", 1)[-1]:
        name, reference = name.rsplit(":", 1)
    else:
        reference = "latest"
    if not name:
        raise ValueError(f"not an image reference: {image!r}")
    return ImageRef(registry, name, reference)


def _basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _challenge(header: str) -> dict[str, str]:
    scheme, _, params = header.partition(" ")
    values = dict(_CHALLENGE_RE.findall(params))
    values["scheme"] = scheme.lower()
    return values


class _Verdict(Exception):  # noqa: N818 - an answer, not an error
    """An answer reached before the manifest request (a refused key, an odd registry):
    raised by the token steps, turned into :class:`NgcAccess` by the caller."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


async def check_ngc_access_async(
    api_key: str | None, image: str, registry_url: str = "https://nvcr.io", *, timeout_s: float = 15
) -> NgcAccess:
    """Check that ``api_key`` can pull ``image``; never raises for access problems."""

    def result(reason: str, detail: str, digest: str | None = None) -> NgcAccess:
        return NgcAccess(reason == "ok", reason, detail, image, digest)

    if not api_key:
        return result("missing_key", "no NGC API key given (set NGC_API_KEY)")
    if not NGC_KEY_RE.match(api_key.strip()):
        return result(
            "bad_key_format",
            "the NGC API key does not look like one (expected nvapi-… from "
            "ngc.nvidia.com → Setup → API Keys)",
        )
    ref = parse_image(image)
    base = registry_url.rstrip("/")
    host = urlsplit(base).netloc or base
    try:
        status, header, digest = await _head_manifest(base, host, ref, api_key.strip(), timeout_s)
    except _Verdict as verdict:
        return result(verdict.reason, verdict.detail)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return result(
            "unreachable",
            f"cannot reach {host}: {type(exc).__name__} (network, proxy or egress rule?)",
        )
    reason, detail = _manifest_verdict(status, header, host, ref)
    return result(reason, detail, digest if reason == "ok" else None)


async def _head_manifest(
    base: str, host: str, ref: ImageRef, api_key: str, timeout_s: float
) -> tuple[int, str, str | None]:
    """``HEAD`` the image's manifest (with a registry token when the registry asks for
    one): its status, ``WWW-Authenticate`` header and ``Docker-Content-Digest``."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as http:
        token = await _registry_token(http, base, host, ref, api_key)
        headers = {"Accept": _MANIFEST_ACCEPT}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        url = f"{base}/v2/{ref.repository}/manifests/{ref.reference}"
        async with http.head(url, headers=headers) as resp:
            return (
                resp.status,
                resp.headers.get("WWW-Authenticate", ""),
                resp.headers.get("Docker-Content-Digest"),
            )


async def _registry_token(
    http: aiohttp.ClientSession, base: str, host: str, ref: ImageRef, api_key: str
) -> str | None:
    """Steps 1–2: ``/v2/`` answers 200 (an open registry: no token) or 401 with a Bearer
    challenge, whose realm trades the key for a pull token."""
    async with http.get(f"{base}/v2/") as resp:
        await resp.read()
        header = resp.headers.get("WWW-Authenticate", "")
        status = resp.status
    if status == 200:
        return None
    if status != 401:
        raise _Verdict("registry_error", f"{host}/v2/ answered HTTP {status}")
    challenge = _challenge(header)
    if challenge.get("scheme") != "bearer" or "realm" not in challenge:
        raise _Verdict(
            "registry_error", f"{host} asked for unsupported auth {challenge.get('scheme')!r}"
        )
    return await _bearer_token(http, challenge, host, ref, api_key)


async def _bearer_token(
    http: aiohttp.ClientSession, challenge: dict[str, str], host: str, ref: ImageRef, api_key: str
) -> str:
    """Step 2: basic auth ``$oauthtoken:<key>`` at the challenge's realm, for a pull scope."""
    query = {"scope": f"repository:{ref.repository}:pull"}
    if "service" in challenge:
        query["service"] = challenge["service"]
    basic = {"Authorization": _basic_auth("$oauthtoken", api_key)}
    async with http.get(challenge["realm"], params=query, headers=basic) as resp:
        if resp.status == 401:
            await resp.read()
            raise _Verdict("unauthorized", f"{host} rejected the NGC API key (401 Unauthorized)")
        if resp.status != 200:
            await resp.read()
            raise _Verdict("registry_error", f"token request to {host} answered HTTP {resp.status}")
        try:
            body = await resp.json(content_type=None)
        except ValueError:
            body = None
    token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
    if not token:
        raise _Verdict("registry_error", f"{host} returned no registry token")
    return str(token)


def _manifest_verdict(status: int, header: str, host: str, ref: ImageRef) -> tuple[str, str]:
    """Step 3: the manifest request's status as a reason and a sentence for the user."""
    where = f"{ref.repository}:{ref.reference}"
    if status == 200:
        return "ok", f"the key can pull {where}"
    if status in (401, 403):
        if "insufficient_scope" in header or status == 403:
            return (
                "no_entitlement",
                f"the key is valid but its NGC org is not entitled to {where} "
                "(insufficient_scope: authorization failed)",
            )
        return "unauthorized", f"{host} refused the registry token for {where} (HTTP {status})"
    if status == 404:
        return "not_found", f"{where} does not exist on {host} (check the image name and tag)"
    return "registry_error", f"manifest request for {where} answered HTTP {status}"


def check_ngc_access(
    api_key: str | None, image: str, registry_url: str = "https://nvcr.io", *, timeout_s: float = 15
) -> NgcAccess:
    """Blocking :func:`check_ngc_access_async`."""
    return asyncio.run(check_ngc_access_async(api_key, image, registry_url, timeout_s=timeout_s))
