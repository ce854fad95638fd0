"""The HorizontalPodAutoscaler algorithm as pure functions (no I/O, no clock).

Follows the Kubernetes documentation ("Horizontal Pod Autoscaling", "Algorithm details")
and the controller it describes (``pkg/controller/podautoscaler``: replica_calculator.go,
horizontal.go). :mod:`.hpa` runs it against the simulated cluster.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .store import Obj

# kube-controller-manager defaults (Kubernetes docs, "Horizontal Pod Autoscaling"):
# --horizontal-pod-autoscaler-sync-period 15 s, --horizontal-pod-autoscaler-tolerance 0.1,
# --horizontal-pod-autoscaler-downscale-stabilization 5 min.
SYNC_PERIOD_S = 15.0
TOLERANCE = 0.1
DOWNSCALE_STABILIZATION_S = 300
# Default scaling rules applied by the API server when ``spec.behavior`` is given (docs,
# "Default Behavior"): scale up by max(100 %, 4 pods) per 15 s, down by 100 % per 15 s.
DEFAULT_SCALE_UP_POLICIES = (("Percent", 100, 15), ("Pods", 4, 15))
DEFAULT_SCALE_DOWN_POLICIES = (("Percent", 100, 15),)
# Without ``spec.behavior`` the controller's legacy rule caps one step at
# max(2 × current, 4) (horizontal.go: scaleUpLimitFactor, scaleUpLimitMinimum).
LEGACY_SCALE_UP_FACTOR = 2.0
LEGACY_SCALE_UP_MINIMUM = 4
DEFAULT_CPU_METRIC = {
    "type": "Resource",
    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
}
# NIM serves Prometheus metrics here (reference/nim.md); the ServiceMonitor scrapes it.
METRICS_PATH = "/v1/metrics"
SCRAPE_TIMEOUT_S = 2.0  # real seconds per pod scrape


# --- quantities ------------------------------------------------------------------------------
def to_milli(value: float) -> int:
    """A sample as Kubernetes milli-units, rounded up like ``Quantity.MilliValue()``."""
    return math.ceil(value * 1000 - 1e-9)


def format_milli(milli: int) -> str:
    """``resource.NewMilliQuantity(milli, DecimalSI).String()``: 4500 → "4500m",
    12000 → "12", 3000000 → "3k"."""
    if milli % 1000:
        return f"{milli}m"
    units = milli // 1000
    suffix = ""
    for next_suffix in ("k", "M", "G", "T", "P", "E"):
        if units == 0 or units % 1000:
            break
        units //= 1000
        suffix = next_suffix
    return f"{units}{suffix}"


def parse_prometheus(text: str) -> dict[str, float]:
    """Sample values by metric name from the Prometheus text format (series of one name are
    summed, as ``sum by (pod)`` in a prometheus-adapter rule would)."""
    out: dict[str, float] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name_end = min((i for i in (line.find("{"), line.find(" ")) if i >= 0), default=-1)
        if name_end <= 0:
            continue
        name = line[:name_end]
        rest = line[line.rfind("}") + 1 :] if "{" in line[: name_end + 1] else line[name_end:]
        parts = rest.split()
        if not parts:
            continue
        try:
            value = float(parts[0])
        except ValueError:
            continue
        if math.isfinite(value):
            out[name] = out.get(name, 0.0) + value
    return out


# --- replica calculation (replica_calculator.go) ------------------------------------------------
class MetricsError(Exception):
    """No usable metric for this metric spec (the HPA reports it; it never raises out)."""


@dataclass(frozen=True)
class Tolerances:
    """Ratios within [1 - down, 1 + up] do not change the replica count."""

    down: float = TOLERANCE
    up: float = TOLERANCE

    def within(self, ratio: float) -> bool:
        return (1.0 - self.down) <= ratio <= (1.0 + self.up)


@dataclass(frozen=True)
class PodView:
    """What the calculation needs to know about one selected pod."""

    name: str
    phase: str = "Running"
    deleting: bool = False


def usage_ratio(metrics: Mapping[str, int], target_milli: int) -> tuple[float, int]:
    """(average / target, average) with the controller's integer average in milli-units."""
    average = sum(metrics.values()) // len(metrics)
    return average / target_milli, average


