"""The metric registry: every benchmark metric declared once.

One :class:`Metric` entry gives a metric its key (the JSON/JSONL name — AIPerf 0.13's tag
when AIPerf exports the same quantity), its header and unit (the CSV label is
``"{header} ({unit})"``, AIPerf's rule), its formula (the docstring users read and the
function the numbers come from), and where it appears. The summary, the AIPerf-format
JSON/CSV/JSONL exports, their JSON Schemas, ``bench diff``, the terminal table and the
HTML report all iterate this registry — adding a metric is adding one entry here.

Three kinds:

- ``request``: one value per request (a function of the
  :class:`~nimble_oke.bench.analysis.RequestTable` columns, NaN where undefined);
  summarised as a distribution over the successful requests;
- ``samples``: several values per request (values and their rows); a distribution over
  all samples of the successful requests; in JSONL a list per request;
- ``run``: one value per run, ``{"unit", "avg"}`` (a function of :class:`RunFacts`).

Distributions have AIPerf 0.13's statistic keys — ``avg, p1…p99, min, max, std, count,
sum`` — with numpy's linear percentiles and the population standard deviation (AIPerf's
``metric_result_from_array``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from nimble_oke.bench.analysis import RequestTable

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Kind = Literal["request", "samples", "run"]
# units that AIPerf's CSV leaves out of the label ("Request Count", not "(requests)")
UNITLESS_LABELS = ("count", "requests")


@dataclass(frozen=True)
class RunFacts:
    """What run-level metrics are computed from."""

    table: RequestTable
    window_s: float  # first send → last response (the throughput window)
    good: int | None  # requests meeting every SLO (None: no SLO given)

    @property
    def ok(self) -> int:
        return int(self.table.ok.sum())

    @property
    def failed(self) -> int:
        t = self.table
        return int(((t.error != 0) & ~np.isnan(t.send_ms)).sum())

    def per_second(self, amount: float) -> float:
        return amount / self.window_s if self.window_s > 0 else 0.0

    def total(self, column: F64) -> float:
        return float(np.nansum(column[self.table.ok]))


@dataclass(frozen=True)
class Metric:
    """One metric: names, unit, formula, and where it is shown."""

    key: str
    header: str
    unit: str
    kind: Kind
    formula: str
    compute: Callable[..., Any]
    aiperf: bool = True  # AIPerf 0.13 exports this key with this meaning and unit
    short: str | None = None  # terminal row label (None: not in the terminal table)
    report: bool = False  # a row of the HTML report's table
    diff: bool = False  # compared by ``bench diff`` (per-request values)
    legacy: tuple[str, str] | None = None  # (summary key, JSONL key) in nimble-bench/1 files
    always: bool = True  # present in every summary (False: only when it has a value)

    @property
    def label(self) -> str:
        """The CSV label (AIPerf's rule: the unit in parentheses unless it is a count)."""
        unitless = self.unit.lower() in UNITLESS_LABELS
        return self.header if unitless else f"{self.header} ({self.unit})"

    def per_request(self, table: RequestTable) -> F64:
        assert self.kind == "request", self.key
        return np.asarray(self.compute(table), dtype=np.float64)

    def samples(self, table: RequestTable) -> tuple[F64, I64]:
        assert self.kind == "samples", self.key
        values, rows = self.compute(table)
        return np.asarray(values, dtype=np.float64), np.asarray(rows, dtype=np.int64)

    def run_value(self, facts: RunFacts) -> float | None:
        assert self.kind == "run", self.key
        value = self.compute(facts)
        return None if value is None else float(value)


def _ratio(num: F64, den: F64) -> F64:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, np.nan)


def _decode_tokens(t: RequestTable) -> F64:
    """Output tokens after the first content event (the decode phase's tokens)."""
    return np.where(t.osl >= 2, t.osl - t.first_tokens, np.nan)


def _itl(t: RequestTable) -> F64:
    return _ratio(t.last_ms - t.first_ms, _decode_tokens(t))


def _good(facts: RunFacts) -> float | None:
    return None if facts.good is None else float(facts.good)


