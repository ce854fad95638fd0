"""Settings of one emulated NIM process, read from the same environment a NIM pod gets."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from nimble_oke.sim.nim.catalog import (
    CUDA_OVERHEAD_BYTES,
    DEFAULT_MODEL,
    GIB,
    GPU_MEMORY_UTILIZATION,
    GpuSpec,
    ModelSpec,
    gpu_spec,
    model_spec,
)

# NGC weight download ≈15 GB in 46–72 s ≈ 210–330 MB/s (calibration.md: NVCF log,
# kserve-nim-playground); we take the middle.
DEFAULT_DOWNLOAD_BYTES_PER_S = 250e6
# Weights load 14.96 GB in ≈5 s from local disk (calibration.md: NIM 1.0 start on a warm GPU
# node, "weights load +5 s") ≈ 3 GB/s. A slow volume is modelled by lowering this.
DEFAULT_LOAD_BYTES_PER_S = 3e9
# Profile selection +2 s; KV sizing / CUDA graphs +9 s (calibration.md, NVCF NIM log).
PROFILE_SELECT_S = 2.0
ENGINE_START_S = 9.0
# Host memory the process needs: not published. Assumption: ≈4 GiB runtime (CUDA context,
# Python, tokenizer) plus one weight shard staged in host memory while loading.
RUNTIME_BASE_BYTES = 4 * GIB
# vLLM's default max_num_seqs (the `num_request_max` gauge).
DEFAULT_MAX_RUNNING = 256
# Waiting requests above which the server answers 429 instead of queueing.
DEFAULT_MAX_WAITING = 1024

ENGINES = ("emulator", "llama-cpp")
# The NIM release an emulator announces at /v1/version when the image tag does not say:
# 2.0.12 is a published tag of nvcr.io/nim/meta/llama-3.1-8b-instruct (NIM Metadata API
# docs' example; NIM 2.0.12 runs vLLM 0.27.1).
DEFAULT_NIM_RELEASE = "2.0.12"
_TAG_RE = re.compile(r":(?P<tag>[0-9][^@/]*)(?:@.*)?$")
# vLLM's default max_num_batched_tokens for the OpenAI server: 8192 on GPUs with ≥ 70 GiB,
# 2048 on smaller ones (EngineArgs usage-context defaults).
_BIG_GPU_BYTES = 70 * GIB
_PRECISIONS = ("int4-awq", "fp8", "bf16", "fp16")
_IMAGE_RE = re.compile(r"^(?:[^/]+\.[^/]+/)?(?:nim/)?(?P<repo>[^:@]+)")


def model_from_image(image: str) -> str:
    """``nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.0`` → ``meta/llama-3.1-8b-instruct``."""
    match = _IMAGE_RE.match(image.strip())
    if not match:
        raise ValueError(f"cannot read a model name from image {image!r}")
    return match.group("repo")


# vLLM engine arguments a NIM 2.x container takes in NIM_PASSTHROUGH_ARGS that change what
# the emulator models (the advanced-configuration page: passthrough arguments override the
# NIM_* variables).
_PASSTHROUGH = {
    "--max-num-seqs": "max_running",
    "--max-num-batched-tokens": "max_batched_tokens",
    "--max-model-len": "max_model_len",
}


def passthrough_overrides(args: str | None) -> dict[str, int]:
    """Settings from NIM_PASSTHROUGH_ARGS (``--flag N`` or ``--flag=N``); others ignored."""
    import shlex

    out: dict[str, int] = {}
    try:
        words = shlex.split(args or "")
    except ValueError:
        return out
    for i, word in enumerate(words):
        flag, _, value = word.partition("=")
        if flag in _PASSTHROUGH:
            if not value and i + 1 < len(words):
                value = words[i + 1]
            if value.isdigit() and int(value) > 0:
                out[_PASSTHROUGH[flag]] = int(value)
    return out


def release_from_image(image: str | None) -> str:
    """The NIM release in an image tag (``...:1.8.0`` → ``1.8.0``); the default otherwise."""
    match = _TAG_RE.search(image.strip()) if image else None
    return match.group("tag") if match else DEFAULT_NIM_RELEASE


def api_major(release: str) -> int:
    """1 for a NIM 1.x release, 2 for 2.x and later (unparsable: 2)."""
    head = release.split(".", 1)[0]
    return 1 if head == "1" else 2


def precision_from_profile(profile: str | None) -> str:
    """The precision named in a NIM_MODEL_PROFILE (e.g. ``vllm-bf16-tp1``); bf16 if none."""
    if profile:
        lowered = profile.lower()
        for precision in _PRECISIONS:
            if precision in lowered or precision.replace("-", "_") in lowered:
                return precision
    return "bf16"


@dataclass
class NimSettings:
    """Everything one emulated NIM process needs. Build it with :meth:`from_env`."""

    model: str = DEFAULT_MODEL
    served_model_name: str = DEFAULT_MODEL
    gpu: str = "A10"
    gpu_count: int = 1
    cache_path: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "nim-cache")
    time_scale: float = 1.0
    download_bytes_per_s: float = DEFAULT_DOWNLOAD_BYTES_PER_S
    load_bytes_per_s: float = DEFAULT_LOAD_BYTES_PER_S
    profile_select_s: float = PROFILE_SELECT_S
    engine_start_s: float = ENGINE_START_S
    weights_bytes: int = 0  # 0 → from the model table and precision
    precision: str = "bf16"
    model_profile: str | None = None
    file_scale: float = 1e-6
    reject_max_completion_tokens: bool = False
    seed: int = 0
    engine: str = "emulator"
    zero_delay: bool = False  # no serving delays (prefill/decode): measures client overhead
    instant_start: bool = False  # cold start phases and files without waiting
    ngc_api_key: str | None = field(default=None, repr=False)
    port: int = 8000
    max_running: int = DEFAULT_MAX_RUNNING
    max_waiting: int = DEFAULT_MAX_WAITING
    kv_capacity_tokens: int = 0  # 0 → computed from GPU memory, weights and KV per token
    max_model_len: int = 0  # NIM_MAX_MODEL_LEN; 0 → min(model's context, KV capacity)
    perf_scale: float = 1.0  # multiplies every serving delay (prefill, decode steps)
    remove_cache_on_stop: bool = False  # True when from_env created a private temp cache
    nim_release: str = DEFAULT_NIM_RELEASE  # /v1/version; its major picks the API (1.x/2.x)
    max_batched_tokens: int = 0  # vLLM max_num_batched_tokens; 0 → by GPU memory

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if self.gpu_count < 1:
            raise ValueError("gpu_count must be >= 1")
        self.gpu = gpu_spec(self.gpu).name
        self.cache_path = Path(self.cache_path)
        if not self.weights_bytes:
            self.weights_bytes = self.model_spec.weights_for(self.precision)
        if not self.kv_capacity_tokens:
            self.kv_capacity_tokens = self._computed_kv_capacity()
        if not self.max_batched_tokens:
            big = self.gpu_spec.memory_bytes >= _BIG_GPU_BYTES
            self.max_batched_tokens = 8192 if big else 2048

    @property
    def api_version(self) -> int:
        """1 for NIM 1.x behaviour (flat errors, nvext, no n > 1), 2 for NIM 2.x (vLLM)."""
        return api_major(self.nim_release)

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str],
        *,
        model: str | None = None,
        gpu: str = "A10",
        gpu_count: int = 1,
        time_scale: float = 1.0,
        image: str | None = None,
        **overrides: object,
    ) -> NimSettings:
        """Settings from a NIM container environment (NIM_CACHE_PATH, NIM_SERVED_MODEL_NAME,
        NIM_MODEL_PROFILE, NGC_API_KEY, NIM_SERVER_PORT, NIM_MAX_MODEL_LEN).
        Without NIM_CACHE_PATH a private temporary cache is created (and removed when the
        emulator stops). The image tag's major version picks NIM 1.x or 2.x behaviour."""
        if model is None:
            model = model_from_image(image) if image else DEFAULT_MODEL
        cache_env = env.get("NIM_CACHE_PATH")
        remove = False
        if cache_env:
            cache_path = Path(cache_env)
        else:
            cache_path = Path(tempfile.mkdtemp(prefix="nim-cache-"))
            remove = True
        profile = env.get("NIM_MODEL_PROFILE") or None
        kwargs: dict[str, object] = {
            "model": model,
            "served_model_name": env.get("NIM_SERVED_MODEL_NAME") or model,
            "gpu": gpu,
            "gpu_count": gpu_count,
            "cache_path": cache_path,
            "time_scale": time_scale,
            "model_profile": profile,
            "precision": precision_from_profile(profile),
            "ngc_api_key": env.get("NGC_API_KEY") or None,
            "port": int(env.get("NIM_SERVER_PORT") or 8000),
            "max_model_len": int(env.get("NIM_MAX_MODEL_LEN") or 0),
            "remove_cache_on_stop": remove,
            "nim_release": release_from_image(image),
        }
        if api_major(str(kwargs["nim_release"])) >= 2:
            kwargs.update(passthrough_overrides(env.get("NIM_PASSTHROUGH_ARGS")))
        kwargs.update(overrides)
        return cls(**kwargs)  # type: ignore[arg-type]

    @property
    def model_spec(self) -> ModelSpec:
        return model_spec(self.model)

    @property
    def gpu_spec(self) -> GpuSpec:
        return gpu_spec(self.gpu)

    @property
    def size_ratio(self) -> float:
        """Weight bytes relative to the 8B bf16 model the per-GPU figures were measured on."""
        return self.weights_bytes / model_spec(DEFAULT_MODEL).weights_for("bf16")

    @property
    def effective_max_model_len(self) -> int:
        """The context length served: NIM_MAX_MODEL_LEN, else what the KV cache can hold."""
        if self.max_model_len:
            return self.max_model_len
        return min(self.model_spec.max_model_len, self.kv_capacity_tokens)

    @property
    def required_memory_bytes(self) -> int:
        """Host memory the process needs (see RUNTIME_BASE_BYTES)."""
        shard = self.weights_bytes // max(1, self.model_spec.shard_count)
        return RUNTIME_BASE_BYTES + shard

    def _computed_kv_capacity(self) -> int:
        vram = self.gpu_spec.memory_bytes * self.gpu_count
        free = (
            GPU_MEMORY_UTILIZATION * vram
            - self.weights_bytes
            - CUDA_OVERHEAD_BYTES * self.gpu_count
        )
        return max(0, int(free // self.model_spec.kv_bytes_per_token))
