"""Shared helpers for the benchmark tests: an exact SSE server and a reference client."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import aiohttp

T = TypeVar("T")


def arun(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on a fresh event loop (no pytest-asyncio needed)."""
    return asyncio.run(coro)


async def reference_client(
    url: str, model: str, n: int, max_tokens: int
) -> tuple[list[float], list[float]]:
    """The minimal reference: aiohttp, line by line, TTFT = first line with content,
    ITL = gap between content lines (one token per chunk). Returns (ttfts_ms, itls_ms)."""
    ttfts: list[float] = []
    itls: list[float] = []
    body = {
        "model": model,
        "stream": True,
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": "reference request"}],
    }
    async with aiohttp.ClientSession() as session:
        for _ in range(n):
            t0 = time.perf_counter_ns()
            last = None
            async with session.post(f"{url}/v1/chat/completions", json=body) as resp:
                async for line in resp.content:
                    if not line.startswith(b"data: {"):
                        continue
                    choices = json.loads(line[6:])["choices"]
                    if not choices or not choices[0]["delta"].get("content"):
                        continue
                    now = time.perf_counter_ns()
                    if last is None:
                        ttfts.append((now - t0) / 1e6)
                    else:
                        itls.append((now - last) / 1e6)
                    last = now
    return ttfts, itls
