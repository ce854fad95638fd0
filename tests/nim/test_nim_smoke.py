"""The smoke suite against the NIM emulator and against servers broken on purpose."""

from __future__ import annotations

import asyncio
import json
import socket
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from fake_openai_server import MODEL, serve

from nimble_oke.ngc_keys import throwaway_key
from nimble_oke.nim.smoke import (
    CHECK_NAMES,
    run_smoke,
    run_smoke_async,
    to_dict,
    to_junit_xml,
    to_rows,
)
from nimble_oke.sim.nim import NimEmulator, NimSettings
from nimble_oke.sim.nim.catalog import TINY_MODEL

pytestmark = pytest.mark.anyio


async def test_smoke_passes_against_the_emulator(tmp_path: Path) -> None:
    settings = NimSettings.from_env(
        {"NIM_CACHE_PATH": str(tmp_path), "NGC_API_KEY": throwaway_key()},
        model=TINY_MODEL,
        time_scale=5000,
    )
    emu = NimEmulator(settings)
    port = await emu.start()
    try:
        assert await emu.wait_ready(10) == "ready"
        # The blocking API, from a worker thread while the emulator serves on this loop.
        report = await asyncio.to_thread(run_smoke, f"http://127.0.0.1:{port}/v1", None, 10)
    finally:
        await emu.stop()
    assert [c.name for c in report.checks] == list(CHECK_NAMES)
    assert report.passed, report.failed
    assert report.model == TINY_MODEL
    assert report.summary == "16/16 passed"
    # No profile was planned: the check shows the selected one and says so.
    metadata = next(c for c in report.checks if c.name == "metadata")
    assert "vllm-bf16-tp1-pp1" in metadata.detail and "no profile was planned" in metadata.detail
    data = json.loads(json.dumps(to_dict(report)))
    assert data["passed"] is True and len(data["checks"]) == 16 and data["skipped"] == []
    assert {row[1] for row in to_rows(report)} == {"passed"}


@pytest.mark.parametrize(
    ("planned", "ok"), [("vllm-bf16-tp1-pp1", True), ("vllm-fp8-tp2-pp1", False)]
)
async def test_metadata_check_compares_the_planned_profile(
    tmp_path: Path, planned: str, ok: bool
) -> None:
    settings = NimSettings.from_env(
        {"NIM_CACHE_PATH": str(tmp_path), "NGC_API_KEY": throwaway_key()},
        model=TINY_MODEL,
        time_scale=5000,
        zero_delay=True,
    )
    emu = NimEmulator(settings)
    port = await emu.start()
    try:
        assert await emu.wait_ready(10) == "ready"
        report = await run_smoke_async(
            f"http://127.0.0.1:{port}", timeout_s=10, expected_profile=planned
        )
    finally:
        await emu.stop()
    metadata = next(c for c in report.checks if c.name == "metadata")
    assert metadata.passed is ok and report.passed is ok, metadata.detail
    if not ok:
        assert "not the planned vllm-fp8-tp2-pp1" in metadata.detail


async def test_metadata_of_a_1x_nim_reports_an_id_a_planned_name_cannot_be_compared_with(
    tmp_path: Path,
) -> None:
    """NIM 1.x's /v1/metadata names only selectedModelProfileId, a hash of the profile's
    manifest: a planned profile *name* is not comparable and the check says so; a planned id
    is compared (and a wrong one fails)."""
    settings = NimSettings.from_env(
        {
            "NIM_CACHE_PATH": str(tmp_path),
            "NGC_API_KEY": throwaway_key(),
            "NIM_MODEL_PROFILE": "tensorrt_llm-a10-bf16-tp1",
        },
        model=TINY_MODEL,
        time_scale=5000,
        zero_delay=True,
        nim_release="1.15.4",
    )
    emu = NimEmulator(settings)
    port = await emu.start()
    base = f"http://127.0.0.1:{port}"
    try:
        assert await emu.wait_ready(10) == "ready"
        by_name = await run_smoke_async(
            base, timeout_s=10, expected_profile="tensorrt_llm-a10-bf16-tp1"
        )
        wrong_id = await run_smoke_async(base, timeout_s=10, expected_profile="0" * 64)
    finally:
        await emu.stop()
    metadata = next(c for c in by_name.checks if c.name == "metadata")
    assert metadata.passed, metadata.detail
    assert "is a profile name and this NIM reports none to compare it with" in metadata.detail
    metadata = next(c for c in wrong_id.checks if c.name == "metadata")
    assert not metadata.passed and "not the planned 0000" in metadata.detail


