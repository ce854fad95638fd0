"""Save and load a run's raw data (``raw.npz``), so in-cluster workers can ship their
results to the lead for :func:`nimble_oke.bench.shard.merge`.

numpy ``.npz`` without pickle: integer columns, the chunk timestamps/offsets flattened
with per-request counts, the bodies concatenated, and the config/health as JSON text.
Nothing secret is stored (the config is saved without its API key).
"""

from __future__ import annotations

import json
from array import array
from pathlib import Path
from typing import Any

import numpy as np

from nimble_oke.bench.config import BenchConfig
from nimble_oke.bench.records import Chunks, RequestStore
from nimble_oke.bench.result import BenchResult, RunHealth

COLUMNS = ("intended_ns", "send_ns", "headers_ns", "end_ns", "status", "error")


def save_raw(result: BenchResult, path: Path) -> Path:
    """Write ``result`` to ``path`` (``.npz``)."""
    store = result.store
    n = store.count
    chunks = [c if c is not None else Chunks() for c in store.chunks[:n]]
    meta = {
        "config": result.config.public_dict(),
        "model": result.model,
        "token_param": result.token_param,
        "request_extras": result.request_extras,
        "start_ns": result.start_ns,
        "stop_ns": result.stop_ns,
        "wall_offset_ns": result.wall_offset_ns,
        "wall_s": result.health.wall_s,
        "cpu_s": result.health.cpu_s,
        "in_flight_waits": result.health.in_flight_waits,
        "gc": result.health.gc,
        "connections": result.health.connections,
        "server": result.server,
        "workers": result.workers,
        "messages": {str(k): v for k, v in store.messages.items()},
        "has_chunks": [c is not None for c in store.chunks[:n]],
    }
    arrays: dict[str, Any] = {name: getattr(store, name)[:n] for name in COLUMNS}
    arrays["chunk_counts"] = np.array([len(c.times_ns) for c in chunks], dtype=np.int64)
    arrays["chunk_times"] = np.array([t for c in chunks for t in c.times_ns], dtype=np.int64)
    arrays["chunk_ends"] = np.array([e for c in chunks for e in c.ends], dtype=np.int64)
    arrays["body_sizes"] = np.array([len(c.body) for c in chunks], dtype=np.int64)
    arrays["bodies"] = np.frombuffer(b"".join(c.body for c in chunks), dtype=np.uint8)
    arrays["body_starts"] = np.array([c.start for c in chunks], dtype=np.int64)
    arrays["chunked"] = np.array([c.chunked for c in chunks], dtype=np.bool_)
    arrays["loop_lag_ns"] = result.health.loop_lag_ns
    arrays["meta"] = np.array(json.dumps(meta))
    with path.open("wb") as fh:
        np.savez_compressed(fh, **arrays)
    return path


def load_raw(path: Path, api_key: str | None = None) -> BenchResult:
    """Read a result written by :func:`save_raw`."""
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        n = int(data["send_ns"].size)
        store = RequestStore(n)
        for name in COLUMNS:
            setattr(store, name, data[name].astype(np.int64))
        counts = data["chunk_counts"].tolist()
        times = data["chunk_times"].tolist()
        ends = data["chunk_ends"].tolist()
        sizes = data["body_sizes"].tolist()
        bodies = data["bodies"].tobytes()
        lags = data["loop_lag_ns"].astype(np.int64)
        # files written before the lean transport hold de-chunked bodies only
        starts = data["body_starts"].tolist() if "body_starts" in data else [0] * n
        chunked = data["chunked"].tolist() if "chunked" in data else [False] * n
    pos = body_pos = 0
    for i in range(n):
        k, size = counts[i], sizes[i]
        if meta["has_chunks"][i]:
            store.chunks[i] = Chunks(
                array("q", times[pos : pos + k]),
                array("q", ends[pos : pos + k]),
                bodies[body_pos : body_pos + size],
                int(starts[i]),
                bool(chunked[i]),
            )
        pos += k
        body_pos += size
    store.messages = {int(k): v for k, v in meta["messages"].items()}
    store.count = n
    config_data = dict(meta["config"])
    config_data["api_key"] = api_key
    return BenchResult(
        config=BenchConfig(**config_data),
        model=meta["model"],
        token_param=meta["token_param"],
        request_extras=meta["request_extras"],
        store=store,
        start_ns=meta["start_ns"],
        stop_ns=meta["stop_ns"],
        wall_offset_ns=meta["wall_offset_ns"],
        health=RunHealth(
            wall_s=meta["wall_s"],
            cpu_s=meta["cpu_s"],
            loop_lag_ns=lags,
            in_flight_waits=meta["in_flight_waits"],
            gc=meta.get("gc", {}),
            connections=meta.get("connections", {}),
        ),
        server=meta["server"],
        workers=meta["workers"],
    )
