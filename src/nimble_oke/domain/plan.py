"""The session plan (pure): what will be created, how long each phase takes, what it costs,
and the NIM startup budget.

A plan is computed from a validated config and the catalog. The same numbers drive
``nimble plan`` (printed), the budget guard (worst case), the chart values (probe budget)
and later the comparison between modeled and measured timelines.

Timeline model: provisioning is sequential (network → cluster → GPU node pool, because a
node pool needs an ACTIVE cluster), then the deployment (image pull → model download when
the cache is cold → load → engine start) with the load balancer created in parallel, then
smoke and benchmark inside the session's time box, then teardown. The time box
(``budget.max_hours``) is the lease: the session is torn down when it ends, so the
estimate bills every resource until then plus a typical teardown and the worst case bills
the whole lease plus a slow teardown at the worst prices the fallback ladder may reach.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from nimble_oke.domain import timings as t
from nimble_oke.domain.cache_volume import (
    VPU_LEVELS,
    VolumeCosts,
    VolumeOption,
    trade_off,
    volume_options,
)
from nimble_oke.domain.catalog import (
    Catalog,
    FitReport,
    Model,
    Shape,
    check_deployment,
)
from nimble_oke.domain.config import NimbleConfig
from nimble_oke.domain.cost import (
    BilledWindow,
    CostLine,
    PhaseWindow,
    cluster_meters,
    cost_by_phase,
    cost_lines,
    cpu_pool_meters,
    egress_usd,
    load_balancer_meters,
    node_pool_meters,
    object_storage_meters,
    total,
    volume_meters,
)
from nimble_oke.domain.node_autoscaling import node_bounds
from nimble_oke.errors import CatalogError

GB = 1_000_000_000


@dataclass(frozen=True)
class PlannedResource:
    kind: str
    name: str
    detail: str
    action: str = "create"  # or "reuse": kept by an earlier down, or given in the config


@dataclass(frozen=True)
class Phase:
    name: str
    start_s: float
    seconds: float
    gpu_billed: bool
    source: str

    @property
    def end_s(self) -> float:
        return self.start_s + self.seconds


@dataclass(frozen=True)
class StartupBudget:
    """NIM startup probe budget (correction C3): computed, not guessed."""

    download_s: float
    load_s: float
    engine_s: float
    budget_s: float
    period_s: int
    failure_threshold: int
    computed: bool

    @property
    def modeled_s(self) -> float:
        return self.download_s + self.load_s + self.engine_s


@dataclass(frozen=True)
class Plan:
    session: str
    target: str
    shape: Shape
    model: Model
    fit: FitReport
    resources: list[PlannedResource]
    timeline: list[Phase]
    lines: list[CostLine]
    total_usd: float
    worst_lines: list[CostLine]
    worst_case_usd: float
    by_phase: dict[str, float]
    hours: float
    startup: StartupBudget
    time_to_ready_s: float
    gpu_billed_s: float
    notes: list[str] = field(default_factory=list)
    config: NimbleConfig | None = None  # the config with the planner's choices filled in
    warm_up: WarmUp | None = None
    volume_options: list[VolumeOption] = field(default_factory=list)
    volume_chosen: VolumeOption | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "session": self.session,
            "target": self.target,
            "shape": self.shape.name,
            "model": self.model.name,
            "hours": self.hours,
            "fit": self.fit.reason,
            "resources": [r.__dict__ for r in self.resources],
            "timeline": [
                {
                    "phase": p.name,
                    "start_s": round(p.start_s, 1),
                    "seconds": round(p.seconds, 1),
                    "gpu_billed": p.gpu_billed,
                    "source": p.source,
                }
                for p in self.timeline
            ],
            "time_to_ready_s": round(self.time_to_ready_s, 1),
            "gpu_billed_s": round(self.gpu_billed_s, 1),
            "startup_budget": {
                "download_s": round(self.startup.download_s, 1),
                "load_s": round(self.startup.load_s, 1),
                "engine_s": round(self.startup.engine_s, 1),
                "budget_s": round(self.startup.budget_s, 1),
                "period_s": self.startup.period_s,
                "failure_threshold": self.startup.failure_threshold,
                "computed": self.startup.computed,
            },
            "lines": [line.as_dict() for line in self.lines],
            "total_usd": round(self.total_usd, 4),
            "worst_case_usd": round(self.worst_case_usd, 4),
            "worst_case_lines": [line.as_dict() for line in self.worst_lines],
            "by_phase_usd": {k: round(v, 4) for k, v in self.by_phase.items()},
            "notes": self.notes,
            "cache_volume": {
                "size_gb": self.config.cache.size_gb if self.config else None,
                "vpus_per_gb": self.config.cache.vpus_per_gb if self.config else None,
                "chosen_by": "planner" if self.volume_chosen else "config",
                "options": [o.as_dict() for o in self.volume_options],
            },
            "warm_up": (
                {
                    "shape": self.warm_up.shape,
                    "ocpus": self.warm_up.ocpus,
                    "memory_gb": self.warm_up.memory_gb,
                }
                if self.warm_up
                else None
            ),
        }


def startup_budget(cfg: NimbleConfig, model: Model, *, cache_warm: bool = False) -> StartupBudget:
    """Seconds NIM needs from container start to ready, and the probe settings covering it.

    download = weights ÷ min(source bandwidth, volume throughput) when the cache is cold;
    load = weights ÷ volume throughput; engine = profile selection + KV sizing/CUDA graphs.
    Budget = worst-case model × safety factor, at least 5 minutes.
    """
    weights_bytes = model.weights_for(cfg.nim.precision) * GB
    volume_bps = t.volume_throughput_bytes_per_s(cfg.cache.size_gb, cfg.cache.vpus_per_gb)
    if cfg.cache.mode == "object-storage":
        source = t.OBJECT_STORAGE_BYTES_PER_S
    else:
        source = t.NGC_DOWNLOAD_BYTES_PER_S
    cold = cfg.cache.mode == "ngc" or not cache_warm
    # object-storage hydrates in an init container, before NIM's startup probe starts.
    in_probe_download = cold and cfg.cache.mode != "object-storage"
    download = weights_bytes / min(source.typical, volume_bps) if in_probe_download else 0.0
    worst_download = weights_bytes / min(source.worst, volume_bps) if in_probe_download else 0.0
    load = weights_bytes / volume_bps
    engine = t.ENGINE_START.typical
    period = cfg.probes.startup_period_s
    if cfg.probes.mode == "explicit" and cfg.probes.startup_failure_threshold is not None:
        threshold = cfg.probes.startup_failure_threshold
        return StartupBudget(download, load, engine, threshold * period, period, threshold, False)
    worst = worst_download + load + t.ENGINE_START.worst
    budget = max(300.0, worst * cfg.probes.safety_factor)
    threshold = math.ceil(budget / period)
    return StartupBudget(download, load, engine, threshold * period, period, threshold, True)


@dataclass(frozen=True)
class WarmUp:
    """The CPU node pool that fills the cache volume while the GPU pool provisions."""

    shape: str
    ocpus: int
    memory_gb: int
    limit_name: str


ATTACH_SOURCE = "block volume attach: assumed ≈30 s (not published)"
# Phases that are not on the way to a ready endpoint.
OFF_PATH = frozenset({"smoke", "benchmark", "cpu node pool delete"})


def cache_fill_phase(cfg: NimbleConfig) -> str:
    """The warm-up's fill on the CPU node: NIM's download, or nimble's hydrate."""
    if cfg.cache.mode == "object-storage":
        return "model hydrate (cpu node)"
    return "model download (cpu node)"


