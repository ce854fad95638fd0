"""The cost engine (pure): meters, estimates, the budget guard and accrual.

Every billed thing is a *meter*: a price key from the catalog, a quantity (GPUs, GB,
Mbps, clusters) and a multiplier (0.5 for preemptible). A resource has one or more meters
and a lifetime; its cost is ``hourly price × quantity × multiplier × hours``. Prices given
per month are converted with Oracle's 744-hour month. Estimates apply this to the plan's
modeled lifetimes; accrual applies it to the lifetimes recorded in the state store.

Correction C4 of the source document: the flexible load balancer is billed as a small base
per LB-hour plus bandwidth per Mbps-hour — a 10 Mbps LB for 5 hours costs about 6 cents,
not $6.25.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from nimble_oke.domain.catalog import Catalog, Shape

SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class Meter:
    """One billed quantity of a resource. ``item`` is the human label of the cost line."""

    price_key: str
    quantity: float
    item: str
    multiplier: float = 1.0
    min_billed_seconds: float = 0.0
    # When a resource's rate changes during its life (a block volume's performance changed
    # online), each rate is a meter bounded to the times it applied (absolute, store clock).
    since: float | None = None
    until: float | None = None


@dataclass(frozen=True)
class CostLine:
    """A line of an estimate or accrual: ``quantity`` is in ``unit`` (e.g. GPU-hour)."""

    item: str
    price_key: str
    quantity: float
    unit: str
    usd: float

    def as_dict(self) -> dict[str, object]:
        return {
            "item": self.item,
            "price_key": self.price_key,
            "quantity": round(self.quantity, 6),
            "unit": self.unit,
            "usd": round(self.usd, 6),
        }


@dataclass(frozen=True)
class BilledWindow:
    """A resource's meters over a time window in seconds (relative or absolute)."""

    resource: str
    meters: tuple[Meter, ...]
    start_s: float
    end_s: float

    @property
    def seconds(self) -> float:
        return max(0.0, self.end_s - self.start_s)

    def meter_seconds(self, meter: Meter) -> float:
        """The part of the window a meter applied to (its ``since``/``until`` bounds)."""
        start = self.start_s if meter.since is None else max(self.start_s, meter.since)
        end = self.end_s if meter.until is None else min(self.end_s, meter.until)
        return max(0.0, end - start)


def meter_usd(catalog: Catalog, meter: Meter, seconds: float) -> tuple[float, float, str]:
    """Cost of a meter over ``seconds``: returns (usd, quantity in the price's unit, unit)."""
    billed = max(seconds, meter.min_billed_seconds) if seconds > 0 else 0.0
    price = catalog.price(meter.price_key)
    hours = billed / SECONDS_PER_HOUR
    if price.unit.endswith("-month"):
        time_quantity = hours / catalog.hours_per_month
    elif price.unit.endswith("-hour"):
        time_quantity = hours
    else:  # per-unit prices (e.g. egress per GB) are not time based
        time_quantity = 1.0 if seconds > 0 else 0.0
    quantity = meter.quantity * time_quantity
    return price.usd * quantity * meter.multiplier, quantity, price.unit


def cost_lines(catalog: Catalog, windows: Iterable[BilledWindow]) -> list[CostLine]:
    """Aggregate windows into one line per (item, price key), in first-seen order."""
    acc: dict[tuple[str, str], list[float]] = {}
    units: dict[tuple[str, str], str] = {}
    for window in windows:
        for meter in window.meters:
            usd, qty, unit = meter_usd(catalog, meter, window.meter_seconds(meter))
            key = (meter.item, meter.price_key)
            slot = acc.setdefault(key, [0.0, 0.0])
            slot[0] += qty
            slot[1] += usd
            units[key] = unit
    return [CostLine(item, pk, q, units[(item, pk)], usd) for (item, pk), (q, usd) in acc.items()]


def total(lines: Iterable[CostLine]) -> float:
    return sum(line.usd for line in lines)


# --- meters for each kind of billed resource -------------------------------------------