def _goodput(facts: RunFacts) -> float | None:
    return None if facts.good is None else facts.per_second(facts.good)


METRICS: tuple[Metric, ...] = (
    Metric(
        "time_to_first_token",
        "Time to First Token",
        "ms",
        "request",
        "first SSE event with non-empty content − request written",
        lambda t: t.first_ms - t.send_ms,
        short="TTFT",
        report=True,
        diff=True,
        legacy=("time_to_first_token", "time_to_first_token_ms"),
    ),
    Metric(
        "time_to_second_token",
        "Time to Second Token",
        "ms",
        "request",
        "second content event − first content event",
        lambda t: t.second_ms - t.first_ms,
    ),
    Metric(
        "time_to_first_byte",
        "Time to First Byte",
        "ms",
        "request",
        "response head received − request written",
        lambda t: t.headers_ms - t.send_ms,
        aiperf=False,
        legacy=("time_to_first_byte", "time_to_first_byte_ms"),
    ),
    Metric(
        "inter_token_latency",
        "Inter Token Latency",
        "ms",
        "request",
        "per request: (last content event − first content event) ÷ (OSL − tokens in the "
        "first content event), for OSL ≥ 2 (AIPerf 0.13; its default subtracts 1 token, "
        "the same when the first event carries one token)",
        _itl,
        short="ITL",
        report=True,
        diff=True,
        legacy=("time_per_output_token", "time_per_output_token_ms"),
    ),
    Metric(
        "inter_token_latency_per_token",
        "Inter Token Latency Per Token",
        "ms",
        "samples",
        "per token: gap between consecutive content events ÷ tokens in the later event, "
        "one sample per token (nimble's per-gap distribution; this was "
        "inter_token_latency in nimble-bench/1 exports)",
        lambda t: (t.itl_ms, t.itl_request),
        aiperf=False,
        short="ITL/token",
        report=True,
        diff=True,
        legacy=("inter_token_latency", "inter_token_latencies_ms"),
    ),
    Metric(
        "inter_chunk_latency",
        "Inter Chunk Latency",
        "ms",
        "samples",
        "gap between consecutive content events, one sample per gap",
        lambda t: (t.icl_ms, t.icl_request),
    ),
    Metric(
        "time_per_output_token",
        "Time Per Output Token",
        "ms",
        "request",
        "the same formula as inter_token_latency (GenAI-Perf's name, kept for readers of "
        "nimble-bench/1 exports and for --slo tpot)",
        _itl,
        aiperf=False,
        legacy=("time_per_output_token", "time_per_output_token_ms"),
    ),
    Metric(
        "request_latency",
        "Request Latency",
        "ms",
        "request",
        "last content event − request written (AIPerf 0.13: the usage chunk and [DONE] "
        "after the last token are not counted)",
        lambda t: t.last_ms - t.send_ms,
        short="latency",
        report=True,
        diff=True,
        legacy=("request_latency", "request_latency_ms"),
    ),
    Metric(
        "decode_duration",
        "Decode Duration",
        "ms",
        "request",
        "last content event − first content event",
        lambda t: t.last_ms - t.first_ms,
    ),
    Metric(
        "output_token_throughput_per_user",
        "Output Token Throughput Per User",
        "tokens/sec/user",
        "request",
        "1 ÷ inter_token_latency (in seconds)",
        lambda t: _ratio(np.full(t.ok.size, 1000.0), _itl(t)),
    ),
    Metric(
        "e2e_output_token_throughput",
        "E2E Output Token Throughput",
        "tokens/sec/user",
        "request",
        "OSL ÷ request_latency (in seconds)",
        lambda t: _ratio(t.osl * 1000.0, t.last_ms - t.send_ms),
    ),
    Metric(
        "output_sequence_length",
        "Output Sequence Length",
        "tokens",
        "request",
        "usage.completion_tokens, or the number of content events without usage",
        lambda t: t.osl,
        report=True,
    ),
    Metric(
        "input_sequence_length",
        "Input Sequence Length",
        "tokens",
        "request",
        "usage.prompt_tokens (the server's count)",
        lambda t: t.isl,
    ),
    Metric(
        "time_to_first_token_from_intended_send",
        "Time to First Token From Intended Send",
        "ms",
        "request",
        "first content event − the time the schedule meant to send (includes client send "
        "lag: coordinated omission cannot hide queueing)",
        lambda t: t.first_ms - t.intended_ms,
        aiperf=False,
        short="TTFT*",
        report=True,
        legacy=("time_to_first_token_from_intended_send", "time_to_first_token_from_intended_ms"),
    ),
    Metric(
        "request_latency_from_intended_send",
        "Request Latency From Intended Send",
        "ms",
        "request",
        "last content event − the time the schedule meant to send",
        lambda t: t.last_ms - t.intended_ms,
        aiperf=False,
        legacy=("request_latency_from_intended_send", "request_latency_from_intended_ms"),
    ),
    Metric(
        "request_throughput",
        "Request Throughput",
        "requests/sec",
        "run",
        "successful requests ÷ benchmark_duration",
        lambda f: f.per_second(f.ok),
    ),
    Metric(
        "output_token_throughput",
        "Output Token Throughput",
        "tokens/sec",
        "run",
        "Σ OSL of successful requests ÷ benchmark_duration",
        lambda f: f.per_second(f.total(f.table.osl)),
    ),
    Metric(
        "input_token_throughput",
        "Input Token Throughput",
        "tokens/sec",
        "run",
        "Σ ISL of successful requests ÷ benchmark_duration",
        lambda f: f.per_second(f.total(f.table.isl)),
    ),
    Metric(
        "total_token_throughput",
        "Total Token Throughput",
        "tokens/sec",
        "run",
        "(Σ ISL + Σ OSL) of successful requests ÷ benchmark_duration",
        lambda f: f.per_second(f.total(f.table.isl) + f.total(f.table.osl)),
    ),
    Metric(
        "request_count",
        "Request Count",
        "requests",
        "run",
        "successful requests",
        lambda f: f.ok,
    ),
    Metric(
        "error_request_count",
        "Error Request Count",
        "requests",
        "run",
        "requests sent that failed (HTTP ≥ 400, timeout, connection, stream error, "
        "incomplete stream)",
        lambda f: f.failed,
    ),
    Metric(
        "completed_request_count",
        "Completed Requests (Success + Error)",
        "requests",
        "run",
        "request_count + error_request_count",
        lambda f: f.ok + f.failed,
    ),
    Metric(
        "request_error_rate",
        "Request Error Rate",
        "%",
        "run",
        "100 × error_request_count ÷ completed_request_count",
        lambda f: 100.0 * f.failed / (f.ok + f.failed) if f.ok + f.failed else None,
        always=False,
    ),
    Metric(
        "benchmark_duration",
        "Benchmark Duration",
        "sec",
        "run",
        "last response received (complete or failed) − first request written (AIPerf 0.13 "
        "ends at the last content event of a successful request: the same unless the run "
        "ends with failures)",
        lambda f: f.window_s,
    ),
    Metric(
        "total_osl",
        "Total Output Sequence Length",
        "tokens",
        "run",
        "Σ OSL of successful requests",
        lambda f: f.total(f.table.osl),
    ),
    Metric(
        "total_isl",
        "Total Input Sequence Length",
        "tokens",
        "run",
        "Σ ISL of successful requests",
        lambda f: f.total(f.table.isl),
    ),
    Metric(
        "good_request_count",
        "Good Request Count",
        "requests",
        "run",
        "successful requests meeting every --slo (only with --slo)",
        _good,
        always=False,
    ),
    Metric(
        "goodput",
        "Goodput",
        "requests/sec",
        "run",
        "good_request_count ÷ benchmark_duration (only with --slo)",
        _goodput,
        always=False,
    ),
)

BY_KEY: dict[str, Metric] = {m.key: m for m in METRICS}
DISTRIBUTIONS: tuple[Metric, ...] = tuple(m for m in METRICS if m.kind != "run")
SCALARS: tuple[Metric, ...] = tuple(m for m in METRICS if m.kind == "run")