class _Timeline:
    """Phases being laid out: typical or worst-case durations."""

    def __init__(self, worst: bool) -> None:
        self.worst = worst
        self.phases: list[Phase] = []

    def pick(self, span: t.Span) -> float:
        return span.worst if self.worst else span.typical

    def add(self, name: str, start: float, seconds: float, gpu: bool, source: str) -> float:
        self.phases.append(Phase(name, start, seconds, gpu, source))
        return start + seconds


def _phases(
    cfg: NimbleConfig,
    shape: Shape,
    model: Model,
    startup: StartupBudget,
    worst: bool,
    warm_up: WarmUp | None = None,
    standby: bool = False,
    node_image: bool = False,
) -> list[Phase]:
    """The timeline. Provisioning is sequential (a node pool needs an ACTIVE cluster);
    the warm-up CPU pool runs beside the GPU pool; on the GPU node the image is pulled at
    once (a pre-pull pod when warming off the GPU) and NIM starts when both the image and
    the cache volume are there."""
    tl = _Timeline(worst)
    cluster_ready, gpu_ready = _provisioning(tl, cfg, shape, standby)
    pull_s = model.image_gb * GB / tl.pick(t.IMAGE_PULL_BYTES_PER_S)
    pull_source = "calibration.md: image pull ≈55 MB/s"
    # a GPU pool started from a kept node image has the NIM image in containerd already
    gpu_pull_s = 0.0 if node_image else pull_s
    if node_image:
        pull_source = "kept node image: already present on machine"
    deploy_at = gpu_ready
    if warm_up is None:
        # the kubelet attaches and mounts a pod's volumes before it pulls its images
        attached = tl.add("volume attach", gpu_ready, tl.pick(t.VOLUME_ATTACH), True, ATTACH_SOURCE)
        container_at = tl.add("image pull", attached, gpu_pull_s, True, pull_source)
    else:
        # a pre-pull pod (no volume) pulls the image as soon as the GPU node registers
        pulled = tl.add("image pull", gpu_ready, gpu_pull_s, True, pull_source + " (pre-pull pod)")
        warm = _warm_up_phases(tl, cfg, model, warm_up, cluster_ready, pull_s)
        deploy_at = max(gpu_ready, warm)
        attached = tl.add(
            "volume attach",
            deploy_at,
            tl.pick(t.VOLUME_ATTACH),
            deploy_at >= gpu_ready,
            ATTACH_SOURCE,
        )
        container_at = max(pulled, attached)
    if cfg.service.type == "LoadBalancer":
        tl.add(
            "load balancer",
            deploy_at,
            tl.pick(t.LOAD_BALANCER),
            False,
            "calibration.md: LB 1-2 min",
        )
    _container_phases(tl, cfg, model, startup, container_at, warm_up)
    return sorted(tl.phases, key=lambda p: p.start_s)


