"""What a benchmark run does: endpoint, load shape, bounds, prompts, SLOs.

A :class:`BenchConfig` is immutable and validated on construction; a bad value raises
:class:`~nimble_oke.errors.ConfigError` naming the field and what is allowed, which the
CLI prints as one line.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from nimble_oke.errors import ConfigError

Arrival = Literal["constant", "poisson", "gamma"]
TokenParam = Literal["auto", "max_completion_tokens", "max_tokens"]
Api = Literal["chat", "completions"]
Reuse = Literal["pooled", "never"]

ARRIVALS: tuple[str, ...] = ("constant", "poisson", "gamma")
SLO_METRICS: tuple[str, ...] = ("ttft", "itl", "tpot", "e2e")


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark run (one load level). ``rate=None`` means closed loop at ``concurrency``."""

    endpoint: str
    model: str | None = None
    api: Api = "chat"
    concurrency: int = 1
    rate: float | None = None
    arrival: Arrival = "poisson"
    gamma_shape: float = 0.5
    requests: int | None = 100
    duration_s: float | None = None
    warmup: int = 0
    input_tokens_mean: int = 128
    input_tokens_sd: float = 0.0
    input_tokens_min: int = 1
    input_tokens_max: int = 32768
    output_tokens: int = 64
    ignore_eos: bool = True
    token_param: TokenParam = "auto"  # noqa: S105 - a request field name, not a secret
    slo_ms: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    timeout_s: float = 300.0
    api_key: str | None = field(default=None, repr=False)
    scrape_metrics: bool = True
    max_in_flight: int = 10_000
    warm_connections: bool = True
    connections: int | None = None  # connections opened before the run (None: automatic)
    connection_reuse: Reuse = "pooled"
    max_error_rate: float = 0.01  # above this share of failed requests the run FAILS
    session_cost_usd: float | None = None
    worker_index: int = 0
    worker_count: int = 1

    def __post_init__(self) -> None:
        _validate(self)

    def replace(self, **changes: Any) -> BenchConfig:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    @property
    def mode(self) -> str:
        """``"concurrency"`` (closed loop) or ``"rate"`` (open loop)."""
        return "concurrency" if self.rate is None else "rate"

    def public_dict(self) -> dict[str, Any]:
        """The config as plain data, without the API key (safe to export)."""
        data = dataclasses.asdict(self)
        data.pop("api_key", None)
        return data


def _fail(flag: str, value: object, allowed: str) -> ConfigError:
    return ConfigError(f"{flag} {value!r} is invalid: allowed {allowed}")


def _validate(c: BenchConfig) -> None:
    if not re.match(r"^https?://[^\s/]+", c.endpoint):
        raise _fail("--endpoint", c.endpoint, "an http:// or https:// URL")
    if c.api not in ("chat", "completions"):
        raise _fail("--api", c.api, "chat or completions")
    if c.concurrency < 1:
        raise _fail("--concurrency", c.concurrency, "an integer >= 1")
    if c.rate is not None and not c.rate > 0:
        raise _fail("--rate", c.rate, "a number of requests per second > 0")
    if c.arrival not in ARRIVALS:
        raise _fail("--arrival", c.arrival, " | ".join(ARRIVALS))
    if not c.gamma_shape > 0:
        raise _fail("gamma_shape", c.gamma_shape, "a number > 0")
    if c.requests is None and c.duration_s is None:
        raise _fail("--requests", None, "a count >= 1 or a duration (one of them is required)")
    if c.requests is not None and c.requests < 1:
        raise _fail("--requests", c.requests, "an integer >= 1")
    if c.duration_s is not None and not c.duration_s > 0:
        raise _fail("--duration", c.duration_s, "seconds > 0")
    if c.warmup < 0:
        raise _fail("--warmup", c.warmup, "an integer >= 0")
    if c.input_tokens_mean < 1 or c.input_tokens_sd < 0:
        raise _fail(
            "--input-tokens", f"{c.input_tokens_mean},{c.input_tokens_sd}", "MEAN>=1[,SD>=0]"
        )
    if not 1 <= c.input_tokens_min <= c.input_tokens_max:
        raise _fail("input_tokens_min", c.input_tokens_min, "1 <= min <= max")
    if c.output_tokens < 1:
        raise _fail("--output-tokens", c.output_tokens, "an integer >= 1")
    if c.token_param not in ("auto", "max_completion_tokens", "max_tokens"):
        raise _fail("token_param", c.token_param, "auto | max_completion_tokens | max_tokens")
    for name, limit in c.slo_ms.items():
        if name not in SLO_METRICS or not limit > 0:
            raise _fail("--slo", f"{name}={limit}", f"{', '.join(SLO_METRICS)} with a time > 0")
    if not c.timeout_s > 0:
        raise _fail("--timeout", c.timeout_s, "seconds > 0")
    if c.max_in_flight < 1:
        raise _fail("max_in_flight", c.max_in_flight, "an integer >= 1")
    if c.connections is not None and c.connections < 0:
        raise _fail("--connections", c.connections, "an integer >= 0")
    if c.connection_reuse not in ("pooled", "never"):
        raise _fail("connection_reuse", c.connection_reuse, "pooled | never")
    if not 0 <= c.max_error_rate <= 1:
        raise _fail("--max-error-rate", c.max_error_rate, "a share between 0% and 100%")
    if c.session_cost_usd is not None and c.session_cost_usd < 0:
        raise _fail("session_cost_usd", c.session_cost_usd, "dollars >= 0")
    if not 0 <= c.worker_index < c.worker_count:
        raise _fail("worker_index", c.worker_index, f"0 <= index < worker_count={c.worker_count}")


