"""Server-side cross-check: scrape NIM's ``/v1/metrics`` (Prometheus text) around a run.

Metric names follow NIM's documentation (reference/nim.md); newer NIM builds on vLLM
prefix them with ``vllm:`` and may call KV-cache usage ``kv_cache_usage_perc``. Names are
matched on the part after the last ``:`` so every spelling is accepted.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field

import aiohttp

_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def parse_prometheus(text: str) -> dict[str, float]:
    """Sum every sample of each metric name over its labels (``# ...`` lines ignored).

    Histogram series keep their suffix (``..._sum``, ``..._count``); ``_bucket`` series are
    dropped (the mean from sum/count is what is compared).
    """
    totals: dict[str, float] = defaultdict(float)
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None or match.group(1).endswith("_bucket"):
            continue
        try:
            value = float(match.group(3))
        except ValueError:
            continue
        if math.isnan(value):
            continue
        totals[_base_name(match.group(1))] += value
    return dict(totals)


def _base_name(name: str) -> str:
    return name.rsplit(":", 1)[-1]


@dataclass
class ServerSnapshot:
    """Metrics scraped at one moment (``None`` when the endpoint has no metrics)."""

    values: dict[str, float] = field(default_factory=dict)

    def get(self, *names: str) -> float | None:
        """The first of ``names`` present (alternate spellings)."""
        for name in names:
            if name in self.values:
                return self.values[name]
        return None


async def scrape(session: aiohttp.ClientSession, base_url: str) -> ServerSnapshot | None:
    """GET ``{base}/v1/metrics``; ``None`` if missing or unreachable (not an error)."""
    try:
        async with session.get(f"{base_url}/v1/metrics") as resp:
            if resp.status != 200:
                return None
            return ServerSnapshot(parse_prometheus(await resp.text()))
    except (aiohttp.ClientError, TimeoutError):
        return None


def _hist_mean_ms(
    before: ServerSnapshot, after: ServerSnapshot, name: str
) -> tuple[float | None, float]:
    s1, c1 = after.get(f"{name}_sum"), after.get(f"{name}_count")
    if s1 is None or c1 is None:
        return None, 0.0
    s0, c0 = before.get(f"{name}_sum") or 0.0, before.get(f"{name}_count") or 0.0
    count = c1 - c0
    if count <= 0:
        return None, 0.0
    return (s1 - s0) / count * 1000.0, count


def server_summary(
    before: ServerSnapshot | None,
    after: ServerSnapshot | None,
    during: list[ServerSnapshot],
) -> dict[str, object]:
    """Server-side figures for the run window, next to the client's."""
    if before is None or after is None:
        return {"available": False}
    ttft, n_ttft = _hist_mean_ms(before, after, "time_to_first_token_seconds")
    tpot, _ = _hist_mean_ms(before, after, "time_per_output_token_seconds")
    e2e, _ = _hist_mean_ms(before, after, "e2e_request_latency_seconds")
    samples = [*during, after]
    waiting = [v for s in samples if (v := s.get("num_requests_waiting")) is not None]
    running = [v for s in samples if (v := s.get("num_requests_running")) is not None]
    kv = [
        v
        for s in samples
        if (v := s.get("gpu_cache_usage_perc", "kv_cache_usage_perc")) is not None
    ]
    gen0 = before.get("generation_tokens_total")
    gen1 = after.get("generation_tokens_total")
    return {
        "available": True,
        "time_to_first_token_mean_ms": ttft,
        "time_per_output_token_mean_ms": tpot,
        "e2e_request_latency_mean_ms": e2e,
        "requests_observed": n_ttft,
        "generation_tokens": None if gen0 is None or gen1 is None else gen1 - gen0,
        "num_requests_waiting_max": max(waiting) if waiting else None,
        "num_requests_running_max": max(running) if running else None,
        "kv_cache_usage_max": max(kv) if kv else None,
    }
