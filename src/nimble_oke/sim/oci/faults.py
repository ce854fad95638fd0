"""Fault injection: deterministic (seeded) failures in OCI's real shapes.

A plan comes from YAML/JSON or Python::

    seed: 1
    rules:
      - {operation: CreateNodePool, error: TooManyRequests, nth: [1, 2]}
      - {operation: GetWorkRequest, error: ServiceUnavailable, rate: 0.2}
      - {operation: ListClusters, latency_s: 1.5}
      - {operation: CreateNodePool, kind: out_of_host_capacity,
         shape: VM.GPU.A10.1, availability_domain: AD-1}
      - {operation: CreateCluster, kind: work_request_fail, at: 0.5}
      - {operation: CreateNodePool, kind: node_never_active}
      - {operation: InstanceAction, kind: out_of_host_capacity, shape: VM.GPU.A10.1}
      - {operation: InstanceAction, kind: os_shutdown_hang}
    capacity: {VM.GPU.A10.1: {AD-1: 0}}      # hosts available per shape and AD
    limits: {gpu-a10-count: {AD-1: 0}}       # service limit per AD
    timings: {cluster_create_s: 300}         # override calibrated durations

``operation`` is an SDK operation name in either spelling (``CreateNodePool`` or
``create_node_pool``) or ``*``. ``nth`` counts calls of that operation from 1; ``rate``
draws from the plan's seeded RNG; ``times`` caps how often a rule fires.

On ``InstanceAction`` (Compute power actions on an OKE node's instance):
``out_of_host_capacity`` makes a START fail as OCI answers a launch without a host
(500 InternalError "Out of host capacity.", the instance stays STOPPED) — checked on START
only; ``os_shutdown_hang`` makes a SOFTSTOP's OS ignore the ACPI shutdown, so OCI powers the
instance off only at its 15-minute timeout. ``nth`` counts every InstanceAction call.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from nimble_oke.sim.oci.api_error import STATUS_BY_CODE, ApiError
from nimble_oke.sim.oci.ids import ad_matches

ERROR_MESSAGES = {
    "TooManyRequests": "Too many requests for the user",
    "InternalError": "Internal error occurred",
    "ServiceUnavailable": "Service is temporarily unavailable",
    "LimitExceeded": "You have reached your service limit for this resource.",
    "QuotaExceeded": "Quota exceeded for this compartment.",
}
_KINDS = {
    "error",
    "out_of_host_capacity",
    "work_request_fail",
    "node_never_active",
    "os_shutdown_hang",
}


def snake(name: str) -> str:
    """``CreateNodePool`` -> ``create_node_pool`` (already-snake names pass through)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclass
class FaultRule:
    operation: str = "*"
    kind: str = "error"
    error: str | None = None
    status: int | None = None
    message: str | None = None
    rate: float | None = None
    nth: list[int] | None = None
    times: int | None = None
    latency_s: float = 0.0
    shape: str | None = None
    availability_domain: str | None = None
    at: float = 0.5

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"fault kind must be one of {sorted(_KINDS)}, got {self.kind!r}")
        if isinstance(self.nth, int):
            self.nth = [self.nth]

    def matches_operation(self, op: str) -> bool:
        return self.operation == "*" or snake(self.operation) == snake(op)

    def matches_placement(self, shape: str, ad: str) -> bool:
        shape_ok = self.shape is None or self.shape == shape
        ad_ok = self.availability_domain is None or ad_matches(ad, self.availability_domain)
        return shape_ok and ad_ok

    def api_error(self) -> ApiError:
        code = self.error or "InternalError"
        status = self.status or STATUS_BY_CODE.get(code, 500)
        return ApiError(code, self.message or ERROR_MESSAGES.get(code, code), status)


@dataclass
class FaultPlan:
    seed: int = 0
    rules: list[FaultRule] = field(default_factory=list)
    capacity: dict[str, dict[str, int]] = field(default_factory=dict)
    limits: dict[str, dict[str, int]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultPlan:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown fault plan keys {sorted(unknown)}")
        rules = [r if isinstance(r, FaultRule) else _rule(r) for r in data.get("rules", [])]
        return cls(
            seed=int(data.get("seed", 0)),
            rules=rules,
            capacity={k: dict(v) for k, v in data.get("capacity", {}).items()},
            limits={k: dict(v) for k, v in data.get("limits", {}).items()},
            timings={k: float(v) for k, v in data.get("timings", {}).items()},
        )

    @classmethod
    def load(cls, path: str | Path) -> FaultPlan:
        text = Path(path).read_text()
        data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
        return cls.from_dict(data or {})


def _rule(raw: dict[str, Any]) -> FaultRule:
    allowed = {f.name for f in fields(FaultRule)}
    unknown = set(raw) - allowed
    if unknown:
        raise ValueError(f"unknown fault rule keys {sorted(unknown)}; allowed: {sorted(allowed)}")
    return FaultRule(**raw)


class FaultInjector:
    """Decides, per call, whether a rule fires. Counters are per operation."""

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self._rng = random.Random(plan.seed)
        self._calls: dict[str, int] = {}
        self._fired: dict[int, int] = {}

    def _fires(self, index: int, rule: FaultRule, call_no: int) -> bool:
        if rule.times is not None and self._fired.get(index, 0) >= rule.times:
            return False
        if rule.nth is not None:
            hit = call_no in rule.nth
        elif rule.rate is not None:
            hit = self._rng.random() < rule.rate
        else:
            hit = True
        if hit:
            self._fired[index] = self._fired.get(index, 0) + 1
        return hit

    def on_request(self, op: str) -> tuple[float, ApiError | None]:
        """For an incoming call: (extra latency in real seconds, error to return or None)."""
        key = snake(op)
        self._calls[key] = call_no = self._calls.get(key, 0) + 1
        latency, error = 0.0, None
        for index, rule in enumerate(self.plan.rules):
            if rule.kind != "error" or not rule.matches_operation(op):
                continue
            if rule.error is None and rule.status is None:
                if rule.latency_s and self._fires(index, rule, call_no):
                    latency += rule.latency_s
                continue
            if error is None and self._fires(index, rule, call_no):
                latency += rule.latency_s
                error = rule.api_error()
        return latency, error

    def behaviour(self, op: str, kind: str, shape: str = "", ad: str = "") -> FaultRule | None:
        """A non-HTTP fault (capacity, failing work request, stuck node) for this operation."""
        for index, rule in enumerate(self.plan.rules):
            if rule.kind != kind or not rule.matches_operation(op):
                continue
            if (shape or ad) and not rule.matches_placement(shape, ad):
                continue
            if self._fires(index, rule, self._calls.get(snake(op), 1)):
                return rule
        return None

    def capacity(self, shape: str, ad: str) -> int | None:
        for pattern, count in self.plan.capacity.get(shape, {}).items():
            if ad_matches(ad, pattern):
                return count
        return None

    def limit(self, limit_name: str, ad: str) -> int | None:
        for pattern, count in self.plan.limits.get(limit_name, {}).items():
            if ad_matches(ad, pattern):
                return count
        return None
