"""Exports that AIPerf 0.13's readers accept, plus a self-contained HTML report.

``write_exports(dir, results)`` writes, for the last (or only) run, AIPerf 0.13's file
names and layouts (checked against files the real ``aiperf profile`` wrote, kept in
``tests/bench/fixtures/aiperf-0.13.0/``):

- ``profile_export_aiperf.json`` — every metric object at the top level under AIPerf's
  keys and units, ``error_summary``, ``input_config`` (AIPerf's shape), ``start_time``,
  ``end_time``, ``was_cancelled``, ``is_complete`` — and nimble's own objects next to
  them (``outcome``, ``validity``, ``errors``, ``slo``, ``config``…; readers of AIPerf's
  file ignore keys they do not know);
- ``profile_export_aiperf.csv`` — AIPerf's two sections (distributions with
  ``Metric,avg,min,max,sum,p1,…,p99,std``, then ``Metric,Value``), rows sorted by key,
  plain numbers (``1247.59``, never ``1,247.59``), then a ``Run,Value`` section with
  the outcome, the error breakdown and the validity;
- ``profile_export.jsonl`` — one nested record per request:
  ``{"metadata": {...}, "metrics": {"time_to_first_token": {"value", "unit"}, …},
  "error": {...}}`` (AIPerf's), plus a ``nimble`` object;
- ``report.html`` — CDFs, latency over time (one run) or throughput vs latency (a sweep),
  in-flight and errors over time, all inline SVG.

:func:`load_export` reads these files, AIPerf's own, and nimble's older
``profile_export_genai_perf.*`` (schema ``nimble-bench/1``), for ``bench diff``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from nimble_oke.bench.analysis import analyze
from nimble_oke.bench.metrics import DISTRIBUTIONS, SCALARS
from nimble_oke.bench.records import ErrorKind
from nimble_oke.bench.result import BenchResult
from nimble_oke.bench.summary import summarize

JSON_NAME = "profile_export_aiperf.json"
CSV_NAME = "profile_export_aiperf.csv"
JSONL_NAME = "profile_export.jsonl"
HTML_NAME = "report.html"
# AIPerf 0.13's STAT_KEYS, in its CSV column order
CSV_STATS = [
    "avg",
    "min",
    "max",
    "sum",
    "p1",
    "p5",
    "p10",
    "p25",
    "p50",
    "p75",
    "p90",
    "p95",
    "p99",
    "std",
]


def csv_number(value: Any) -> str:
    """AIPerf's CSV number: integers as is, other numbers with two decimals, no
    thousands separators; nothing for a missing value."""
    if value is None or isinstance(value, bool):
        return "" if value is None else str(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return f"{float(value):.2f}"


def csv_text(summary: dict[str, Any]) -> str:
    """``profile_export_aiperf.csv``: AIPerf's two sections, then nimble's ``Run`` one."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["Metric", *CSV_STATS])
    for metric in sorted(DISTRIBUTIONS, key=lambda m: m.key):
        dist = summary.get(metric.key)
        if dist and dist.get("count"):
            writer.writerow([metric.label, *(csv_number(dist.get(s)) for s in CSV_STATS)])
    writer.writerow([])
    writer.writerow(["Metric", "Value"])
    for metric in sorted(SCALARS, key=lambda m: m.key):
        if metric.key in summary:
            writer.writerow([metric.label, csv_number(summary[metric.key]["avg"])])
    writer.writerow([])
    writer.writerow(["Run", "Value"])
    for name, value in run_rows(summary):
        writer.writerow([name, value])
    return buf.getvalue()


def run_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The outcome, the error breakdown and the validity as (name, value) rows."""
    outcome, validity, errors = summary["outcome"], summary["validity"], summary["errors"]
    rows = [("Outcome", outcome["status"])]
    rows += [("Outcome Reason", reason) for reason in outcome["reasons"]]
    rows += [(f"Errors {kind}", str(count)) for kind, count in errors["by_type"].items()]
    rows.append(("Validity", validity["status"]))
    rows += [("Validity Reason", reason) for reason in validity["reasons"]]
    return rows


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


def _wall(result: BenchResult, perf_ns: float) -> int:
    return int(perf_ns + result.wall_offset_ns)


def aiperf_frame(result: BenchResult, summary: dict[str, Any]) -> dict[str, Any]:
    """The keys AIPerf's JSON export has besides the metrics, filled from this run."""
    cfg = summary["config"]
    phase: dict[str, Any] = {"name": "profiling", "kind": "profiling"}
    if cfg.get("rate") is None:
        phase.update(type="concurrency", concurrency=cfg["concurrency"])
    else:
        phase.update(type="request_rate", rate=cfg["rate"], arrival=cfg["arrival"])
    if cfg.get("requests") is not None:
        phase["requests"] = cfg["requests"]
    if cfg.get("duration_s") is not None:
        phase["duration"] = cfg["duration_s"]
    isl: dict[str, float] = {"mean": float(cfg["input_tokens_mean"])}
    if cfg.get("input_tokens_sd"):
        isl["stddev"] = float(cfg["input_tokens_sd"])
    dataset = {
        "name": "main",
        "type": "synthetic",
        "entries": summary["completed_request_count"]["avg"],
        "prompts": {"isl": isl, "osl": {"mean": float(cfg["output_tokens"])}},
    }
    start = datetime.fromtimestamp(_wall(result, result.start_ns) / 1e9).isoformat()
    end = datetime.fromtimestamp(_wall(result, result.stop_ns) / 1e9).isoformat()
    return {
        "benchmark_id": f"nimble-{_wall(result, result.start_ns):x}",
        "input_config": {
            "models": {"items": [{"name": cfg.get("model")}]},
            "endpoint": {
                "urls": [cfg["endpoint"]],
                "type": cfg.get("api", "chat"),
                "streaming": True,
                "use_server_token_count": True,
            },
            "datasets": [dataset],
            "phases": [phase],
        },
        "was_cancelled": False,
        "is_complete": True,
        "start_time": start,
        "end_time": end,
    }


