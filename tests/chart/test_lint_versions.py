"""`nimble lint` catches a NIM 1.x setting used with a 2.x image, and the reverse."""

from __future__ import annotations

from typing import Any

import pytest

from nimble_oke.domain.config import build_config
from nimble_oke.services.chart_ops import lint_values

V1 = {"repository": "nvcr.io/nim/meta/llama-3.1-8b-instruct", "tag": "1.8.0"}
V2 = {"repository": "nvcr.io/nim/meta/llama-3.1-8b-instruct", "tag": "2.0.12"}


def env(*names: str) -> dict[str, Any]:
    return {"nim": {"extraEnv": [{"name": n, "value": "1"} for n in names]}}


@pytest.mark.parametrize(
    ("values", "key", "words"),
    [
        # 1.x settings with a 2.x image
        (
            {"image": V2, **env("NIM_TENSOR_PARALLEL_SIZE")},
            "nim.extraEnv[0]",
            "not read by NIM 2.x",
        ),
        (
            {"image": V2, **env("NIM_LOG_LEVEL", "NIM_ENABLE_KV_CACHE_REUSE")},
            "nim.extraEnv[1]",
            "passthroughArgs",
        ),
        (
            {"image": V2, "nim": {"modelProfile": "tensorrt_llm-a10-bf16-tp1"}},
            "nim.modelProfile",
            "vLLM profiles only",
        ),
        # 2.x settings with a 1.x image
        ({"image": V1, **env("NIM_PASSTHROUGH_ARGS")}, "nim.extraEnv[0]", "NIM 2.x variable"),
        (
            {"image": V1, "nim": {"passthroughArgs": "--max-num-seqs 8"}},
            "nim.passthroughArgs",
            "NIM 2.x setting",
        ),
        ({"image": V1, "nim": {"healthPort": 9000}}, "nim.healthPort", "NIM 2.x setting"),
        (
            {"image": V1, "nim": {"modelProfile": "vllm-bf16-tp1-pp1"}},
            "nim.modelProfile",
            "NIM 2.x profile",
        ),
    ],
)
def test_settings_of_the_other_major_are_errors(
    values: dict[str, Any], key: str, words: str
) -> None:
    issues = lint_values(build_config({}), values)
    matching = [i for i in issues if i.key == key]
    assert matching and matching[0].severity == "error", issues
    assert words in matching[0].message


def test_settings_of_the_right_major_are_clean() -> None:
    cfg = build_config({})
    assert lint_values(cfg, {"image": V2, **env("NIM_LOG_LEVEL", "NIM_PASSTHROUGH_ARGS")}) == []
    assert lint_values(cfg, {"image": V2, "nim": {"passthroughArgs": "--max-num-seqs 8"}}) == []
    assert lint_values(cfg, {"image": V1, **env("NIM_ENABLE_KV_CACHE_REUSE")}) == []
    assert (
        lint_values(cfg, {"image": V1, "nim": {"modelProfile": "tensorrt_llm-a10-bf16-tp1"}}) == []
    )
