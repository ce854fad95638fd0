"""Exports: schema-valid JSON/JSONL, GenAI-Perf CSV rows, a self-contained HTML report."""

from __future__ import annotations

import asyncio
import csv
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from nimble_oke.bench import BenchConfig, diff_summaries, run_async, summarize, write_exports
from nimble_oke.bench.export import load_schema
from nimble_oke.bench.metrics import METRICS
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
                max_error_rate=0.2,
                slo_ms={"ttft": 500.0},
                api_key=LEAK_KEY,
            )
            results = await sweep_async(config, [1, 3])
            summaries = [summarize(r) for r in results]
            write_exports(out, results, summaries)
            return summaries

    return out, arun(scenario())


FIXTURES = Path(__file__).parent / "fixtures"
AIPERF = FIXTURES / "aiperf-0.13.0"
NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def _aiperf_json() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((AIPERF / "profile_export_aiperf.json").read_text())
    return data


def test_files_have_aiperf_names(sweep_export: tuple[Path, list[dict[str, Any]]]) -> None:
    out, _ = sweep_export
    ours = {p.name for p in out.iterdir()}
    theirs = {p.name for p in AIPERF.iterdir()}
    assert theirs <= ours  # profile_export_aiperf.json, .csv, profile_export.jsonl
    assert ours - theirs == {"report.html"}


def test_json_export_validates_and_hides_the_key(
    sweep_export: tuple[Path, list[dict[str, Any]]],
) -> None:
    out, _ = sweep_export
    data = json.loads((out / "profile_export_aiperf.json").read_text())
    jsonschema.validate(data, load_schema("profile_export"))
    assert data["time_to_first_token"]["unit"] == "ms"
    assert data["request_throughput"]["unit"] == "requests/sec"
    assert data["request_count"] == {"unit": "requests", "avg": 12.0}
    assert data["validity"]["status"] in ("VALID", "INVALID")
    assert data["goodput"]["unit"] == "requests/sec"
    assert data["errors"]["by_type"] == {"http_5xx": 2}
    for path in out.iterdir():
        assert LEAK_KEY not in path.read_text()


def test_json_metric_objects_are_aiperfs(
    sweep_export: tuple[Path, list[dict[str, Any]]],
) -> None:
    """Every metric AIPerf 0.13 exported that nimble measures too: same key, same unit,
    same statistic keys in the same order; the file's frame keys are AIPerf's."""
    out, _ = sweep_export
    ours = json.loads((out / "profile_export_aiperf.json").read_text())
    theirs = _aiperf_json()
    shared = {k for k, v in theirs.items() if isinstance(v, dict) and "unit" in v} & set(ours)
    expected = {m.key for m in METRICS if m.aiperf and m.key not in ("goodput",)}
    expected -= {"good_request_count"}  # AIPerf writes these only with --goodput
    assert expected <= shared, expected - shared
    for key in shared:
        assert ours[key]["unit"] == theirs[key]["unit"], key
        assert list(ours[key]) == list(theirs[key]), key
    for key in ("schema_version", "benchmark_id", "input_config", "was_cancelled",
                "is_complete", "error_summary", "start_time", "end_time"):  # fmt: skip
        assert key in ours, key
    assert ours["schema_version"] == theirs["schema_version"]
    error = ours["error_summary"][0]
    assert set(error) == set(theirs["error_summary"][0])
    assert set(error["error_details"]) == set(theirs["error_summary"][0]["error_details"])
    assert error["error_details"]["code"] == 500 and error["count"] == 2


def test_jsonl_records_are_nested_like_aiperfs(
    sweep_export: tuple[Path, list[dict[str, Any]]],
) -> None:
    out, _ = sweep_export
    schema = load_schema("request_record")
    records = [json.loads(x) for x in (out / "profile_export.jsonl").read_text().splitlines()]
    theirs = [json.loads(x) for x in (AIPERF / "profile_export.jsonl").read_text().splitlines()]
    assert len(records) == 14
    for record in records:
        jsonschema.validate(record, schema)
    ok = [r for r in records if "error" not in r]
    failed = [r for r in records if "error" in r]
    assert len(failed) == 2 and failed[0]["error"]["code"] == 500
    their_ok = next(r for r in theirs if "error" not in r)
    their_failed = next(r for r in theirs if "error" in r)
    assert set(failed[0]["error"]) == set(their_failed["error"])
    for key, entry in their_ok["metrics"].items():
        if key in ok[0]["metrics"]:
            assert ok[0]["metrics"][key]["unit"] == entry["unit"], key
            assert type(ok[0]["metrics"][key]["value"]) is type(entry["value"]) or key in (
                "output_sequence_length",
                "input_sequence_length",
            )
    assert {"time_to_first_token", "inter_token_latency", "inter_chunk_latency"} <= set(
        ok[0]["metrics"]
    )
    # 5 tokens: 4 gaps per request, one per-token sample each
    assert all(len(r["metrics"]["inter_token_latency_per_token"]["value"]) == 4 for r in ok)
    assert all(set(r["metadata"]) <= set(their_ok["metadata"]) for r in records)


