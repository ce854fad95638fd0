"""Built-in model and GPU tables for the NIM emulator's cold-start and performance models.

Figures come from /work/shared/reference/calibration.md (cited per constant) and match the
project catalog (``nimble_oke/catalog/models.yaml``, ``shapes.yaml``). The emulator keeps its
own copy so that the simulator never depends on the planner's code.
"""

from __future__ import annotations

from dataclasses import dataclass

GB = 1_000_000_000
GIB = 1024**3
KIB = 1024


@dataclass(frozen=True)
class ModelSpec:
    """What the emulator needs to know about a model."""

    name: str
    weights_bytes: dict[str, int]  # per precision
    kv_bytes_per_token: int
    max_model_len: int
    shard_count: int
    # Tokenizer vocabulary size (Llama 3: 128,256; SmolLM2: 49,152; Mistral v0.3: 32,768 —
    # the models' public tokenizer configs).
    vocab_size: int = 128_256

    def weights_for(self, precision: str) -> int:
        if precision in self.weights_bytes:
            return self.weights_bytes[precision]
        return self.weights_bytes["bf16"]


MODELS: dict[str, ModelSpec] = {
    # 8B bf16 weights loaded: 14.96 GB (calibration.md, NVIDIA Cloud Functions NIM log);
    # KV per token 128 KiB = 32 layers × 8 KV heads × 128 dims × 2 × 2 bytes (calibration.md).
    "meta/llama-3.1-8b-instruct": ModelSpec(
        "meta/llama-3.1-8b-instruct",
        {"bf16": int(14.96 * GB), "fp8": int(8.5 * GB), "int4-awq": int(5.5 * GB)},
        128 * KIB,
        131_072,
        4,
    ),
    # 1.24 B params × 2 bytes (catalog/models.yaml); KV 16 layers × 8 heads × 64 dims × 2 × 2.
    "meta/llama-3.2-1b-instruct": ModelSpec(
        "meta/llama-3.2-1b-instruct",
        {"bf16": int(2.5 * GB), "fp8": int(1.4 * GB)},
        32 * KIB,
        131_072,
        1,
    ),
    # 70B bf16 ≈ 131 GB (calibration.md, NIM support matrix); KV 320 KiB per token.
    "meta/llama-3.3-70b-instruct": ModelSpec(
        "meta/llama-3.3-70b-instruct",
        {"bf16": int(131 * GB), "fp8": int(68 * GB), "int4-awq": int(38 * GB)},
        320 * KIB,
        131_072,
        30,
    ),
    "meta/llama-3.1-70b-instruct": ModelSpec(
        "meta/llama-3.1-70b-instruct",
        {"bf16": int(131 * GB), "fp8": int(68 * GB), "int4-awq": int(38 * GB)},
        320 * KIB,
        131_072,
        30,
    ),
    "mistralai/mistral-7b-instruct-v0.3": ModelSpec(
        "mistralai/mistral-7b-instruct-v0.3",
        {"bf16": int(14.5 * GB), "fp8": int(7.5 * GB)},
        128 * KIB,
        32_768,
        3,
        32_768,
    ),
    # The tiny demo/test model (catalog/models.yaml: 0.27 GB bf16, 9 KiB KV per token).
    "nimble/smollm2-135m-instruct": ModelSpec(
        "nimble/smollm2-135m-instruct",
        {"bf16": int(0.27 * GB)},
        9 * KIB,
        8_192,
        1,
        49_152,
    ),
}

DEFAULT_MODEL = "meta/llama-3.1-8b-instruct"
TINY_MODEL = "nimble/smollm2-135m-instruct"


def model_spec(name: str) -> ModelSpec:
    """The spec of ``name``; unknown models are treated as 8B-class (logged by the caller)."""
    spec = MODELS.get(name)
    if spec is not None:
        return spec
    base = MODELS[DEFAULT_MODEL]
    return ModelSpec(name, base.weights_bytes, base.kv_bytes_per_token, base.max_model_len, 4)


