"""Report figures that make sense for one run, and axes not flattened by one outlier."""

from __future__ import annotations

import re
from array import array

from nimble_oke.bench import BenchConfig, run_async, summarize
from nimble_oke.bench.report import html_report
from nimble_oke.bench.svg import line_chart

from .conftest import arun
from .truth_server import TruthServer, TruthSettings


def _ticks(svg: str, axis: str) -> list[str]:
    return re.findall(rf'class="{axis}"[^>]*>([^<]*)<', svg)


def test_one_point_and_narrow_ranges_get_distinct_tick_labels() -> None:
    one = line_chart("t", [("s", [1247.59], [12.0])], "x", "y", markers=True)
    assert len(set(_ticks(one, "xtick"))) == len(_ticks(one, "xtick")) >= 2
    narrow = line_chart("t", [("s", [1247.3, 1248.1], [1.0, 2.0])], "x", "y")
    labels = _ticks(narrow, "xtick")
    assert len(set(labels)) == len(labels) >= 3, labels


def test_single_run_report_has_no_lone_point_and_clips_the_outlier() -> None:
    async def scenario() -> tuple[object, dict[str, object]]:
        async with TruthServer(TruthSettings(ttft_s=0.005, itl_s=0.002)) as srv:
            result = await run_async(
                BenchConfig(endpoint=srv.url, concurrency=4, requests=200, output_tokens=6)
            )
        # one request's stream arrives 1.7 s late (the outlier of issue #20's report)
        chunks = result.store.chunks[7]
        assert chunks is not None
        chunks.times_ns = array("q", [t + 1_700_000_000 for t in chunks.times_ns])
        return result, summarize(result)

    result, summary = arun(scenario())
    html = html_report([result], [summary])  # type: ignore[list-item]
    assert "TTFT over the run" in html
    assert "Throughput vs latency" not in html  # one run: no single-point throughput plot
    notes = re.findall(r'class="note"[^>]*>([^<]*)<', html)
    assert any("clipped at p99.5" in n and "max 1" in n for n in notes), notes
    assert html.count("<circle") >= 150  # each request a dot


def test_docs_define_every_registered_metric() -> None:
    """docs/benchmarking.md's metric table names every metric of the registry."""
    from pathlib import Path

    from nimble_oke.bench.metrics import METRICS

    docs = (Path(__file__).parents[2] / "docs" / "benchmarking.md").read_text()
    table = docs[docs.index("## Metrics (definitions)") : docs.index("## Statistics")]
    missing = [m.key for m in METRICS if f"`{m.key}`" not in table]
    assert not missing, missing
