"""The batching/KV-cache performance model and /v1/metrics, observed over HTTP."""

from __future__ import annotations

import asyncio
import statistics
from pathlib import Path

import aiohttp
import pytest
from helpers_nim import base_url, running, settings_for

from nimble_oke.nim.client import NimClient
from nimble_oke.nim.prometheus import HISTOGRAMS

pytestmark = pytest.mark.anyio
MODEL = "nimble/smollm2-135m-instruct"
MODEL_8B = "meta/llama-3.1-8b-instruct"


async def test_metrics_exposition_has_nim_names_and_counts(tmp_path: Path) -> None:
    async with running(settings_for(tmp_path)) as emu, NimClient(base_url(emu)) as nim:
        for _ in range(3):
            await nim.completion(MODEL, "one two three", max_tokens=4, ignore_eos=True)
        metrics = await nim.metrics()
    assert metrics.flavour == "nim" and metrics.missing() == []
    for name in ("num_requests_running", "num_request_max", "request_finish_total", *HISTOGRAMS):
        assert metrics.resolve(name) == name
    assert metrics.value("prompt_tokens_total") == 9
    assert metrics.value("generation_tokens_total") == 12
    assert metrics.value("request_finish_total", finished_reason="length") == 3
    assert metrics.count("time_to_first_token_seconds") == 3
    assert metrics.count("time_per_output_token_seconds") == 9  # 3 gaps per 4-token request
    buckets = [s for s in metrics.samples if s.name == "e2e_request_latency_seconds_bucket"]
    assert buckets[-1].labels["le"] == "+Inf" and buckets[-1].value == 3
    assert [b.value for b in buckets] == sorted(b.value for b in buckets)


async def test_kv_capacity_makes_requests_wait(tmp_path: Path) -> None:
    # 12 × (prompt + 40 output tokens) do not fit in 200 KV tokens. The cache is paged as in
    # vLLM: sequences are admitted on their prompt alone, and when the next decode step would
    # overflow the cache the newest ones are preempted (recomputed later) — so requests wait,
    # the cache never overflows, and every request still completes.
    settings = settings_for(tmp_path, kv_capacity_tokens=200, perf_scale=4)
    async with running(settings) as emu, NimClient(base_url(emu)) as nim:
        body = {"max_tokens": 40, "ignore_eos": True}
        tasks = [
            asyncio.create_task(nim.stream_completion(MODEL, f"prompt {i}", **body))
            for i in range(12)
        ]
        waiting_seen = 0.0
        while not all(t.done() for t in tasks):
            metrics = await nim.metrics()
            waiting_seen = max(waiting_seen, metrics.value("num_requests_waiting") or 0)
            assert (metrics.value("gpu_cache_usage_perc") or 0) <= 1.0
            await asyncio.sleep(0.005)
        results = [t.result() for t in tasks]
        preemptions = emu.scheduler.preemptions
    assert waiting_seen > 0
    assert preemptions > 0
    assert all(r.done and len(r.contents) == 40 for r in results)
    durations = sorted(r.seconds for r in results)
    # Preempted requests wait for others to free the cache: completion times spread.
    assert durations[-1] > 1.5 * durations[0]


async def test_decode_step_grows_with_batch_and_matches_the_gpu_model(tmp_path: Path) -> None:
    # 8B on A10 (calibration: ≈27 ms per step at batch 1, +0.81 ms per sequence).
    settings = settings_for(
        tmp_path, model="meta/llama-3.1-8b-instruct", file_scale=1e-9, time_scale=1e5
    )
    async with running(settings) as emu, NimClient(base_url(emu)) as nim:
        one = await nim.stream_completion(MODEL_8B, "hello", max_tokens=6, ignore_eos=True)
        itl_1 = (one.seconds - (one.first_content_s or 0)) / 5
        many = await asyncio.gather(
            *(
                nim.stream_completion(MODEL_8B, f"hi {i}", max_tokens=6, ignore_eos=True)
                for i in range(24)
            )
        )
        itl_24 = statistics.median((r.seconds - (r.first_content_s or 0)) / 5 for r in many)
    assert 0.024 < itl_1 < 0.08
    assert itl_24 > itl_1 * 1.3


