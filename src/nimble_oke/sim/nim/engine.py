"""Continuous-batching performance model: one scheduler loop per emulator.

Each iteration admits waiting requests that fit into the KV cache (FIFO, at most
``max_running``), runs their prefill (prompt tokens ÷ prefill rate; the first token of each
admitted request is produced by its prefill), then one decode step that emits one token to
every other running request. The decode step time grows with the batch:
``(decode_base_ms + decode_per_seq_ms × batch) × size_ratio ÷ gpu_count`` (tensor
parallelism), the per-GPU figures come from :mod:`nimble_oke.sim.nim.catalog`.

Requests reserve ``prompt + output`` tokens of KV cache when admitted, so a full cache
makes requests wait (``num_requests_waiting``), which is how queueing and the TTFT
"cliff" at high concurrency appear. Serving delays run in real time (they are what a
benchmark client measures) and do not follow the simulated clock's scale.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass, field

from nimble_oke.sim.nim.metrics import NimMetrics
from nimble_oke.sim.nim.settings import NimSettings


class OverloadedError(Exception):
    """The waiting queue is over its bound (answered with 429)."""


@dataclass(eq=False)
class GenRequest:
    """One generation: its planned output tokens and how many were produced so far."""

    request_id: str
    prompt_tokens: int
    tokens: list[str]
    finish_reason: str
    arrival_ns: int = field(default_factory=time.perf_counter_ns)
    produced: int = 0
    first_token_ns: int | None = None  # set by the HTTP handler after sending it
    last_token_ns: int | None = None
    last_produced_ns: int | None = None
    first_produced_ns: int | None = None
    cancelled: bool = False
    _event: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def kv_tokens(self) -> int:
        return self.prompt_tokens + len(self.tokens)

    @property
    def complete(self) -> bool:
        return self.produced >= len(self.tokens)

    async def wait_for_tokens(self, consumed: int) -> int:
        """Wait until more than ``consumed`` tokens were produced; return the count."""
        while self.produced <= consumed and not self.cancelled:
            self._event.clear()
            await self._event.wait()
        return self.produced

    def notify(self) -> None:
        self._event.set()


class BatchScheduler:
    """Admits, prefills and decodes :class:`GenRequest` objects in simulated GPU time."""

    def __init__(self, settings: NimSettings, metrics: NimMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        gpu = settings.gpu_spec
        ratio = settings.size_ratio
        self.capacity = settings.kv_capacity_tokens
        self.max_running = settings.max_running
        self.prefill_tok_s = gpu.prefill_tok_s * settings.gpu_count / ratio
        self.decode_base_s = gpu.decode_base_ms / 1000 * ratio / settings.gpu_count
        self.decode_per_seq_s = gpu.decode_per_seq_ms / 1000 * ratio / settings.gpu_count
        self.waiting: deque[GenRequest] = deque()
        self.running: list[GenRequest] = []
        self.kv_used = 0
        self._wakeup = asyncio.Event()
        self._deadline = 0.0

    # -- load -----------------------------------------------------------------------------
    def submit(self, request: GenRequest) -> None:
        if len(self.waiting) >= self.settings.max_waiting:
            raise OverloadedError(f"{len(self.waiting)} requests waiting")
        self.waiting.append(request)
        self._wakeup.set()

    def cancel(self, request: GenRequest) -> None:
        request.cancelled = True
        request.notify()
        self._wakeup.set()

    def gauges(self) -> dict[str, float]:
        return {
            "num_requests_running": len(self.running),
            "num_requests_waiting": len(self.waiting),
            "num_request_max": self.max_running,
            "gpu_cache_usage_perc": self.kv_used / self.capacity if self.capacity else 0.0,
        }

    def decode_step_s(self, batch: int) -> float:
        return (self.decode_base_s + self.decode_per_seq_s * batch) * self.settings.perf_scale

    def prefill_s(self, tokens: int) -> float:
        return tokens / self.prefill_tok_s * self.settings.perf_scale

    # -- loop -----------------------------------------------------------------------------
    async def run(self) -> None:
        while True:
            if not self.running and not self.waiting:
                self._wakeup.clear()
                await self._wakeup.wait()
            admitted = self._admit()
            decoding = [r for r in self.running if r.produced > 0]
            if admitted:
                await self._sleep(self.prefill_s(sum(r.prompt_tokens for r in admitted)))
                self._produce(admitted)
            if decoding:
                await self._sleep(self.decode_step_s(len(self.running)))
                self._produce(decoding)
            self._retire()
            if not admitted and not decoding and self.running:
                # Only cancelled requests are left; avoid spinning.
                await asyncio.sleep(0)

    def _admit(self) -> list[GenRequest]:
        admitted: list[GenRequest] = []
        while self.waiting and len(self.running) < self.max_running:
            head = self.waiting[0]
            if head.cancelled:
                self.waiting.popleft()
                continue
            if self.kv_used + head.kv_tokens > self.capacity:
                break
            self.waiting.popleft()
            self.kv_used += head.kv_tokens
            self.running.append(head)
            admitted.append(head)
        return admitted

    def _produce(self, requests: list[GenRequest]) -> None:
        now = time.perf_counter_ns()
        for req in requests:
            if req.cancelled or req.complete:
                continue
            if req.last_produced_ns is not None:
                self.metrics.tpot.observe((now - req.last_produced_ns) / 1e9)
            else:
                req.first_produced_ns = now
            req.last_produced_ns = now
            req.produced += 1
            req.notify()

    def _retire(self) -> None:
        if not any(r.complete or r.cancelled for r in self.running):
            return
        keep: list[GenRequest] = []
        for req in self.running:
            if req.complete or req.cancelled:
                self.kv_used -= req.kv_tokens
            else:
                keep.append(req)
        self.running = keep

    async def _sleep(self, seconds: float) -> None:
        """Sleep to an absolute deadline so steps do not drift; catch up when late."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._deadline < now - 0.05:
            self._deadline = now
        self._deadline += seconds
        delay = self._deadline - now
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            await asyncio.sleep(0)

    def drain(self) -> None:
        """Cancel everything (server stopping)."""
        for req in (*self.waiting, *self.running):
            with contextlib.suppress(Exception):
                self.cancel(req)
