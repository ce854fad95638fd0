"""In-cluster mode: split one run over N worker pods and merge their raw results.

Each worker runs ``shard(config, n)[i]`` (its share of the concurrency, rate and request
count, its own seed); the lead collects the workers' raw results (exported JSONL or
pickled stores) and :func:`merge` concatenates them on one time base. The merged result
is analysed exactly like a single-process run, so no histogram approximation is needed.
Launching the Kubernetes Job is done by the caller (services layer), not here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from nimble_oke.bench.config import BenchConfig
from nimble_oke.bench.records import UNSET, RequestStore
from nimble_oke.bench.result import BenchResult, RunHealth


def _split(total: int, parts: int, index: int) -> int:
    return total // parts + (1 if index < total % parts else 0)


def shard(config: BenchConfig, workers: int) -> list[BenchConfig]:
    """``workers`` configs whose union is ``config`` (concurrency, rate, requests, warm-up
    divided; distinct seeds so prompts and arrivals differ between workers)."""
    if workers < 1:
        raise ValueError("workers must be >= 1")
    if config.rate is None and config.concurrency < workers:
        raise ValueError(f"concurrency {config.concurrency} < workers {workers}")
    shards: list[BenchConfig] = []
    for i in range(workers):
        shards.append(
            config.replace(
                concurrency=_split(config.concurrency, workers, i)
                if config.rate is None
                else config.concurrency,
                rate=None if config.rate is None else config.rate / workers,
                requests=None
                if config.requests is None
                else max(1, _split(config.requests, workers, i)),
                warmup=_split(config.warmup, workers, i),
                worker_index=i,
                worker_count=workers,
            )
        )
    return shards


def _shift(
    values: np.ndarray[tuple[int], np.dtype[np.int64]], delta: int
) -> np.ndarray[tuple[int], np.dtype[np.int64]]:
    return np.where(values == UNSET, UNSET, values + delta)


def merge(results: list[BenchResult]) -> BenchResult:
    """One result from the workers' results, timestamps moved onto the first worker's
    clock via each worker's wall-clock anchor (NTP-level alignment between pods)."""
    if not results:
        raise ValueError("nothing to merge")
    base = results[0]
    total = sum(r.store.count for r in results)
    store = RequestStore(total)
    row = 0
    start = base.start_ns
    stop = base.stop_ns
    lags = []
    for r in results:
        delta = r.wall_offset_ns - base.wall_offset_ns
        n = r.store.count
        for name in ("intended_ns", "send_ns", "headers_ns", "end_ns"):
            getattr(store, name)[row : row + n] = _shift(getattr(r.store, name)[:n], delta)
        store.status[row : row + n] = r.store.status[:n]
        store.error[row : row + n] = r.store.error[:n]
        for k in range(n):
            c = r.store.chunks[k]
            store.chunks[row + k] = (
                None
                if c is None
                else dataclasses.replace(
                    c, times_ns=type(c.times_ns)("q", (t + delta for t in c.times_ns))
                )
            )
        for k, msg in r.store.messages.items():
            store.messages[row + k] = msg
        start = min(start, r.start_ns + delta)
        stop = max(stop, r.stop_ns + delta)
        lags.append(r.health.loop_lag_ns)
        row += n
    store.count = total
    return BenchResult(
        config=base.config.replace(
            worker_index=0,
            worker_count=1,
            concurrency=sum(r.config.concurrency for r in results)
            if base.config.rate is None
            else base.config.concurrency,
            rate=None if base.config.rate is None else sum(r.config.rate or 0 for r in results),
            requests=None if base.config.requests is None else total,
        ),
        model=base.model,
        token_param=base.token_param,
        request_extras=base.request_extras,
        store=store,
        start_ns=start,
        stop_ns=stop,
        wall_offset_ns=base.wall_offset_ns,
        health=RunHealth(
            wall_s=(stop - start) / 1e9,
            cpu_s=sum(r.health.cpu_s for r in results),
            loop_lag_ns=np.concatenate(lags) if lags else np.zeros(0, dtype=np.int64),
            in_flight_waits=sum(r.health.in_flight_waits for r in results),
            gc=_merged_gc(results),
            connections=_merged_connections(results),
        ),
        server=base.server,
        workers=sum(r.workers for r in results),
    )


def _merged_gc(results: list[BenchResult]) -> dict[str, Any]:
    stats = [r.health.gc for r in results if r.health.gc]
    if not stats:
        return {}
    return {
        "collections": sum(s.get("collections", 0) for s in stats),
        "pause_max_ms": max(s.get("pause_max_ms", 0.0) for s in stats),
        "pause_total_ms": sum(s.get("pause_total_ms", 0.0) for s in stats),
        "objects_collected": sum(s.get("objects_collected", 0) for s in stats),
    }


def _merged_connections(results: list[BenchResult]) -> dict[str, Any]:
    stats = [r.health.connections for r in results if r.health.connections]
    if not stats:
        return {}
    out: dict[str, Any] = {
        key: sum(s.get(key, 0) for s in stats)
        for key in ("warmed", "opened_during_run", "stale_retries")
    }
    out["reuse"] = all(s.get("reuse", True) for s in stats)
    out["warm_s"] = max(s.get("warm_s", 0.0) for s in stats)
    out["warm_error"] = next((s["warm_error"] for s in stats if s.get("warm_error")), None)
    return out