def plain_metric_replicas(
    current_replicas: int,
    target_milli: int,
    metrics: Mapping[str, int],
    pods: Sequence[PodView],
    tolerances: Tolerances = Tolerances(),
) -> tuple[int, int]:
    """(replica proposal, average usage in milli) for an AverageValue Pods metric.

    Pods being deleted or failed are ignored; Pending pods are "unready"; pods without a
    sample (not Ready yet, or their scrape failed) are "missing". On a scale-up, missing
    and unready pods count as 0; on a scale-down, missing pods count as the target: the
    conservative reading the docs describe. A recomputed ratio that flips direction, or
    falls within tolerance, keeps the current count.
    """
    if not pods:
        raise MetricsError("no pods returned by selector while calculating replica count")
    samples: dict[str, int] = {}
    ready_count = 0
    unready: list[str] = []
    missing: list[str] = []
    for pod in pods:
        if pod.deleting or pod.phase == "Failed":
            continue
        if pod.phase == "Pending":
            unready.append(pod.name)
            continue
        if pod.name not in metrics:
            missing.append(pod.name)
            continue
        samples[pod.name] = metrics[pod.name]
        ready_count += 1
    if not samples:
        raise MetricsError("did not receive metrics for targeted pods (pods might be unready)")
    ratio, usage = usage_ratio(samples, target_milli)
    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if tolerances.within(ratio):
            return current_replicas, usage
        return math.ceil(ratio * ready_count), usage
    for name in missing:
        samples[name] = target_milli if ratio < 1.0 else 0
    if scale_up_with_unready:
        for name in unready:
            samples[name] = 0
    new_ratio, _ = usage_ratio(samples, target_milli)
    if tolerances.within(new_ratio) or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current_replicas, usage
    proposal = math.ceil(new_ratio * len(samples))
    if (new_ratio < 1.0 and proposal > current_replicas) or (
        new_ratio > 1.0 and proposal < current_replicas
    ):
        return current_replicas, usage
    return proposal, usage


def max_proposal(
    proposals: Sequence[tuple[int, str] | None], current: int
) -> tuple[int, str] | None:
    """The largest (replicas, metric name) over the metrics (``None`` = that metric failed).
    None when every metric failed, or when some failed and the valid ones would scale down:
    an unknown metric could be the one asking for more replicas."""
    valid = [p for p in proposals if p is not None]
    if not valid:
        return None
    best = valid[0]
    for proposal in valid[1:]:
        if proposal[0] > best[0]:
            best = proposal
    if len(valid) < len(proposals) and best[0] < current:
        return None
    return best


# --- behavior: stabilization and rate limits (horizontal.go) ------------------------------------
@dataclass(frozen=True)
class Policy:
    type: str  # "Pods" | "Percent"
    value: int
    period_s: int


@dataclass(frozen=True)
class Rules:
    """One direction of ``spec.behavior`` with the API server's defaults filled in."""

    stabilization_s: int
    policies: tuple[Policy, ...]
    select: str = "Max"  # "Max" | "Min" | "Disabled"
    tolerance: float = TOLERANCE


@dataclass(frozen=True)
class Behavior:
    up: Rules
    down: Rules
    legacy: bool = False  # no spec.behavior: the controller's older fixed rules


@dataclass(frozen=True)
class Stamped:
    """A recommendation or a scale event (``value`` = replicas or change) at sim time ``t``."""

    value: int
    t: float


def _rules(raw: Obj | None, window: int, policies: Sequence[tuple[str, int, int]]) -> Rules:
    raw = raw or {}
    given = raw.get("policies")
    chosen = (
        tuple(Policy(p["type"], int(p["value"]), int(p["periodSeconds"])) for p in given)
        if given
        else tuple(Policy(t, v, s) for t, v, s in policies)
    )
    stabilization = raw.get("stabilizationWindowSeconds")
    tolerance = raw.get("tolerance")
    return Rules(
        stabilization_s=window if stabilization is None else int(stabilization),
        policies=chosen,
        select=str(raw.get("selectPolicy") or "Max"),
        tolerance=TOLERANCE if tolerance is None else float(str(tolerance)),
    )


def behavior_of(spec: Obj) -> Behavior:
    """``spec.behavior`` with defaults (scaleUp window 0, scaleDown window 300 s)."""
    raw = spec.get("behavior")
    up = _rules((raw or {}).get("scaleUp"), 0, DEFAULT_SCALE_UP_POLICIES)
    down = _rules(
        (raw or {}).get("scaleDown"), DOWNSCALE_STABILIZATION_S, DEFAULT_SCALE_DOWN_POLICIES
    )
    return Behavior(up, down, legacy=raw is None)