def test_schema_rejects_a_broken_export(sweep_export: tuple[Path, list[dict[str, Any]]]) -> None:
    out, _ = sweep_export
    data = json.loads((out / "profile_export_aiperf.json").read_text())
    del data["validity"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, load_schema("profile_export"))
    data = json.loads((out / "profile_export_aiperf.json").read_text())
    data["request_count"]["unit"] = "count"  # nimble-bench/1's unit: not AIPerf's
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, load_schema("profile_export"))


def _sections(text: str) -> list[list[list[str]]]:
    sections: list[list[list[str]]] = [[]]
    for row in csv.reader(text.splitlines()):
        if row:
            sections[-1].append(row)
        elif sections[-1]:
            sections.append([])
    return sections


def test_csv_has_aiperfs_header_labels_and_plain_numbers(
    sweep_export: tuple[Path, list[dict[str, Any]]],
) -> None:
    out, summaries = sweep_export
    raw = (out / "profile_export_aiperf.csv").read_bytes()
    ours = _sections(raw.decode())
    theirs = _sections((AIPERF / "profile_export_aiperf.csv").read_text())
    assert ours[0][0] == theirs[0][0]  # Metric,avg,min,max,sum,p1,…,p99,std
    assert ours[1][0] == theirs[1][0] == ["Metric", "Value"]
    their_labels = {row[0] for section in theirs[:2] for row in section[1:]}
    aiperf_labels = {m.label for m in METRICS if m.aiperf}
    our_labels = {row[0] for section in ours[:2] for row in section[1:]}
    assert (aiperf_labels & our_labels) - their_labels == {
        "Goodput (requests/sec)",
        "Good Request Count",
    }
    assert "Time to First Token (ms)" in our_labels and "Request Count" in our_labels
    for section in ours[:2]:
        keys = [row[0] for row in section[1:]]
        for row in section[1:]:
            assert all(NUMBER.match(cell) or cell == "" for cell in row[1:]), row
        assert keys == sorted(keys, key=lambda label: LABEL_KEY[label])
    ttft = next(r for r in ours[0] if r[0] == "Time to First Token (ms)")
    assert float(ttft[9]) == pytest.approx(summaries[-1]["time_to_first_token"]["p50"], abs=0.01)
    run = dict((row[0], row[1]) for row in ours[2][1:])
    assert run["Outcome"] == summaries[-1]["outcome"]["status"]
    assert run["Errors http_5xx"] == "2"
    assert run["Validity"] in ("VALID", "INVALID")


LABEL_KEY = {m.label: m.key for m in METRICS}


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


def test_diff_reads_older_exports_and_aiperfs(
    sweep_export: tuple[Path, list[dict[str, Any]]],
) -> None:
    out, _ = sweep_export
    legacy_dir = FIXTURES / "nimble-bench-1"
    legacy = json.loads((legacy_dir / "profile_export_genai_perf.json").read_text())
    old = diff_summaries(legacy_dir, out)
    assert old["per_request_data"] is True
    m = old["metrics"]
    # nimble-bench/1's per-token ITL and its TPOT (= today's per-request ITL), renamed
    assert m["inter_token_latency_per_token"]["a_p50"] == legacy["inter_token_latency"]["p50"]
    assert m["inter_token_latency"]["a_p50"] == legacy["time_per_output_token"]["p50"]
    for key in ("time_to_first_token", "inter_token_latency", "request_latency"):
        assert "mann_whitney_p" in m[key], key
    aiperf = diff_summaries(AIPERF, out)
    assert aiperf["per_request_data"] is True
    assert "mann_whitney_p" in aiperf["metrics"]["time_to_first_token"]
    theirs = _aiperf_json()
    assert aiperf["metrics"]["request_throughput"]["a"] == theirs["request_throughput"]["avg"]
    assert aiperf["a_valid"] is None  # AIPerf has no validity gate


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
