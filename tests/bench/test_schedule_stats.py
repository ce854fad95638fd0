"""Arrival schedules, statistics helpers, sharding and merging."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from nimble_oke.bench import (
    BenchConfig,
    analyze,
    load_raw,
    merge,
    run_async,
    save_raw,
    shard,
    summarize,
)
from nimble_oke.bench.cost import usd_per_million_at_throughput, usd_per_million_tokens
from nimble_oke.bench.prompts import corpus_words, make_prompts
from nimble_oke.bench.schedule import inter_arrival_s, send_offsets_ns
from nimble_oke.bench.server_metrics import parse_prometheus
from nimble_oke.bench.stats import (
    bootstrap_ci,
    distribution,
    mann_whitney_u,
    steady_window,
    variation,
)

from .conftest import arun
from .truth_server import TruthServer, TruthSettings


def _ks_exponential(x: np.ndarray, mean: float) -> float:
    """Kolmogorov–Smirnov distance between the sample and Exp(mean)."""
    xs = np.sort(x)
    n = xs.size
    cdf = 1 - np.exp(-xs / mean)
    return float(max((np.arange(1, n + 1) / n - cdf).max(), (cdf - np.arange(n) / n).max()))


def test_constant_schedule_is_exact() -> None:
    offsets = send_offsets_ns("constant", 50.0, 100, seed=1)
    assert offsets[0] == 0
    assert np.all(np.diff(offsets) == 20_000_000)


def test_poisson_gaps_are_exponential() -> None:
    gaps = inter_arrival_s("poisson", 200.0, 20_000, seed=7)
    assert gaps.mean() == pytest.approx(1 / 200, rel=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.05)
    # KS critical value at alpha=0.01 for n=20000 is 1.63/sqrt(n) ≈ 0.0115
    assert _ks_exponential(gaps, 1 / 200) < 1.63 / math.sqrt(gaps.size)


def test_gamma_gaps_have_mean_and_cv() -> None:
    gaps = inter_arrival_s("gamma", 100.0, 20_000, seed=11, gamma_shape=0.25)
    assert gaps.mean() == pytest.approx(0.01, rel=0.05)
    assert gaps.std() / gaps.mean() == pytest.approx(2.0, rel=0.08)  # CV = 1/sqrt(k)
    again = inter_arrival_s("gamma", 100.0, 20_000, seed=11, gamma_shape=0.25)
    assert np.array_equal(gaps, again)  # seeded


def test_prompts_follow_the_length_distribution() -> None:
    assert len(corpus_words()) > 20_000
    prompts = make_prompts(400, mean=200, sd=40, low=50, high=260, seed=5)
    lengths = np.array([p.target_tokens for p in prompts])
    assert lengths.mean() == pytest.approx(200, rel=0.05)
    assert lengths.min() >= 50 and lengths.max() <= 260
    words = len(prompts[0].text.split()) - 1
    assert words == round(prompts[0].target_tokens * 0.75)
    assert len({p.text for p in prompts}) == 400


def test_distribution_has_aiperf_shape_and_numpy_percentiles() -> None:
    values = np.arange(1, 101, dtype=float)
    d = distribution(values, "ms")
    # AIPerf 0.13's JsonMetricResult keys, in its order
    assert list(d) == [
        "unit",
        "avg",
        "p1",
        "p5",
        "p10",
        "p25",
        "p50",
        "p75",
        "p90",
        "p95",
        "p99",
        "min",
        "max",
        "std",
        "count",
        "sum",
    ]
    assert d["p99"] == pytest.approx(np.percentile(values, 99))
    assert d["std"] == pytest.approx(np.std(values))  # population (ddof=0), as AIPerf
    assert d["count"] == 100 and d["sum"] == pytest.approx(5050.0)
    empty = distribution([], "ms")
    assert empty["p50"] is None and empty["count"] == 0


def test_bootstrap_ci_covers_the_estimate() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(100, 10, 2000)
    ci = bootstrap_ci(values)
    assert ci["p50"] is not None and ci["p50"][0] < np.median(values) < ci["p50"][1]
    assert ci["avg"] is not None and ci["avg"][1] - ci["avg"][0] < 2.0


def test_mann_whitney_detects_shift_and_not_noise() -> None:
    rng = np.random.default_rng(1)
    a, b, c = rng.normal(50, 5, 300), rng.normal(50, 5, 300), rng.normal(53, 5, 300)
    assert mann_whitney_u(a, b)[1] > 0.01
    assert mann_whitney_u(a, c)[1] < 1e-6


def test_steady_window_trims_ramp_and_drain() -> None:
    # 10 lanes start 10 ms apart (ramp 0-90 ms), each sends 100 ms requests back to back
    # until its 10th request ends (drain 1000-1090 ms): steady level 10 from 90 to 1000 ms
    send = np.array([10.0 * lane + 100.0 * k for lane in range(10) for k in range(10)])
    end = send + 100.0
    start, stop = steady_window(send, end)
    assert 80 <= start <= 100
    assert 990 <= stop <= 1010


def test_variation_and_cost() -> None:
    v = variation([10.0, 12.0, 14.0])
    assert v["mean"] == 12.0 and v["sd"] == pytest.approx(2.0)
    assert v["cv"] == pytest.approx(2.0 / 12.0)
    assert usd_per_million_tokens(2.0, 1_000_000) == 2.0
    assert usd_per_million_tokens(1.0, 0) is None
    assert usd_per_million_at_throughput(3.6, 1000.0) == pytest.approx(1.0)


def test_prometheus_parser_accepts_both_spellings() -> None:
    text = (
        "# HELP x\n"
        'vllm:time_to_first_token_seconds_sum{model="a"} 1.5\n'
        'vllm:time_to_first_token_seconds_sum{model="b"} 0.5\n'
        "time_to_first_token_seconds_count 4\n"
        'vllm:time_to_first_token_seconds_bucket{le="0.1"} 3\n'
        "gpu_cache_usage_perc 0.4\n"
    )
    values = parse_prometheus(text)
    assert values["time_to_first_token_seconds_sum"] == 2.0
    assert values["time_to_first_token_seconds_count"] == 4.0
    assert "time_to_first_token_seconds_bucket" not in values


def test_shard_splits_and_merge_reassembles(tmp_path: Path) -> None:
    config = BenchConfig(endpoint="http://127.0.0.1:1", concurrency=5, requests=11, warmup=3)
    parts = shard(config, 2)
    assert [p.concurrency for p in parts] == [3, 2]
    assert [p.requests for p in parts] == [6, 5]
    assert [p.warmup for p in parts] == [2, 1]
    assert {p.worker_index for p in parts} == {0, 1}
    open_parts = shard(config.replace(rate=30.0), 3)
    assert sum(p.rate or 0 for p in open_parts) == pytest.approx(30.0)

    async def scenario() -> None:
        async with TruthServer(TruthSettings(ttft_s=0.01, itl_s=0.002)) as srv:
            cfg = config.replace(endpoint=srv.url, output_tokens=4, warmup=0)
            results = [await run_async(c) for c in shard(cfg, 2)]
            merged = merge(results)
            assert merged.count == 11
            assert merged.workers == 2
            assert merged.config.concurrency == 5
            s = summarize(merged)
            assert s["request_count"]["avg"] == 11
            # workers ship raw.npz files to the lead: merge what was saved and loaded
            loaded = []
            for k, r in enumerate(results):
                path = save_raw(r, tmp_path / f"worker{k}.npz")
                loaded.append(load_raw(path))
            assert summarize(merge(loaded))["time_to_first_token"] == s["time_to_first_token"]
            one = analyze(results[0]).ttft_ms
            assert np.allclose(np.sort(analyze(merged).ttft_ms[: one.size]), np.sort(one))
            # the two shards ran one after the other: the merged window spans both
            assert s["config"]["window_s"] >= sum(r.health.wall_s for r in results) * 0.9

    arun(scenario())
