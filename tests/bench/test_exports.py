"""Exports: schema-valid JSON/JSONL, GenAI-Perf CSV rows, a self-contained HTML report."""

from __future__ import annotations

import asyncio
import csv
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from nimble_oke.bench import BenchConfig, diff_summaries, run_async, summarize, write_exports
from nimble_oke.bench.export import load_schema
from nimble_oke.bench.runs import sweep_async
from nimble_oke.ngc_keys import throwaway_key

from .conftest import arun
from .truth_server import TruthServer, TruthSettings

LEAK_KEY = throwaway_key()  # made at test time


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.polylines: list[dict[str, str | None]] = []
        self.srcs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        attributes = dict(attrs)
        if tag == "polyline":
            self.polylines.append(attributes)
        for key in ("src", "href"):
            if attributes.get(key):
                self.srcs.append(str(attributes[key]))


@pytest.fixture(scope="module")
def sweep_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    out = tmp_path_factory.mktemp("export")

    async def scenario() -> list[dict[str, Any]]:
        async with TruthServer(TruthSettings(ttft_s=0.01, itl_s=0.002, fail_every=7)) as srv:
            config = BenchConfig(
                endpoint=srv.url,
                requests=14,
                output_tokens=5,
                slo_ms={"ttft": 500.0},
                api_key=LEAK_KEY,
            )
            results = await sweep_async(config, [1, 3])
            summaries = [summarize(r) for r in results]
            write_exports(out, results, summaries)
            return summaries

    return out, arun(scenario())


def test_json_export_validates_and_hides_the_key(
    sweep_export: tuple[Path, list[dict[str, Any]]],
) -> None:
    out, _ = sweep_export
    data = json.loads((out / "profile_export_genai_perf.json").read_text())
    jsonschema.validate(data, load_schema("profile_export"))
    assert data["time_to_first_token"]["unit"] == "ms"
    assert data["request_throughput"]["unit"] == "requests/sec"
    assert data["validity"]["status"] in ("VALID", "INVALID")
    assert data["goodput"]["request_goodput"]["unit"] == "requests/sec"
    assert data["errors"]["by_type"] == {"http_5xx": 2}
    for path in out.iterdir():
        assert LEAK_KEY not in path.read_text()


def test_jsonl_records_validate(sweep_export: tuple[Path, list[dict[str, Any]]]) -> None:
    out, _ = sweep_export
    schema = load_schema("request_record")
    lines = (out / "profile_export.jsonl").read_text().splitlines()
    assert len(lines) == 14
    records = [json.loads(line) for line in lines]
    for record in records:
        jsonschema.validate(record, schema)
    assert sum(not r["ok"] for r in records) == 2
    ok = [r for r in records if r["ok"]]
    assert all(len(r["inter_token_latencies_ms"]) == 4 for r in ok)


def test_schema_rejects_a_broken_export(sweep_export: tuple[Path, list[dict[str, Any]]]) -> None:
    out, _ = sweep_export
    data = json.loads((out / "profile_export_genai_perf.json").read_text())
    del data["validity"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, load_schema("profile_export"))


def test_csv_has_genai_perf_rows(sweep_export: tuple[Path, list[dict[str, Any]]]) -> None:
    out, summaries = sweep_export
    raw = (out / "profile_export_genai_perf.csv").read_bytes()
    assert b"\r\n" in raw
    rows = list(csv.reader(raw.decode().splitlines()))
    assert rows[0] == ["Metric", "avg", "min", "max", "p99", "p95", "p90", "p75", "p50", "p25"]
    labels = [r[0] for r in rows if r]
    for label in (
        "Time To First Token (ms)",
        "Time To Second Token (ms)",
        "Request Latency (ms)",
        "Inter Token Latency (ms)",
        "Output Sequence Length (tokens)",
        "Input Sequence Length (tokens)",
        "Output Token Throughput (tokens/sec)",
        "Request Throughput (per sec)",
        "Request Count (count)",
        "Request Goodput (per sec)",
    ):
        assert label in labels
    ttft = next(r for r in rows if r and r[0] == "Time To First Token (ms)")
    assert float(ttft[8]) == pytest.approx(summaries[-1]["time_to_first_token"]["p50"], abs=0.01)
    assert ["Metric", "Value"] in rows
    assert any(r[:1] == ["Status"] for r in rows)


def test_html_report_is_self_contained_with_svgs(
    sweep_export: tuple[Path, list[dict[str, Any]]],
) -> None:
    out, _ = sweep_export
    html = (out / "report.html").read_text()
    parser = _Html()
    parser.feed(html)
    assert parser.tags.count("svg") >= 6
    names = {p["data-name"] for p in parser.polylines}
    assert {"concurrency 1", "concurrency 3", "TTFT p50", "in flight"} <= names
    assert all(p["points"] for p in parser.polylines)
    assert parser.srcs == []  # no external resources
    assert "<script" not in html


def test_diff_flags_real_difference_and_not_null(tmp_path: Path) -> None:
    async def export(ttft_s: float, name: str, seed: int) -> Path:
        async with TruthServer(TruthSettings(ttft_s=ttft_s, itl_s=0.001)) as srv:
            result = await run_async(
                BenchConfig(
                    endpoint=srv.url,
                    concurrency=2,
                    requests=40,
                    output_tokens=3,
                    seed=seed,
                    scrape_metrics=False,
                )
            )
            write_exports(tmp_path / name, [result])
            return tmp_path / name

    async def scenario() -> tuple[Path, Path, Path]:
        # the null pair runs concurrently, so both see the same machine load
        a, b = await asyncio.gather(export(0.010, "a", 1), export(0.010, "b", 2))
        return a, b, await export(0.040, "c", 3)

    a, b, c = arun(scenario())
    null = diff_summaries(a, b)
    assert null["per_request_data"] is True
    assert "time_to_first_token" not in null["significant_changes"]
    real = diff_summaries(a, c)
    assert "time_to_first_token" in real["significant_changes"]
    ttft = real["metrics"]["time_to_first_token"]
    assert 20.0 < ttft["p50_delta_ms"] < 40.0
    assert ttft["p50_delta_ci95"][0] > 0
