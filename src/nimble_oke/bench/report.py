"""The self-contained HTML report: tables plus inline SVG figures, no network at all."""

from __future__ import annotations

from html import escape
from typing import Any

import numpy as np

from nimble_oke.bench.analysis import analyze
from nimble_oke.bench.result import BenchResult
from nimble_oke.bench.stats import clean, in_flight_curve
from nimble_oke.bench.svg import Series, line_chart

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:72em}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;"
    "text-align:right}th:first-child,td:first-child{text-align:left}"
    ".INVALID{color:#b00;font-weight:bold}.VALID{color:#070;font-weight:bold}"
)
ROWS = (
    ("TTFT (ms)", "time_to_first_token"),
    ("ITL (ms)", "inter_token_latency"),
    ("TPOT (ms)", "time_per_output_token"),
    ("Request latency (ms)", "request_latency"),
    ("TTFT from intended send (ms)", "time_to_first_token_from_intended_send"),
    ("Output tokens / request", "output_sequence_length"),
)


def _label(summary: dict[str, Any]) -> str:
    cfg = summary["config"]
    if cfg.get("rate") is None:
        return f"concurrency {cfg['concurrency']}"
    return f"rate {cfg['rate']:g}/s {cfg['arrival']}"


def _fmt(v: Any) -> str:
    return "–" if v is None else f"{v:,.2f}"


def _cdf(values: Any) -> tuple[list[float], list[float]]:
    arr = np.sort(clean(values))
    if arr.size == 0:
        return [], []
    return arr.tolist(), (np.arange(1, arr.size + 1) / arr.size).tolist()


def _table(summary: dict[str, Any]) -> str:
    stats = ("avg", "p50", "p90", "p99", "max")
    head = "".join(f"<th>{s}</th>" for s in stats)
    rows = [f"<tr><th>metric</th>{head}</tr>"]
    for label, key in ROWS:
        d = summary.get(key, {})
        cells = "".join(f"<td>{_fmt(d.get(s))}</td>" for s in stats)
        rows.append(f"<tr><td>{escape(label)}</td>{cells}</tr>")
    return f"<table>{''.join(rows)}</table>"


def _run_section(result: BenchResult, summary: dict[str, Any]) -> str:
    v = summary["validity"]
    reasons = "".join(f"<li>{escape(r)}</li>" for r in v["reasons"] + v["warnings"])
    errors = summary["errors"]
    by_type = ", ".join(f"{k}: {n}" for k, n in errors["by_type"].items()) or "none"
    return (
        f'<h2>{escape(_label(summary))} — <span class="{v["status"]}">{v["status"]}</span></h2>'
        f"<ul>{reasons}</ul>"
        f"<p>{summary['request_count']['avg']} requests · "
        f"{summary['request_throughput']['avg']:.2f} req/s · "
        f"{summary['output_token_throughput']['avg']:.1f} output tokens/s · "
        f"errors {errors['count']} ({escape(by_type)})</p>{_table(summary)}"
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
    ttft_cdf: list[Series] = []
    itl_cdf: list[Series] = []
    e2e_cdf: list[Series] = []
    for name, t in zip(names, tables, strict=True):
        ttft_cdf.append((name, *_cdf(t.ttft_ms[t.ok])))
        itl_cdf.append((name, *_cdf(t.itl_ms)))
        e2e_cdf.append((name, *_cdf(t.e2e_ms[t.ok])))
    figures = [
        line_chart("TTFT CDF", ttft_cdf, "TTFT (ms)", "fraction of requests"),
        line_chart("ITL CDF (per token)", itl_cdf, "ITL (ms)", "fraction of tokens"),
        line_chart("Request latency CDF", e2e_cdf, "latency (ms)", "fraction of requests"),
    ]
    through = [s["output_token_throughput"]["avg"] for s in summaries]
    p50 = [s["time_to_first_token"]["p50"] or float("nan") for s in summaries]
    p99 = [s["time_to_first_token"]["p99"] or float("nan") for s in summaries]
    figures.append(
        line_chart(
            "Throughput vs latency" + (" across the sweep" if len(results) > 1 else ""),
            [("TTFT p50", through, p50), ("TTFT p99", through, p99)],
            "output tokens/s",
            "TTFT (ms)",
            markers=True,
        )
    )
    figures.extend(_over_time(results[-1]))
    sections = "".join(_run_section(r, s) for r, s in zip(results, summaries, strict=True))
    model = escape(str(summaries[-1]["config"].get("model")))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>nimble bench — {model}</title><style>{STYLE}</style></head><body>"
        f"<h1>nimble bench — {model}</h1>{sections}"
        f"<h2>Figures</h2>{''.join(f'<figure>{f}</figure>' for f in figures)}"
        "</body></html>\n"
    )
