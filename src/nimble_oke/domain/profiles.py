"""NIM model profiles: which engine × precision × tensor parallelism can run on a GPU shape.

A NIM image carries several *profiles* (``list-model-profiles``; pinned with
``NIM_MODEL_PROFILE``): an engine (TensorRT-LLM, optimized and built per GPU model, or vLLM,
generic), a weights precision and a tensor-parallel degree. Picking one that cannot run is
found out only after the GPU node is billed and the model downloaded, so nimble decides from
the catalog before deploying. Rules (reference/nim.md, calibration.md):

- precision: bf16 needs compute capability ≥ 8.0, fp8 ≥ 8.9 (Ada/Hopper), int4-awq ≥ 8.0 —
  the catalog's ``precision_min_cc``;
- a TensorRT-LLM profile is an engine compiled for one GPU model; on any other GPU it fails
  with "no kernel image is available for execution on the device";
- memory: the catalog's fit rule (:func:`memory_fit`) applied to the ``tp`` GPUs the profile
  uses — weights split across them, the rest (minus runtime) is KV cache;
- tensor parallelism is a power of two no larger than the node's GPU count (attention heads
  split evenly; NIM ships tp1/tp2/tp4/tp8 profiles).

Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from nimble_oke.domain.catalog import Catalog, Model, Shape, memory_fit
from nimble_oke.errors import CatalogError

TENSORRT_LLM = "tensorrt_llm"
VLLM = "vllm"
ENGINES = (TENSORRT_LLM, VLLM)
# TensorRT-LLM engines target Ampere and newer (NIM support matrix: A10G, A100, L40S, H100
# builds; nothing for Volta/Pascal) — reference/nim.md, calibration.md.
TENSORRT_LLM_MIN_CC = 8.0
# Display order: most accurate first (quantization trades accuracy for memory).
PRECISION_ORDER = ("bf16", "fp16", "fp8", "int4-awq")
# A recommended profile leaves KV cache for several concurrent long requests: more than 4 ×
# the model's minimum context (a profile that barely fits serves one or two at a time).
COMFORTABLE_KV_FACTOR = 4

_PROFILE_RE = re.compile(
    r"^(?P<engine>tensorrt_llm|vllm)-(?:(?P<gpu>[a-z0-9.\-]+?)-)?"
    r"(?P<precision>bf16|fp16|fp8|int4-awq)-tp(?P<tp>\d+)"
    r"(?:-pp(?P<pp>\d+))?(?P<lora>-(?:feat_)?lora)?(?:-(?P<goal>latency|throughput))?$"
)


@dataclass(frozen=True)
class ProfileSpec:
    """A profile as NIM names it: ``tensorrt_llm-a10-bf16-tp2`` or ``vllm-bf16-tp1``."""

    engine: str
    precision: str
    tensor_parallel: int
    gpu_model: str | None = None  # the GPU a TensorRT-LLM engine was built for
    pipeline_parallel: int | None = None  # NIM 2.x names carry it (``-pp1``)
    lora: bool = False  # NIM 2.x ``-lora`` profiles load LoRA adapters

    @property
    def name(self) -> str:
        gpu = f"{gpu_slug(self.gpu_model)}-" if self.gpu_model else ""
        pp = f"-pp{self.pipeline_parallel}" if self.pipeline_parallel is not None else ""
        lora = "-lora" if self.lora else ""
        return f"{self.engine}-{gpu}{self.precision}-tp{self.tensor_parallel}{pp}{lora}"

    @property
    def nim_major(self) -> int | None:
        """2 for a NIM 2.x name (``-pp<N>``), 1 for a TensorRT-LLM one, None if either."""
        if self.pipeline_parallel is not None or self.lora:
            return 2
        return 1 if self.engine == TENSORRT_LLM else None


@dataclass(frozen=True)
class ProfileOption:
    """One candidate profile for a model on a shape, with the decision and why."""

    spec: ProfileSpec
    fits: bool
    reason: str
    weights_gb: float
    kv_tokens: int
    gpus_used: int
    recommended: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "profile": self.spec.name,
            "engine": self.spec.engine,
            "precision": self.spec.precision,
            "tensor_parallel": self.spec.tensor_parallel,
            "gpu_model": self.spec.gpu_model,
            "fits": self.fits,
            "recommended": self.recommended,
            "weights_gb": round(self.weights_gb, 2),
            "kv_cache_tokens": self.kv_tokens,
            "gpus_used": self.gpus_used,
            "reason": self.reason,
        }


def image_major(tag: str | None) -> int:
    """NIM major version of an image tag, as the chart reads it (``1.x`` → 1, else 2)."""
    return 1 if (tag or "").startswith("1.") else 2


def gpu_slug(gpu_model: str) -> str:
    """``A100-80GB`` → ``a100-80gb`` (NIM profile names are lower case)."""
    return gpu_model.lower()


def parse_profile(text: str) -> ProfileSpec:
    """Parse a NIM profile name (``NIM_MODEL_PROFILE``); a hash id is not decidable here."""
    match = _PROFILE_RE.match(text.strip().lower())
    if match is None:
        raise CatalogError(
            f"cannot read NIM profile {text!r}",
            hint="use a name like tensorrt_llm-h100-fp8-tp1 or vllm-bf16-tp1 "
            "(nimble profiles MODEL --shape S lists them)",
        )
    engine = match["engine"]
    gpu = match["gpu"]
    if engine == TENSORRT_LLM and not gpu:
        raise CatalogError(
            f"NIM profile {text!r}: a TensorRT-LLM profile names the GPU it was built for",
            hint="e.g. tensorrt_llm-a10-bf16-tp1",
        )
    pp = int(match["pp"]) if match["pp"] else None
    return ProfileSpec(
        engine, match["precision"], int(match["tp"]), gpu if gpu else None, pp, bool(match["lora"])
    )


def tensor_parallel_degrees(gpu_count: int) -> list[int]:
    """Powers of two up to the node's GPU count: 1, 2, 4, 8."""
    out, tp = [], 1
    while tp <= gpu_count:
        out.append(tp)
        tp *= 2
    return out