def node_pool_meters(
    catalog: Catalog, shape: Shape, nodes: int, *, preemptible: bool, boot_volume_gb: int
) -> tuple[Meter, ...]:
    """GPU nodes plus their boot volumes (billed as block storage at Balanced, 10 VPU/GB)."""
    mult = catalog.preemptible_discount if preemptible else 1.0
    label = f"GPU nodes ({shape.name} ×{nodes}{', preemptible' if preemptible else ''})"
    gpu = Meter(shape.price_key, float(shape.gpu_count * nodes), label, mult)
    boot = volume_meters(
        catalog, boot_volume_gb * nodes, 10, item=f"Boot volumes ({nodes}× {boot_volume_gb} GB)"
    )
    return (gpu, *boot)


def volume_meters(
    catalog: Catalog, size_gb: float, vpus_per_gb: int, *, item: str
) -> tuple[Meter, ...]:
    """Block volume storage plus performance units (VPUs × GB)."""
    minimum = catalog.block_min_billed_seconds
    meters = [Meter("block.storage", float(size_gb), f"{item} storage", 1.0, minimum)]
    if vpus_per_gb > 0:
        meters.append(
            Meter(
                "block.vpu",
                float(size_gb * vpus_per_gb),
                f"{item} performance ({vpus_per_gb} VPU/GB)",
                1.0,
                minimum,
            )
        )
    return tuple(meters)


def rerated_volume_meters(
    meters: tuple[Meter, ...], vpus_per_gb: int, at: float
) -> tuple[Meter, ...]:
    """A block volume's meters after its performance changed online at ``at``: the open
    performance meter ends there and one at the new level starts (none at 0, Lower Cost)."""
    storage = next((m for m in meters if m.price_key == "block.storage" and m.until is None), None)
    if storage is None:
        return meters
    closed = tuple(
        replace(m, until=at) if m.price_key == "block.vpu" and m.until is None else m
        for m in meters
    )
    if vpus_per_gb <= 0:
        return closed
    item = storage.item.removesuffix(" storage")
    return (
        *closed,
        Meter(
            "block.vpu",
            storage.quantity * vpus_per_gb,
            f"{item} performance ({vpus_per_gb} VPU/GB)",
            1.0,
            storage.min_billed_seconds,
            since=at,
        ),
    )


def load_balancer_meters(mbps: int) -> tuple[Meter, ...]:
    """Flexible LB: base per LB-hour + bandwidth per Mbps-hour (correction C4)."""
    return (
        Meter("lb.flexible.base", 1.0, "Load balancer base (flexible)"),
        Meter("lb.flexible.bandwidth", float(mbps), f"Load balancer bandwidth ({mbps} Mbps)"),
    )


def cluster_meters(cluster_type: str) -> tuple[Meter, ...]:
    key = "oke.enhanced" if cluster_type == "enhanced" else "oke.basic"
    return (Meter(key, 1.0, f"OKE control plane ({cluster_type})"),)


def object_storage_meters(
    size_gb: float, *, item: str = "Object Storage (model repository)"
) -> tuple[Meter, ...]:
    return (Meter("object.storage", float(size_gb), item),)


def cpu_pool_meters(catalog: Catalog, ocpus: int, memory_gb: int, nodes: int) -> tuple[Meter, ...]:
    return (
        Meter("compute.flex.ocpu", float(ocpus * nodes), f"CPU nodes ({nodes}× {ocpus} OCPU)"),
        Meter(
            "compute.flex.memory", float(memory_gb * nodes), f"CPU nodes memory ({memory_gb} GB)"
        ),
    )


def egress_usd(catalog: Catalog, gb: float) -> CostLine:
    """Internet egress: the first 10 TB per month are free (oci.md)."""
    billable = max(0.0, gb - catalog.egress_free_gb_per_month)
    price = catalog.price("egress")
    return CostLine(
        f"Egress ({gb:g} GB, first {catalog.egress_free_gb_per_month:g} GB/month free)",
        "egress",
        billable,
        price.unit,
        billable * price.usd,
    )


