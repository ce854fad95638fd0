"""Client overhead of ``nimble bench``: CPU per streamed request and the highest sustained
streamed request rate, against a zero-delay server running in another process.

Targets (reference/bench.md): ≤ 0.3 ms client CPU per streamed request on the hot path,
≥ 2,000 streamed requests/s on a 2-vCPU machine. If ``aiperf`` is installed it is measured
against the same server in the same run (it is not installed by this project: 1.2 GB).

Run: ``.venv/bin/python benchmarks/client_overhead.py [--requests 6000] [--tokens 16]``
"""

from __future__ import annotations

import argparse
import importlib.util
import resource
import shutil
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

from nimble_oke.bench import BenchConfig, summarize
from nimble_oke.bench.engine import run_async, run_sync

HERE = Path(__file__).resolve().parent
RATES = (1000.0, 2000.0, 3000.0, 4000.0)


def start_server(tokens: int, *timing: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "zero_delay_server.py"), "--tokens", str(tokens), *timing],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    port = proc.stdout.readline().strip()
    if not port.isdigit():
        proc.kill()
        proc.wait()
        raise SystemExit("the zero-delay server did not start")
    return proc, f"http://127.0.0.1:{port}"


def closed_loop(url: str, requests: int, tokens: int) -> None:
    config = BenchConfig(
        endpoint=url,
        concurrency=64,
        requests=requests,
        warmup=200,
        output_tokens=tokens,
        input_tokens_mean=16,
        scrape_metrics=False,
    )
    result = run_sync(lambda: run_async(config))
    cpu0 = time.process_time()
    summary = summarize(result)
    analysis_cpu = time.process_time() - cpu0
    n = result.count
    print(f"closed loop, concurrency 64, {n} streamed requests of {tokens} tokens")
    print(f"  hot path client CPU per request   {result.health.cpu_s * 1e3 / n:.3f} ms")
    print(f"  post-run analysis CPU per request {analysis_cpu * 1e3 / n:.3f} ms")
    print(f"  ceiling (requests/s)              {summary['request_throughput']['avg']:,.0f}")
    print(f"  errors                            {summary['errors']['count']}")
    print(
        f"  validity                          {summary['validity']['status']} (saturated by design)"
    )


def open_loop_ladder(url: str, tokens: int) -> None:
    best = None
    print("open loop, constant arrivals, 2 s per rate")
    for rate in RATES:
        config = BenchConfig(
            endpoint=url,
            rate=rate,
            arrival="constant",
            requests=None,
            duration_s=2.0,
            output_tokens=tokens,
            input_tokens_mean=16,
            scrape_metrics=False,
        )
        result = run_sync(partial(run_async, config))
        s = summarize(result)
        v = s["validity"]
        m = v["measurements"]
        achieved = m.get("achieved_rate") or 0.0
        cpu_ms = m.get("client_cpu_ms_per_request") or 0.0
        print(
            f"  target {rate:>6,.0f}/s  achieved {achieved:>7,.0f}/s  "
            f"CPU/request {cpu_ms:.3f} ms  errors {s['errors']['count']}  {v['status']}"
            + (f"  ({v['reasons'][0]})" if v["reasons"] else "")
        )
        if v["valid"] and s["errors"]["count"] == 0:
            best = rate
    print(f"  maximum sustained streamed rate: {best:,.0f} requests/s" if best else "  none valid")


def measure_aiperf(url: str, requests: int, tokens: int) -> None:
    exe = shutil.which("aiperf")
    if exe is None or importlib.util.find_spec("aiperf") is None:
        print("aiperf: not installed, skipped (pip install aiperf to compare)")
        return
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(
        [
            exe,
            "profile",
            "--model",
            "zero/delay",
            "--url",
            url,
            "--endpoint-type",
            "chat",
            "--streaming",
            "--concurrency",
            "64",
            "--request-count",
            str(requests),
            "--output-tokens-mean",
            str(tokens),
            "--synthetic-input-tokens-mean",
            "16",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=600,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"aiperf: {cpu * 1e3 / requests:.3f} ms CPU per request, {requests / wall:,.0f} req/s")


def calibrate(tokens: int) -> None:
    """Measurement error against a timed ground-truth server in another process: client
    TTFT mean − the server's own TTFT mean (bench.md's peer comparison: TTFT 50 ms, ITL
    10 ms, concurrency 64)."""
    proc, url = start_server(tokens, "--ttft-ms", "50", "--itl-ms", "10")
    try:
        config = BenchConfig(
            endpoint=url,
            concurrency=64,
            requests=640,
            warmup=64,
            output_tokens=tokens,
            input_tokens_mean=16,
        )
        s = summarize(run_sync(partial(run_async, config)))
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    client = s["time_to_first_token"]["avg"]
    server = s["server"]["time_to_first_token_mean_ms"]
    print("calibration: TTFT 50 ms, ITL 10 ms, concurrency 64, 640 requests")
    print(f"  client TTFT mean {client:.2f} ms (p99 {s['time_to_first_token']['p99']:.2f})")
    print(f"  server TTFT mean {server:.2f} ms  → measurement error {client - server:+.2f} ms")
    print(f"  client ITL p50 {s['inter_token_latency']['p50']:.2f} ms  {s['validity']['status']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--skip-ladder", action="store_true")
    args = parser.parse_args()
    proc, url = start_server(args.tokens)
    try:
        closed_loop(url, args.requests, args.tokens)
        if not args.skip_ladder:
            open_loop_ladder(url, args.tokens)
        measure_aiperf(url, min(args.requests, 2000), args.tokens)
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    calibrate(args.tokens)


if __name__ == "__main__":
    main()
