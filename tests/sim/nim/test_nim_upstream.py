"""NIM endpoints in front of a real OpenAI-compatible engine (proxy mode, llama-cpp)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_nim import base_url, running, settings_for
from openai import AsyncOpenAI

from nimble_oke.nim.smoke import run_smoke_async
from nimble_oke.sim.nim.upstream import LlamaCppNim, UpstreamNim, llama_cpp_available

pytestmark = pytest.mark.anyio
MODEL = "nimble/smollm2-135m-instruct"


async def test_proxy_front_passes_the_smoke_suite(tmp_path: Path) -> None:
    async with running(settings_for(tmp_path / "engine", zero_delay=True)) as engine:
        front = UpstreamNim(settings_for(tmp_path / "front"), upstream_url=base_url(engine))
        await front.start()
        try:
            assert await front.wait_ready(5) == "ready"
            report = await run_smoke_async(base_url(front), timeout_s=5)
            assert report.passed, report.failed
            async with AsyncOpenAI(base_url=base_url(front) + "/v1", api_key="x") as client:
                stream = await client.completions.create(
                    model=MODEL,
                    prompt="hi",
                    max_tokens=5,
                    stream=True,
                    extra_body={"ignore_eos": True},
                )
                assert len([c async for c in stream]) == 5
        finally:
            await front.stop()
    assert front.records[-1].completion_tokens == 5
    assert front.metrics.generation_tokens_total > 0


async def test_proxy_fails_when_the_engine_never_comes_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("nimble_oke.sim.nim.upstream._READY_TIMEOUT_S", 0.3)
    front = UpstreamNim(settings_for(tmp_path), upstream_url="http://127.0.0.1:9")
    await front.start()
    try:
        assert await front.wait_ready(5) == "failed"
        assert "not ready" in (front.failure or "")
    finally:
        await front.stop()


@pytest.mark.slow
@pytest.mark.skipif(
    not llama_cpp_available(),
    reason="optional extra .[llm] not installed (or set NIM_SIM_LLAMA_CPP_PYTHON)",
)
async def test_llama_cpp_engine_serves_a_real_model(tmp_path: Path) -> None:
    nim = LlamaCppNim(settings_for(tmp_path, engine="llama-cpp"))
    await nim.start()
    try:
        assert await nim.wait_ready(60) == "ready", nim.failure
        report = await run_smoke_async(base_url(nim), timeout_s=30)
        assert report.passed, report.failed
        async with AsyncOpenAI(base_url=base_url(nim) + "/v1", api_key="x") as client:
            reply = await client.completions.create(
                model=MODEL, prompt="The capital of France is", max_tokens=6, temperature=0
            )
        assert "Paris" in reply.choices[0].text  # a real (if tiny) model answers
    finally:
        await nim.stop()