def _provisioning(
    tl: _Timeline, cfg: NimbleConfig, shape: Shape, standby: bool
) -> tuple[float, float]:
    """Network → cluster → GPU pool. Returns (cluster ready, GPU node ready)."""
    reuse = cfg.cluster.vcn_id is not None or standby
    at = tl.add(
        "network",
        0.0,
        0.0 if reuse else tl.pick(t.NETWORK),
        False,
        "kept (standby)" if standby else "oci.md: network in seconds",
    )
    cluster_ready = tl.add(
        "cluster",
        at,
        0.0 if standby else tl.pick(t.CLUSTER_CREATE),
        False,
        "kept (standby)" if standby else "calibration.md: cluster ACTIVE 5-10 min",
    )
    gpu_ready = tl.add(
        "gpu node pool",
        cluster_ready,
        tl.pick(t.gpu_node_pool(shape.is_bare_metal)),
        True,
        "calibration.md: GPU node ACTIVE 10-15 min (BM +5-10)",
    )
    return cluster_ready, gpu_ready


def _warm_up_phases(
    tl: _Timeline,
    cfg: NimbleConfig,
    model: Model,
    warm_up: WarmUp,
    cluster_ready: float,
    pull_s: float,
) -> float:
    """The CPU pool beside the GPU pool fills the cache. Returns when the cache is full."""
    weights = model.weights_for(cfg.nim.precision) * GB
    volume_bps = t.volume_throughput_bytes_per_s(cfg.cache.size_gb, cfg.cache.vpus_per_gb)
    cpu_ready = tl.add(
        "cpu node pool",
        cluster_ready,
        tl.pick(t.CPU_NODE_POOL),
        False,
        f"{warm_up.shape} {warm_up.ocpus} OCPU: assumed 5-7 min (not published)",
    )
    if cfg.cache.mode == "object-storage":
        # nimble's tool image hydrates from Object Storage; the GPU pod's init container
        # then finds the manifest matching and exits at once
        cpu_pulled = tl.add(
            "cpu image pull",
            cpu_ready,
            t.TOOLS_IMAGE_BYTES / tl.pick(t.IMAGE_PULL_BYTES_PER_S),
            False,
            "nimble tool image ≈150 MB (assumed) at ≈55 MB/s",
        )
        fill_s = weights / min(tl.pick(t.OBJECT_STORAGE_BYTES_PER_S), volume_bps)
        source = "object storage → volume, volume-bound"
    else:
        cpu_pulled = tl.add(
            "cpu image pull", cpu_ready, pull_s, False, "calibration.md: image pull ≈55 MB/s"
        )
        fill_s = weights / min(tl.pick(t.NGC_DOWNLOAD_BYTES_PER_S), volume_bps)
        source = "calibration.md: NGC ≈250 MB/s, volume-bound"
    warm = tl.add(cache_fill_phase(cfg), cpu_pulled, fill_s, False, source)
    tl.add(
        "cpu node pool delete",
        warm,
        tl.pick(t.TEARDOWN_NODE_POOL),
        False,
        "node pool delete ≈3-5 min (off the critical path)",
    )
    return warm


