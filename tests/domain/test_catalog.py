from __future__ import annotations

import pytest

from nimble_oke.catalog import load_catalog
from nimble_oke.domain.catalog import check_deployment, memory_fit, shapes_that_fit
from nimble_oke.errors import CatalogError

CAT = load_catalog()


def test_catalog_has_prices_for_every_shape_and_sources() -> None:
    for shape in CAT.shapes.values():
        assert CAT.price(shape.price_key).usd > 0
    for price in CAT.prices.values():
        assert price.source and price.unit
    assert CAT.prices_as_of == "2026-08"


def test_8b_bf16_fits_one_a10() -> None:
    report = check_deployment(
        CAT, "meta/llama-3.1-8b-instruct", "bf16", "VM.GPU.A10.1", preemptible=True
    )
    assert report.fits
    # calibration.md: (0.9 × 24 − 14.96 − 1.5) GB ÷ 128 KiB ≈ 42k tokens
    assert 35_000 < report.kv_tokens < 45_000


def test_70b_on_a10_is_refused_with_a_shape_that_fits() -> None:
    with pytest.raises(CatalogError) as info:
        check_deployment(
            CAT, "meta/llama-3.3-70b-instruct", "bf16", "VM.GPU.A10.1", preemptible=False
        )
    message = str(info.value)
    assert "does not fit VM.GPU.A10.1" in message
    assert "131.0 GB bf16 weights" in message
    assert "a shape that fits: BM.GPU" in message


def test_fp8_needs_compute_capability_8_9() -> None:
    with pytest.raises(CatalogError, match=r"fp8 needs GPU compute capability ≥ 8.9.*8.6") as info:
        check_deployment(
            CAT, "meta/llama-3.1-8b-instruct", "fp8", "VM.GPU.A10.1", preemptible=False
        )
    assert "BM.GPU.L40S.4" in str(info.value) or "BM.GPU.H100.8" in str(info.value)
    assert check_deployment(
        CAT, "meta/llama-3.1-8b-instruct", "fp8", "BM.GPU.H100.8", preemptible=False
    ).fits


def test_bf16_refused_on_v100() -> None:
    with pytest.raises(CatalogError, match="bf16 needs GPU compute capability ≥ 8"):
        check_deployment(CAT, "meta/llama-3.2-1b-instruct", "bf16", "VM.GPU3.1", preemptible=False)


def test_preemptible_only_on_vm_shapes() -> None:
    with pytest.raises(CatalogError, match="only on VM shapes; BM.GPU.A10.4 is bare metal") as info:
        check_deployment(
            CAT, "meta/llama-3.1-8b-instruct", "bf16", "BM.GPU.A10.4", preemptible=True
        )
    assert "VM.GPU.A10.1" in str(info.value)


def test_unknown_names_list_what_is_known() -> None:
    with pytest.raises(CatalogError, match="unknown GPU shape 'VM.GPU.X'.*VM.GPU.A10.1"):
        CAT.shape("VM.GPU.X")
    with pytest.raises(CatalogError, match="unknown model 'meta/nope'.*llama-3.1-8b"):
        CAT.model("meta/nope")
    with pytest.raises(CatalogError, match="no int4-awq weights"):
        check_deployment(
            CAT, "meta/llama-3.2-1b-instruct", "int4-awq", "VM.GPU.A10.1", preemptible=False
        )


def test_shapes_that_fit_are_sorted_cheapest_first() -> None:
    model = CAT.model("meta/llama-3.1-8b-instruct")
    fits = shapes_that_fit(CAT, model, "bf16")
    assert fits[0].name == "VM.GPU.A10.1"
    costs = [CAT.hourly(s.price_key) * s.gpu_count for s in fits]
    assert costs == sorted(costs)
    assert all(memory_fit(model, "bf16", s).fits for s in fits)
    assert all(
        s.preemptible_eligible for s in shapes_that_fit(CAT, model, "bf16", preemptible=True)
    )
