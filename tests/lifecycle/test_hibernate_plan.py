"""`nimble plan --gap`: hibernate vs standby vs cold for the user's expected gap between
sessions (services/planning.py over domain/hibernate.py), and what the plan predicts for
the wake (the figures benchmarks/time_to_ready.py measures)."""

from __future__ import annotations

import pytest

from nimble_oke.domain.config import build_config
from nimble_oke.errors import ConfigError
from nimble_oke.services.planning import parse_gap, sleep_comparison, sleep_lines


@pytest.mark.parametrize(
    ("text", "hours"), [("16", 16.0), ("90m", 1.5), ("16h", 16.0), ("1d", 24.0), ("2w", 336.0)]
)
def test_gap_units(text: str, hours: float) -> None:
    assert parse_gap(text) == pytest.approx(hours)


@pytest.mark.parametrize("text", ["", "soon", "-1d", "2y", "nan", "inf", "400d"])
def test_a_bad_gap_names_what_is_allowed(text: str) -> None:
    with pytest.raises(ConfigError) as bad:
        parse_gap(text)
    assert "m, h, d or w" in bad.value.message


def test_a_short_gap_favours_hibernate_and_a_long_one_cold() -> None:
    cfg = build_config({"gpu_pool": {"shape": "VM.GPU.A10.1"}})
    short = sleep_comparison(cfg, parse_gap("1h"))
    assert short["recommended"] == "hibernate"
    hibernate = short["options"][0]
    assert hibernate["name"] == "hibernate" and hibernate["available"]
    assert hibernate["ready_s"] / 60 < 5.0  # the bar, at the typical assumption
    low, high = hibernate["ready_range_s"]
    assert low < hibernate["ready_s"] < high  # the start time is an assumption: its range
    keys = {line["price_key"] for line in hibernate["asleep_lines"]}
    assert keys <= {"block.storage", "block.vpu", "oke.basic"}  # storage, a free control plane
    week = sleep_comparison(cfg, parse_gap("1w"))
    assert week["recommended"] == "cold"
    assert 0 < week["hibernate_breakeven_hours"]["cold"] < 168
    lines = sleep_lines(short)
    assert any(line.startswith(" → hibernate") for line in lines)


def test_a_shape_billed_while_stopped_shows_hibernate_refused() -> None:
    # (VM.GPU3.1, the other refused shape, runs no catalog model — V100s lack bf16 — so
    # no plan exists for it; its refusal from the API's answer is in test_hibernate_lifecycle)
    shape = "BM.GPU.A10.4"
    cfg = build_config({"gpu_pool": {"shape": shape}})
    comparison = sleep_comparison(cfg, 1.0)
    assert comparison["recommended"] != "hibernate"
    assert comparison["hibernate_breakeven_hours"] == {}
    text = "\n".join(sleep_lines(comparison))
    assert "refused" in text and f"cannot hibernate {shape}" in text