def evaluate(catalog: Catalog, model: Model, shape: Shape, spec: ProfileSpec) -> ProfileOption:
    """Decide whether one profile runs on the shape; the reason names the first blocker."""
    precision = spec.precision
    weights = model.weights_gb.get(precision, 0.0)
    blocked = _blocker(catalog, model, shape, spec)
    if blocked is not None:
        return ProfileOption(spec, False, blocked, weights, 0, spec.tensor_parallel)
    used = replace(shape, gpu_count=spec.tensor_parallel)
    fit = memory_fit(model, precision, used)
    reason = fit.reason
    if not fit.fits and used.gpu_count < shape.gpu_count:
        reason = f"at tp{used.gpu_count} ({used.gpu_count} of {shape.gpu_count} GPUs): {reason}"
    return ProfileOption(spec, fit.fits, reason, fit.weights_gb, fit.kv_tokens, used.gpu_count)


def _blocker(catalog: Catalog, model: Model, shape: Shape, spec: ProfileSpec) -> str | None:
    if spec.engine not in ENGINES:
        return f"unknown engine {spec.engine!r} (known: {', '.join(ENGINES)})"
    if spec.precision not in model.weights_gb:
        return (
            f"{model.name} has no {spec.precision} weights "
            f"(available: {', '.join(sorted(model.weights_gb))})"
        )
    need_cc = catalog.precision_min_cc.get(spec.precision, 0.0)
    if shape.compute_capability < need_cc:
        return (
            f"{spec.precision} needs compute capability ≥ {need_cc:g}; {shape.gpu_model} has "
            f"{shape.compute_capability:g}"
        )
    if spec.engine == TENSORRT_LLM:
        if shape.compute_capability < TENSORRT_LLM_MIN_CC:
            return (
                f"no TensorRT-LLM engines for {shape.gpu_model} (compute capability "
                f"{shape.compute_capability:g} < {TENSORRT_LLM_MIN_CC:g})"
            )
        if spec.gpu_model and gpu_slug(spec.gpu_model) != gpu_slug(shape.gpu_model):
            return (
                f"TensorRT-LLM engine built for {spec.gpu_model}, not {shape.gpu_model}: it "
                "fails with 'no kernel image is available for execution on the device'"
            )
    if spec.pipeline_parallel and spec.pipeline_parallel > 1:
        return (
            f"pipeline parallelism {spec.pipeline_parallel} spans {spec.pipeline_parallel} nodes "
            "(a multi-node NIM); nimble deploys each replica on one node"
        )
    tp = spec.tensor_parallel
    if tp not in tensor_parallel_degrees(shape.gpu_count):
        return (
            f"tensor parallelism {tp} needs {tp} GPUs in one node; {shape.name} has "
            f"{shape.gpu_count} (allowed: {', '.join(map(str, tensor_parallel_degrees(shape.gpu_count)))})"
        )
    return None


def candidate_specs(model: Model, shape: Shape, image_tag: str | None = None) -> list[ProfileSpec]:
    """Every profile worth showing for the shape: the image's engines × the model's
    precisions × tp 1..gpu_count. NIM 1.x images carry TensorRT-LLM engines (built for this
    shape's GPU) and vLLM; NIM 2.x images vLLM only, named ``vllm-<precision>-tp<N>-pp1``
    (1.x→2.0 migration guide; model profiles docs). ``image_tag``: default the model's."""
    v2 = image_major(image_tag if image_tag is not None else model.tag) >= 2
    precisions = [p for p in PRECISION_ORDER if p in model.weights_gb]
    precisions += sorted(p for p in model.weights_gb if p not in PRECISION_ORDER)
    specs = []
    for engine in (VLLM,) if v2 else ENGINES:
        for precision in precisions:
            for tp in tensor_parallel_degrees(shape.gpu_count):
                gpu = shape.gpu_model if engine == TENSORRT_LLM else None
                specs.append(ProfileSpec(engine, precision, tp, gpu, 1 if v2 else None))
    return specs


