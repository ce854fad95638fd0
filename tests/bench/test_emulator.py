"""Integration: the benchmark against the NIM emulator (skipped if the emulator is absent)."""

from __future__ import annotations

import tempfile

import numpy as np
import pytest

from nimble_oke.bench import BenchConfig, analyze, run_async, summarize
from nimble_oke.ngc_keys import throwaway_key

from .conftest import arun

nim = pytest.importorskip("nimble_oke.sim.nim")
TINY_MODEL = pytest.importorskip("nimble_oke.sim.nim.catalog").TINY_MODEL


def test_bench_against_nim_emulator() -> None:
    async def scenario() -> None:
        with tempfile.TemporaryDirectory() as cache:
            settings = nim.NimSettings.from_env(
                {"NIM_CACHE_PATH": cache, "NGC_API_KEY": throwaway_key()},
                model=TINY_MODEL,
                time_scale=5000.0,
                reject_max_completion_tokens=True,
            )
            emulator = nim.NimEmulator(settings)
            port = await emulator.start("127.0.0.1", 0)
            try:
                assert await emulator.wait_ready(20) == "ready", emulator.failure
                result = await run_async(
                    BenchConfig(
                        endpoint=f"http://127.0.0.1:{port}",
                        concurrency=4,
                        requests=12,
                        output_tokens=8,
                        input_tokens_mean=64,
                    )
                )
                records = list(emulator.records)
            finally:
                await emulator.stop()
        s = summarize(result)
        assert result.model == settings.served_model_name
        assert result.token_param == "max_tokens"  # fell back after the 400
        assert s["errors"]["count"] == 0, s["errors"]
        assert s["output_sequence_length"]["avg"] == 8
        assert s["input_sequence_length"]["avg"] is not None
        # the client's TTFT is never below the server's own (smallest vs smallest, and mean)
        server_ttft = np.array([r.ttft_ns / 1e6 for r in records if r.ttft_ns is not None])
        client_ttft = analyze(result).ttft_ms
        assert client_ttft.min() >= server_ttft.min()
        assert client_ttft.mean() >= server_ttft.mean()
        assert s["server"]["available"] is True

    arun(scenario())
