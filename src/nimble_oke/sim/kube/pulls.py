"""Image pulls: registry credentials from pull secrets, and the containerd error text."""

from __future__ import annotations

import base64
import json

from .cluster import SECRETS, SERVICE_ACCOUNTS
from .images import ImageEntry, needs_credentials, normalize, registry_of
from .provisioners import PullAuth
from .store import Obj, Store

# Image pull throughput: ≈55 MB/s observed for a 5.6 GB image on a cloud node
# (calibration.md, "cold-start phases on a cloud", KAITO issue 2325).
PULL_BYTES_PER_S = 55e6


def go_duration(seconds: float) -> str:
    """Go's time.Duration formatting, as in kubelet messages ("3m38.181s")."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    out = f"{hours}h" if hours else ""
    out += f"{minutes}m" if hours or minutes else ""
    return out + f"{secs:.3f}".rstrip("0").rstrip(".") + "s"


def pull_credentials(
    store: Store, namespace: str, spec: Obj, registry: str
) -> tuple[str, str] | None:
    """(user, password) for ``registry`` from the pod's and its ServiceAccount's pull secrets."""
    names = [s.get("name") for s in spec.get("imagePullSecrets") or []]
    sa = store.get(SERVICE_ACCOUNTS, namespace, spec.get("serviceAccountName", "default"))
    names += [s.get("name") for s in (sa or {}).get("imagePullSecrets") or []]
    for name in names:
        secret = store.get(SECRETS, namespace, name or "")
        if secret is None:
            continue
        raw = (secret.get("data") or {}).get(".dockerconfigjson")
        if not raw:
            continue
        try:
            config = json.loads(base64.b64decode(raw))
        except ValueError:
            continue
        for host, entry in (config.get("auths") or {}).items():
            if host.replace("https://", "").rstrip("/").split("/")[0] != registry:
                continue
            user, password = entry.get("username", ""), entry.get("password", "")
            if entry.get("auth") and not password:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            return user, password
    return None


def pull_error(
    store: Store,
    namespace: str,
    spec: Obj,
    image: str,
    entry: ImageEntry | None,
    pull_auth: PullAuth,
) -> str | None:
    """None when the pull can proceed, else the message containerd would report."""
    ref = normalize(image)
    if entry is None:
        return (
            f'rpc error: code = NotFound desc = failed to pull and unpack image "{ref}":'
            f' failed to resolve reference "{ref}": {ref}: not found'
        )
    registry = registry_of(image)
    if not needs_credentials(image):
        return None
    creds = pull_credentials(store, namespace, spec, registry)
    verdict = "unauthorized" if creds is None else pull_auth(registry, *creds)
    if verdict is None:
        return None
    repo, _, tag = ref.split("/", 1)[1].rpartition(":")
    if verdict == "insufficient_scope":
        return (
            f'failed to pull and unpack image "{ref}": failed to resolve reference '
            f'"{ref}": pull access denied, repository does not exist or may require '
            "authorization: server message: insufficient_scope: authorization failed"
        )
    return (
        f'failed to pull and unpack image "{ref}": failed to resolve reference "{ref}": '
        f"unexpected status from HEAD request to https://{registry}/v2/{repo}/manifests/"
        f"{tag}: 401 Unauthorized"
    )
