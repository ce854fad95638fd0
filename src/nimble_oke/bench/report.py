"""The self-contained HTML report: tables plus inline SVG figures, no network at all.

Figures: CDFs of TTFT, ITL (per request and per token) and request latency, their x axis
clipped at the pooled p99.5 with the maximum noted (one 1.7 s outlier must not flatten
the curve); then, for one run, TTFT over the run (each request a dot) — for a sweep, TTFT
p50/p99 against output throughput, one point per load level; requests in flight and
errors over time.
"""

from __future__ import annotations

from html import escape
from typing import Any

import numpy as np

from nimble_oke.bench.analysis import RequestTable, analyze
from nimble_oke.bench.metrics import METRICS
from nimble_oke.bench.result import BenchResult
from nimble_oke.bench.stats import clean, in_flight_curve
from nimble_oke.bench.svg import Series, line_chart

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:72em}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;"
    "text-align:right}th:first-child,td:first-child{text-align:left}"
    ".INVALID,.FAILED{color:#b00;font-weight:bold}.VALID,.PASSED{color:#070;font-weight:bold}"
)
CLIP_PERCENTILE = 99.5
CDFS = (
    ("time_to_first_token", "TTFT CDF", "fraction of requests"),
    ("inter_token_latency", "ITL CDF (per request)", "fraction of requests"),
    ("inter_token_latency_per_token", "ITL CDF (per token)", "fraction of tokens"),
    ("request_latency", "Request latency CDF", "fraction of requests"),
)
BY_KEY = {m.key: m for m in METRICS}


def _label(summary: dict[str, Any]) -> str:
    cfg = summary["config"]
    if cfg.get("rate") is None:
        return f"concurrency {cfg['concurrency']}"
    return f"rate {cfg['rate']:g}/s {cfg['arrival']}"


def _fmt(v: Any) -> str:
    return "–" if v is None else f"{v:,.2f}"


def _ok_values(t: RequestTable, key: str) -> np.ndarray[Any, Any]:
    metric = BY_KEY[key]
    if metric.kind == "request":
        return clean(metric.per_request(t)[t.ok])
    values, rows = metric.samples(t)
    return clean(values[t.ok[rows]] if rows.size else values)


def _cdf(values: np.ndarray[Any, Any]) -> tuple[list[float], list[float]]:
    arr = np.sort(values)
    if arr.size == 0:
        return [], []
    return arr.tolist(), (np.arange(1, arr.size + 1) / arr.size).tolist()


def _table(summary: dict[str, Any]) -> str:
    stats = ("avg", "p50", "p90", "p99", "max")
    head = "".join(f"<th>{s}</th>" for s in stats)
    rows = [f"<tr><th>metric</th>{head}</tr>"]
    for metric in (m for m in METRICS if m.report):
        d = summary.get(metric.key, {})
        cells = "".join(f"<td>{_fmt(d.get(s))}</td>" for s in stats)
        rows.append(f"<tr><td>{escape(metric.label)}</td>{cells}</tr>")
    return f"<table>{''.join(rows)}</table>"


def _status(obj: dict[str, Any]) -> str:
    return f'<span class="{obj["status"]}">{obj["status"]}</span>'


def _run_section(summary: dict[str, Any]) -> str:
    v, o = summary["validity"], summary["outcome"]
    notes = "".join(f"<li>{escape(r)}</li>" for r in o["reasons"] + v["reasons"] + v["warnings"])
    errors = summary["errors"]
    by_type = ", ".join(f"{k}: {n}" for k, n in errors["by_type"].items()) or "none"
    return (
        f"<h2>{escape(_label(summary))} — {_status(o)} · {_status(v)}</h2>"
        f"<ul>{notes}</ul>"
        f"<p>{summary['request_count']['avg']:.0f} requests ok · "
        f"{summary['request_throughput']['avg']:.2f} req/s · "
        f"{summary['output_token_throughput']['avg']:.1f} output tokens/s · "
        f"errors {errors['count']} ({escape(by_type)})</p>{_table(summary)}"
    )


