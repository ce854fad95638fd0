"""OCI GPU shapes as the simulated nodes present them."""

from __future__ import annotations

# OCI GPU shapes: (OCPUs, memory GB, GPUs, GPU model) from OCI's compute shape docs.
GPU_SHAPES: dict[str, tuple[int, int, int, str]] = {
    "VM.GPU.A10.1": (15, 240, 1, "A10"),
    "VM.GPU.A10.2": (30, 480, 2, "A10"),
    "BM.GPU.A10.4": (64, 1024, 4, "A10"),
    "VM.GPU2.1": (12, 72, 1, "P100"),
    "VM.GPU3.1": (6, 90, 1, "V100"),
    "VM.GPU3.2": (12, 180, 2, "V100"),
    "VM.GPU3.4": (24, 360, 4, "V100"),
    "BM.GPU4.8": (64, 2048, 8, "A100"),
    "BM.GPU.A100-v2.8": (128, 2048, 8, "A100"),
    "BM.GPU.H100.8": (112, 2048, 8, "H100"),
    "BM.GPU.L40S.4": (112, 1024, 4, "L40S"),
}


def gpu_model(shape: str) -> str | None:
    """The GPU model of an instance type (None for a shape we do not know)."""
    entry = GPU_SHAPES.get(shape)
    return entry[3] if entry else None