def _container_phases(
    tl: _Timeline,
    cfg: NimbleConfig,
    model: Model,
    startup: StartupBudget,
    at: float,
    warm_up: WarmUp | None,
) -> None:
    """On the GPU node: hydrate or download (cold), load, engine start; then smoke, bench."""
    weights = model.weights_for(cfg.nim.precision) * GB
    volume_bps = t.volume_throughput_bytes_per_s(cfg.cache.size_gb, cfg.cache.vpus_per_gb)
    if cfg.cache.mode == "object-storage" and warm_up is None:
        bps = min(tl.pick(t.OBJECT_STORAGE_BYTES_PER_S), volume_bps)
        at = tl.add(
            "model hydrate", at, weights / bps, True, "object storage → volume, volume-bound"
        )
    if startup.download_s > 0:
        scale = (
            (t.NGC_DOWNLOAD_BYTES_PER_S.typical / t.NGC_DOWNLOAD_BYTES_PER_S.worst)
            if tl.worst
            else 1
        )
        at = tl.add(
            "model download", at, startup.download_s * scale, True, "calibration.md: NGC ≈250 MB/s"
        )
    at = tl.add("model load", at, startup.load_s, True, "calibration.md: volume throughput tiers")
    at = tl.add("engine start", at, tl.pick(t.ENGINE_START), True, "calibration.md: NVCF log +11 s")
    ready = max(p.end_s for p in tl.phases if p.name not in OFF_PATH)
    at = tl.add("smoke", ready, tl.pick(t.SMOKE), True, "measured: seconds")
    tl.add("benchmark", at, tl.pick(t.BENCH), True, "default benchmark run")


