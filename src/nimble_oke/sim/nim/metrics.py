"""NIM's Prometheus metrics (names from the NIM docs, see reference/nim.md), rendered in the
Prometheus text exposition format 0.0.4 at ``/v1/metrics``."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence

_LATENCY_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
)
_TOKEN_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)


def _fmt(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


class Histogram:
    """A cumulative Prometheus histogram."""

    def __init__(self, name: str, help_text: str, buckets: Sequence[float]) -> None:
        self.name = name
        self.help = help_text
        self.bounds = tuple(buckets)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def render(self, labels: str) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        cumulative = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            cumulative += count
            lines.append(f'{self.name}_bucket{{{labels},le="{_fmt(bound)}"}} {cumulative}')
        lines.append(f"{self.name}_sum{{{labels}}} {_fmt(self.sum)}")
        lines.append(f"{self.name}_count{{{labels}}} {self.count}")
        return lines


class NimMetrics:
    """Counters and histograms the emulator updates; gauges are read at scrape time."""

    def __init__(self, model_name: str) -> None:
        self.labels = f'model_name="{model_name}"'
        self.prompt_tokens_total = 0
        self.generation_tokens_total = 0
        self.request_finish_total: dict[str, int] = {"stop": 0, "length": 0, "abort": 0}
        self.ttft = Histogram(
            "time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            _LATENCY_BUCKETS,
        )
        self.tpot = Histogram(
            "time_per_output_token_seconds",
            "Histogram of time per output token in seconds.",
            _LATENCY_BUCKETS,
        )
        self.e2e = Histogram(
            "e2e_request_latency_seconds",
            "Histogram of end to end request latency in seconds.",
            _LATENCY_BUCKETS,
        )
        self.prompt_tokens = Histogram(
            "request_prompt_tokens", "Number of prefill tokens processed.", _TOKEN_BUCKETS
        )
        self.generation_tokens = Histogram(
            "request_generation_tokens", "Number of generation tokens processed.", _TOKEN_BUCKETS
        )

    def record_request(
        self,
        *,
        prompt_tokens: int,
        generation_tokens: int,
        finish_reason: str,
        ttft_s: float | None,
        e2e_s: float,
        token_gaps_s: Sequence[float] = (),
    ) -> None:
        self.prompt_tokens_total += prompt_tokens
        self.generation_tokens_total += generation_tokens
        self.request_finish_total[finish_reason] = (
            self.request_finish_total.get(finish_reason, 0) + 1
        )
        if ttft_s is not None:
            self.ttft.observe(ttft_s)
        for gap in token_gaps_s:
            self.tpot.observe(gap)
        self.e2e.observe(e2e_s)
        self.prompt_tokens.observe(prompt_tokens)
        self.generation_tokens.observe(generation_tokens)

    def render(self, gauges: Callable[[], dict[str, float]]) -> str:
        """The exposition text; ``gauges`` gives num_requests_running/waiting, num_request_max
        and gpu_cache_usage_perc at scrape time."""
        lines: list[str] = []
        helps = {
            "num_requests_running": "Number of requests currently running on GPU.",
            "num_requests_waiting": "Number of requests waiting to be processed.",
            "num_request_max": "Max number of concurrently running requests.",
            "gpu_cache_usage_perc": "GPU KV-cache usage. 1 means 100 percent usage.",
        }
        values = gauges()
        for name, help_text in helps.items():
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
            lines.append(f"{name}{{{self.labels}}} {_fmt(values.get(name, 0.0))}")
        for name, help_text, value in (
            (
                "prompt_tokens_total",
                "Number of prefill tokens processed.",
                self.prompt_tokens_total,
            ),
            (
                "generation_tokens_total",
                "Number of generation tokens processed.",
                self.generation_tokens_total,
            ),
        ):
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
            lines.append(f"{name}{{{self.labels}}} {value}")
        lines += [
            "# HELP request_finish_total Number of finished requests by finish reason.",
            "# TYPE request_finish_total counter",
        ]
        for reason, count in sorted(self.request_finish_total.items()):
            lines.append(
                f'request_finish_total{{{self.labels},finished_reason="{reason}"}} {count}'
            )
        for hist in (self.ttft, self.tpot, self.e2e, self.prompt_tokens, self.generation_tokens):
            lines += hist.render(self.labels)
        return "\n".join(lines) + "\n"
