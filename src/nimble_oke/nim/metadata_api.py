"""A client for the NIM Metadata API: which profiles of a NIM image fit the GPUs, before
anything is pulled (docs.nvidia.com/nim/metadata-api).

``fetch_metadata(image)`` → :class:`NimMetadata`, or None when NGC publishes no metadata for
that image and tag (a normal outcome: NIMs released before September 2026 generally lack
it). :func:`fitting_profiles` applies the documented hardware-fit rules: the VRAM floor is
per GPU (``min_vram_per_device_gb``), a profile uses ``tensor_parallel_size ×
pipeline_parallel_size`` GPUs, a GPU-specific profile must match the node's GPU
(``gpu_device``, ``pciDeviceId:pciVendorId``; a string or, in future, a list), and an absent
field means unknown (never false or 0). ``profile_id`` is opaque: compared, never parsed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp

from nimble_oke.errors import EndpointError

NGC_API = "https://api.ngc.nvidia.com/v2"


@dataclass(frozen=True)
class MetadataProfile:
    profile_id: str
    raw: dict[str, Any] = field(repr=False)

    @property
    def name(self) -> str:
        return str(self.raw.get("description") or self.profile_id[:12])

    @property
    def gpus(self) -> int | None:
        tp = self.raw.get("tensor_parallel_size")
        pp = self.raw.get("pipeline_parallel_size", 1)
        return tp * pp if isinstance(tp, int) and isinstance(pp, int) else None

    @property
    def min_vram_gb(self) -> float | None:
        value = self.raw.get("min_vram_per_device_gb")
        return float(value) if isinstance(value, int | float) else None

    @property
    def gpu_devices(self) -> list[str]:
        """The PCI ids the profile targets ([] for a GPU-agnostic profile)."""
        value = self.raw.get("gpu_device")
        if isinstance(value, str):
            return [value.lower()]
        if isinstance(value, list):
            return [str(v).lower() for v in value]
        return []


@dataclass(frozen=True)
class NimMetadata:
    resource_id: str
    tag: str
    profiles: list[MetadataProfile]
    document: dict[str, Any] = field(repr=False)


def resource_of(image: str) -> tuple[str, str]:
    """``nvcr.io/nim/meta/llama-3.1-8b-instruct:2.0.12`` → (``nim/meta/llama-3.1-8b-instruct``,
    ``2.0.12``)."""
    name, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:
        raise ValueError(f"image {image!r} has no tag")
    parts = name.split("/")
    if "." in parts[0] or ":" in parts[0]:
        parts = parts[1:]  # drop the registry host
    return "/".join(parts), tag


async def fetch_metadata(
    image: str, *, base_url: str = NGC_API, timeout_s: float = 15
) -> NimMetadata | None:
    resource_id, tag = resource_of(image)
    url = (
        f"{base_url.rstrip('/')}/nim/metadata?{urlencode({'resourceId': resource_id, 'tag': tag})}"
    )
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as http,
            http.get(url, headers={"accept": "application/json"}) as resp,
        ):
            body = await resp.json(content_type=None)
            status = resp.status
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise EndpointError(f"NIM Metadata API unreachable: {type(exc).__name__}") from None
    if status == 404:
        return None
    if status != 200 or not isinstance(body, dict):
        code = (body.get("requestStatus") or {}) if isinstance(body, dict) else {}
        raise EndpointError(
            f"NIM Metadata API answered HTTP {status} for {resource_id}:{tag}: "
            f"{code.get('statusCode', '?')} {code.get('statusDescription', '')}".rstrip()
        )
    profiles = [
        MetadataProfile(str(p["profile_id"]), p)
        for p in body.get("profiles") or []
        if isinstance(p, dict) and p.get("profile_id")
    ]
    return NimMetadata(resource_id, tag, profiles, body)


def fitting_profiles(
    metadata: NimMetadata,
    *,
    gpu_memory_gb: float,
    gpu_count: int,
    gpu_device: str | None = None,
) -> list[MetadataProfile]:
    """Profiles that fit a node of ``gpu_count`` GPUs of ``gpu_memory_gb`` each (``gpu_device``:
    its PCI id, to match GPU-specific profiles; unknown → GPU-agnostic profiles only).
    A profile whose floor or GPU count is unknown is not claimed to fit."""
    out = []
    for profile in metadata.profiles:
        vram, gpus = profile.min_vram_gb, profile.gpus
        if vram is None or gpus is None or vram > gpu_memory_gb or gpus > gpu_count:
            continue
        devices = profile.gpu_devices
        if devices and (gpu_device is None or gpu_device.lower() not in devices):
            continue
        out.append(profile)
    return sorted(out, key=lambda p: (p.gpus or 0, p.min_vram_gb or 0.0))