def _windows(
    cfg: NimbleConfig,
    catalog: Catalog,
    shape: Shape,
    model: Model,
    phases: list[Phase],
    lease_s: float,
    worst: bool,
    *,
    end_phases: list[Phase] | None = None,
    warm_up: WarmUp | None = None,
) -> tuple[list[BilledWindow], list[PhaseWindow]]:
    """Billed windows: resources start with ``phases``; the session ends at the lease or
    when ``end_phases`` (the worst-case timeline, if given) finish, whichever is later —
    so the worst case bills GPUs from their earliest start to their latest end."""

    tl = _Timeline(worst)
    by = {p.name: p for p in phases}
    ready = max(p.end_s for p in phases if p.name not in OFF_PATH)
    session_end = max(lease_s, *(p.end_s for p in end_phases or phases))
    lb_down = session_end + (tl.pick(t.TEARDOWN_LB) if cfg.service.type == "LoadBalancer" else 0)
    pool_down = lb_down + tl.pick(t.TEARDOWN_NODE_POOL)
    cluster_down = pool_down + tl.pick(t.TEARDOWN_CLUSTER)
    end = cluster_down + tl.pick(t.TEARDOWN_NETWORK)
    preemptible, price_shape = _pool_pricing(cfg, catalog, shape, worst)
    windows = [
        BilledWindow(
            "cluster", cluster_meters(cfg.cluster.type), by["cluster"].start_s, cluster_down
        ),
        BilledWindow(
            "gpu-node-pool",
            node_pool_meters(
                catalog,
                price_shape,
                # the cluster autoscaler may grow the pool to its maximum for the whole lease
                node_bounds(cfg).max_nodes
                if worst and cfg.autoscaling.cluster_autoscaler
                else cfg.gpu_pool.nodes,
                preemptible=preemptible,
                boot_volume_gb=cfg.gpu_pool.boot_volume_gb,
            ),
            by["gpu node pool"].start_s,
            pool_down,
        ),
        BilledWindow(
            "model-cache",
            volume_meters(
                catalog,
                cfg.cache.size_gb,
                cfg.cache.vpus_per_gb,
                item=f"Model cache volume ({cfg.cache.size_gb} GB)",
            ),
            by[cache_fill_phase(cfg)].start_s if warm_up else by["image pull"].start_s,
            # A kept cache outlives the session; the estimate bills it until teardown ends
            # and the plan notes its monthly cost.
            end,
        ),
    ]
    windows += _optional_windows(cfg, catalog, model, by, lb_down, end, worst, warm_up)
    phase_windows = [
        PhaseWindow("provisioning", 0.0, ready),
        PhaseWindow("run", ready, session_end),
        PhaseWindow("teardown", session_end, end),
    ]
    return windows, phase_windows


def _pool_pricing(
    cfg: NimbleConfig, catalog: Catalog, shape: Shape, worst: bool
) -> tuple[bool, Shape]:
    """(preemptible, shape) the GPU pool is priced at: in the worst case the fallback
    ladder may land on on-demand capacity or the dearest fallback shape."""
    preemptible = cfg.gpu_pool.preemptible
    price_shape = shape
    if not worst:
        return preemptible, price_shape
    if preemptible and cfg.gpu_pool.allow_on_demand_fallback:
        preemptible = False
    for name in cfg.gpu_pool.fallback_shapes:
        alt = catalog.shapes.get(name)
        if (
            alt
            and catalog.hourly(alt.price_key) * alt.gpu_count
            > catalog.hourly(price_shape.price_key) * price_shape.gpu_count
        ):
            price_shape = alt
    return preemptible, price_shape


def _optional_windows(
    cfg: NimbleConfig,
    catalog: Catalog,
    model: Model,
    by: dict[str, Phase],
    lb_down: float,
    end: float,
    worst: bool,
    warm_up: WarmUp | None,
) -> list[BilledWindow]:
    """The warm-up CPU pool, the load balancer and the model bucket, when the session has them."""
    windows = []
    if warm_up is not None:
        windows.append(
            BilledWindow(
                "cpu-node-pool",
                cpu_pool_meters(catalog, warm_up.ocpus, warm_up.memory_gb, 1),
                by["cpu node pool"].start_s,
                by["cpu node pool delete"].end_s,
            )
        )
    if cfg.service.type == "LoadBalancer":
        mbps = cfg.service.lb_max_mbps if worst else cfg.service.lb_min_mbps
        windows.append(
            BilledWindow(
                "load-balancer", load_balancer_meters(mbps), by["load balancer"].start_s, lb_down
            )
        )
    if cfg.cache.mode == "object-storage":
        weights = model.weights_for(cfg.nim.precision)
        windows.append(BilledWindow("model-bucket", object_storage_meters(weights), 0.0, end))
    return windows