# --- phases ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhaseWindow:
    name: str
    start_s: float
    end_s: float


def cost_by_phase(
    catalog: Catalog, windows: Sequence[BilledWindow], phases: Sequence[PhaseWindow]
) -> dict[str, float]:
    """Split the windows' cost across phases by time overlap (minimums ignored here)."""
    out: dict[str, float] = {}
    for phase in phases:
        usd = 0.0
        for w in windows:
            overlap = min(w.end_s, phase.end_s) - max(w.start_s, phase.start_s)
            if overlap > 0:
                for meter in w.meters:
                    plain = Meter(meter.price_key, meter.quantity, meter.item, meter.multiplier)
                    usd += meter_usd(catalog, plain, overlap)[0]
        out[phase.name] = usd
    return out


# --- the guard ---------------------------------------------------------------------------

GuardAction = Literal["proceed", "confirm", "refuse"]


@dataclass(frozen=True)
class GuardDecision:
    action: GuardAction
    reason: str


def guard(
    *,
    worst_case_usd: float,
    budget_usd: float,
    confirm_above_usd: float,
    environment: str,
    yes: bool,
    interactive: bool,
) -> GuardDecision:
    """Decide whether a session may start.

    - worst case above the budget → refuse (``--yes`` does not override a budget);
    - worst case above the confirmation threshold, or any ``production`` session → needs
      confirmation: ``--yes`` confirms; an interactive terminal asks; otherwise refuse
      (no TTY and no ``--yes`` must never spend money silently);
    - else proceed.
    """
    if worst_case_usd > budget_usd:
        return GuardDecision(
            "refuse",
            f"worst case ${worst_case_usd:.2f} exceeds the budget ${budget_usd:.2f} "
            "(raise budget.max_usd / --budget, or shorten --hours, or pick a cheaper shape)",
        )
    needs = environment == "production" or worst_case_usd > confirm_above_usd
    if not needs:
        return GuardDecision(
            "proceed", f"worst case ${worst_case_usd:.2f} within budget ${budget_usd:.2f}"
        )
    why = (
        "production sessions always need confirmation"
        if environment == "production"
        else f"worst case ${worst_case_usd:.2f} is above the confirmation threshold "
        f"${confirm_above_usd:.2f}"
    )
    if yes:
        return GuardDecision("proceed", f"{why}; confirmed with --yes")
    if interactive:
        return GuardDecision("confirm", why)
    return GuardDecision("refuse", f"{why}; no terminal to ask — pass --yes to confirm")


# --- accrual -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceUsage:
    """A resource as recorded in the state store: meters and its real lifetime (Unix s)."""

    resource: str
    meters: tuple[Meter, ...]
    created_at: float
    deleted_at: float | None = None


@dataclass(frozen=True)
class Accrual:
    lines: list[CostLine]
    total_usd: float
    running_usd_per_hour: float
    per_resource: Mapping[str, float] = field(default_factory=dict)


def accrue(catalog: Catalog, usages: Iterable[ResourceUsage], now: float) -> Accrual:
    """What the session has cost so far, from recorded lifetimes (open ones up to ``now``)."""
    windows: list[BilledWindow] = []
    per_resource: dict[str, float] = {}
    running = 0.0
    for usage in usages:
        end = usage.deleted_at if usage.deleted_at is not None else now
        window = BilledWindow(
            usage.resource, usage.meters, usage.created_at, max(end, usage.created_at)
        )
        windows.append(window)
        per_resource[usage.resource] = sum(
            meter_usd(catalog, m, window.meter_seconds(m))[0] for m in usage.meters
        )
        if usage.deleted_at is None:
            running += sum(
                meter_usd(catalog, Meter(m.price_key, m.quantity, m.item, m.multiplier), 3600)[0]
                for m in usage.meters
                if m.until is None
            )
    lines = cost_lines(catalog, windows)
    return Accrual(lines, total(lines), running, per_resource)
