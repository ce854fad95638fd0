"""How many streamed requests per second can the NIM emulator serve?

Starts the emulator in its own process (``python -m nimble_oke.sim.nim --warm --zero-delay``:
no serving delays, so only its own CPU cost remains), drives it with a lean aiohttp client
at a fixed concurrency for a few seconds, and prints the achieved request and token rates.
The client shares the machine, so the figure is a lower bound of the emulator's ceiling.

    .venv/bin/python benchmarks/nim_emulator.py [--concurrency 64] [--seconds 3] [--tokens 16]

``--serve-only`` starts the zero-delay emulator, prints its base URL and serves until
terminated (``client_overhead.py --aiperf`` drives AIPerf against it: unlike the raw
zero-delay server, the emulator sends the ``object`` field AIPerf's parser requires).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import signal
import subprocess
import sys
import threading
import time

import aiohttp

MODEL = "nimble/smollm2-135m-instruct"
_PORT_RE = re.compile(rb"http://127\.0\.0\.1:(\d+)/v1")


def start_server(zero_delay: bool) -> tuple[subprocess.Popen[bytes], int]:
    cmd = [sys.executable, "-m", "nimble_oke.sim.nim", "--port", "0", "--warm", "--model", MODEL]
    if zero_delay:
        cmd.append("--zero-delay")
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert proc.stderr is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        match = _PORT_RE.search(line)
        if match:
            return proc, int(match.group(1))
    proc.kill()
    proc.wait()
    raise SystemExit("the emulator did not start")


async def wait_ready(http: aiohttp.ClientSession, base: str) -> None:
    for _ in range(200):
        async with http.get(base + "/v1/health/ready") as resp:
            if resp.status == 200:
                return
        await asyncio.sleep(0.05)
    raise SystemExit("the emulator never became ready")


async def drive(base: str, concurrency: int, seconds: float, tokens: int) -> dict[str, float]:
    body = json.dumps(
        {
            "model": MODEL,
            "messages": [{"role": "user", "content": "Benchmark me"}],
            "max_tokens": tokens,
            "ignore_eos": True,
            "stream": True,
        }
    ).encode()
    headers = {"Content-Type": "application/json"}
    done = errors = chunks = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        await wait_ready(http, base)
        stop_at = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done, errors, chunks
            while time.perf_counter() < stop_at:
                async with http.post(
                    base + "/v1/chat/completions", data=body, headers=headers
                ) as r:
                    if r.status != 200:
                        errors += 1
                        await r.read()
                        continue
                    async for line in r.content:
                        if line.startswith(b"data: {"):
                            chunks += 1
                done += 1

        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    client_cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    return {
        "requests": done,
        "errors": errors,
        "seconds": elapsed,
        "req_per_s": done / elapsed,
        "tok_per_s": (chunks - done) / elapsed,  # minus the role chunk of each request
        "client_cpu_ms_per_req": 1000 * client_cpu / max(done, 1),
    }


def serve_only() -> None:
    """Run the zero-delay emulator until SIGTERM/SIGINT; print its URL first."""
    proc, port = start_server(zero_delay=True)
    assert proc.stderr is not None
    stderr = proc.stderr
    threading.Thread(target=lambda: [None for _ in stderr], daemon=True).start()  # drain logs
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    print(f"http://127.0.0.1:{port}", flush=True)
    stopped.wait()
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--with-delays", action="store_true", help="keep the A10 performance model")
    parser.add_argument("--serve-only", action="store_true", help="serve, print the URL, wait")
    args = parser.parse_args()
    if args.serve_only:
        serve_only()
        return
    proc, port = start_server(zero_delay=not args.with_delays)
    try:
        result = asyncio.run(
            drive(f"http://127.0.0.1:{port}", args.concurrency, args.seconds, args.tokens)
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
    mode = "A10 performance model" if args.with_delays else "zero-delay"
    print(
        f"NIM emulator ({mode}), {args.concurrency} concurrent streams, {args.tokens} tokens each:"
    )
    print(
        f"  {result['requests']:.0f} requests in {result['seconds']:.2f} s, {result['errors']:.0f} errors"
    )
    print(f"  {result['req_per_s']:,.0f} req/s · {result['tok_per_s']:,.0f} tok/s")
    print(f"  client CPU {result['client_cpu_ms_per_req']:.2f} ms/request (same machine)")


if __name__ == "__main__":
    main()
