"""Preflight: before anything is created, check credentials, compartment, Kubernetes
version and GPU image, then build the *fallback ladder* — every (shape, AD, pricing) the
session may use, in the order the config allows — from GPU limits and capacity reports.

Ladder order (issue 5): the ADs that can host the shape, then the alternative shapes the
catalog says fit the model, then preemptible ↔ on-demand. So pricing is the outer loop,
shapes the middle one and ADs the inner one. If no rung is usable we stop before spending
anything, saying what was tried and what to ask OCI for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from nimble_oke.domain.catalog import Catalog, Shape, memory_fit, precision_supported
from nimble_oke.domain.config import NimbleConfig
from nimble_oke.errors import CapacityError, ProviderError
from nimble_oke.ports import CloudProvider


@dataclass(frozen=True)
class Rung:
    shape: str
    availability_domain: str  # the pool's (first) AD
    preemptible: bool
    spread: tuple[str, ...] = ()  # several ADs: nodes are placed round-robin over them

    @property
    def availability_domains(self) -> tuple[str, ...]:
        return self.spread or (self.availability_domain,)

    @property
    def _where(self) -> str:
        return "+".join(ad.rsplit(":", 1)[-1] for ad in self.availability_domains)

    @property
    def label(self) -> str:
        pricing = "preemptible" if self.preemptible else "on-demand"
        where = f"across {self._where}" if self.spread else f"in {self._where}"
        return f"{self.shape} {where} ({pricing})"

    @property
    def step(self) -> str:
        pricing = "pe" if self.preemptible else "od"
        return f"node-pool/{self.shape}/{self._where}/{pricing}"


@dataclass
class PreflightReport:
    tenancy: str = ""
    compartment: str = ""
    kubernetes_version: str = ""
    gpu_image: tuple[str, str] = ("", "")
    ladder: list[Rung] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def preflight(
    cfg: NimbleConfig,
    provider: CloudProvider,
    catalog: Catalog,
    say: Callable[[str], None] = lambda _m: None,
) -> PreflightReport:
    report = PreflightReport()
    report.tenancy = provider.check_credentials()
    report.compartment = provider.compartment_name(provider.compartment_id)
    say(f"credentials ok (tenancy {report.tenancy}, compartment {report.compartment})")
    version = cfg.cluster.kubernetes_version
    versions = provider.kubernetes_versions()
    if version not in versions:
        raise ProviderError(
            f"Kubernetes {version} is not offered by OKE here; available: {', '.join(versions)}",
            hint="set cluster.kubernetes_version",
        )
    report.kubernetes_version = version
    report.gpu_image = provider.node_image(version, gpu=True)
    say(f"Kubernetes {version} ok · GPU image {report.gpu_image[1]}")
    limits_short = _build_ladder(cfg, provider, catalog, report)
    if cfg.gpu_pool.placement == "spread" and max(cfg.gpu_pool.nodes, 1) > 1:
        report.ladder = spread_first(report.ladder)
    if not report.ladder:
        ask = (
            "; ask OCI for a service limit increase: "
            + ", ".join(
                f"{name} ≥ {need} in {provider.region}" for name, need in limits_short.items()
            )
            if limits_short
            else "; try other availability domains, fallback shapes or later"
        )
        raise CapacityError(
            "no availability domain, shape or pricing can host the GPU node pool — tried: "
            + "; ".join(report.skipped)
            + ask
        )
    say("fallback ladder: " + " → ".join(r.label for r in report.ladder))
    return report


def _resolve_ads(cfg: NimbleConfig, provider: CloudProvider) -> list[str]:
    """The configured ADs (short names allowed) as OCI names them, or all of the region's."""
    ads = cfg.gpu_pool.availability_domains or provider.availability_domains()
    all_ads = provider.availability_domains()
    resolved = []
    for ad in ads:
        match = [a for a in all_ads if a == ad or a.endswith(ad) or a.split(":")[-1] == ad]
        if not match:
            raise ProviderError(
                f"availability domain '{ad}' does not exist in {provider.region}; "
                f"available: {', '.join(all_ads)}"
            )
        resolved.append(match[0])
    return resolved


def _fitting_shapes(cfg: NimbleConfig, catalog: Catalog, report: PreflightReport) -> list[Shape]:
    model = catalog.model(cfg.nim.model)
    shapes = []
    for name in [cfg.gpu_pool.shape, *cfg.gpu_pool.fallback_shapes]:
        shape = catalog.shape(name)
        if not (
            precision_supported(catalog, cfg.nim.precision, shape)
            and memory_fit(model, cfg.nim.precision, shape).fits
        ):
            report.skipped.append(f"{name}: does not fit {model.name} at {cfg.nim.precision}")
            continue
        shapes.append(shape)
    return shapes


def _build_ladder(
    cfg: NimbleConfig, provider: CloudProvider, catalog: Catalog, report: PreflightReport
) -> dict[str, int]:
    """Fill ``report.ladder`` (pricing outer, shape middle, AD inner) with the rungs whose
    GPU limit and capacity report allow the pool. Returns the limits found short."""
    resolved = _resolve_ads(cfg, provider)
    shapes = _fitting_shapes(cfg, catalog, report)
    pricings = [True, False] if cfg.gpu_pool.preemptible else [False]
    if cfg.gpu_pool.preemptible and not cfg.gpu_pool.allow_on_demand_fallback:
        pricings = [True]
    nodes = max(cfg.gpu_pool.nodes, 1)
    limits_short: dict[str, int] = {}
    for preemptible in pricings:
        for shape in shapes:
            if preemptible and not shape.preemptible_eligible:
                report.skipped.append(f"{shape.name}: no preemptible capacity on bare metal")
                continue
            for ad in resolved:
                rung = Rung(shape.name, ad, preemptible)
                facts = provider.gpu_availability(shape.name, shape.limit_name, ad)
                need = shape.gpu_count * nodes
                if facts.limit_available is not None and facts.limit_available < need:
                    limits_short[shape.limit_name] = need
                    report.skipped.append(
                        f"{rung.label}: GPU limit {shape.limit_name} has "
                        f"{facts.limit_available} left, needs {need}"
                    )
                    continue
                if facts.capacity not in ("AVAILABLE", "UNKNOWN"):
                    report.skipped.append(f"{rung.label}: capacity report {facts.capacity}")
                    continue
                report.ladder.append(rung)
    return limits_short


def spread_first(ladder: list[Rung]) -> list[Rung]:
    """For ``gpu_pool.placement: spread``: before each (pricing, shape) group's one-AD rungs,
    a rung that spreads the pool over every AD of the group (when there are two or more) —
    replicas then survive an AD outage. The one-AD rungs stay as the fallback."""
    out: list[Rung] = []
    groups: dict[tuple[bool, str], list[Rung]] = {}
    for rung in ladder:
        groups.setdefault((rung.preemptible, rung.shape), []).append(rung)
    for (preemptible, shape), rungs in groups.items():
        ads = tuple(r.availability_domain for r in rungs)
        if len(ads) > 1:
            out.append(Rung(shape, ads[0], preemptible, spread=ads))
        out.extend(rungs)
    return out
