"""Accuracy against ground truth: the exact SSE server and a minimal reference client."""

from __future__ import annotations

import asyncio
import statistics

import numpy as np

from nimble_oke.bench import BenchConfig, analyze, run_async, summarize

from .conftest import arun, reference_client
from .truth_server import TruthServer, TruthSettings


def test_ttft_and_itl_match_reference_client_within_1ms() -> None:
    async def scenario() -> None:
        settings = TruthSettings(ttft_s=0.05, itl_s=0.01, role_chunk=True)
        async with TruthServer(settings) as srv:
            config = BenchConfig(
                endpoint=srv.url, concurrency=4, requests=40, output_tokens=8, warmup=2
            )
            result, (ref_ttft, ref_itl) = await asyncio.gather(
                run_async(config), reference_client(srv.url, settings.model, 12, 8)
            )
            s = summarize(result)
            assert s["errors"]["count"] == 0
            # within 1 ms of the reference client — or closer to the truth: the lean hot
            # path stamps the send at the write, the reference before aiohttp's own work
            assert s["time_to_first_token"]["p50"] < statistics.median(ref_ttft) + 1.0
            # one token per chunk: per request, per token and per chunk gap all agree
            for key in ("inter_token_latency", "inter_token_latency_per_token"):
                assert abs(s[key]["p50"] - statistics.median(ref_itl)) < 1.0, key
            # the truth: 50 ms and 10 ms scheduled by the server
            assert 50.0 <= s["time_to_first_token"]["p50"] < 55.0
            assert 9.0 < s["inter_token_latency"]["p50"] < 11.0
            # never below the server's own first-token time, request by request
            table = analyze(result)
            server_ttft = sorted(srv.truth.server_ttft_ms())
            client_ttft = sorted(table.ttft_ms[table.ok].tolist())
            assert len(client_ttft) == 40
            # the server saw 40 bench + 12 reference + 2 warm-up; compare order statistics
            # of the bench requests with the server's smallest values (a lower bound)
            assert min(client_ttft) >= min(server_ttft)
            assert s["server"]["available"] is True
            # the server's histogram also holds the reference client's requests, and in one
            # process it stamps its first token after the write returns (the client's read
            # may run first): the means agree within a few ms, no ordering
            server_mean = s["server"]["time_to_first_token_mean_ms"]
            assert abs(server_mean - s["time_to_first_token"]["avg"]) < 5.0

    arun(scenario())


def test_client_ttft_never_below_server_first_token_per_request() -> None:
    async def scenario() -> None:
        async with TruthServer(TruthSettings(ttft_s=0.03, itl_s=0.002)) as srv:
            result = await run_async(
                BenchConfig(endpoint=srv.url, concurrency=1, requests=10, output_tokens=4)
            )
            table = analyze(result)
            server = srv.truth.server_ttft_ms()
            assert len(server) == 10
            gaps = [c - s for c, s in zip(table.ttft_ms.tolist(), server, strict=True)]
            assert min(gaps) >= 0.0
            assert float(np.median(gaps)) < 5.0  # loopback + both event loops, typically < 2

    arun(scenario())


def test_role_only_first_chunk_is_not_the_first_token() -> None:
    async def scenario() -> None:
        # role chunk is written immediately; the first content token only after 40 ms
        async with TruthServer(TruthSettings(ttft_s=0.04, itl_s=0.002, role_chunk=True)) as srv:
            result = await run_async(
                BenchConfig(endpoint=srv.url, concurrency=2, requests=6, output_tokens=3)
            )
            t = analyze(result)
            assert np.all(t.ttft_ms >= 40.0)
            # the headers and role chunk came first
            assert np.all(t.values("time_to_first_byte") < 40.0)
            assert np.all(t.osl == 3)

    arun(scenario())


def test_itl_is_per_token_with_multi_token_chunks() -> None:
    async def scenario() -> None:
        # 4 tokens per chunk, 12 ms between chunks → 3 ms per token
        settings = TruthSettings(ttft_s=0.01, itl_s=0.012, tokens_per_chunk=4)
        async with TruthServer(settings) as srv:
            result = await run_async(
                BenchConfig(endpoint=srv.url, concurrency=2, requests=6, output_tokens=16)
            )
            s = summarize(result)
            t = analyze(result)
            assert np.all(t.osl == 16)  # from usage
            assert np.all(t.first_tokens == 4)
            # AIPerf's per-request ITL = (last − first content)/(OSL − first-chunk tokens)
            # ≈ 36 ms / 12 tokens; TPOT is the same formula under GenAI-Perf's name
            assert 2.5 < s["inter_token_latency"]["p50"] < 3.6
            assert s["inter_token_latency"]["count"] == 6
            assert s["time_per_output_token"]["p50"] == s["inter_token_latency"]["p50"]
            itl = t.values("inter_token_latency")
            expected = (t.last_ms - t.first_ms) / (t.osl - t.first_tokens)
            assert np.allclose(itl, expected)
            # per token: each request contributes OSL − first-chunk tokens samples
            assert 2.5 < s["inter_token_latency_per_token"]["p50"] < 3.5
            assert s["inter_token_latency_per_token"]["count"] == t.itl_ms.size == 6 * 12
            # per chunk gap (AIPerf's inter_chunk_latency): 3 gaps of ~12 ms per request
            assert s["inter_chunk_latency"]["count"] == 6 * 3
            assert 10.0 < s["inter_chunk_latency"]["p50"] < 14.0
            assert s["token_accounting"] == {"source": "usage", "flagged_requests": 0}

    arun(scenario())
