"""The NIM Metadata API client against the emulated NGC endpoint."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from nimble_oke.errors import EndpointError
from nimble_oke.nim.metadata_api import fetch_metadata, fitting_profiles, resource_of
from nimble_oke.sim.nim.metadata_api import MetadataApi

pytestmark = pytest.mark.anyio
IMAGE = "nvcr.io/nim/meta/llama-3.1-8b-instruct:2.0.12"


@contextlib.asynccontextmanager
async def metadata_api() -> AsyncIterator[str]:
    runner = web.AppRunner(MetadataApi().app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/v2"
    finally:
        await runner.cleanup()


def test_resource_of_an_image() -> None:
    assert resource_of(IMAGE) == ("nim/meta/llama-3.1-8b-instruct", "2.0.12")
    with pytest.raises(ValueError, match="no tag"):
        resource_of("nvcr.io/nim/meta/llama-3.1-8b-instruct")


async def test_profiles_that_fit_an_a10_and_an_h100_node() -> None:
    async with metadata_api() as base:
        meta = await fetch_metadata(IMAGE, base_url=base)
    assert meta is not None and meta.tag == "2.0.12"
    assert all(len(p.profile_id) == 64 for p in meta.profiles)
    a10 = fitting_profiles(meta, gpu_memory_gb=24, gpu_count=1)
    assert a10 and {p.name for p in a10} >= {"vllm-bf16-tp1-pp1", "vllm-fp8-tp1-pp1"}
    assert all(p.gpus == 1 and (p.min_vram_gb or 99) <= 24 for p in a10)
    two_a10 = {p.name for p in fitting_profiles(meta, gpu_memory_gb=24, gpu_count=2)}
    assert "vllm-bf16-tp2-pp1" in two_a10 and "vllm-bf16-tp4-pp1" not in two_a10
    assert fitting_profiles(meta, gpu_memory_gb=8, gpu_count=1) == []


async def test_missing_metadata_is_none_and_bad_requests_are_errors() -> None:
    async with metadata_api() as base:
        assert (
            await fetch_metadata("nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.0", base_url=base)
            is None
        )
        assert await fetch_metadata("nvcr.io/nim/acme/unknown:2.0.0", base_url=base) is None
        async with aiohttp.ClientSession() as http:
            async with http.get(
                base + "/nim/metadata", params={"resourceId": "nim//x", "tag": "1"}
            ) as r:
                body = await r.json()
            assert r.status == 400 and body["requestStatus"]["statusCode"] == "INVALID_REQUEST"
            async with http.get(base + "/nim/meta/llama-3.1-8b-instruct/2.0.12/metadata") as r:
                assert r.status == 200 and (await r.json())["profiles"]
            async with http.get(base + "/nim/metadata", params={"resourceId": "nim/meta/x"}) as r:
                assert r.status == 400
    with pytest.raises(EndpointError, match="unreachable"):
        await fetch_metadata(IMAGE, base_url="http://127.0.0.1:9/v2", timeout_s=2)


async def test_gpu_specific_profiles_need_the_device() -> None:
    from nimble_oke.nim.metadata_api import MetadataProfile, NimMetadata

    h100 = MetadataProfile(
        "a" * 64,
        {
            "profile_id": "a" * 64,
            "gpu_device": ["2330:10de", "2331:10de"],
            "tensor_parallel_size": 1,
            "pipeline_parallel_size": 1,
            "min_vram_per_device_gb": 40.0,
        },
    )
    unknown = MetadataProfile("b" * 64, {"profile_id": "b" * 64, "tensor_parallel_size": 1})
    meta = NimMetadata("nim/x/y", "2.0.0", [h100, unknown], {})
    assert fitting_profiles(meta, gpu_memory_gb=80, gpu_count=1) == []
    assert fitting_profiles(meta, gpu_memory_gb=80, gpu_count=1, gpu_device="2330:10DE") == [h100]
