"""NIM profile decisions from the catalog: what runs on which shape, and refusals."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from nimble_oke.catalog import load_catalog
from nimble_oke.cli.production_cmd import profiles
from nimble_oke.domain.catalog import memory_fit
from nimble_oke.domain.profiles import (
    ProfileSpec,
    check_deploy_profile,
    check_profile,
    list_profiles,
    parse_profile,
    tensor_parallel_degrees,
)
from nimble_oke.errors import CatalogError

from .metadata_server import metadata_api

CATALOG = load_catalog()
LLAMA_8B = "meta/llama-3.1-8b-instruct"
LLAMA_70B = "meta/llama-3.3-70b-instruct"


def by_name(model: str, shape: str) -> dict[str, object]:
    return {o.spec.name: o for o in list_profiles(CATALOG, model, shape)}


def test_fp8_is_refused_on_a10_and_runs_on_l40s_and_h100() -> None:
    a10 = by_name(LLAMA_8B, "VM.GPU.A10.1")
    assert not a10["vllm-fp8-tp1"].fits  # type: ignore[attr-defined]
    assert "8.9" in a10["vllm-fp8-tp1"].reason  # type: ignore[attr-defined]
    with pytest.raises(CatalogError) as err:
        check_profile(CATALOG, LLAMA_8B, "VM.GPU.A10.1", "tensorrt_llm-a10-fp8-tp1")
    assert "compute capability" in err.value.message
    # The suggestion is a profile that really passes the same check.
    suggested = err.value.hint.split(": ", 1)[1].split(" ")[0]  # type: ignore[union-attr]
    assert check_profile(CATALOG, LLAMA_8B, "VM.GPU.A10.1", suggested).fits
    assert check_profile(CATALOG, LLAMA_8B, "BM.GPU.L40S.4", "tensorrt_llm-l40s-fp8-tp1").fits
    assert check_profile(CATALOG, LLAMA_8B, "BM.GPU.H100.8", "vllm-fp8-tp1").fits


def test_tensorrt_llm_engine_for_another_gpu_is_refused() -> None:
    with pytest.raises(CatalogError) as err:
        check_profile(CATALOG, LLAMA_8B, "VM.GPU.A10.1", "tensorrt_llm-h100-bf16-tp1")
    assert "no kernel image is available" in err.value.message
    assert "tensorrt_llm-a10-bf16-tp1" in str(err.value)
    # The same engine on its own GPU runs; a generic vLLM profile runs on both.
    assert check_profile(CATALOG, LLAMA_8B, "BM.GPU.H100.8", "tensorrt_llm-h100-bf16-tp1").fits
    assert check_profile(CATALOG, LLAMA_8B, "VM.GPU.A10.1", "vllm-bf16-tp1").fits


def test_no_tensorrt_llm_on_volta_and_no_bf16_either() -> None:
    v100 = list_profiles(CATALOG, "mistralai/mistral-7b-instruct-v0.3", "VM.GPU3.1")
    assert not any(o.fits for o in v100)
    trt = [o for o in v100 if o.spec.engine == "tensorrt_llm" and o.spec.precision == "bf16"]
    assert trt and all("compute capability" in o.reason for o in trt)
    assert not any(o.recommended for o in v100)


def test_tensor_parallelism_splits_weights_and_grows_the_kv_cache() -> None:
    h100 = by_name(LLAMA_70B, "BM.GPU.H100.8")
    assert not h100["tensorrt_llm-h100-bf16-tp1"].fits  # type: ignore[attr-defined]
    assert "tp1 (1 of 8 GPUs)" in h100["tensorrt_llm-h100-bf16-tp1"].reason  # type: ignore[attr-defined]
    tps = [h100[f"tensorrt_llm-h100-bf16-tp{n}"] for n in (2, 4, 8)]
    assert all(o.fits for o in tps)  # type: ignore[attr-defined]
    kv = [o.kv_tokens for o in tps]  # type: ignore[attr-defined]
    assert kv == sorted(kv) and kv[0] < kv[-1]
    # Exactly the catalog's fit rule applied to the GPUs the profile uses.
    shape = CATALOG.shape("BM.GPU.H100.8")
    expected = memory_fit(CATALOG.model(LLAMA_70B), "bf16", replace(shape, gpu_count=4))
    assert h100["tensorrt_llm-h100-bf16-tp4"].kv_tokens == expected.kv_tokens  # type: ignore[attr-defined]


def test_tensor_parallelism_beyond_the_node_is_refused() -> None:
    with pytest.raises(CatalogError, match="tensor parallelism 2 needs 2 GPUs"):
        check_profile(CATALOG, LLAMA_8B, "VM.GPU.A10.1", "vllm-bf16-tp2")
    assert tensor_parallel_degrees(8) == [1, 2, 4, 8]
    assert tensor_parallel_degrees(1) == [1]


def test_recommendation_prefers_tensorrt_llm_then_accuracy_then_fewest_gpus() -> None:
    options = list_profiles(CATALOG, LLAMA_8B, "VM.GPU.A10.2")
    recommended = [o for o in options if o.recommended]
    assert [o.spec.name for o in recommended] == ["tensorrt_llm-a10-bf16-tp1"]
    # 70B bf16 fits two H100s with a 32k-token KV cache only: four GPUs are recommended.
    h100 = [o for o in list_profiles(CATALOG, LLAMA_70B, "BM.GPU.H100.8") if o.recommended]
    assert [o.spec.name for o in h100] == ["tensorrt_llm-h100-bf16-tp4"]


def test_model_without_a_precision_and_bad_names() -> None:
    with pytest.raises(CatalogError, match="no int4-awq weights"):
        check_profile(CATALOG, "meta/llama-3.2-1b-instruct", "VM.GPU.A10.1", "vllm-int4-awq-tp1")
    with pytest.raises(CatalogError, match="cannot read NIM profile"):
        parse_profile("3bb4e8fe78e5037b05dd618cebb1053347325ad6a1e709e0eb18bb8558362ac5")
    with pytest.raises(CatalogError, match="names the GPU"):
        parse_profile("tensorrt_llm-bf16-tp1")
    with pytest.raises(CatalogError, match="unknown GPU shape"):
        list_profiles(CATALOG, LLAMA_8B, "VM.GPU.Z1")


@pytest.mark.parametrize(
    "name",
    ["vllm-bf16-tp1", "tensorrt_llm-a100-80gb-fp8-tp4", "tensorrt_llm-a10-int4-awq-tp2"],
)
def test_profile_names_round_trip(name: str) -> None:
    assert parse_profile(name).name == name


SPECS = st.builds(
    ProfileSpec,
    engine=st.sampled_from(["tensorrt_llm", "vllm"]),
    precision=st.sampled_from(["bf16", "fp16", "fp8", "int4-awq"]),
    tensor_parallel=st.sampled_from([1, 2, 3, 4, 8, 16]),
    gpu_model=st.sampled_from([None, "A10", "H100", "L40S", "A100-80GB"]),
)


@settings(max_examples=300, deadline=None)
@given(
    model=st.sampled_from(sorted(CATALOG.models)),
    shape=st.sampled_from(sorted(CATALOG.shapes)),
    spec=SPECS,
)
def test_check_profile_accepts_exactly_what_the_rules_allow(
    model: str, shape: str, spec: ProfileSpec
) -> None:
    s = CATALOG.shape(shape)
    m = CATALOG.model(model)
    allowed = (
        spec.precision in m.weights_gb
        and s.compute_capability >= CATALOG.precision_min_cc[spec.precision]
        and spec.tensor_parallel in (1, 2, 4, 8)
        and spec.tensor_parallel <= s.gpu_count
        and (
            spec.engine == "vllm"
            or (
                s.compute_capability >= 8.0
                and (spec.gpu_model is None or spec.gpu_model.lower() == s.gpu_model.lower())
            )
        )
        and memory_fit(m, spec.precision, replace(s, gpu_count=spec.tensor_parallel)).fits
    )
    try:
        option = check_profile(CATALOG, model, shape, spec)
    except CatalogError as exc:
        assert not allowed, exc
        assert exc.hint
    else:
        assert allowed and option.fits and option.kv_tokens >= m.min_kv_tokens


def cli() -> typer.Typer:
    app = typer.Typer()
    app.command("profiles")(profiles)
    app.command("noop", hidden=True)(lambda: None)  # a group, as in the real `nimble` app
    return app


def test_cli_json_lists_every_candidate_with_decisions() -> None:
    result = CliRunner().invoke(
        cli(), ["profiles", LLAMA_8B, "--shape", "VM.GPU.A10.1", "--output", "json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    rows = {p["profile"]: p for p in data["profiles"]}
    # 2 engines × 3 precisions × tp1 on a one-GPU shape.
    assert len(rows) == 6
    assert rows["tensorrt_llm-a10-bf16-tp1"]["fits"] is True
    assert rows["tensorrt_llm-a10-bf16-tp1"]["recommended"] is True
    assert rows["vllm-fp8-tp1"]["fits"] is False
    assert rows["vllm-int4-awq-tp1"]["kv_cache_tokens"] > rows["vllm-bf16-tp1"]["kv_cache_tokens"]


def test_cli_table_and_nothing_fits_exit_code() -> None:
    ok = CliRunner().invoke(
        cli(), ["profiles", LLAMA_8B, "--shape", "VM.GPU.A10.2"], env={"COLUMNS": "220"}
    )
    assert ok.exit_code == 0 and "tensorrt_llm-a10-bf16-tp2" in ok.output
    none = CliRunner().invoke(cli(), ["profiles", LLAMA_70B, "--shape", "VM.GPU.A10.1"])
    assert none.exit_code == 1
    bad = CliRunner().invoke(cli(), ["profiles", LLAMA_8B, "--shape", "nope"])
    assert bad.exit_code == 2 and "unknown GPU shape" in bad.output


def test_deploy_check_for_the_configured_profile() -> None:
    def check(precision: str, profile: str | None) -> object:
        return check_deploy_profile(CATALOG, LLAMA_8B, "VM.GPU.A10.1", precision, profile)

    assert check("bf16", None) is None
    assert check("bf16", "a" * 64) is None  # a profile id: NIM decides
    assert check("bf16", "vllm-bf16-tp1").fits  # type: ignore[attr-defined]
    with pytest.raises(CatalogError, match="is fp8 but nim.precision is bf16"):
        check("bf16", "tensorrt_llm-a10-fp8-tp1")
    with pytest.raises(CatalogError, match="compute capability"):
        check("fp8", "tensorrt_llm-a10-fp8-tp1")


def test_cli_ngc_metadata_says_which_published_profiles_fit() -> None:
    """--ngc asks the NIM Metadata API (its emulator here, on 127.0.0.1) without
    credentials; a 1.x tag has no published metadata, which is not an error."""
    with metadata_api() as url:
        args = ["profiles", LLAMA_8B, "--shape", "VM.GPU.A10.1", "--ngc", "--metadata-url", url]
        fresh = CliRunner().invoke(cli(), [*args, "--image-tag", "2.0.12", "-o", "json"])
        old = CliRunner().invoke(cli(), [*args, "--image-tag", "1.8.0"], env={"COLUMNS": "220"})
    assert fresh.exit_code == 0, fresh.output
    published = json.loads(fresh.output)["ngc_metadata"]
    assert published["status"] == "pass" and "vllm-bf16-tp1-pp1" in published["detail"]
    assert old.exit_code == 0 and "publishes no metadata" in old.output
    plain = CliRunner().invoke(
        cli(), ["profiles", LLAMA_8B, "--shape", "VM.GPU.A10.1", "-o", "json"]
    )
    assert "ngc_metadata" not in json.loads(plain.output)  # nothing asked without --ngc


def test_nim_profiles_from_themetadata_api() -> None:
    from nimble_oke.domain.config import build_config
    from nimble_oke.services.doctor import check_nim_profiles

    def cfg(**nim: str):  # type: ignore[no-untyped-def]
        return build_config(
            {"target": "oci", "gpu_pool": {"shape": "VM.GPU.A10.1"}, "nim": nim}, {}
        )

    with metadata_api() as url:
        fits = check_nim_profiles(cfg(image_tag="2.0.12"), metadata_url=url)
        assert fits.status == "pass" and "vllm-bf16-tp1-pp1" in fits.detail, fits
        assert "tp2" not in fits.detail  # one A10: single-GPU profiles only
        pinned = check_nim_profiles(
            cfg(image_tag="2.0.12", model_profile="vllm-bf16-tp4-pp1"), metadata_url=url
        )
        assert pinned.status == "warn" and "not among the profiles" in pinned.detail, pinned
        none = check_nim_profiles(cfg(image_tag="1.8.0"), metadata_url=url)
        assert none.status == "pass" and "publishes no metadata" in none.detail
    unreachable = check_nim_profiles(cfg(image_tag="2.0.12"), metadata_url="http://127.0.0.1:9/v2")
    assert unreachable.status == "warn" and "unreachable" in unreachable.detail
