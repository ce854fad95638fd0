"""NIM's management endpoints: ``/v1/version``, ``/v1/metadata``, ``/v1/license``.

Shapes (NIM for LLMs API reference, docs.nvidia.com/nim/large-language-models/…/api-reference):

- ``GET /v1/version`` → ``{"release": "<NIM release>", "api": "<API semver>"}``;
- ``GET /v1/metadata``, NIM 2.x → ``version``, ``modelInfo`` (list), ``assetInfo`` (list),
  ``licenseInfo`` (object), ``profile_id`` and ``profile_name`` of the selected profile;
  NIM 1.x → ``assetInfo``, ``licenseInfo``, ``modelInfo``, ``repository_override``,
  ``version``, ``selectedModelProfileId``;
- ``GET /v1/license`` → ``name`` (basename), ``path`` (in the container), ``sha`` (SHA-1 of
  the content), ``size`` (characters), ``url``, ``type`` ("file") and the ``content``.

Assumed where the docs are silent: the fields of a ``modelInfo`` entry (``shortName``,
``modelUrl``, as NIM 1.x's ModelInfo), ``assetInfo`` entries, the ``api`` value (1.0.0) and
the license text. Profile names follow NIM 2.x (``vllm-<precision>-tp<N>-pp1``) and 1.x
(``vllm-<precision>-tp<N>``); a profile id is the SHA-256 of the name unless the pinned
NIM_MODEL_PROFILE already is a 64-hex id.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from nimble_oke.sim.nim.settings import NimSettings

API_SEMVER = "1.0.0"
LICENSE_PATH = "/opt/nim/LICENSE"
LICENSE_URL = "https://www.nvidia.com/en-us/agreements/enterprise-software/product-specific-terms-for-ai-products/"
LICENSE_TEXT = (
    "GOVERNING TERMS: The NIM container is governed by the NVIDIA Software License Agreement "
    "and the Product-Specific Terms for NVIDIA AI Products. (Emulated by nimble-oke: this is "
    "not the licence text of a real NIM.)\n"
)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def profile_name(settings: NimSettings) -> str:
    """The human-readable name of the profile the NIM selected."""
    pinned = (settings.model_profile or "").strip()
    if pinned and not _HEX64.match(pinned.lower()):
        return pinned
    base = f"vllm-{settings.precision}-tp{settings.gpu_count}"
    return base + "-pp1" if settings.api_version >= 2 else base


def profile_id(settings: NimSettings) -> str:
    """The 64-hex id of the selected profile (what NIM_MODEL_PROFILE also accepts)."""
    pinned = (settings.model_profile or "").strip().lower()
    if _HEX64.match(pinned):
        return pinned
    return hashlib.sha256(f"{settings.model}|{profile_name(settings)}".encode()).hexdigest()


def version(settings: NimSettings) -> dict[str, str]:
    return {"release": settings.nim_release, "api": API_SEMVER}


def license_info(*, with_content: bool = True) -> dict[str, Any]:
    info: dict[str, Any] = {
        "name": LICENSE_PATH.rsplit("/", 1)[-1],
        "path": LICENSE_PATH,
        "sha": hashlib.sha1(LICENSE_TEXT.encode()).hexdigest(),  # noqa: S324 - NIM's field
        "size": len(LICENSE_TEXT),
        "url": LICENSE_URL,
        "type": "file",
    }
    if with_content:
        info["content"] = LICENSE_TEXT
    return info


def metadata(settings: NimSettings) -> dict[str, Any]:
    model_info = [
        {
            "shortName": settings.served_model_name,
            "modelUrl": f"ngc://nim/{settings.model}:{settings.nim_release}",
        }
    ]
    assets = ["tokenizer.json", "config.json", "generation_config.json"]
    if settings.api_version >= 2:
        return {
            "version": settings.nim_release,
            "modelInfo": model_info,
            "assetInfo": [{"name": a} for a in assets],
            "licenseInfo": license_info(with_content=False),
            "profile_id": profile_id(settings),
            "profile_name": profile_name(settings),
        }
    return {
        "assetInfo": assets,
        "licenseInfo": license_info(with_content=False),
        "modelInfo": model_info,
        "repository_override": "",
        "version": settings.nim_release,
        "selectedModelProfileId": profile_id(settings),
    }
