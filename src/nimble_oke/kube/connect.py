"""Connect lightkube to an OKE cluster with a token we compute ourselves.

OKE's kubeconfig names an exec plugin (``oci ce cluster generate-token``); rather than
require the OCI CLI we read the server URL and CA from it and authenticate with a token
from :mod:`nimble_oke.cloud.oci.token`. The token is held in memory only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from nimble_oke.errors import KubeError

FIELD_MANAGER = "nimble-oke"


def server_from_kubeconfig(text: str) -> tuple[str, str | None]:
    """(server URL, base64 CA data or None) of the first cluster in a kubeconfig."""
    try:
        doc = yaml.safe_load(text)
        cluster = doc["clusters"][0]["cluster"]
        return str(cluster["server"]), cluster.get("certificate-authority-data")
    except (yaml.YAMLError, KeyError, IndexError, TypeError) as exc:
        raise KubeError(f"the cluster's kubeconfig is not usable: {exc}") from None


def client_for(kubeconfig_path: Path, token: str, namespace: str = "default") -> Any:
    """A lightkube Client for the kubeconfig's server, authenticated by ``token``."""
    from lightkube import Client, KubeConfig

    server, ca = server_from_kubeconfig(kubeconfig_path.read_text(encoding="utf-8"))
    cluster: dict[str, Any] = {"server": server}
    if ca:
        cluster["certificate-authority-data"] = ca
    config = KubeConfig.from_dict(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "oke", "cluster": cluster}],
            "users": [{"name": "nimble", "user": {"token": token}}],
            "contexts": [
                {
                    "name": "oke",
                    "context": {"cluster": "oke", "user": "nimble", "namespace": namespace},
                }
            ],
            "current-context": "oke",
        }
    )
    return Client(config=config, namespace=namespace, field_manager=FIELD_MANAGER)
