"""OKE cluster tokens computed by the project itself (no OCI CLI needed).

This is what ``oci ce cluster generate-token`` does (oke.md): sign a GET of
``https://containerengine.<region>.oraclecloud.com/cluster_request/<cluster>`` with the
SDK's request signer and base64url-encode that URL with the ``authorization`` and
``date`` headers as query parameters. Sent as ``Authorization: Bearer <token>``; OKE
accepts it for about 4 minutes, so clients refresh it before then.
"""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import Mapping
from typing import Any

import oci
from oci._vendor import requests  # the SDK signs its own vendored requests objects

TOKEN_LIFETIME_S = 240


def signer_from_config(config: Mapping[str, Any]) -> Any:
    return oci.signer.Signer(
        tenancy=config["tenancy"],
        user=config["user"],
        fingerprint=config["fingerprint"],
        private_key_file_location=config.get("key_file"),
        pass_phrase=config.get("pass_phrase"),
        private_key_content=config.get("key_content"),
    )


def generate_token(signer: Any, cluster_id: str, region: str) -> str:
    url = f"https://containerengine.{region}.oraclecloud.com/cluster_request/{cluster_id}"
    request = requests.Request("GET", url).prepare()
    signer(request)
    params = {
        "authorization": request.headers["authorization"],
        "date": request.headers["date"],
    }
    full = f"{url}?{urllib.parse.urlencode(params)}"
    return base64.urlsafe_b64encode(full.encode()).decode()