def warm_up_for(cfg: NimbleConfig, catalog: Catalog, *, cache_warm: bool) -> WarmUp | None:
    """The CPU warm-up pool this session would use, or None (not asked for, nothing to
    warm: a warm/kept cache, or a mode that fills the cache elsewhere). One warmed volume
    serves one replica in one AD, so several replicas or a spread pool fill their own."""
    if cfg.cache.warm_up != "cpu-pool" or cfg.cache.mode == "ngc" or cache_warm:
        return None
    if cfg.nim.replicas > 1 or cfg.autoscaling.enabled or cfg.gpu_pool.placement == "spread":
        return None
    shapes = {c.name: c for c in catalog.cpu_shapes}
    if cfg.cache.warm_up_shape == "auto":
        if not catalog.cpu_shapes:
            return None
        chosen = catalog.cpu_shapes[0]
    elif cfg.cache.warm_up_shape in shapes:
        chosen = shapes[cfg.cache.warm_up_shape]
    else:
        raise CatalogError(
            f"cache.warm_up_shape '{cfg.cache.warm_up_shape}' is not a flexible CPU shape "
            f"nimble knows; allowed: auto, {', '.join(shapes)}"
        )
    return WarmUp(
        chosen.name, cfg.cache.warm_up_ocpus, cfg.cache.warm_up_memory_gb, chosen.limit_name
    )


def _fill_slack_s(
    shape: Shape, model: Model, warm_up: WarmUp | None, cache_warm: bool, *, mode: str
) -> float | None:
    """Seconds the cache fill may take without making the GPU wait (typical figures)."""
    if cache_warm:
        return math.inf
    if warm_up is None:
        return None
    pool = t.gpu_node_pool(shape.is_bare_metal)
    pull = model.image_gb * GB / t.IMAGE_PULL_BYTES_PER_S.typical
    gpu_side = pool.typical + pull
    # the CPU node pulls what fills the cache: NIM's image, or nimble's tool image
    cpu_bytes = t.TOOLS_IMAGE_BYTES if mode == "object-storage" else model.image_gb * GB
    cpu_pull = cpu_bytes / t.IMAGE_PULL_BYTES_PER_S.typical
    cpu_side = t.CPU_NODE_POOL.typical + cpu_pull + t.VOLUME_ATTACH.typical
    return max(0.0, gpu_side - cpu_side)


def choose_cache_volume(
    cfg: NimbleConfig,
    catalog: Catalog,
    shape: Shape,
    model: Model,
    warm_up: WarmUp | None,
    *,
    cache_warm: bool,
) -> tuple[NimbleConfig, list[VolumeOption], VolumeOption | None]:
    """Fill in the cache volume's size and VPUs per GB the config leaves open (the user's
    values always win) and return the trade-off table."""
    fixed = cfg.cache.model_fields_set
    source = (
        t.OBJECT_STORAGE_BYTES_PER_S
        if cfg.cache.mode == "object-storage"
        else t.NGC_DOWNLOAD_BYTES_PER_S
    )
    costs = VolumeCosts(
        storage_usd_per_gb_month=catalog.price("block.storage").usd,
        vpu_usd_per_gb_month=catalog.price("block.vpu").usd,
        hours_per_month=catalog.hours_per_month,
        gpu_usd_per_hour=catalog.hourly(shape.price_key)
        * shape.gpu_count
        * max(1, cfg.gpu_pool.nodes),
        session_hours=cfg.budget.max_hours,
        # A kept volume's monthly cost is noted separately: it buys every later session's
        # load time too, which one session's GPU minutes would not weigh.
        keep_months=0.0,
    )
    if "size_gb" in fixed and "vpus_per_gb" in fixed:
        return cfg, [], None
    options = volume_options(
        weights_gb=model.weights_for(cfg.nim.precision),
        source_bytes_per_s=source.typical,
        fill_slack_s=_fill_slack_s(shape, model, warm_up, cache_warm, mode=cfg.cache.mode),
        costs=costs,
        sizes_gb=(cfg.cache.size_gb,) if "size_gb" in fixed else None,
        vpu_levels=(cfg.cache.vpus_per_gb,) if "vpus_per_gb" in fixed else VPU_LEVELS,
    )
    chosen = options[0]
    cache = cfg.cache.model_copy(
        update={"size_gb": chosen.size_gb, "vpus_per_gb": chosen.vpus_per_gb}
    )
    return cfg.model_copy(update={"cache": cache}), trade_off(options, chosen), chosen


