"""check_ngc_access against a local fake registry speaking the Docker token flow."""

from __future__ import annotations

import asyncio
import socket

import pytest
from fake_registry import Registry, serve_registry

from nimble_oke.ngc_keys import throwaway_key
from nimble_oke.nim.ngc import check_ngc_access, check_ngc_access_async, parse_image

pytestmark = pytest.mark.anyio
IMAGE = "nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.0"
REPO = "nim/meta/llama-3.1-8b-instruct"
ENTITLED = throwaway_key()
OTHER_ORG = throwaway_key()
UNKNOWN = throwaway_key()


def _registry() -> Registry:
    return Registry(
        entitlements={ENTITLED: {REPO}, OTHER_ORG: set()},
        manifests={REPO: {"1.8.0"}},
    )


@pytest.mark.parametrize(
    ("key", "image", "reason"),
    [
        (ENTITLED, IMAGE, "ok"),
        (OTHER_ORG, IMAGE, "no_entitlement"),
        (UNKNOWN, IMAGE, "unauthorized"),
        (ENTITLED, IMAGE.replace("1.8.0", "9.9.9"), "not_found"),
    ],
)
async def test_token_flow_outcomes(key: str, image: str, reason: str) -> None:
    registry = _registry()
    async with serve_registry(registry) as url:
        access = await check_ngc_access_async(key, image, url)
    assert access.reason == reason
    assert access.ok is (reason == "ok")
    assert registry.token_requests == 1
    assert key not in access.detail and key not in repr(access)
    if reason == "ok":
        assert access.digest and access.digest.startswith("sha256:")
    if reason == "no_entitlement":
        assert "insufficient_scope" in access.detail


@pytest.mark.parametrize(
    ("key", "reason"), [(None, "missing_key"), ("", "missing_key"), ("abc123", "bad_key_format")]
)
async def test_key_format_is_checked_before_any_request(key: str | None, reason: str) -> None:
    registry = _registry()
    async with serve_registry(registry) as url:
        access = await check_ngc_access_async(key, IMAGE, url)
    assert access.reason == reason and registry.token_requests == 0


async def test_unreachable_registry() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        access = await check_ngc_access_async(ENTITLED, IMAGE, url, timeout_s=2)
    assert access.reason == "unreachable" and ENTITLED not in access.detail


async def test_blocking_wrapper_from_a_thread() -> None:
    registry = _registry()
    async with serve_registry(registry) as url:
        access = await asyncio.to_thread(check_ngc_access, ENTITLED, IMAGE, url)
    assert access.ok


def test_parse_image() -> None:
    ref = parse_image(IMAGE)
    assert (ref.registry, ref.repository, ref.reference) == ("nvcr.io", REPO, "1.8.0")
    assert parse_image("nim/meta/x").reference == "latest"
    assert parse_image("localhost:5000/a/b@sha256:00").is_digest
    assert parse_image("localhost:5000/a/b:1").registry == "localhost:5000"
