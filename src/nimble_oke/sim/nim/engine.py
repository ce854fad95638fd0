"""Continuous batching as vLLM schedules it: one scheduler loop per emulator.

Each step has a token budget (``max_num_batched_tokens``): first one decode token for every
running sequence whose prompt is in the KV cache, then prompt chunks (chunked prefill) —
for sequences still prefilling, then for waiting ones admitted FIFO while fewer than
``max_running`` (vLLM's ``max_num_seqs``) run. A sequence's first token comes out of the
step that finishes its prefill. The step takes ``decode_step_s(decoding) +
prefill_s(prompt tokens this step)``:
``(decode_base_ms + decode_per_seq_ms × batch) × size_ratio ÷ gpu_count`` (tensor
parallelism), the per-GPU figures from :mod:`nimble_oke.sim.nim.catalog`.

KV cache is paged: a sequence holds its prompt plus the tokens produced so far, not its
maximum. When the next decode step would overflow the cache, the newest running sequence
is preempted (vLLM's recompute preemption): its blocks are freed and it waits at the head of
the queue to prefill prompt + produced tokens again. So a long request — ``ignore_eos``
without ``max_tokens`` runs to the context limit — shares every step with the others and
cannot starve them. Serving delays run in real time (what a benchmark client measures) and
do not follow the simulated clock's scale.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from nimble_oke.sim.nim.metrics import NimMetrics
from nimble_oke.sim.nim.settings import NimSettings


class OverloadedError(Exception):
    """The waiting queue is over its bound (answered with 429)."""


@dataclass(eq=False)
class GenRequest:
    """One sequence: its planned output tokens and how many were produced so far."""

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
    plan: Any = None  # the ChoicePlan behind ``tokens``, when there is one
    prefill_left: int = 0  # prompt (+ recomputed) tokens still to prefill
    kv_held: int = 0  # KV cache tokens this sequence holds
    preemptions: int = 0
    _event: asyncio.Event = field(default_factory=asyncio.Event)

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
        self.token_budget = max(1, settings.max_batched_tokens)
        self.prefill_tok_s = gpu.prefill_tok_s * settings.gpu_count / ratio
        self.decode_base_s = gpu.decode_base_ms / 1000 * ratio / settings.gpu_count
        self.decode_per_seq_s = gpu.decode_per_seq_ms / 1000 * ratio / settings.gpu_count
        self.waiting: deque[GenRequest] = deque()
        self.running: list[GenRequest] = []
        self.kv_used = 0
        self.preemptions = 0
        self._wakeup = asyncio.Event()
        self._deadline = 0.0

    # -- load -----------------------------------------------------------------------------
    def submit(self, request: GenRequest) -> None:
        if len(self.waiting) >= self.settings.max_waiting:
            raise OverloadedError(f"{len(self.waiting)} requests waiting")
        request.prefill_left = request.prompt_tokens
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
            self._drop_cancelled()
            if not self.running and not self.waiting:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            decoding = [r for r in self.running if r.prefill_left == 0]
            decoding = self._make_room(decoding)
            chunks = self._schedule_prefill(self.token_budget - len(decoding))
            seconds = self.prefill_s(sum(chunks.values()))
            if decoding:
                seconds += self.decode_step_s(len(decoding))
            if seconds > 0:
                await self._sleep(seconds)
            else:
                await asyncio.sleep(0)
            self._produce(decoding)
            self._finish_prefill(chunks)
            self._retire()

    def _make_room(self, decoding: list[GenRequest]) -> list[GenRequest]:
        """Preempt the newest running sequences until every decoder's next token fits."""
        while decoding and self.kv_used + len(decoding) > self.capacity and len(self.running) > 1:
            victim = self.running.pop()
            self.kv_used -= victim.kv_held
            victim.kv_held = 0
            victim.prefill_left = victim.prompt_tokens + victim.produced
            victim.preemptions += 1
            self.preemptions += 1
            self.waiting.appendleft(victim)
            decoding = [r for r in decoding if r is not victim]
        return decoding

    def _schedule_prefill(self, budget: int) -> dict[GenRequest, int]:
        """Prompt tokens to prefill this step, per sequence (running ones first, then new)."""
        chunks: dict[GenRequest, int] = {}
        for req in self.running:
            if budget <= 0:
                return chunks
            if req.prefill_left > 0:
                chunks[req] = min(req.prefill_left, budget)
                budget -= chunks[req]
        while self.waiting and budget > 0 and len(self.running) < self.max_running:
            head = self.waiting[0]
            need = head.prompt_tokens + head.produced + 1
            if self.running and self.kv_used + need > self.capacity:
                break
            self.waiting.popleft()
            head.kv_held = head.prefill_left
            self.kv_used += head.kv_held
            self.running.append(head)
            chunks[head] = min(head.prefill_left, budget)
            budget -= chunks[head]
        return chunks

    def _finish_prefill(self, chunks: dict[GenRequest, int]) -> None:
        finished = []
        for req, tokens in chunks.items():
            req.prefill_left -= tokens
            if req.prefill_left <= 0:
                req.prefill_left = 0
                if req.produced == 0:
                    finished.append(req)  # the prefill step produces the first token
        self._produce(finished)

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
            req.kv_held += 1
            self.kv_used += 1
            req.notify()

    def _drop_cancelled(self) -> None:
        if any(r.cancelled for r in self.waiting):
            self.waiting = deque(r for r in self.waiting if not r.cancelled)

    def _retire(self) -> None:
        if not any(r.complete or r.cancelled for r in self.running):
            return
        keep: list[GenRequest] = []
        for req in self.running:
            if req.complete or req.cancelled:
                self.kv_used -= req.kv_held
                req.kv_held = 0
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