async def test_overload_gives_429_and_not_ready_gives_503(tmp_path: Path) -> None:
    # One running sequence (max_num_seqs 1), one waiting: the third request is refused.
    settings = settings_for(tmp_path, max_running=1, max_waiting=1, perf_scale=20)
    async with running(settings) as emu, aiohttp.ClientSession() as http:
        url = base_url(emu) + "/v1/completions"
        body = {"model": MODEL, "prompt": "x", "max_tokens": 50, "ignore_eos": True}
        first = asyncio.create_task(http.post(url, json=body))
        await asyncio.sleep(0.05)
        second = asyncio.create_task(http.post(url, json=body))
        await asyncio.sleep(0.05)
        async with http.post(url, json=body) as third:
            assert third.status == 429
            assert (await third.json())["error"]["type"] == "RateLimitError"
        for task in (first, second):
            resp = await task
            assert resp.status == 200
            await resp.read()
            resp.release()
    slow = settings_for(tmp_path / "cold", time_scale=1.0)
    async with (
        running(slow, wait=False) as emu,
        aiohttp.ClientSession() as http,
        http.post(base_url(emu) + "/v1/completions", json={"model": MODEL, "prompt": "x"}) as resp,
    ):
        assert resp.status == 503
        assert (await resp.json())["error"]["code"] == 503


async def test_zero_delay_ground_truth_records(tmp_path: Path) -> None:
    async with (
        running(settings_for(tmp_path, zero_delay=True)) as emu,
        NimClient(base_url(emu)) as nim,
    ):
        results = await asyncio.gather(
            *(
                nim.stream_chat(MODEL, [{"role": "user", "content": str(i)}], max_tokens=8)
                for i in range(16)
            )
        )
        raw = await nim.request("GET", "/v1/emulator/requests")
        rows = raw.json()["requests"]
    assert all(r.done for r in results)
    assert emu.record(rows[0]["request_id"]) == emu.records[0]
    assert len(rows) == 16 and all(row["ttft_ns"] is not None for row in rows)
    assert max(row["ttft_ns"] for row in rows) < 50e6


async def test_client_disconnect_mid_stream_frees_the_kv_cache(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, perf_scale=20)  # ≈10 ms per decode step
    async with running(settings) as emu, NimClient(base_url(emu)) as nim:
        body = {
            "model": MODEL,
            "prompt": "go",
            "max_tokens": 500,
            "ignore_eos": True,
            "stream": True,
        }
        async with aiohttp.ClientSession() as http:
            resp = await http.post(base_url(emu) + "/v1/completions", json=body)
            await resp.content.readline()
            assert emu.scheduler.kv_used > 0
            resp.close()  # drop the connection mid-stream
        for _ in range(100):
            if emu.scheduler.kv_used == 0:
                break
            await asyncio.sleep(0.02)
        metrics = await nim.metrics()
    assert emu.scheduler.kv_used == 0 and not emu.scheduler.running
    assert metrics.value("request_finish_total", finished_reason="abort") == 1
    assert emu.records[-1].finish_reason == "abort" and emu.records[-1].completion_tokens < 500


async def test_client_ttft_brackets_the_server_ground_truth(tmp_path: Path) -> None:
    # 8B on A10: a 600-token prompt prefills in ≈100 ms (6k tok/s), so TTFT is well above noise.
    settings = settings_for(tmp_path, model=MODEL_8B, file_scale=1e-9, time_scale=1e5)
    async with running(settings) as emu, NimClient(base_url(emu)) as nim:
        prompt = " ".join(["word"] * 600)
        result = await nim.stream_completion(MODEL_8B, prompt, max_tokens=3)
    assert result.request_id is not None
    record = emu.record(result.request_id)
    assert record is not None and record.ttft_ns is not None
    server_ttft = record.ttft_ns / 1e9
    assert 0.09 < server_ttft < 0.3
    assert result.first_content_s is not None
    assert server_ttft <= result.first_content_s < server_ttft + 0.05
