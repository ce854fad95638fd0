"""Client overhead of ``nimble bench``: CPU per streamed request, the highest sustained
open-loop rate, and the issue-#20 target (4,000 req/s for 20,000 requests, VALID), against
a zero-delay server running in another process.

Sections:

1. closed loop at concurrency 64: hot-path CPU per request, post-run analysis CPU per
   request, and the ceiling (requests/s the client completes with the server at zero delay);
2. an open-loop ladder (constant arrivals, 2 s per rate): achieved rate, CPU per request,
   validity — the highest VALID rate without errors is the sustained rate;
3. the target: ``--tries`` runs of 4,000 req/s × 20,000 requests, each with the machine's
   load average, the validity, the achieved rate (taken when requests were written), the
   loop-lag p99/max, the send-lag p99 and the collector's pauses;
4. calibration against a timed ground-truth server (TTFT 50 ms, ITL 10 ms, concurrency 64);
5. with ``--aiperf PATH`` (AIPerf 0.13's ``aiperf`` executable, e.g. from a throwaway venv)
   the same closed loop measured with AIPerf against the zero-delay NIM emulator, which
   sends the ``object`` field AIPerf needs (``--aiperf-tokenizer DIR``: a local
   Hugging Face tokenizer directory when the hub is unreachable).

The machine's load average is printed with every figure: on a shared machine other
processes take the cores and the event loop is descheduled — the validity gate then says
INVALID rather than reporting that as server latency.

Run: ``.venv/bin/python benchmarks/client_overhead.py [--tries 3] [--aiperf PATH]``
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

from nimble_oke.bench import BenchConfig, summarize
from nimble_oke.bench.engine import run_async, run_sync

HERE = Path(__file__).resolve().parent
RATES = (1000.0, 2000.0, 3000.0, 4000.0, 5000.0, 6000.0)
TARGET_RATE, TARGET_REQUESTS = 4000.0, 20_000


def load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


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


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.wait(10)
    if proc.stdout is not None:
        proc.stdout.close()


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
    print(
        f"closed loop, concurrency 64, {requests} streamed requests of {tokens} tokens ({load()})"
    )
    result = run_sync(lambda: run_async(config))
    cpu0 = time.process_time()
    summary = summarize(result)
    analysis_cpu = time.process_time() - cpu0
    n = result.count
    print(f"  hot path client CPU per request   {result.health.cpu_s * 1e3 / n:.3f} ms")
    print(f"  post-run analysis CPU per request {analysis_cpu * 1e3 / n:.3f} ms")
    print(f"  ceiling (requests/s)              {summary['request_throughput']['avg']:,.0f}")
    print(f"  errors                            {summary['errors']['count']}")


def open_run(url: str, tokens: int, rate: float, **bounds: Any) -> dict[str, Any]:
    config = BenchConfig(
        endpoint=url,
        rate=rate,
        arrival="constant",
        output_tokens=tokens,
        input_tokens_mean=16,
        scrape_metrics=False,
        **bounds,
    )
    return summarize(run_sync(partial(run_async, config)))


def open_loop_ladder(url: str, tokens: int) -> None:
    best = None
    print(f"open loop, constant arrivals, 2 s per rate ({load()})")
    for rate in RATES:
        s = open_run(url, tokens, rate, requests=None, duration_s=2.0)
        v = s["validity"]
        m = v["measurements"]
        print(
            f"  target {rate:>6,.0f}/s  achieved {m.get('achieved_rate') or 0:>7,.0f}/s  "
            f"CPU/request {m.get('client_cpu_ms_per_request') or 0:.3f} ms  "
            f"lag p99 {m['loop_lag_p99_ms']:5.1f} ms  errors {s['errors']['count']}  "
            f"{v['status']}" + (f"  ({v['reasons'][0]})" if v["reasons"] else "")
        )
        if v["valid"] and s["errors"]["count"] == 0:
            best = rate
    print(f"  maximum sustained streamed rate: {best:,.0f} requests/s" if best else "  none valid")


def target_tries(url: str, tokens: int, tries: int) -> None:
    print(
        f"target: {TARGET_RATE:,.0f} req/s open loop, {TARGET_REQUESTS:,} requests, {tries} tries"
    )
    valid = 0
    for k in range(tries):
        before = load()
        s = open_run(url, tokens, TARGET_RATE, requests=TARGET_REQUESTS, seed=k)
        v, m = s["validity"], s["validity"]["measurements"]
        valid += bool(v["valid"])
        print(
            f"  try {k + 1} ({before}): {v['status']}  achieved {m['achieved_rate']:,.0f}/s  "
            f"loop lag p99 {m['loop_lag_p99_ms']:.1f} ms (max {m['loop_lag_max_ms']:.1f})  "
            f"send lag p99 {m['send_lag_p99_ms']:.2f} ms  CPU {m['client_cpu_fraction']:.0%}  "
            f"GC pauses {m.get('gc_collections', 0)}  errors {s['errors']['count']}"
        )
        for reason in v["reasons"]:
            print(f"      {reason}")
    print(f"  VALID in {valid} of {tries} tries")


def _aiperf_args(exe: str, url: str, requests: int, tokens: int, out: str) -> list[str]:
    args = [exe, "profile", "--model", "nimble/smollm2-135m-instruct", "--url", url]
    args += ["--endpoint-type", "chat", "--streaming", "--concurrency", "64"]
    args += ["--request-count", str(requests), "--output-tokens-mean", str(tokens)]
    args += ["--synthetic-input-tokens-mean", "16", "--artifact-dir", out]
    return [*args, "--use-server-token-count", "--ui-type", "none"]


def peer_comparison(exe: str, tokenizer: str | None, requests: int, tokens: int) -> None:
    """nimble and AIPerf, one after the other, closed loop at concurrency 64 against the
    zero-delay NIM emulator (AIPerf needs the ``object`` field the raw server omits)."""
    emulator = subprocess.Popen(
        [sys.executable, str(HERE / "nim_emulator.py"), "--serve-only"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert emulator.stdout is not None
    url = emulator.stdout.readline().strip()
    print(f"peers: closed loop, concurrency 64, {requests} requests, zero-delay NIM emulator")
    try:
        config = BenchConfig(
            endpoint=url, concurrency=64, requests=requests, output_tokens=tokens,
            input_tokens_mean=16, scrape_metrics=False,
        )  # fmt: skip
        t0, cpu0 = time.perf_counter(), time.process_time()
        s = summarize(run_sync(partial(run_async, config)))
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        print(
            f"  nimble ({load()}): {cpu * 1e3 / requests:.3f} ms CPU per request (run and "
            f"analysis), {requests / wall:,.0f} req/s including set-up; "
            f"{s['request_throughput']['avg']:,.0f} req/s measured"
        )
        with tempfile.TemporaryDirectory() as out:
            args = _aiperf_args(exe, url, requests, tokens, out)
            args += ["--tokenizer", tokenizer] if tokenizer else []
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            done = subprocess.run(args, capture_output=True, timeout=900, check=False)
            wall = time.perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        stop(emulator)
    if done.returncode != 0:
        print(f"  aiperf: exit {done.returncode}: {done.stderr.decode()[-300:]}")
        return
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(
        f"  aiperf ({load()}): {cpu * 1e3 / requests:.3f} ms CPU per request (all its "
        f"processes), {requests / wall:,.0f} req/s including its start-up"
    )


def calibrate(tokens: int) -> None:
    """Measurement error against a timed ground-truth server in another process: client
    TTFT mean − the server's own TTFT mean (bench.md's peer comparison: TTFT 50 ms, ITL
    10 ms, concurrency 64), with the connection pool warmed (the default) and without
    (64 connects at once in the first wave)."""
    proc, url = start_server(tokens, "--ttft-ms", "50", "--itl-ms", "10")
    print(f"calibration: TTFT 50 ms, ITL 10 ms, concurrency 64, 640 requests ({load()})")
    try:
        for warm in (True, False):
            config = BenchConfig(
                endpoint=url,
                concurrency=64,
                requests=640,
                output_tokens=tokens,
                input_tokens_mean=16,
                warm_connections=warm,
            )
            s = summarize(run_sync(partial(run_async, config)))
            client = s["time_to_first_token"]["avg"]
            server = s["server"]["time_to_first_token_mean_ms"]
            print(
                f"  {'warm pool' if warm else 'no warm-up'}: client TTFT mean {client:.2f} ms "
                f"(p99 {s['time_to_first_token']['p99']:.2f}), server {server:.2f} ms → "
                f"error {client - server:+.2f} ms; ITL p50 "
                f"{s['inter_token_latency']['p50']:.2f} ms  {s['validity']['status']}"
            )
    finally:
        stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--tries", type=int, default=3, help="runs at the 4,000 req/s target")
    parser.add_argument("--skip-ladder", action="store_true")
    parser.add_argument("--aiperf", help="path of an aiperf executable to compare with")
    parser.add_argument("--aiperf-tokenizer", help="a local tokenizer directory for aiperf")
    args = parser.parse_args()
    proc, url = start_server(args.tokens)
    try:
        closed_loop(url, args.requests, args.tokens)
        if not args.skip_ladder:
            open_loop_ladder(url, args.tokens)
        if args.tries:
            target_tries(url, args.tokens, args.tries)
    finally:
        stop(proc)
    calibrate(args.tokens)
    exe = args.aiperf or shutil.which("aiperf")
    if exe:
        peer_comparison(exe, args.aiperf_tokenizer, min(args.requests, 2000), args.tokens)
    else:
        print("aiperf: not given (--aiperf PATH) and not on PATH, skipped")


if __name__ == "__main__":
    main()