def build_plan(
    cfg: NimbleConfig,
    catalog: Catalog,
    *,
    cache_warm: bool = False,
    warm_up: bool | None = None,
    standby: bool = False,
    node_image: bool = False,
) -> Plan:
    """Plan a session. Raises CatalogError when the model cannot run on the shape.

    ``warm_up``: None = as the config says; False = the cache is filled on the GPU node
    (the fallback when the CPU pool is not possible). ``standby``: the network and cluster
    were kept by ``down --keep-cluster``; only the GPU pool is created. ``node_image``: the GPU
    pool starts from a node image kept by ``down --keep-node-image`` (no image pull)."""
    fit = check_deployment(
        catalog,
        cfg.nim.model,
        cfg.nim.precision,
        cfg.gpu_pool.shape,
        preemptible=cfg.gpu_pool.preemptible,
    )
    shape = catalog.shape(cfg.gpu_pool.shape)
    model = catalog.model(cfg.nim.model)
    warm = None if warm_up is False else warm_up_for(cfg, catalog, cache_warm=cache_warm)
    cfg, options, chosen = choose_cache_volume(
        cfg, catalog, shape, model, warm, cache_warm=cache_warm
    )
    startup = startup_budget(cfg, model, cache_warm=cache_warm or warm is not None)
    naive_startup = startup_budget(cfg, model, cache_warm=cache_warm)
    lease_s = cfg.budget.max_hours * 3600.0
    phases = _phases(cfg, shape, model, startup, False, warm, standby, node_image)
    # The worst case covers both a slow warm-up and the fallback to a download on the GPU.
    worst_phases = _phases(cfg, shape, model, startup, True, warm, standby, node_image)
    if warm is not None:
        worst_phases += _phases(cfg, shape, model, naive_startup, True, None, standby, node_image)
    windows, phase_windows = _windows(
        cfg, catalog, shape, model, phases, lease_s, worst=False, warm_up=warm
    )
    worst_windows, _ = _windows(
        cfg, catalog, shape, model, phases, lease_s, True, end_phases=worst_phases, warm_up=warm
    )
    egress = egress_usd(catalog, cfg.budget.egress_gb)
    lines = [*cost_lines(catalog, windows), egress]
    worst_lines = [*cost_lines(catalog, worst_windows), egress]
    time_to_ready = max(p.end_s for p in phases if p.name not in OFF_PATH)
    pool = next(p for p in phases if p.name == "gpu node pool")
    resources = _resources(
        cfg, shape, standby=standby, cache_warm=cache_warm, node_image=node_image
    )
    return Plan(
        session=cfg.session_name,
        target=cfg.target,
        shape=shape,
        model=model,
        fit=fit,
        resources=resources,
        timeline=phases,
        lines=lines,
        total_usd=total(lines),
        worst_lines=worst_lines,
        worst_case_usd=total(worst_lines),
        by_phase=cost_by_phase(catalog, windows, phase_windows),
        hours=cfg.budget.max_hours,
        startup=startup,
        time_to_ready_s=time_to_ready,
        gpu_billed_s=time_to_ready - pool.start_s,
        notes=_notes(cfg, catalog),
        config=cfg,
        warm_up=warm,
        volume_options=options,
        volume_chosen=chosen,
    )


def _notes(cfg: NimbleConfig, catalog: Catalog) -> list[str]:
    notes = []
    if cfg.cache.keep:
        month = BilledWindow(
            "cache",
            volume_meters(catalog, cfg.cache.size_gb, cfg.cache.vpus_per_gb, item="cache"),
            0,
            catalog.hours_per_month * 3600,
        )
        monthly = sum(line.usd for line in cost_lines(catalog, [month]))
        notes.append(f"the kept model cache costs ${monthly:.2f}/month after the session")
    if cfg.target == "sim":
        notes.append("target sim: prices are what OCI would bill; the simulator bills $0")
    return notes