def stabilize(
    history: Sequence[Stamped],
    now: float,
    current: int,
    desired: int,
    up_window_s: float,
    down_window_s: float,
) -> tuple[int, str, str]:
    """The stabilized recommendation: a scale-up goes no higher than the lowest, a
    scale-down no lower than the highest recommendation inside its window."""
    up, down = desired, desired
    for rec in history:
        if rec.t > now - up_window_s:
            up = min(up, rec.value)
        if rec.t > now - down_window_s:
            down = max(down, rec.value)
    recommendation = min(max(current, up), down)
    if desired >= current:
        return (
            recommendation,
            "ScaleUpStabilized",
            "recent recommendations were lower than current one, applying the lowest recent "
            "recommendation",
        )
    return (
        recommendation,
        "ScaleDownStabilized",
        "recent recommendations were higher than current one, applying the highest recent "
        "recommendation",
    )


def _changed_within(events: Sequence[Stamped], now: float, period_s: int) -> int:
    return sum(e.value for e in events if e.t > now - period_s)


def _replicas_at_period_start(
    current: int, ups: Sequence[Stamped], downs: Sequence[Stamped], period_s: int, now: float
) -> int:
    """The replica count a policy's period started from (current minus this period's
    scale-ups, plus its scale-downs), as horizontal.go computes it for both directions."""
    return current - _changed_within(ups, now, period_s) + _changed_within(downs, now, period_s)


def scale_up_limit(
    current: int, ups: Sequence[Stamped], downs: Sequence[Stamped], rules: Rules, now: float
) -> int:
    """The most replicas the scaleUp policies allow now (Max: the largest proposal)."""
    if rules.select == "Disabled":
        return current
    proposals = []
    for p in rules.policies:
        start = _replicas_at_period_start(current, ups, downs, p.period_s, now)
        if p.type == "Pods":
            proposals.append(start + p.value)
        else:
            proposals.append(math.ceil(start * (1 + p.value / 100)))
    return min(proposals) if rules.select == "Min" else max(proposals)


def scale_down_limit(
    current: int, ups: Sequence[Stamped], downs: Sequence[Stamped], rules: Rules, now: float
) -> int:
    """The fewest replicas the scaleDown policies allow now (Max: the largest change)."""
    if rules.select == "Disabled":
        return current
    proposals = []
    for p in rules.policies:
        start = _replicas_at_period_start(current, ups, downs, p.period_s, now)
        if p.type == "Pods":
            proposals.append(start - p.value)
        else:
            proposals.append(int(start * (1 - p.value / 100)))
    return max(proposals) if rules.select == "Min" else min(proposals)


def rate_limited(
    current: int,
    desired: int,
    min_replicas: int,
    max_replicas: int,
    behavior: Behavior,
    ups: Sequence[Stamped],
    downs: Sequence[Stamped],
    now: float,
) -> tuple[int, str, str]:
    """(replicas, ScalingLimited reason, message) after min/max and the scaling policies."""
    if behavior.legacy:
        return _legacy_limits(current, desired, min_replicas, max_replicas)
    if desired > current:
        limit = max(scale_up_limit(current, ups, downs, behavior.up, now), current)
        if max_replicas > limit:
            allowed, reason, message = (
                limit,
                "ScaleUpLimit",
                "the desired replica count is increasing faster than the maximum scale rate",
            )
        else:
            allowed, reason, message = (
                max_replicas,
                "TooManyReplicas",
                "the desired replica count is more than the maximum replica count",
            )
        if desired > allowed:
            return allowed, reason, message
    elif desired < current:
        limit = min(scale_down_limit(current, ups, downs, behavior.down, now), current)
        if min_replicas < limit:
            allowed, reason, message = (
                limit,
                "ScaleDownLimit",
                "the desired replica count is decreasing faster than the maximum scale rate",
            )
        else:
            allowed, reason, message = (
                min_replicas,
                "TooFewReplicas",
                "the desired replica count is less than the minimum replica count",
            )
        if desired < allowed:
            return allowed, reason, message
    return desired, "DesiredWithinRange", "the desired count is within the acceptable range"


def _legacy_limits(
    current: int, desired: int, min_replicas: int, max_replicas: int
) -> tuple[int, str, str]:
    limit = max(int(LEGACY_SCALE_UP_FACTOR * current), LEGACY_SCALE_UP_MINIMUM)
    if max_replicas > limit:
        maximum, reason, message = (
            limit,
            "ScaleUpLimit",
            "the desired replica count is increasing faster than the maximum scale rate",
        )
    else:
        maximum, reason, message = (
            max_replicas,
            "TooManyReplicas",
            "the desired replica count is more than the maximum replica count",
        )
    if desired < min_replicas:
        return (
            min_replicas,
            "TooFewReplicas",
            "the desired replica count is less than the minimum replica count",
        )
    if desired > maximum:
        return maximum, reason, message
    return desired, "DesiredWithinRange", "the desired count is within the acceptable range"
