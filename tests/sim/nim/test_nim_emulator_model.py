"""Pure parts of the emulator: tokenizer/text generator and the calibrated GPU model."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nimble_oke.sim.nim import NimSettings
from nimble_oke.sim.nim.engine import BatchScheduler
from nimble_oke.sim.nim.metrics import NimMetrics
from nimble_oke.sim.nim.text import count_chat_tokens, count_tokens, generate_tokens, request_rng


@given(st.integers(min_value=0, max_value=2**32), st.integers(min_value=1, max_value=400))
def test_generated_text_tokenizes_back_to_its_token_count(seed: int, count: int) -> None:
    tokens = generate_tokens(random.Random(seed), count)
    assert len(tokens) == count
    assert count_tokens("".join(tokens)) == count


@given(st.text(max_size=200))
def test_token_count_is_additive_over_whitespace(text: str) -> None:
    assert count_tokens(text + " " + text) == 2 * count_tokens(text)


def test_tokenizer_examples() -> None:
    assert count_tokens("Hello, world!") == 4
    assert count_tokens("internationalization") == 3  # 20 letters in pieces of ≤ 8
    assert count_chat_tokens([("user", "hi")]) == 3 + 3 + 1 + 1


def test_same_prompt_same_stream_at_temperature_zero() -> None:
    a = generate_tokens(request_rng(0, "prompt", 0.0, None), 20)
    b = generate_tokens(request_rng(0, "prompt", 0.0, None), 20)
    c = generate_tokens(request_rng(1, "prompt", 0.0, None), 20)
    assert a == b != c


def _scheduler(model: str, gpu: str, gpu_count: int = 1) -> BatchScheduler:
    settings = NimSettings(model=model, served_model_name=model, gpu=gpu, gpu_count=gpu_count)
    return BatchScheduler(settings, NimMetrics(model))


def test_h100_decode_steps_follow_the_nim_benchmark_page() -> None:
    # NIM 1.8 Llama-3.1-8B benchmark page: ITL 4.63 ms at c=1, 7.57 at c=100, 12.65 at c=200.
    h100 = _scheduler("meta/llama-3.1-8b-instruct", "H100")
    assert h100.decode_step_s(1) * 1000 == pytest.approx(4.63, rel=0.05)
    assert h100.decode_step_s(100) * 1000 == pytest.approx(7.57, rel=0.15)
    assert h100.decode_step_s(200) * 1000 == pytest.approx(12.65, rel=0.05)
    # Prefill ≈ 56k tok/s: a 2,000-token prompt in ≈36 ms.
    assert h100.prefill_s(2000) == pytest.approx(0.036, rel=0.05)


def test_70b_on_two_h100_and_gpu_ordering() -> None:
    # Llama-3.3-70B on 2×H100 (TP2): c=1 ITL 18.6 ms (calibration.md); bf16 weights here.
    big = _scheduler("meta/llama-3.3-70b-instruct", "H100", gpu_count=2)
    assert 15 < big.decode_step_s(1) * 1000 < 25
    steps = {
        g: _scheduler("meta/llama-3.1-8b-instruct", g).decode_step_s(8)
        for g in ("A10", "L40S", "A100-40GB", "H100")
    }
    assert steps["H100"] < steps["A100-40GB"] < steps["L40S"] < steps["A10"]


@pytest.mark.parametrize(
    ("gpu", "low", "high"),
    # calibration.md "KV capacity, 8B bf16 (derived)": H100 ≈440k, A100-40 ≈145k, L40S ≈200k.
    [("H100", 400_000, 460_000), ("A100-40GB", 135_000, 155_000), ("L40S", 190_000, 215_000)],
)
def test_kv_capacity_matches_calibration(gpu: str, low: int, high: int) -> None:
    assert low < NimSettings(gpu=gpu).kv_capacity_tokens < high