_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(us|µs|ms|s)?\s*$")
_UNIT_MS = {"us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1000.0, None: 1.0}


def parse_slo(text: str) -> dict[str, float]:
    """Parse ``"ttft=200ms,itl=40ms"`` into ``{"ttft": 200.0, "itl": 40.0}`` (milliseconds).

    A bare number means milliseconds. Allowed metrics: ttft, itl, tpot, e2e.
    """
    slo: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip().lower()
        match = _DURATION.match(value)
        if not sep or name not in SLO_METRICS or match is None:
            raise ConfigError(
                f"--slo {part!r} is invalid: allowed METRIC=TIME with METRIC in "
                f"{', '.join(SLO_METRICS)} and TIME like 200ms, 0.5s or 40 (ms)"
            )
        number = float(match.group(1)) * _UNIT_MS[match.group(2)]
        if number <= 0:
            raise ConfigError(f"--slo {part!r} is invalid: the time must be > 0")
        slo[name] = number
    if not slo:
        raise ConfigError("--slo is empty: allowed e.g. ttft=200ms,itl=40ms")
    return slo


def parse_input_tokens(text: str) -> tuple[int, float]:
    """Parse ``"MEAN[,SD]"`` (tokens) for ``--input-tokens``."""
    parts = [p.strip() for p in text.split(",")]
    try:
        if len(parts) > 2:
            raise ValueError(text)
        mean = int(parts[0])
        sd = float(parts[1]) if len(parts) == 2 else 0.0
    except ValueError:
        raise ConfigError(
            f"--input-tokens {text!r} is invalid: allowed MEAN[,SD], e.g. 512 or 512,64"
        ) from None
    if mean < 1 or sd < 0:
        raise ConfigError(f"--input-tokens {text!r} is invalid: MEAN >= 1 and SD >= 0")
    return mean, sd


def parse_error_rate(text: str) -> float:
    """Parse ``--max-error-rate``: ``"5%"`` or a share ``"0.05"`` (both mean 5 %)."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise ConfigError(
            f"--max-error-rate {text!r} is invalid: allowed a percentage like 1% or 5%, "
            "or a share between 0 and 1"
        )
    return value


def parse_int_list(flag: str, text: str) -> list[int]:
    """Parse ``"1,4,16"`` for ``--sweep`` (each value >= 1)."""
    try:
        values = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise ConfigError(
            f"{flag} {text!r} is invalid: allowed a comma-separated list of integers >= 1"
        ) from None
    if not values or min(values) < 1:
        raise ConfigError(f"{flag} {text!r} is invalid: allowed integers >= 1, e.g. 1,4,16")
    return values
