"""Hibernate (pure): keep the session's GPU node, stopped, and wake it in minutes.

OCI's compute documentation ("Resource Billing for Stopped Instances", under Stopping and
Starting an Instance — calibration.md "Stopped instances"): stopping an instance pauses its
billing on standard shapes and on **VM instances of the VM.GPU.A10 series**; every other GPU
shape (bare-metal A10 included) keeps billing while stopped because its GPUs stay reserved,
and so do Dense I/O and HPC shapes (their NVMe drives are kept). Stopped instances still
count toward service limits, and a stopped VM may not get a host back when it starts. The
Compute API reports the rule per shape as ``Shape.is_billed_for_stopped_instance``: the
product decides from the API's answer (:func:`may_hibernate`); :func:`documented_billed_when_stopped`
is the published rule, for the planner (offline) and the simulator.

While a session hibernates it keeps the network, the cluster, the node pool with its
stopped node (boot volume: the containerd images) and the attached cache volume (the
weights, resting at ``cache.kept_vpus_per_gb``); the load balancer is deleted. Waking is
START → the node Ready again → NIM scaled back (image present, weights on the volume: no
pull, no download) with the load balancer recreated in parallel.

No published figure gives a GPU VM's start time from STOPPED: :data:`INSTANCE_START` and
:data:`NODE_REJOIN` are stated assumptions with a range; the simulator draws from the same
figures (sim/oci/catalog.py ``Timings``), and :func:`hibernate_wake` shows how the time
back to ready moves across the range. Durations are seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nimble_oke.domain import timings as t
from nimble_oke.domain.catalog import Catalog, Shape
from nimble_oke.domain.config import NimbleConfig
from nimble_oke.domain.cost import (
    BilledWindow,
    CostLine,
    Meter,
    cluster_meters,
    cost_lines,
    node_pool_meters,
    object_storage_meters,
    total,
    volume_meters,
)
from nimble_oke.domain.plan import build_plan

GB = 1_000_000_000
DAY_S = 24 * 3600.0


@dataclass(frozen=True)
class Assumption:
    """A duration nobody publishes: best, typical (the median the simulator draws around)
    and worst case, with why we picked them."""

    best: float
    typical: float
    worst: float
    source: str

    @property
    def span(self) -> t.Span:
        return t.Span(typical=self.typical, worst=self.worst)

    def at(self, case: Case) -> float:
        return {"best": self.best, "typical": self.typical, "worst": self.worst}[case]


Case = Literal["best", "typical", "worst"]
CASES: tuple[Case, ...] = ("best", "typical", "worst")

# ASSUMPTION (not published; calibration.md "Stopped instances"): InstanceAction START of a
# stopped GPU VM until the Compute API reports RUNNING — host placement, boot volume and GPU
# attach. OCI reports a new VM RUNNING about a minute after launch; a START re-places the VM
# (it may land on another host) and re-attaches the GPU: 90 s typical, 45 s best, 5 min worst.
INSTANCE_START = Assumption(
    best=45,
    typical=90,
    worst=300,
    source="assumption: GPU VM START to RUNNING not published (45 s-5 min, typical 90 s)",
)
# ASSUMPTION: RUNNING until the Node is Ready again — OS boot with the NVIDIA driver, then the
# kubelet (already registered, no OKE bootstrap) posts a Ready status: 60 s typical.
NODE_REJOIN = Assumption(
    best=30,
    typical=60,
    worst=180,
    source="assumption: OS boot + kubelet Ready after START not published (30 s-3 min)",
)
# ASSUMPTION: SOFTSTOP's ACPI shutdown of an OKE node whose NIM is already scaled to zero
# (systemd stops kubelet and containerd): 60 s typical.
OS_SHUTDOWN = Assumption(
    best=30,
    typical=60,
    worst=120,
    source="assumption: OS shutdown after ACPI not published (30 s-2 min)",
)
# ASSUMPTION: a hard STOP (power off) until the API reports STOPPED. Compute Cloud@Customer's
# docs say "up to five minutes"; the public cloud publishes nothing: 45 s typical.
INSTANCE_STOP = Assumption(
    best=30,
    typical=45,
    worst=300,
    source="assumption: STOP to STOPPED not published (Compute Cloud@Customer: up to 5 min)",
)
# Documented (API reference, InstanceAction SOFTSTOP): "After waiting 15 minutes for the OS
# to shut down, the instance is powered off."
SOFTSTOP_TIMEOUT_S = 15 * 60
# ASSUMPTION: the cache volume stays attached to the stopped instance (OCI keeps a stopped
# instance's volume attachments), so the kubelet only mounts it again: seconds.
REMOUNT = t.Span(typical=10, worst=60)
# ASSUMPTION (as the simulator's CreateImage): used bytes of an OKE GPU node's boot volume
# before any container image — a kept node image stores these plus the NIM image.
NODE_IMAGE_BASE_GB = 15


# --- which shapes may hibernate ----------------------------------------------------------


def documented_billed_when_stopped(shape_name: str, gpus: int, bare_metal: bool) -> bool:
    """OCI's published rule: is a stopped instance of this shape still billed?

    GPU shapes: only VM instances of the VM.GPU.A10 series pause billing. Dense I/O and HPC
    shapes keep billing (NVMe kept); Optimized shapes pause on VMs, not on bare metal;
    standard shapes pause."""
    if gpus > 0:
        return not (shape_name.startswith("VM.GPU.A10.") and not bare_metal)
    if "DenseIO" in shape_name or ".HPC" in shape_name:
        return True
    if "Optimized" in shape_name:
        return bare_metal
    return False


@dataclass(frozen=True)
class HibernateDecision:
    allowed: bool
    reason: str


def may_hibernate(
    shape_name: str, billed_when_stopped: bool | None, *, preemptible: bool = False
) -> HibernateDecision:
    """Whether a session on ``shape_name`` may hibernate, from what the Compute API reports
    (``Shape.is_billed_for_stopped_instance``; None = the API did not say)."""
    alternative = (
        "the cheaper way to come back fast is standby (`nimble down --keep-cluster`, with "
        "`--keep-node-image` so the next node has the NIM image already)"
    )
    if preemptible:
        return HibernateDecision(
            False,
            f"cannot hibernate a preemptible {shape_name} pool: OCI cannot stop or start a "
            f"preemptible instance (it can only be terminated); {alternative}",
        )
    if billed_when_stopped is None:
        return HibernateDecision(
            False,
            f"cannot hibernate {shape_name}: the Compute API did not report whether a stopped "
            f"{shape_name} is billed (Shape.is_billed_for_stopped_instance); {alternative}",
        )
    if billed_when_stopped:
        return HibernateDecision(
            False,
            f"cannot hibernate {shape_name}: OCI keeps billing a stopped {shape_name} (the "
            "Compute API reports is_billed_for_stopped_instance=true — stopping pauses billing "
            "only for VM instances of the VM.GPU.A10 series; other GPU shapes, bare-metal A10 "
            f"included, keep their GPUs reserved and billed); {alternative}",
        )
    return HibernateDecision(
        True,
        f"{shape_name} pauses billing while stopped (is_billed_for_stopped_instance=false): "
        "while hibernating only storage is billed",
    )


# --- time back to ready from hibernation -------------------------------------------------


@dataclass(frozen=True)
class Wake:
    """Time back to ready from hibernation, in one case of the start-time assumption."""

    case: Case
    start_s: float  # START to RUNNING
    rejoin_s: float  # RUNNING to Node Ready
    remount_s: float
    load_s: float  # weights read from the cache volume
    engine_s: float
    load_balancer_s: float  # recreated in parallel from the START

    @property
    def node_ready_s(self) -> float:
        return self.start_s + self.rejoin_s

    @property
    def ready_s(self) -> float:
        nim = self.node_ready_s + self.remount_s + self.load_s + self.engine_s
        return max(nim, self.load_balancer_s)

    @property
    def gpu_billed_s(self) -> float:
        """Billing resumes at START: every second until ready is GPU-billed."""
        return self.ready_s


def hibernate_wake(cfg: NimbleConfig, catalog: Catalog, case: Case = "typical") -> Wake:
    """Time back to ready: START, node Ready, remount, weights load at the session's VPUs
    (raised online at START, while the instance boots), engine start; the load balancer is
    recreated beside it. Nothing is pulled or downloaded."""
    model = catalog.model(cfg.nim.model)
    weights = model.weights_for(cfg.nim.precision) * GB
    volume_bps = t.volume_throughput_bytes_per_s(cfg.cache.size_gb, cfg.cache.vpus_per_gb)
    worst = case == "worst"
    lb = 0.0
    if cfg.service.type == "LoadBalancer":
        lb = t.LOAD_BALANCER.worst if worst else t.LOAD_BALANCER.typical
    return Wake(
        case=case,
        start_s=INSTANCE_START.at(case),
        rejoin_s=NODE_REJOIN.at(case),
        remount_s=REMOUNT.worst if worst else REMOUNT.typical,
        load_s=weights / volume_bps,
        engine_s=t.ENGINE_START.worst if worst else t.ENGINE_START.typical,
        load_balancer_s=lb,
    )


# --- cost while asleep -------------------------------------------------------------------


def _per_day(catalog: Catalog, meters: tuple[Meter, ...]) -> list[CostLine]:
    return cost_lines(catalog, [BilledWindow("asleep", meters, 0.0, DAY_S)])


def _kept_cache_meters(cfg: NimbleConfig, catalog: Catalog) -> tuple[Meter, ...]:
    if cfg.cache.mode == "object-storage":
        return ()  # the bucket is the cache; its volume is not kept
    return volume_meters(
        catalog,
        cfg.cache.size_gb,
        cfg.cache.kept_vpus_per_gb,
        item=f"Model cache volume ({cfg.cache.size_gb} GB, resting)",
    )


def _bucket_meters(cfg: NimbleConfig, catalog: Catalog) -> tuple[Meter, ...]:
    if cfg.cache.mode != "object-storage":
        return ()
    weights = catalog.model(cfg.nim.model).weights_for(cfg.nim.precision)
    return object_storage_meters(weights)


def hibernate_asleep_meters(
    cfg: NimbleConfig, catalog: Catalog, shape: Shape, *, billed_when_stopped: bool
) -> tuple[Meter, ...]:
    """What a hibernating session is billed for: the cluster's control plane (free for a
    basic cluster), the stopped nodes' boot volumes, the resting cache volume — and the GPUs
    too on a shape billed while stopped (the reason hibernate refuses such shapes)."""
    nodes = cfg.gpu_pool.nodes
    pool = node_pool_meters(
        catalog, shape, nodes, preemptible=False, boot_volume_gb=cfg.gpu_pool.boot_volume_gb
    )
    kept_pool = pool if billed_when_stopped else tuple(m for m in pool if "gpu." not in m.price_key)
    return (
        *cluster_meters(cfg.cluster.type),
        *kept_pool,
        *_kept_cache_meters(cfg, catalog),
        *_bucket_meters(cfg, catalog),
    )


def standby_asleep_meters(
    cfg: NimbleConfig, catalog: Catalog, *, node_image: bool
) -> tuple[Meter, ...]:
    """Standby (``down --keep-cluster --keep-cache``): cluster and resting cache volume; with
    ``--keep-node-image`` also the custom image (stored at Object Storage rates, billable
    size ≈ the OKE base image plus the NIM image)."""
    meters = (
        *cluster_meters(cfg.cluster.type),
        *_kept_cache_meters(cfg, catalog),
        *_bucket_meters(cfg, catalog),
    )
    if node_image:
        image_gb = NODE_IMAGE_BASE_GB + catalog.model(cfg.nim.model).image_gb
        meters = (*meters, *object_storage_meters(image_gb, item="Kept node image"))
    return meters


# --- hibernate vs standby vs cold, for the gap between sessions --------------------------


@dataclass(frozen=True)
class SleepOption:
    """One way to spend the gap between two sessions and come back."""

    name: str  # hibernate | standby + node image | standby | cold
    available: bool
    note: str
    asleep_lines: tuple[CostLine, ...]  # billed per day while asleep
    ready_s: float  # time back to ready, typical
    ready_range_s: tuple[float, float] | None  # best, worst (hibernate: the start assumption)
    wake_gpu_billed_s: float
    wake_usd: float  # the GPU time until ready

    @property
    def asleep_usd_per_day(self) -> float:
        return total(self.asleep_lines)

    def usd_for_gap(self, gap_hours: float) -> float:
        """Storage while asleep for ``gap_hours`` plus the GPU time it takes to be ready."""
        return self.asleep_usd_per_day * gap_hours / 24.0 + self.wake_usd

    def as_dict(self, gap_hours: float) -> dict[str, object]:
        return {
            "name": self.name,
            "available": self.available,
            "note": self.note,
            "asleep_usd_per_day": round(self.asleep_usd_per_day, 4),
            "asleep_lines": [line.as_dict() for line in self.asleep_lines],
            "ready_s": round(self.ready_s, 1),
            "ready_range_s": (
                [round(x, 1) for x in self.ready_range_s] if self.ready_range_s else None
            ),
            "wake_gpu_billed_s": round(self.wake_gpu_billed_s, 1),
            "wake_usd": round(self.wake_usd, 4),
            "usd_for_gap": round(self.usd_for_gap(gap_hours), 4),
        }


@dataclass(frozen=True)
class SleepComparison:
    gap_hours: float
    options: tuple[SleepOption, ...]

    @property
    def recommended(self) -> SleepOption:
        """The cheapest available option over the gap (the faster one on a tie)."""
        usable = [o for o in self.options if o.available]
        return min(usable, key=lambda o: (round(o.usd_for_gap(self.gap_hours), 6), o.ready_s))

    def option(self, name: str) -> SleepOption:
        return next(o for o in self.options if o.name == name)


def breakeven_hours(a: SleepOption, b: SleepOption) -> float | None:
    """The gap at which ``a`` and ``b`` cost the same (None: one is cheaper at every gap).
    Below it the option with the cheaper wake wins, above it the cheaper sleep."""
    per_hour = (a.asleep_usd_per_day - b.asleep_usd_per_day) / 24.0
    if per_hour == 0:
        return None
    hours = (b.wake_usd - a.wake_usd) / per_hour
    return hours if hours > 0 else None


def _gpu_usd_per_s(cfg: NimbleConfig, catalog: Catalog, shape: Shape) -> float:
    mult = catalog.preemptible_discount if cfg.gpu_pool.preemptible else 1.0
    hourly = catalog.hourly(shape.price_key) * shape.gpu_count * max(1, cfg.gpu_pool.nodes)
    return hourly * mult / 3600.0


def _hibernate_option(
    cfg: NimbleConfig, catalog: Catalog, shape: Shape, billed_when_stopped: bool
) -> SleepOption:
    decision = may_hibernate(shape.name, billed_when_stopped, preemptible=cfg.gpu_pool.preemptible)
    wakes = {case: hibernate_wake(cfg, catalog, case) for case in CASES}
    typical = wakes["typical"]
    meters = hibernate_asleep_meters(cfg, catalog, shape, billed_when_stopped=billed_when_stopped)
    return SleepOption(
        name="hibernate",
        available=decision.allowed,
        note=decision.reason if not decision.allowed else INSTANCE_START.source,
        asleep_lines=tuple(_per_day(catalog, meters)),
        ready_s=typical.ready_s,
        ready_range_s=(wakes["best"].ready_s, wakes["worst"].ready_s),
        wake_gpu_billed_s=typical.gpu_billed_s,
        wake_usd=typical.gpu_billed_s * _gpu_usd_per_s(cfg, catalog, shape),
    )


def _planned_option(
    cfg: NimbleConfig,
    catalog: Catalog,
    shape: Shape,
    name: str,
    *,
    standby: bool,
    node_image: bool,
) -> SleepOption:
    """Standby and cold come back through a new GPU node pool: the planner's timeline."""
    plan = build_plan(cfg, catalog, standby=standby, cache_warm=standby, node_image=node_image)
    if standby:
        meters = standby_asleep_meters(cfg, catalog, node_image=node_image)
        note = "new GPU node pool: bounded by the node's registration (10-15 min)"
    else:
        meters = _bucket_meters(cfg, catalog)
        note = "everything is created again (network, cluster, node pool, cache)"
    return SleepOption(
        name=name,
        available=True,
        note=note,
        asleep_lines=tuple(_per_day(catalog, meters)),
        ready_s=plan.time_to_ready_s,
        ready_range_s=None,
        wake_gpu_billed_s=plan.gpu_billed_s,
        wake_usd=plan.gpu_billed_s * _gpu_usd_per_s(cfg, catalog, shape),
    )


