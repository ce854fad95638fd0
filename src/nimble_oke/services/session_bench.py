"""The benchmark ``up`` runs on its endpoint, and the one line that sums it up."""

from __future__ import annotations

from typing import Any

from nimble_oke.domain.config import NimbleConfig


def run_bench(endpoint: str, cfg: NimbleConfig, *, requests: int | None = None) -> dict[str, Any]:
    from nimble_oke.bench import BenchConfig, run, summarize

    config = BenchConfig(
        endpoint=endpoint,
        model=cfg.nim.served_model_name,
        concurrency=cfg.bench.concurrency,
        requests=requests or cfg.bench.requests,
        warmup=cfg.bench.warmup,
        input_tokens_mean=cfg.bench.input_tokens,
        output_tokens=cfg.bench.output_tokens,
        duration_s=cfg.bench.duration_s,
    )
    summary: dict[str, Any] = summarize(run(config))
    return summary


def bench_line(summary: dict[str, Any]) -> str:
    ttft = summary.get("time_to_first_token", {}).get("p50")
    itl = summary.get("inter_token_latency", {}).get("p50")
    tps = summary.get("output_token_throughput", {}).get("avg")
    validity = summary.get("validity", {}).get("status", "?")
    errors = (
        summary.get("error_count", summary.get("errors", {}).get("count", 0))
        if isinstance(summary.get("errors"), dict)
        else summary.get("error_count", 0)
    )
    conc = summary.get("config", {}).get("concurrency")
    parts = [f"concurrency {conc}:" if conc else ""]
    if ttft is not None:
        parts.append(f"TTFT p50 {ttft:.0f} ms ·")
    if itl is not None:
        parts.append(f"ITL p50 {itl:.1f} ms ·")
    if tps is not None:
        parts.append(f"{tps:.0f} tok/s ·")
    parts.append(f"{errors} errors · {validity}")
    return " ".join(p for p in parts if p)