@pytest.mark.parametrize(
    ("breaks", "failing"),
    [
        (frozenset(), set()),
        (frozenset({"no_done"}), {"streaming", "usage"}),
        (frozenset({"usage_mismatch"}), {"usage"}),
        (frozenset({"random"}), {"deterministic"}),
        (frozenset({"error_200"}), {"error_shape"}),
        (frozenset({"no_metrics"}), {"metrics"}),
        (frozenset({"not_ready"}), {"ready"}),
        (frozenset({"no_stream_options"}), {"usage"}),
        (frozenset({"ignore_stop"}), {"stop"}),
        (frozenset({"prose_json"}), {"structured_output"}),
        (frozenset({"no_tool_call"}), {"tool_call"}),
        (frozenset({"no_logprobs"}), {"logprobs"}),
    ],
)
async def test_smoke_fails_exactly_the_broken_checks(
    breaks: frozenset[str], failing: set[str]
) -> None:
    async with serve(breaks) as url:
        report = await run_smoke_async(url, timeout_s=5)
    assert {c.name for c in report.failed} == failing
    assert report.passed is (not failing)
    # A plain OpenAI server has no NIM management endpoints: skipped, with the reason.
    assert {c.name for c in report.skipped} == {"version", "metadata"}
    assert all("not offered (HTTP 404" in c.detail for c in report.skipped)
    if not failing:
        metrics = next(c for c in report.checks if c.name == "metrics")
        assert "vllm names (vllm:kv_cache_usage_perc)" in metrics.detail


async def test_an_endpoint_without_tools_skips_the_tool_check() -> None:
    async with serve(frozenset({"reject_tools"})) as url:
        report = await run_smoke_async(url, timeout_s=5)
    tool = next(c for c in report.checks if c.name == "tool_call")
    assert tool.skipped and "tool calling not offered (HTTP 400" in tool.detail
    assert report.passed and tool not in report.failed


async def test_expected_model_missing_skips_model_checks() -> None:
    async with serve() as url:
        report = await run_smoke_async(url, model="meta/llama-3.1-8b-instruct", timeout_s=5)
    by_name = {c.name: c for c in report.checks}
    assert not by_name["models"].passed and MODEL in by_name["models"].detail
    assert by_name["chat"].skipped and by_name["streaming"].skipped
    assert by_name["metrics"].passed


async def test_unreachable_endpoint_fails_fast_and_junit_parses() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connection refused
        report = await run_smoke_async(f"http://127.0.0.1:{port}", timeout_s=2)
    assert not report.passed
    assert "unreachable" in report.checks[0].detail
    assert all(c.skipped for c in report.checks[1:])
    root = ET.fromstring(to_junit_xml(report).encode())
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("16", "1", "15")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == list(CHECK_NAMES)
    assert cases[0].find("failure") is not None
    assert all(c.find("skipped") is not None for c in cases[1:])


async def test_junit_for_a_mixed_report() -> None:
    async with serve(frozenset({"random", "no_metrics"})) as url:
        report = await run_smoke_async(url, timeout_s=5)
    root = ET.fromstring(to_junit_xml(report))
    suite = root.find("testsuite")
    assert suite is not None and suite.get("failures") == "2" and suite.get("errors") == "0"
    failed = {c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None}
    assert failed == {"deterministic", "metrics"}
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props == {"endpoint": url, "model": MODEL}
