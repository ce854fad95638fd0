"""NIM 2.x profile names (vllm-<precision>-tp<N>-pp<M>[-lora]) next to 1.x names."""

from __future__ import annotations

import pytest

from nimble_oke.catalog import load_catalog
from nimble_oke.domain.profiles import check_deploy_profile, image_major, parse_profile
from nimble_oke.errors import CatalogError

CATALOG = load_catalog()
LLAMA_8B = "meta/llama-3.1-8b-instruct"


@pytest.mark.parametrize(
    "name",
    ["vllm-bf16-tp1-pp1", "vllm-fp8-tp4-pp1-lora", "vllm-bf16-tp2", "tensorrt_llm-a10-bf16-tp1"],
)
def test_names_round_trip(name: str) -> None:
    assert parse_profile(name).name == name


def test_2x_names_are_read() -> None:
    spec = parse_profile("vllm-fp8-tp4-pp1-feat_lora")
    assert (spec.engine, spec.precision, spec.tensor_parallel) == ("vllm", "fp8", 4)
    assert spec.pipeline_parallel == 1 and spec.lora and spec.nim_major == 2
    assert parse_profile("tensorrt_llm-a10-bf16-tp1").nim_major == 1
    assert parse_profile("vllm-bf16-tp1").nim_major is None


def test_deploy_check_knows_the_image_major() -> None:
    def check(profile: str, tag: str | None) -> object:
        return check_deploy_profile(CATALOG, LLAMA_8B, "VM.GPU.A10.1", "bf16", profile, tag)

    assert check("vllm-bf16-tp1-pp1", "2.0.12").fits  # type: ignore[attr-defined]
    assert check("tensorrt_llm-a10-bf16-tp1", "1.8.0").fits  # type: ignore[attr-defined]
    with pytest.raises(CatalogError, match="NIM 2.x, which runs vLLM profiles only") as err:
        check("tensorrt_llm-a10-bf16-tp1", "2.0.12")
    assert "vllm-bf16-tp1-pp1" in str(err.value)
    with pytest.raises(CatalogError, match="is a NIM 2.x profile name; image tag 1.8.0"):
        check("vllm-bf16-tp1-pp1", "1.8.0")
    with pytest.raises(CatalogError, match="spans 2 nodes"):
        check("vllm-bf16-tp1-pp2", "2.0.12")


def test_image_major() -> None:
    assert [image_major(t) for t in ("1.8.0", "2.0.12", "2.1.6", "0.1.0", None)] == [1, 2, 2, 2, 2]


def test_candidates_follow_the_image_major() -> None:
    from nimble_oke.domain.profiles import list_profiles

    v2 = list_profiles(CATALOG, LLAMA_8B, "VM.GPU.A10.1", image_tag="2.0.12")
    assert {o.spec.engine for o in v2} == {"vllm"}
    assert all(o.spec.name.endswith("-pp1") for o in v2)
    assert [o.spec.name for o in v2 if o.recommended] == ["vllm-bf16-tp1-pp1"]
    v1 = list_profiles(CATALOG, LLAMA_8B, "VM.GPU.A10.1", image_tag="1.8.0")
    assert [o.spec.name for o in v1 if o.recommended] == ["tensorrt_llm-a10-bf16-tp1"]