def compare_sleep_options(
    cfg: NimbleConfig,
    catalog: Catalog,
    *,
    gap_hours: float,
    billed_when_stopped: bool | None = None,
) -> SleepComparison:
    """Hibernate, standby (with and without a kept node image) and cold, for a user who
    expects ``gap_hours`` between sessions: what each costs per day asleep, how long it takes
    to be ready again, and the GPU time the wake bills. ``billed_when_stopped``: what the
    Compute API reports for the shape (None: the documented rule, for offline planning)."""
    if gap_hours < 0:
        raise ValueError(f"the gap between sessions must be ≥ 0 hours, got {gap_hours}")
    shape = catalog.shape(cfg.gpu_pool.shape)
    # the session as it would run: the cache volume the planner picks where the config
    # leaves it open (its size and VPUs set both the load time and the resting cost)
    cfg = build_plan(cfg, catalog).config or cfg
    if billed_when_stopped is None:
        billed_when_stopped = documented_billed_when_stopped(
            shape.name, shape.gpu_count, shape.is_bare_metal
        )
    options = (
        _hibernate_option(cfg, catalog, shape, billed_when_stopped),
        _planned_option(cfg, catalog, shape, "standby + node image", standby=True, node_image=True),
        _planned_option(cfg, catalog, shape, "standby", standby=True, node_image=False),
        _planned_option(cfg, catalog, shape, "cold", standby=False, node_image=False),
    )
    return SleepComparison(gap_hours, options)