def list_profiles(
    catalog: Catalog, model_name: str, shape_name: str, *, image_tag: str | None = None
) -> list[ProfileOption]:
    """All candidate profiles for the model on the shape, each with fits yes/no and why; the
    one NIM should be pinned to is marked ``recommended``: among the profiles that fit with a
    comfortable KV cache (else among all that fit), the first by :func:`_preference`.
    ``image_tag``: the NIM image's tag (default the catalog's), which decides 1.x or 2.x."""
    model = catalog.model(model_name)
    shape = catalog.shape(shape_name)
    specs = candidate_specs(model, shape, image_tag)
    options = [evaluate(catalog, model, shape, spec) for spec in specs]
    fitting = [o for o in options if o.fits]
    if not fitting:
        return options
    roomy = [o for o in fitting if o.kv_tokens > COMFORTABLE_KV_FACTOR * model.min_kv_tokens]
    best = min(roomy or fitting, key=_preference)
    return [replace(o, recommended=True) if o is best else o for o in options]


def _preference(option: ProfileOption) -> tuple[int, int, int]:
    """TensorRT-LLM before vLLM (2-4× faster, reference doc item 4); the most accurate
    precision that fits; the fewest GPUs (the others stay free for more replicas)."""
    spec = option.spec
    precision_rank = (
        PRECISION_ORDER.index(spec.precision) if spec.precision in PRECISION_ORDER else 99
    )
    return (ENGINES.index(spec.engine), precision_rank, spec.tensor_parallel)


def check_profile(
    catalog: Catalog, model_name: str, shape_name: str, profile: str | ProfileSpec
) -> ProfileOption:
    """Refuse a profile that cannot run on the shape, before anything is deployed.

    Raises :class:`CatalogError` naming the reason, with a profile that does fit as the hint.
    A TensorRT-LLM profile without a GPU in its name is read as built for this shape's GPU.
    """
    model = catalog.model(model_name)
    shape = catalog.shape(shape_name)
    spec = parse_profile(profile) if isinstance(profile, str) else profile
    option = evaluate(catalog, model, shape, spec)
    if option.fits:
        return option
    fitting = [o for o in list_profiles(catalog, model_name, shape_name) if o.fits]
    if fitting:
        best = next(o for o in fitting if o.recommended)
        hint = f"a profile that fits {shape.name}: {best.spec.name}"
        others = [o.spec.name for o in fitting if o is not best][:3]
        if others:
            hint += f" (also: {', '.join(others)})"
    else:
        hint = f"no profile of {model.name} fits {shape.name}; choose a larger shape"
    raise CatalogError(
        f"NIM profile {spec.name} cannot run {model.name} on {shape.name}: {option.reason}",
        hint=hint,
    )


_PROFILE_ID = re.compile(r"^[0-9a-f]{64}$")


def check_profile_major(spec: ProfileSpec, image_tag: str) -> None:
    """Refuse a profile name of the other NIM major: 2.x runs vLLM profiles named
    ``vllm-<precision>-tp<N>-pp<M>`` (1.x→2.0 migration guide; model profiles docs), 1.x
    names have no ``-pp``."""
    major = image_major(image_tag)
    if major >= 2 and spec.engine == TENSORRT_LLM:
        raise CatalogError(
            f"NIM profile {spec.name} is a NIM 1.x TensorRT-LLM profile; image tag {image_tag} "
            "is NIM 2.x, which runs vLLM profiles only",
            hint=f"use vllm-{spec.precision}-tp{spec.tensor_parallel}-pp1",
        )
    if major == 1 and spec.nim_major == 2:
        raise CatalogError(
            f"NIM profile {spec.name} is a NIM 2.x profile name; image tag {image_tag} is NIM 1.x",
            hint=f"use vllm-{spec.precision}-tp{spec.tensor_parallel} or a 2.x image tag",
        )


def check_deploy_profile(
    catalog: Catalog,
    model_name: str,
    shape_name: str,
    precision: str,
    profile: str | None,
    image_tag: str | None = None,
) -> ProfileOption | None:
    """The check ``nimble up``/``plan`` runs before deploying (``nim.model_profile``).

    No profile pinned → None (NIM picks one itself at start-up). A 64-hex profile id cannot
    be decided from the catalog → None. A profile name must agree with ``nim.precision``,
    with the image's NIM major (``image_tag``, when given) and pass :func:`check_profile`;
    otherwise :class:`CatalogError` with a suggestion.
    """
    if not profile or _PROFILE_ID.match(profile.strip().lower()):
        return None
    spec = parse_profile(profile)
    if image_tag is not None:
        check_profile_major(spec, image_tag)
    if spec.precision != precision:
        raise CatalogError(
            f"nim.model_profile {spec.name} is {spec.precision} but nim.precision is {precision}",
            hint=f"set nim.precision: {spec.precision}, or pick a {precision} profile "
            f"(nimble profiles {model_name} --shape {shape_name})",
        )
    return check_profile(catalog, model_name, shape_name, spec)
