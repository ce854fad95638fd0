"""Exports: GenAI-Perf-compatible JSON and CSV, per-request JSONL, a self-contained HTML report.

``write_exports(dir, results)`` writes, for the last (or only) run:

- ``profile_export_genai_perf.json`` — the :func:`summarize` dict plus ``input_config``;
- ``profile_export_genai_perf.csv`` — GenAI-Perf's two blocks (distributions, then
  ``Metric,Value``) and a third ``Validity`` block that GenAI-Perf readers skip;
- ``profile_export.jsonl`` — one record per request (schema ``schemas/request_record``);
- ``report.html`` — CDFs, throughput vs latency across a sweep, in-flight and errors
  over time, all inline SVG.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from nimble_oke.bench.analysis import analyze
from nimble_oke.bench.records import ErrorKind
from nimble_oke.bench.result import BenchResult
from nimble_oke.bench.summary import summarize

JSON_NAME = "profile_export_genai_perf.json"
CSV_NAME = "profile_export_genai_perf.csv"
JSONL_NAME = "profile_export.jsonl"
HTML_NAME = "report.html"

CSV_STATS = ("avg", "min", "max", "p99", "p95", "p90", "p75", "p50", "p25")
CSV_ROWS = (
    ("Time To First Token (ms)", "time_to_first_token"),
    ("Time To Second Token (ms)", "time_to_second_token"),
    ("Request Latency (ms)", "request_latency"),
    ("Inter Token Latency (ms)", "inter_token_latency"),
    ("Output Token Throughput Per User (tokens/sec/user)", "output_token_throughput_per_user"),
    ("Output Sequence Length (tokens)", "output_sequence_length"),
    ("Input Sequence Length (tokens)", "input_sequence_length"),
)


def _num(value: Any) -> str:
    return "N/A" if value is None else f"{value:,.2f}"


def csv_text(summary: dict[str, Any]) -> str:
    """GenAI-Perf's ``profile_export_genai_perf.csv`` layout (CRLF rows, ``1,234.56``)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["Metric", *CSV_STATS])
    for label, key in CSV_ROWS:
        dist = summary.get(key, {})
        writer.writerow([label, *(_num(dist.get(s)) for s in CSV_STATS)])
    writer.writerow([])
    writer.writerow(["Metric", "Value"])
    writer.writerow(
        ["Output Token Throughput (tokens/sec)", _num(summary["output_token_throughput"]["avg"])]
    )
    writer.writerow(["Request Throughput (per sec)", _num(summary["request_throughput"]["avg"])])
    writer.writerow(["Request Count (count)", _num(summary["request_count"]["avg"])])
    goodput = summary.get("goodput", {}).get("request_goodput")
    if goodput is not None:
        writer.writerow(["Request Goodput (per sec)", _num(goodput["avg"])])
    writer.writerow([])
    validity = summary["validity"]
    writer.writerow(["Validity", "Value"])
    writer.writerow(["Status", validity["status"]])
    for reason in validity["reasons"]:
        writer.writerow(["Reason", reason])
    return buf.getvalue()


def _clean_json(value: Any) -> Any:
    """NaN/inf → null, numpy scalars → Python (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): _clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean_json(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _val(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def request_records(result: BenchResult, validity_status: str) -> list[dict[str, Any]]:
    """One JSON-ready record per request (failed ones included)."""
    t = analyze(result)
    itl_by_row: dict[int, list[float]] = {}
    for row, value in zip(t.itl_request.tolist(), t.itl_ms.tolist(), strict=True):
        itl_by_row.setdefault(row, []).append(value)
    records = []
    for i in range(t.index.size):
        records.append(
            {
                "index": int(i),
                "ok": bool(t.ok[i]),
                "error": ErrorKind(int(t.error[i])).label,
                "error_message": t.messages.get(i),
                "http_status": int(result.store.status[i]) or None,
                "intended_send_ms": _val(t.intended_ms[i]),
                "send_ms": _val(t.send_ms[i]),
                "end_ms": _val(t.end_ms[i]),
                "time_to_first_byte_ms": _val(t.ttfb_ms[i]),
                "time_to_first_token_ms": _val(t.ttft_ms[i]),
                "time_to_first_token_from_intended_ms": _val(t.ttft_intended_ms[i]),
                "request_latency_ms": _val(t.e2e_ms[i]),
                "request_latency_from_intended_ms": _val(t.e2e_intended_ms[i]),
                "time_per_output_token_ms": _val(t.tpot_ms[i]),
                "output_sequence_length": _val(t.osl[i]),
                "input_sequence_length": _val(t.isl[i]),
                "first_chunk_tokens": _val(t.first_tokens[i]),
                "inter_token_latencies_ms": itl_by_row.get(i, []),
                "token_count_flag": bool(t.token_count_flag[i]),
                "run_validity": validity_status,
            }
        )
    return records


def write_exports(
    directory: Path,
    results: list[BenchResult],
    summaries: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Write all export files for ``results`` (a sweep or repeats: several runs; the files
    describe the last run, the HTML report shows all). Returns name → path."""
    from nimble_oke.bench.report import html_report

    if not results:
        raise ValueError("no results to export")
    directory.mkdir(parents=True, exist_ok=True)
    summaries = summaries or [summarize(r) for r in results]
    summary = _clean_json(dict(summaries[-1]))
    summary["input_config"] = summary["config"]
    if extra:
        summary.update(_clean_json(extra))
    paths = {
        "json": directory / JSON_NAME,
        "csv": directory / CSV_NAME,
        "jsonl": directory / JSONL_NAME,
        "html": directory / HTML_NAME,
    }
    paths["json"].write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n", "utf-8")
    paths["csv"].write_text(csv_text(summary), "utf-8", newline="")
    status = summary["validity"]["status"]
    with paths["jsonl"].open("w", encoding="utf-8") as fh:
        for record in request_records(results[-1], status):
            fh.write(json.dumps(_clean_json(record), allow_nan=False) + "\n")
    paths["html"].write_text(html_report(results, [_clean_json(s) for s in summaries]), "utf-8")
    return paths


def load_summary(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """Read a summary and (if present next to it) its per-request records.

    ``path`` is an export directory or a JSON summary file."""
    summary_path = path / JSON_NAME if path.is_dir() else path
    summary = json.loads(summary_path.read_text("utf-8"))
    records_path = summary_path.parent / JSONL_NAME
    records = None
    if records_path.exists():
        with records_path.open(encoding="utf-8") as fh:
            records = [json.loads(line) for line in fh if line.strip()]
    return summary, records


def load_schema(name: str) -> dict[str, Any]:
    """A shipped JSON Schema: ``"profile_export"`` (the JSON summary) or ``"request_record"``
    (one JSONL line)."""
    from importlib import resources

    text = resources.files("nimble_oke.bench").joinpath(f"schemas/{name}.schema.json")
    schema: dict[str, Any] = json.loads(text.read_text("utf-8"))
    return schema