def request_records(result: BenchResult, summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One AIPerf-shaped JSONL record per request (failed ones included)."""
    t = analyze(result)
    n = t.index.size
    per_request = {m.key: (m, m.per_request(t)) for m in DISTRIBUTIONS if m.kind == "request"}
    lists: dict[str, dict[int, list[float]]] = {}
    for metric in DISTRIBUTIONS:
        if metric.kind == "samples":
            values, rows = metric.samples(t)
            grouped: dict[int, list[float]] = {}
            for row, value in zip(rows.tolist(), values.tolist(), strict=True):
                grouped.setdefault(row, []).append(value)
            lists[metric.key] = grouped
    run = {"outcome": summary["outcome"]["status"], "validity": summary["validity"]["status"]}
    records = []
    for i in range(n):
        metrics: dict[str, Any] = {}
        for key, (metric, values) in per_request.items():
            if not math.isnan(values[i]):
                metrics[key] = {"value": float(values[i]), "unit": metric.unit}
        for key, grouped in lists.items():
            if i in grouped:
                metrics[key] = {"value": grouped[i], "unit": DISTRIBUTIONS_BY_KEY[key].unit}
        records.append(_record(result, t, i, metrics, run))
    return records


DISTRIBUTIONS_BY_KEY = {m.key: m for m in DISTRIBUTIONS}


def _ms(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def _stamps(result: BenchResult, i: int) -> dict[str, int]:
    """AIPerf's wall-clock request stamps (start and end are required by its reader; a
    request never sent gets its intended send time for both)."""
    store = result.store
    sent, head, end = int(store.send_ns[i]), int(store.headers_ns[i]), int(store.end_ns[i])
    start = sent if sent >= 0 else max(int(store.intended_ns[i]), result.start_ns)
    stamps = {"request_start_ns": _wall(result, start)}
    if head >= 0:
        stamps["request_ack_ns"] = _wall(result, head)
    stamps["request_end_ns"] = _wall(result, end if end >= 0 else start)
    return stamps


def _record(
    result: BenchResult, t: Any, i: int, metrics: dict[str, Any], run: dict[str, str]
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "metadata": {
            "session_num": i,
            "turn_index": 0,
            **_stamps(result, i),
            "worker_id": f"nimble-worker-{result.config.worker_index}",
            "record_processor_id": "nimble-analysis",
            "benchmark_phase": "profiling",
            "was_cancelled": False,
        },
        "metrics": metrics,
    }
    if not t.ok[i]:
        status = int(result.store.status[i]) or None
        record["error"] = {
            "code": status,
            "type": ErrorKind(int(t.error[i])).label,
            "message": t.messages.get(i, ""),
        }
    record["nimble"] = {
        "index": i,
        "ok": bool(t.ok[i]),
        "intended_send_ms": _ms(t.intended_ms[i]),
        "send_ms": _ms(t.send_ms[i]),
        "end_ms": _ms(t.end_ms[i]),
        "first_chunk_tokens": _ms(t.first_tokens[i]),
        "token_count_flag": bool(t.token_count_flag[i]),
        "run_outcome": run["outcome"],
        "run_validity": run["validity"],
    }
    return record


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
    document = {**aiperf_frame(results[-1], summary), **summary}
    if extra:
        document.update(_clean_json(extra))
    paths = {
        "json": directory / JSON_NAME,
        "csv": directory / CSV_NAME,
        "jsonl": directory / JSONL_NAME,
        "html": directory / HTML_NAME,
    }
    paths["json"].write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", "utf-8")
    paths["csv"].write_text(csv_text(summary), "utf-8", newline="")
    with paths["jsonl"].open("w", encoding="utf-8") as fh:
        for record in request_records(results[-1], summary):
            fh.write(json.dumps(_clean_json(record), allow_nan=False) + "\n")
    paths["html"].write_text(html_report(results, [_clean_json(s) for s in summaries]), "utf-8")
    return paths


def load_schema(name: str) -> dict[str, Any]:
    """A JSON Schema: ``"profile_export"`` (the JSON export) or ``"request_record"`` (one
    JSONL line) — the shipped skeleton completed from the metric registry."""
    from nimble_oke.bench.schema import schema

    return schema(name)


__all__ = [
    "CSV_NAME",
    "HTML_NAME",
    "JSONL_NAME",
    "JSON_NAME",
    "csv_text",
    "load_schema",
    "request_records",
    "write_exports",
]
