"""Benchmark cost figures: dollars per million output tokens."""

from __future__ import annotations


def usd_per_million_tokens(session_cost_usd: float, output_tokens: float) -> float | None:
    """``session_cost_usd / output_tokens × 1e6``; ``None`` when no token was produced.

    ``session_cost_usd`` is what the serving session cost over the benchmark window (the
    cost engine's accrual, not an estimate made here)."""
    if session_cost_usd < 0:
        raise ValueError("a cost cannot be negative")
    if output_tokens <= 0:
        return None
    return session_cost_usd / output_tokens * 1e6


def usd_per_million_at_throughput(hourly_usd: float, tokens_per_s: float) -> float | None:
    """Steady-state cost of tokens: an hourly price ÷ tokens produced in an hour × 1e6."""
    if tokens_per_s <= 0:
        return None
    return usd_per_million_tokens(hourly_usd, tokens_per_s * 3600.0)
