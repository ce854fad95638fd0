"""A small parser for the Prometheus text exposition format (0.0.4) and the NIM metric
names, which differ between NIM versions: NIM's documented names (``num_requests_running``)
versus ``vllm:``-prefixed ones, and ``gpu_cache_usage_perc`` versus ``kv_cache_usage_perc``.
Callers ask for a canonical name and :class:`MetricSet` finds whichever spelling exists."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE_RE = re.compile(
    rf"^(?P<name>{_NAME})(?:\{{(?P<labels>.*)\}})?\s+(?P<value>\S+)(?:\s+\S+)?$"
)
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')

# Canonical name → spellings seen in NIM / vLLM versions, preferred first.
ALIASES: dict[str, tuple[str, ...]] = {
    "num_requests_running": ("num_requests_running", "vllm:num_requests_running"),
    "num_requests_waiting": ("num_requests_waiting", "vllm:num_requests_waiting"),
    "num_request_max": ("num_request_max", "vllm:num_request_max"),
    "gpu_cache_usage_perc": (
        "gpu_cache_usage_perc",
        "vllm:gpu_cache_usage_perc",
        "kv_cache_usage_perc",
        "vllm:kv_cache_usage_perc",
    ),
    "prompt_tokens_total": ("prompt_tokens_total", "vllm:prompt_tokens_total"),
    "generation_tokens_total": ("generation_tokens_total", "vllm:generation_tokens_total"),
    "request_finish_total": (
        "request_finish_total",
        "vllm:request_finish_total",
        "vllm:request_success_total",
    ),
    "time_to_first_token_seconds": (
        "time_to_first_token_seconds",
        "vllm:time_to_first_token_seconds",
    ),
    "time_per_output_token_seconds": (
        "time_per_output_token_seconds",
        "vllm:time_per_output_token_seconds",
        "vllm:inter_token_latency_seconds",
    ),
    "e2e_request_latency_seconds": (
        "e2e_request_latency_seconds",
        "vllm:e2e_request_latency_seconds",
    ),
    "request_prompt_tokens": ("request_prompt_tokens", "vllm:request_prompt_tokens"),
    "request_generation_tokens": ("request_generation_tokens", "vllm:request_generation_tokens"),
}
HISTOGRAMS = frozenset(
    {
        "time_to_first_token_seconds",
        "time_per_output_token_seconds",
        "e2e_request_latency_seconds",
        "request_prompt_tokens",
        "request_generation_tokens",
    }
)
# The names a NIM LLM endpoint must expose (in some spelling) to count as NIM metrics.
CORE_METRICS = ("num_requests_running", "num_requests_waiting", "gpu_cache_usage_perc")


class PrometheusParseError(ValueError):
    """The text is not in the Prometheus exposition format."""


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


_ESCAPES = {"n": "\n", '"': '"', "\\": "\\"}


def _unescape(value: str) -> str:
    """Left to right, so ``\\\\n`` (an escaped backslash, then ``n``) stays ``\\n``."""
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value) and value[i + 1] in _ESCAPES:
            out.append(_ESCAPES[value[i + 1]])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _parse_value(text: str) -> float:
    lowered = text.lower()
    if lowered in ("+inf", "inf"):
        return math.inf
    if lowered == "-inf":
        return -math.inf
    return float(text)


def parse_prometheus(text: str) -> list[Sample]:
    """Every sample in ``text``; raises :class:`PrometheusParseError` on a malformed line."""
    samples: list[Sample] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip(" \t\r")
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE_RE.match(line)
        if not match:
            raise PrometheusParseError(f"line {number}: not a sample: {line[:80]!r}")
        labels: dict[str, str] = {}
        label_text = match.group("labels")
        if label_text:
            pos = 0
            while pos < len(label_text):
                lm = _LABEL_RE.match(label_text, pos)
                if not lm:
                    raise PrometheusParseError(f"line {number}: bad labels: {label_text[:80]!r}")
                labels[lm.group(1)] = _unescape(lm.group(2))
                pos = lm.end()
        try:
            value = _parse_value(match.group("value"))
        except ValueError as exc:
            raise PrometheusParseError(
                f"line {number}: bad value {match.group('value')!r}"
            ) from exc
        samples.append(Sample(match.group("name"), labels, value))
    return samples


@dataclass
class MetricSet:
    """Samples of one scrape, with lookup by canonical NIM metric name."""

    samples: list[Sample]
    names: set[str] = field(init=False)

    def __post_init__(self) -> None:
        self.names = {s.name for s in self.samples}

    @classmethod
    def parse(cls, text: str) -> MetricSet:
        return cls(parse_prometheus(text))

    def resolve(self, canonical: str) -> str | None:
        """The spelling of ``canonical`` this endpoint uses, or None."""
        suffix = "_count" if canonical in HISTOGRAMS else ""
        for spelling in ALIASES.get(canonical, (canonical,)):
            if spelling + suffix in self.names:
                return spelling
        return None

    @property
    def flavour(self) -> str:
        """``"nim"`` (documented names), ``"vllm"`` (``vllm:`` prefix) or ``"unknown"``."""
        if any(n.startswith("vllm:") for n in self.names):
            return "vllm"
        if self.resolve("num_requests_running"):
            return "nim"
        return "unknown"

    def missing(self, canonicals: Iterable[str] = CORE_METRICS) -> list[str]:
        return [c for c in canonicals if self.resolve(c) is None]

    def value(self, canonical: str, **labels: str) -> float | None:
        """Sum of the samples of a counter/gauge (histograms: the ``_sum``) matching labels."""
        spelling = self.resolve(canonical)
        if spelling is None:
            return None
        name = spelling + ("_sum" if canonical in HISTOGRAMS else "")
        return self._sum(name, labels)

    def count(self, canonical: str) -> float | None:
        """Observation count of a histogram."""
        spelling = self.resolve(canonical)
        return None if spelling is None else self._sum(spelling + "_count", {})

    def _sum(self, name: str, labels: dict[str, str]) -> float:
        return sum(
            s.value
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )
