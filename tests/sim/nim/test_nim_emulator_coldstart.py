"""Cold start phases, the model cache in NIM_CACHE_PATH, and start-up failures."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest
from helpers_nim import GOOD_KEY, base_url, running, settings_for

from nimble_oke.nim.client import NimClient
from nimble_oke.sim.clock import SimClock
from nimble_oke.sim.nim import NimEmulator, NimSettings, parse_download_percent
from nimble_oke.sim.nim.coldstart import MANIFEST, model_dir

pytestmark = pytest.mark.anyio


async def _status(http: aiohttp.ClientSession, url: str) -> int:
    async with http.get(url) as resp:
        return resp.status


async def test_ready_turns_200_only_after_download_and_load(tmp_path: Path) -> None:
    # 8B model: 14.96 GB at 250 MB/s ≈ 60 simulated s of download, at 400× ≈ 0.15 s real.
    settings = NimSettings.from_env(
        {"NIM_CACHE_PATH": str(tmp_path), "NGC_API_KEY": GOOD_KEY},
        image="nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.0",
        time_scale=400,
    )
    assert settings.model == "meta/llama-3.1-8b-instruct"
    lines: list[str] = []
    emu = NimEmulator(settings, log=lines.append)
    await emu.start()
    seen: list[tuple[str, int, int]] = []
    try:
        async with aiohttp.ClientSession() as http:
            while emu.phase not in ("ready", "failed"):
                live = await _status(http, base_url(emu) + "/v1/health/live")
                ready = await _status(http, base_url(emu) + "/v1/health/ready")
                seen.append((emu.phase, live, ready))
                await asyncio.sleep(0.01)
            assert await _status(http, base_url(emu) + "/v1/health/ready") == 200
            async with http.get(base_url(emu) + "/v1/health/ready") as resp:
                assert await resp.json() == {
                    "object": "health.response",
                    "message": "Service is ready.",
                }
    finally:
        await emu.stop()
    assert emu.phase == "ready"
    assert [p for p, _ in emu.phase_history] == [
        "starting",
        "downloading",
        "loading",
        "ready",
    ]
    assert {(live, ready) for phase, live, ready in seen if phase != "ready"} == {(200, 503)}
    assert any(p == "downloading" for p, _, _ in seen)
    percents = [p for p in map(parse_download_percent, lines) if p is not None]
    assert percents[-1] == 100 and percents == sorted(percents) and len(percents) >= 10
    # Simulated durations follow the calibration: ≈60 s download, ≈5 s load, 9 s engine.
    times = dict(emu.phase_history)
    assert 55 < times["loading"] - times["downloading"] < 75
    assert 12 < times["ready"] - times["loading"] < 20
    directory = model_dir(settings)
    manifest = json.loads((directory / MANIFEST).read_text())
    assert manifest["complete"] is True
    real = sum(f.stat().st_size for f in directory.glob("*.safetensors"))
    assert real == pytest.approx(14.96e9 * settings.file_scale, rel=0.01)


async def test_warm_cache_skips_download(tmp_path: Path) -> None:
    async with running(settings_for(tmp_path)) as first:
        assert "downloading" in [p for p, _ in first.phase_history]
    lines: list[str] = []
    warm = NimEmulator(settings_for(tmp_path, env={"NGC_API_KEY": ""}), log=lines.append)
    await warm.start()
    try:
        assert await warm.wait_ready(5) == "ready"
    finally:
        await warm.stop()
    assert "downloading" not in [p for p, _ in warm.phase_history]
    assert not any("Downloading" in line for line in lines)
    assert any("found in cache" in line for line in lines)


async def test_truncated_cache_file_forces_a_new_download(tmp_path: Path) -> None:
    async with running(settings_for(tmp_path)) as first:
        shard = next(model_dir(first.settings).glob("*.safetensors"))
    shard.write_bytes(b"x")
    async with running(settings_for(tmp_path)) as again:
        assert "downloading" in [p for p, _ in again.phase_history]


@pytest.mark.parametrize(
    ("key", "expected"),
    [("", "NGC_API_KEY is not set"), ("not-a-key", "401 Unauthorized")],
)
async def test_bad_ngc_key_fails_without_leaking_it(
    tmp_path: Path, key: str, expected: str
) -> None:
    lines: list[str] = []
    emu = NimEmulator(settings_for(tmp_path, env={"NGC_API_KEY": key}), log=lines.append)
    await emu.start()
    try:
        assert await emu.wait_ready(5) == "failed"
        async with aiohttp.ClientSession() as http:
            assert await _status(http, base_url(emu) + "/v1/health/ready") == 503
            assert await _status(http, base_url(emu) + "/v1/health/live") == 200
    finally:
        await emu.stop()
    assert expected in (emu.failure or "")
    assert lines[-1].startswith("ERROR ")
    if key:
        assert all(key not in line for line in lines)


async def test_incompatible_gpu_and_too_small_gpu_fail(tmp_path: Path) -> None:
    async with running(settings_for(tmp_path, gpu="V100"), wait=False) as emu:
        assert await emu.wait_ready(5) == "failed"
        assert "compute capability" in (emu.failure or "")
    big = settings_for(tmp_path, model="meta/llama-3.3-70b-instruct", file_scale=1e-9)
    assert big.kv_capacity_tokens == 0
    async with running(big, wait=False) as emu:
        assert await emu.wait_ready(5) == "failed"
        assert "out of memory" in (emu.failure or "")


def test_settings_from_env(tmp_path: Path) -> None:
    env = {
        "NIM_CACHE_PATH": str(tmp_path),
        "NIM_SERVED_MODEL_NAME": "my-llama",
        "NIM_MODEL_PROFILE": "tensorrt_llm-h100-fp8-tp2-throughput",
        "NGC_API_KEY": GOOD_KEY,
        "NIM_SERVER_PORT": "8123",
    }
    s = NimSettings.from_env(
        env, image="nvcr.io/nim/meta/llama-3.3-70b-instruct:1.8.0", gpu="h100", gpu_count=2
    )
    assert (s.model, s.served_model_name, s.precision, s.gpu, s.port) == (
        "meta/llama-3.3-70b-instruct",
        "my-llama",
        "fp8",
        "H100",
        8123,
    )
    assert s.weights_bytes == int(68e9)
    assert GOOD_KEY not in repr(s)
    tmp = NimSettings.from_env({})
    assert tmp.remove_cache_on_stop and tmp.cache_path.is_dir()
    tmp.cache_path.rmdir()
    # 8B bf16 on one A10: (0.9 × 24 GB − 14.96 GB − 1.5 GB) ÷ 128 KiB ≈ 39k tokens.
    a10 = NimSettings(gpu="A10")
    assert 35_000 < a10.kv_capacity_tokens < 45_000
    assert a10.required_memory_bytes > 4 * 1024**3


async def test_shared_clock_advance_skips_waiting(tmp_path: Path) -> None:
    clock = SimClock(scale=1.0)
    settings = settings_for(tmp_path)
    emu = NimEmulator(settings, clock=clock)
    await emu.start()
    try:
        await asyncio.sleep(0.05)
        assert emu.phase in ("starting", "downloading")
        clock.advance(3600)
        assert await emu.wait_ready(5) == "ready"
    finally:
        await emu.stop()


async def test_unwritable_cache_fails_with_the_cause(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    async with running(settings_for(blocker), wait=False) as emu:
        assert await emu.wait_ready(5) == "failed"
    assert "Cannot write the model cache" in (emu.failure or "")


async def test_max_model_len_beyond_the_kv_cache_fails_like_vllm(tmp_path: Path) -> None:
    # 8B bf16 on one A10 holds ≈39k tokens of KV cache; asking for the full 128k context fails.
    env = {"NIM_MAX_MODEL_LEN": "131072"}
    model = "meta/llama-3.1-8b-instruct"
    too_long = settings_for(tmp_path, env=env, model=model, file_scale=1e-9, time_scale=1e5)
    async with running(too_long, wait=False) as emu:
        assert await emu.wait_ready(5) == "failed"
    assert "larger than the maximum number of tokens" in (emu.failure or "")
    fits = settings_for(tmp_path, env={"NIM_MAX_MODEL_LEN": "8192"}, model=model, time_scale=1e5)
    async with running(fits) as emu, NimClient(base_url(emu)) as nim:
        listed = (await nim.request("GET", "/v1/models")).json()
    assert listed["data"][0]["max_model_len"] == 8192