def _resources(
    cfg: NimbleConfig, shape: Shape, *, standby: bool, cache_warm: bool, node_image: bool
) -> list[PlannedResource]:
    """What the session will have, and which of it already exists: a standby session's
    network and cluster, a kept cache volume, a VCN given in the config are reused."""
    out = _new_resources(cfg, shape, node_image=node_image)
    kept_kinds = {"cluster", *NETWORK_KINDS} if standby else set()
    if cache_warm and cfg.cache.mode != "object-storage":
        kept_kinds.add("block-volume")
    return [
        r
        if r.kind not in kept_kinds or r.action == "reuse"
        else PlannedResource(r.kind, r.name, _kept_detail(r), "reuse")
        for r in out
    ]


NETWORK_KINDS = (
    "vcn",
    "internet-gateway",
    "nat-gateway",
    "service-gateway",
    "route-table",
    "security-list",
    "subnet",
)


def _kept_detail(resource: PlannedResource) -> str:
    if resource.kind == "block-volume":
        return f"{resource.detail}; kept cache volume, raised online to these VPUs"
    return f"{resource.detail}; kept (standby)"


def _new_resources(cfg: NimbleConfig, shape: Shape, *, node_image: bool) -> list[PlannedResource]:
    name = cfg.session_name
    out: list[PlannedResource] = []
    if cfg.cluster.vcn_id is None:
        out += [
            PlannedResource("vcn", f"{name}-vcn", "10.0.0.0/16"),
            PlannedResource("internet-gateway", f"{name}-igw", "public API endpoint and LBs"),
            PlannedResource("nat-gateway", f"{name}-nat", "worker egress (nvcr.io, NGC)"),
            PlannedResource("service-gateway", f"{name}-sgw", "Oracle Services Network"),
            PlannedResource("route-table", f"{name}-rt-public", "0.0.0.0/0 → internet gateway"),
            PlannedResource("route-table", f"{name}-rt-private", "0.0.0.0/0 → NAT, OSN → SGW"),
            PlannedResource("security-list", f"{name}-sl-api", "6443/12250 from workers, 6443 in"),
            PlannedResource("security-list", f"{name}-sl-workers", "workers, API, LB node ports"),
            PlannedResource("security-list", f"{name}-sl-lb", "8000 in, node ports out"),
            PlannedResource("subnet", f"{name}-api", "10.0.0.0/29 public"),
            PlannedResource("subnet", f"{name}-workers", "10.0.1.0/24 private"),
            PlannedResource("subnet", f"{name}-lb", "10.0.2.0/24 public"),
        ]
    else:
        out.append(PlannedResource("vcn", cfg.cluster.vcn_id, "given in the config", "reuse"))
    out.append(
        PlannedResource(
            "cluster",
            name,
            f"OKE {cfg.cluster.type}, Kubernetes {cfg.cluster.kubernetes_version}",
        )
    )
    out.append(
        PlannedResource(
            "node-pool",
            f"{name}-gpu",
            f"{shape.name} ×{cfg.gpu_pool.nodes}"
            + (" preemptible" if cfg.gpu_pool.preemptible else "")
            + f", boot {cfg.gpu_pool.boot_volume_gb} GB"
            + (", from the kept node image (NIM image in it)" if node_image else ""),
        )
    )
    out.append(
        PlannedResource(
            "block-volume",
            f"{name}-model-cache",
            f"{cfg.cache.size_gb} GB, {cfg.cache.vpus_per_gb} VPU/GB (PVC, {cfg.cache.mode})"
            + (", kept after teardown" if cfg.cache.keep else ""),
        )
    )
    if cfg.service.type == "LoadBalancer":
        out.append(
            PlannedResource(
                "load-balancer",
                f"{name}-nim",
                f"flexible {cfg.service.lb_min_mbps}-{cfg.service.lb_max_mbps} Mbps",
            )
        )
    return out
