"""The catalog: GPU shapes, prices and NIM models as typed data, and the checks that run
before anything is created.

The data lives in YAML files shipped with the package (``nimble_oke/catalog/*.yaml``);
:mod:`nimble_oke.catalog` loads them. This module is pure: it only interprets them.

Fit rule (why it looks like this): a NIM serves a model with its weights resident on the
GPUs of one node (tensor parallelism across them) plus a KV cache. We require
``weights + minimum KV cache + runtime overhead ≤ usable GPU memory`` where usable memory is
90% of the node's total GPU memory (vLLM/TensorRT-LLM default memory fraction) and the
runtime overhead is 1.5 GB per GPU (CUDA context, activations) — calibration.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nimble_oke.errors import CatalogError

GPU_MEMORY_FRACTION = 0.9  # vLLM gpu_memory_utilization default; calibration.md
RUNTIME_OVERHEAD_GB_PER_GPU = 1.5  # calibration.md: "(0.9 × VRAM − weights − 1.5 GB)"
GIB = 1024**3
KIB = 1024


@dataclass(frozen=True)
class Shape:
    name: str
    gpu_model: str
    gpu_count: int
    gpu_memory_gb: float
    compute_capability: float
    ocpus: int
    memory_gb: int
    kind: str  # "vm" | "bm"
    preemptible_eligible: bool
    limit_name: str
    price_key: str

    @property
    def total_gpu_memory_gb(self) -> float:
        return self.gpu_count * self.gpu_memory_gb

    @property
    def is_bare_metal(self) -> bool:
        return self.kind == "bm"


@dataclass(frozen=True)
class Price:
    key: str
    usd: float
    unit: str
    part: str
    source: str


@dataclass(frozen=True)
class Model:
    name: str
    image: str
    tag: str
    params_b: float
    weights_gb: Mapping[str, float]
    kv_kib_per_token: float
    min_kv_tokens: int
    image_gb: float

    def weights_for(self, precision: str) -> float:
        if precision not in self.weights_gb:
            raise CatalogError(
                f"model {self.name} has no {precision} weights; "
                f"available precisions: {', '.join(sorted(self.weights_gb))}"
            )
        return self.weights_gb[precision]


@dataclass(frozen=True)
class CpuShape:
    """A flexible CPU shape the cache warm-up pool may use; OCI limits count its OCPUs."""

    name: str
    limit_name: str


@dataclass(frozen=True)
class Catalog:
    shapes: Mapping[str, Shape]
    prices: Mapping[str, Price]
    models: Mapping[str, Model]
    precision_min_cc: Mapping[str, float]
    preemptible_discount: float
    hours_per_month: float
    egress_free_gb_per_month: float
    block_min_billed_seconds: float
    prices_as_of: str
    extra: Mapping[str, Any] = field(default_factory=dict)
    cpu_shapes: tuple[CpuShape, ...] = ()

    def shape(self, name: str) -> Shape:
        try:
            return self.shapes[name]
        except KeyError:
            raise CatalogError(
                f"unknown GPU shape '{name}'; known shapes: {', '.join(sorted(self.shapes))}"
            ) from None

    def model(self, name: str) -> Model:
        try:
            return self.models[name]
        except KeyError:
            raise CatalogError(
                f"unknown model '{name}'; known models: {', '.join(sorted(self.models))}"
            ) from None

    def price(self, key: str) -> Price:
        try:
            return self.prices[key]
        except KeyError:
            raise CatalogError(f"no price for '{key}' in the catalog") from None

    def hourly(self, key: str) -> float:
        """Price per hour for per-hour units, per-month units converted with 744 h."""
        price = self.price(key)
        if price.unit.endswith("-month"):
            return price.usd / self.hours_per_month
        return price.usd


@dataclass(frozen=True)
class FitReport:
    shape: str
    fits: bool
    weights_gb: float
    kv_gb_available: float
    kv_tokens: int
    reason: str


def memory_fit(model: Model, precision: str, shape: Shape) -> FitReport:
    """How the model's weights and KV cache fit the shape's GPU memory (see module doc)."""
    weights = model.weights_for(precision)
    usable = GPU_MEMORY_FRACTION * shape.total_gpu_memory_gb
    overhead = RUNTIME_OVERHEAD_GB_PER_GPU * shape.gpu_count
    kv_gb = usable - weights - overhead
    kv_tokens = max(0, int(kv_gb * GIB / (model.kv_kib_per_token * KIB)))
    need = weights + overhead + model.min_kv_tokens * model.kv_kib_per_token * KIB / GIB
    if kv_tokens >= model.min_kv_tokens:
        reason = (
            f"{weights:.1f} GB weights + {overhead:.1f} GB runtime leave {kv_gb:.1f} GB "
            f"for ≈{kv_tokens:,} KV-cache tokens on {shape.gpu_count}× {shape.gpu_model}"
        )
        return FitReport(shape.name, True, weights, kv_gb, kv_tokens, reason)
    reason = (
        f"needs ≈{need:.1f} GB of GPU memory ({weights:.1f} GB {precision} weights + runtime + "
        f"{model.min_kv_tokens:,}-token KV cache) but {shape.name} offers {usable:.1f} GB usable "
        f"({shape.gpu_count}× {shape.gpu_memory_gb:g} GB)"
    )
    return FitReport(shape.name, False, weights, max(kv_gb, 0.0), kv_tokens, reason)


def precision_supported(catalog: Catalog, precision: str, shape: Shape) -> bool:
    return shape.compute_capability >= catalog.precision_min_cc.get(precision, 0.0)


def shapes_that_fit(
    catalog: Catalog, model: Model, precision: str, *, preemptible: bool = False
) -> list[Shape]:
    """Shapes that can serve the model at this precision, cheapest per hour first."""
    out = [
        s
        for s in catalog.shapes.values()
        if precision in model.weights_gb
        and precision_supported(catalog, precision, s)
        and memory_fit(model, precision, s).fits
        and (s.preemptible_eligible or not preemptible)
    ]
    return sorted(out, key=lambda s: (catalog.hourly(s.price_key) * s.gpu_count, s.name))


def check_deployment(
    catalog: Catalog, model_name: str, precision: str, shape_name: str, *, preemptible: bool
) -> FitReport:
    """Refuse impossible combinations before anything is created.

    Checks, each with a precise message and a suggestion: the model fits the shape's GPU
    memory; the precision is supported by the GPU's compute capability; preemptible is
    only asked for a VM shape.
    """
    model = catalog.model(model_name)
    shape = catalog.shape(shape_name)
    model.weights_for(precision)

    def suggest() -> str:
        fits = shapes_that_fit(catalog, model, precision, preemptible=preemptible)
        if fits:
            return f"a shape that fits: {fits[0].name}" + (
                f" (also: {', '.join(s.name for s in fits[1:4])})" if len(fits) > 1 else ""
            )
        alt = [p for p in model.weights_gb if p != precision]
        return (
            f"no shape fits {model.name} at {precision}; try precision {', '.join(alt)}"
            if alt
            else "no catalog shape fits this model"
        )

    need_cc = catalog.precision_min_cc.get(precision, 0.0)
    if shape.compute_capability < need_cc:
        raise CatalogError(
            f"{precision} needs GPU compute capability ≥ {need_cc:g}; {shape.name} has "
            f"{shape.gpu_model} (compute capability {shape.compute_capability:g})",
            hint=suggest(),
        )
    if preemptible and not shape.preemptible_eligible:
        raise CatalogError(
            f"preemptible capacity is offered only on VM shapes; {shape.name} is bare metal",
            hint=suggest(),
        )
    report = memory_fit(model, precision, shape)
    if not report.fits:
        raise CatalogError(
            f"{model.name} does not fit {shape.name}: {report.reason}", hint=suggest()
        )
    return report


def parse_catalog(
    shapes_doc: Mapping[str, Any], prices_doc: Mapping[str, Any], models_doc: Mapping[str, Any]
) -> Catalog:
    """Build a :class:`Catalog` from the three YAML documents (already parsed)."""
    shapes = {
        s["name"]: Shape(
            name=s["name"],
            gpu_model=s["gpu_model"],
            gpu_count=int(s["gpu_count"]),
            gpu_memory_gb=float(s["gpu_memory_gb"]),
            compute_capability=float(s["compute_capability"]),
            ocpus=int(s["ocpus"]),
            memory_gb=int(s["memory_gb"]),
            kind=str(s["kind"]),
            preemptible_eligible=bool(s["preemptible_eligible"]),
            limit_name=str(s["limit_name"]),
            price_key=str(s["price_key"]),
        )
        for s in shapes_doc["shapes"]
    }
    prices = {
        key: Price(key, float(v["usd"]), str(v["unit"]), str(v["part"]), str(v["source"]))
        for key, v in prices_doc["items"].items()
    }
    models = {
        m["name"]: Model(
            name=m["name"],
            image=m["image"],
            tag=str(m["tag"]),
            params_b=float(m["params_b"]),
            weights_gb={k: float(v) for k, v in m["weights_gb"].items()},
            kv_kib_per_token=float(m["kv_kib_per_token"]),
            min_kv_tokens=int(m["min_kv_tokens"]),
            image_gb=float(m["image_gb"]),
        )
        for m in models_doc["models"]
    }
    for shape in shapes.values():
        if shape.price_key not in prices:
            raise CatalogError(f"catalog: shape {shape.name} has no price '{shape.price_key}'")
    return Catalog(
        shapes=shapes,
        prices=prices,
        models=models,
        precision_min_cc={k: float(v) for k, v in models_doc["precision_min_cc"].items()},
        preemptible_discount=float(prices_doc["preemptible_discount"]),
        hours_per_month=float(prices_doc["hours_per_month"]),
        egress_free_gb_per_month=float(prices_doc["egress_free_gb_per_month"]),
        block_min_billed_seconds=float(prices_doc["block_min_billed_seconds"]),
        prices_as_of=str(prices_doc["as_of"]),
        cpu_shapes=tuple(
            CpuShape(str(c["name"]), str(c["limit_name"]))
            for c in shapes_doc.get("cpu_shapes") or []
        ),
    )
