"""The NIM Metadata API (NGC): a NIM's profiles and hardware needs over HTTP, before download.

Documented (docs.nvidia.com/nim/metadata-api, 1.0.0): base ``https://api.ngc.nvidia.com/v2``;
``GET /v2/nim/metadata?resourceId=<org>/<team>/<repo>&tag=<tag>`` or the team-qualified
path form ``GET /v2/nim/<team>/<repo>/<tag>/metadata``; no credentials. 200 with a document
of four optional sections (``profiles``, ``release_details``, ``features``,
``related_urls``); the service never emits null (an unknown field is absent). 404 when the
NIM and tag have no published metadata (a normal outcome), 400 with
``requestStatus.statusCode`` ``INVALID_REQUEST`` for a missing or malformed parameter (a
colon in ``resourceId``, empty path segments, not two or three segments).

Profile fields used here: ``profile_id`` (opaque), ``min_vram_per_device_gb`` (per GPU),
``tensor_parallel_size``, ``pipeline_parallel_size`` (GPUs = tp × pp), ``precision``,
``gpu`` / ``gpu_device`` (``pciDeviceId:pciVendorId``; absent on GPU-agnostic profiles),
``feat_lora``. Assumed where the docs excerpts are silent: the backend field name
(``inference_backend``), the profile ``description`` (NIM's profile name), the 404 status
code name (``NOT_FOUND``) and ``statusDescription``. The emulator publishes metadata for
2.x tags of the models in its catalog: generic vLLM profiles per precision × tp (1, 2, 4,
8) whose VRAM floor is the weights split over tp plus runtime and a minimum KV cache.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

from aiohttp import web

from nimble_oke.sim.nim.catalog import GB, MODELS, ModelSpec
from nimble_oke.sim.nim.settings import api_major

_SEGMENT = re.compile(r"^[A-Za-z0-9._-]+$")
# Runtime per GPU (CUDA context, activations) and the KV cache a profile must leave: 1.5 GB
# (calibration.md, "0.9 × VRAM − weights − 1.5 GB") and ≥ 8,192 tokens of context.
_RUNTIME_GB = 1.5
_MIN_KV_TOKENS = 8192
_VRAM_UTILIZATION = 0.9


def _envelope(status: int, code: str, description: str) -> web.Response:
    body = {
        "requestStatus": {
            "statusCode": code,
            "statusDescription": description,
            "requestId": str(uuid.uuid4()),
        }
    }
    return web.json_response(body, status=status)


def profile_document(model: ModelSpec, tag: str) -> dict[str, Any]:
    profiles: list[dict[str, Any]] = []
    for precision, weights in model.weights_bytes.items():
        for tp in (1, 2, 4, 8):
            name = f"vllm-{precision}-tp{tp}-pp1"
            kv = model.kv_bytes_per_token * _MIN_KV_TOKENS / tp
            vram = ((weights / tp + kv) / GB + _RUNTIME_GB) / _VRAM_UTILIZATION
            profiles.append(
                {
                    "profile_id": hashlib.sha256(f"{model.name}|{name}".encode()).hexdigest(),
                    "description": name,
                    "inference_backend": "vllm",
                    "precision": precision,
                    "tensor_parallel_size": tp,
                    "pipeline_parallel_size": 1,
                    "min_vram_per_device_gb": round(vram, 1),
                    "feat_lora": False,
                    "tested_gpu_devices": [],
                }
            )
    return {
        "profiles": profiles,
        "release_details": {"version": tag, "supported_architectures": ["x86_64", "aarch64"]},
        "features": {"context_window": model.max_model_len, "tool_calling": True},
        "related_urls": [f"https://catalog.ngc.nvidia.com/orgs/nim/teams/{model.name}"],
    }


def _resource(resource_id: str) -> tuple[str, str] | str:
    """(team, repo) of ``nim/<team>/<repo>``, or why the id is refused."""
    if ":" in resource_id:
        return "resourceId must not contain a colon; pass the tag separately"
    parts = resource_id.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        return "resourceId must have two or three non-empty path segments"
    if not all(_SEGMENT.match(p) for p in parts):
        return "resourceId has an invalid path segment"
    if parts[0].lower() != "nim" or len(parts) != 3:
        return ""  # well formed, but nothing is published under it
    return parts[1], parts[2]


class MetadataApi:
    """An aiohttp app serving the NIM Metadata API for the emulator's models."""

    def __init__(self) -> None:
        self.requests = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v2/nim/metadata", self.query_form)
        app.router.add_get("/v2/nim/{team}/{repo}/{tag}/metadata", self.path_form)
        return app

    async def query_form(self, request: web.Request) -> web.Response:
        resource_id = request.query.get("resourceId", "")
        tag = request.query.get("tag", "")
        if not resource_id or not tag:
            return _envelope(400, "INVALID_REQUEST", "resourceId and tag are required")
        return self.answer(resource_id, tag)

    async def path_form(self, request: web.Request) -> web.Response:
        info = request.match_info
        if any(c in info["tag"] for c in ":/"):
            return _envelope(400, "INVALID_REQUEST", "tag must not contain a slash or a colon")
        return self.answer(f"nim/{info['team']}/{info['repo']}", info["tag"])

    def answer(self, resource_id: str, tag: str) -> web.Response:
        self.requests += 1
        resource = _resource(resource_id)
        if isinstance(resource, str) and resource:
            return _envelope(400, "INVALID_REQUEST", resource)
        model = MODELS.get("/".join(resource)) if isinstance(resource, tuple) else None
        if model is None or api_major(tag) < 2 or not _SEGMENT.match(tag):
            return _envelope(404, "NOT_FOUND", f"no metadata published for {resource_id}:{tag}")
        return web.json_response(profile_document(model, tag))