@dataclass(frozen=True)
class GpuSpec:
    """Per-GPU performance for an 8B-class model (scaled by weight size for other models).

    ``decode_base_ms`` + ``decode_per_seq_ms`` × batch is the time of one decode step (one
    token for every running sequence); prefill runs at ``prefill_tok_s``.
    """

    name: str
    memory_bytes: int
    compute_capability: float
    prefill_tok_s: float
    decode_base_ms: float
    decode_per_seq_ms: float


GPUS: dict[str, GpuSpec] = {
    # H100 80GB: prefill ≈55–57k tok/s (TensorRT-LLM perf docs, fp8); decode ITL 4.63 ms at
    # c=1 → 12.65 ms at c=200 (NIM benchmark page, NIM 1.8 Llama-3.1-8B): ≈0.04 ms/seq.
    "H100": GpuSpec("H100", 80 * GB, 9.0, 56_000, 4.6, 0.04),
    # A100 80GB: prefill ≈15.4k tok/s (TensorRT-LLM fp16); decode 12.0 ms at b≈10 and ≈31 ms
    # at b60 (LambdaLabs vLLM benchmark; derived) → base 8.2 ms, 0.38 ms/seq.
    "A100-80GB": GpuSpec("A100-80GB", 80 * GB, 8.0, 15_400, 8.2, 0.38),
    # A100 40GB: prefill ≈15k (assumed as 80GB); decode b1 13.3 ms, b8 ≈16 ms → 0.386 ms/seq.
    "A100-40GB": GpuSpec("A100-40GB", 40 * GB, 8.0, 15_000, 12.9, 0.386),
    # L40S 48GB: prefill ≈28k (fp8); decode b1 ≥18.6 ms (bandwidth floor), b64 ≈20–40 ms.
    "L40S": GpuSpec("L40S", 48 * GB, 8.9, 28_000, 18.6, 0.18),
    # A10 24GB: not published — prefill ≈40% of A100 (≈6k tok/s); decode b1 ≥27 ms (16 GB ÷
    # 600 GB/s floor), growing with batch as A100 does (≈3% of base per sequence).
    "A10": GpuSpec("A10", 24 * GB, 8.6, 6_000, 27.0, 0.81),
    # Older GPUs exist on OCI but cannot run bf16/fp8 profiles (calibration.md / nim.md).
    "V100": GpuSpec("V100", 16 * GB, 7.0, 4_000, 30.0, 1.0),
    "P100": GpuSpec("P100", 16 * GB, 6.0, 2_000, 45.0, 1.5),
}

_GPU_ALIASES = {
    "A100": "A100-80GB",
    "A100-80G": "A100-80GB",
    "A100-40G": "A100-40GB",
    "A100-80": "A100-80GB",
    "A100-40": "A100-40GB",
    "H100-80GB": "H100",
    "A10G": "A10",
}

# Minimum compute capability per precision (nim.md: bf16 ≥ 8.0, fp8 ≥ 8.9).
PRECISION_MIN_CC = {"fp16": 7.0, "bf16": 8.0, "int4-awq": 8.0, "fp8": 8.9}

# KV capacity ≈ (0.9 × VRAM − weights − 1.5 GB) ÷ KV per token (calibration.md, derived).
GPU_MEMORY_UTILIZATION = 0.9
CUDA_OVERHEAD_BYTES = int(1.5 * GB)


def gpu_spec(name: str) -> GpuSpec:
    """The spec of a GPU model name (case-insensitive, common aliases accepted)."""
    key = name.strip().upper().replace("_", "-")
    key = _GPU_ALIASES.get(key, key)
    for gpu_name, spec in GPUS.items():
        if gpu_name.upper() == key:
            return spec
    raise ValueError(f"unknown GPU {name!r}; known: {', '.join(GPUS)}")
