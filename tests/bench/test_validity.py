"""The validity gate trips when the client is starved, and not on a normal run."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

from nimble_oke.bench import BenchConfig, assess, run_async, summarize

from .conftest import arun
from .truth_server import TruthServer, TruthSettings


async def _starve_loop(stop: asyncio.Event, burn_s: float = 0.03) -> None:
    """Hog the event loop: burn CPU for ``burn_s`` without yielding, then yield once."""
    while not stop.is_set():
        deadline = time.perf_counter() + burn_s
        while time.perf_counter() < deadline:
            pass
        await asyncio.sleep(0)


def test_normal_run_is_valid() -> None:
    """A light run is VALID. Other processes on this shared 2-core machine can genuinely
    stall the loop (the gate is right to say so then): up to 3 attempts."""

    async def scenario() -> list[dict[str, Any]]:
        seen = []
        async with TruthServer(TruthSettings(ttft_s=0.02, itl_s=0.005)) as srv:
            for _ in range(3):
                result = await run_async(
                    BenchConfig(endpoint=srv.url, concurrency=4, requests=40, output_tokens=6)
                )
                validity = summarize(result)["validity"]
                seen.append(validity)
                if validity["valid"]:
                    break
        return seen

    attempts = arun(scenario())
    validity = attempts[-1]
    assert validity["valid"], [v["reasons"] for v in attempts]
    assert validity["status"] == "VALID"
    m = validity["measurements"]
    assert m["loop_lag_p99_ms"] < 10.0
    assert m["achieved_concurrency"] > 3.2


def test_starved_client_is_invalid_with_reason() -> None:
    async def scenario() -> None:
        async with TruthServer(TruthSettings(ttft_s=0.02, itl_s=0.005)) as srv:
            stop = asyncio.Event()
            hog = asyncio.create_task(_starve_loop(stop))
            try:
                result = await run_async(
                    BenchConfig(endpoint=srv.url, concurrency=4, requests=30, output_tokens=6)
                )
            finally:
                stop.set()
                await hog
            s = summarize(result)
            validity = s["validity"]
            assert not validity["valid"]
            assert validity["status"] == "INVALID"
            text = " ".join(validity["reasons"])
            assert "event-loop lag" in text
            # the hog's CPU is measured (how much depends on other load on this machine)
            assert validity["measurements"]["client_cpu_fraction"] > 0.1

    arun(scenario())


def test_open_loop_send_lag_trips_the_gate() -> None:
    async def scenario() -> None:
        async with TruthServer(TruthSettings(ttft_s=0.005, itl_s=0.001)) as srv:
            stop = asyncio.Event()
            hog = asyncio.create_task(_starve_loop(stop, burn_s=0.05))
            try:
                result = await run_async(
                    BenchConfig(
                        endpoint=srv.url,
                        rate=200.0,
                        arrival="constant",
                        requests=40,
                        output_tokens=2,
                    )
                )
            finally:
                stop.set()
                await hog
            validity = summarize(result)["validity"]
            assert not validity["valid"]
            assert any("send lag" in r for r in validity["reasons"])

    arun(scenario())


def test_cpu_threshold_applies_to_the_measured_fraction() -> None:
    """The CPU rule on a real run whose measured CPU time is then set to the wall time
    (a saturated client); the same run with its real CPU time stays valid."""

    async def scenario() -> None:
        async with TruthServer(TruthSettings(ttft_s=0.01, itl_s=0.002)) as srv:
            result = await run_async(
                BenchConfig(endpoint=srv.url, concurrency=2, requests=10, output_tokens=3)
            )
        assert not any("client CPU" in r for r in assess(result)["reasons"])
        result.health = replace(result.health, cpu_s=result.health.wall_s * 0.99)
        reasons = assess(result)["reasons"]
        assert any("client CPU 99%" in r for r in reasons)

    arun(scenario())


def test_achieved_rate_is_the_rate_the_server_saw() -> None:
    """#20: the achieved rate said 3,266/s while the server saw 1,834/s. Measured from the
    times requests were written, it matches the server's arrival rate — also when a hog
    makes the client fall behind its schedule."""

    async def scenario() -> None:
        async with TruthServer(TruthSettings(ttft_s=0.002, itl_s=0.001)) as srv:
            stop = asyncio.Event()
            hog = asyncio.create_task(_starve_loop(stop, burn_s=0.02))
            try:
                result = await run_async(
                    BenchConfig(
                        endpoint=srv.url,
                        rate=400.0,
                        arrival="constant",
                        requests=200,
                        output_tokens=2,
                        scrape_metrics=False,
                    )
                )
            finally:
                stop.set()
                await hog
            received = sorted(srv.truth.received_ns)
        m = summarize(result)["validity"]["measurements"]
        server_rate = (len(received) - 1) / ((received[-1] - received[0]) / 1e9)
        assert abs(m["achieved_rate"] - server_rate) / server_rate < 0.1, (m, server_rate)

    arun(scenario())