def _cdf_figure(key: str, title: str, y_label: str, names: list[str], tables: list[Any]) -> str:
    per_run = [_ok_values(t, key) for t in tables]
    pooled = np.concatenate(per_run) if per_run else np.zeros(0)
    series: list[Series] = [(n, *_cdf(v)) for n, v in zip(names, per_run, strict=True)]
    x_max, note = None, None
    if pooled.size:
        clip, top = float(np.percentile(pooled, CLIP_PERCENTILE)), float(pooled.max())
        if top > clip * 1.05:
            x_max = clip
            note = f"x axis clipped at p{CLIP_PERCENTILE:g} = {clip:,.2f} ms; max {top:,.2f} ms"
    unit = BY_KEY[key].unit
    return line_chart(
        title, series, f"{BY_KEY[key].header} ({unit})", y_label, x_max=x_max, note=note
    )


def _load_figure(results: list[BenchResult], summaries: list[dict[str, Any]]) -> str:
    if len(results) == 1:  # one run: every request's TTFT over the run, not a lone point
        t = analyze(results[0])
        ok = t.ok
        ttft = t.ttft_ms[ok]
        clip = float(np.percentile(ttft, CLIP_PERCENTILE)) if ttft.size else None
        note = None
        if clip is not None and float(ttft.max()) > clip * 1.05:
            note = f"y values above p{CLIP_PERCENTILE:g} ({clip:,.2f} ms) not drawn; max {ttft.max():,.2f} ms"
            keep = ttft <= clip
        else:
            keep = np.ones(ttft.size, dtype=bool)
        series: list[Series] = [("TTFT", (t.send_ms[ok][keep] / 1e3).tolist(), ttft[keep].tolist())]
        return line_chart(
            "TTFT over the run",
            series,
            "request sent (s since start)",
            "TTFT (ms)",
            lines=False,
            note=note,
        )
    through = [s["output_token_throughput"]["avg"] for s in summaries]
    p50 = [s["time_to_first_token"]["p50"] or float("nan") for s in summaries]
    p99 = [s["time_to_first_token"]["p99"] or float("nan") for s in summaries]
    return line_chart(
        "Throughput vs latency across the sweep",
        [("TTFT p50", through, p50), ("TTFT p99", through, p99)],
        "output tokens/s",
        "TTFT (ms)",
        markers=True,
    )


def _over_time(result: BenchResult) -> tuple[str, str]:
    t = analyze(result)
    times, level = in_flight_curve(t.send_ms, t.end_ms)
    in_flight = line_chart(
        "Requests in flight over time",
        [("in flight", (times / 1e3).tolist(), level.tolist())],
        "time since start (s)",
        "requests",
        step=True,
    )
    failed = (t.error != 0) & ~np.isnan(t.send_ms)
    if failed.any():
        when = np.sort(t.send_ms[failed]) / 1e3
        err_series: list[Series] = [
            ("cumulative errors", when.tolist(), np.arange(1, when.size + 1).tolist())
        ]
    else:
        sends = clean(t.send_ms) / 1e3
        span = [float(sends.min()), float(sends.max())] if sends.size else []
        err_series = [("cumulative errors", span, [0.0] * len(span))]
    errors = line_chart("Errors over time", err_series, "time since start (s)", "errors", step=True)
    return in_flight, errors


def html_report(results: list[BenchResult], summaries: list[dict[str, Any]]) -> str:
    """The full report for one run or several (sweep / repeats)."""
    tables = [analyze(r) for r in results]
    names = [_label(s) for s in summaries]
    figures = [_cdf_figure(key, title, y, names, tables) for key, title, y in CDFS]
    figures.append(_load_figure(results, summaries))
    figures.extend(_over_time(results[-1]))
    sections = "".join(_run_section(s) for s in summaries)
    model = escape(str(summaries[-1]["config"].get("model")))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>nimble bench — {model}</title><style>{STYLE}</style></head><body>"
        f"<h1>nimble bench — {model}</h1>{sections}"
        f"<h2>Figures</h2>{''.join(f'<figure>{f}</figure>' for f in figures)}"
        "</body></html>\n"
    )
