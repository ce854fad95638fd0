"""How a workflow reaches its target: the cloud provider, the time scale, the NGC key.

- ``sim``: the simulated stack's endpoints (an in-process :class:`SimStack` for the demo
  and tests, or the background service started by ``nimble sim start``). The OCI SDK talks
  to the OCI simulator with real request signing; waits are short in real time because
  the simulators run on a scaled clock.
- ``oci``: the real OCI API from the user's config profile.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nimble_oke.domain.config import NimbleConfig
from nimble_oke.errors import ConfigError, ProviderError
from nimble_oke.ngc_keys import NGC_KEY_RE, throwaway_key
from nimble_oke.ports import CloudProvider
from nimble_oke.services.provision import Timeouts


@dataclass
class Target:
    name: str
    provider: CloudProvider
    oci_config: dict[str, Any]
    time_scale: float
    poll_s: float
    timeouts: Timeouts
    ngc_key: str
    ngc_key_simulated: bool
    endpoints: dict[str, Any]
    now: Callable[[], float] = time.time
    # sim only: run the simulated clock 1:1 during real-time phases (smoke, benchmark)
    realtime: Callable[[bool], None] | None = None

    def real_seconds(self, sim_seconds: float) -> float:
        return sim_seconds / self.time_scale

    def token(self, cluster_id: str) -> str:
        from nimble_oke.cloud.oci.token import generate_token, signer_from_config

        region = str(self.oci_config.get("region", ""))
        return generate_token(signer_from_config(self.oci_config), cluster_id, region)


def ngc_key(cfg: NimbleConfig, env: Mapping[str, str], *, simulated_ok: bool) -> tuple[str, bool]:
    """The NGC key from the environment (never from files). On sim a missing key is
    replaced by a simulated one, and the caller says so."""
    name = cfg.nim.ngc_api_key_env
    key = env.get(name, "")
    if not key:
        if simulated_ok:
            # well-formed for the simulated registry; real NGC never issued it
            return throwaway_key("sim"), True
        raise ConfigError(
            f"the NGC API key is not set: export {name}=nvapi-… "
            "(create one at ngc.nvidia.com → Setup → API Key)"
        )
    if not NGC_KEY_RE.match(key):
        raise ConfigError(
            f"${name} does not look like an NGC API key (expected nvapi- followed by at least "
            "20 letters, digits, '-' or '_', or a legacy 40+ character key)"
        )
    return key, False


def sim_target(cfg: NimbleConfig, endpoints: Mapping[str, Any], env: Mapping[str, str]) -> Target:
    import oci

    from nimble_oke.cloud.oci.provider import OciProvider, fast_retry_strategy

    config = oci.config.from_file(str(endpoints["oci_config"]), "DEFAULT")
    scale = float(endpoints.get("time_scale", 600.0))
    provider = OciProvider(
        config,
        compartment_id=str(endpoints["compartment_id"]),
        service_endpoint=str(endpoints["oci"]),
        retry_strategy=fast_retry_strategy(),
        poll_s=0.02,
    )
    # Real-time limits: the calibrated worst cases at this time scale, with margin.
    timeouts = Timeouts(
        network_s=60,
        cluster_s=max(60, 3600 / scale),
        node_pool_s=max(60, 3600 / scale),
        delete_s=max(60, 3600 / scale),
    )
    key, simulated = ngc_key(cfg, env, simulated_ok=True)
    # The stack's clock (through its admin API): lifetimes this process records are on the
    # clock the simulated cloud bills with, and real-time phases can run it 1:1.
    clock = SimClockClient(str(endpoints["admin"]))

    def realtime(on: bool) -> None:
        clock.set_scale(1.0 if on else scale)

    return Target(
        "sim",
        provider,
        dict(config),
        scale,
        0.05,
        timeouts,
        key,
        simulated,
        dict(endpoints),
        now=clock.now,
        realtime=realtime,
    )


class SimClockClient:
    """The simulated stack's clock, read from another process through its admin API.

    ``now()`` extrapolates from the last snapshot (no HTTP call per read); changing the
    speed refreshes the snapshot, so readings stay continuous."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url.rstrip("/")
        self._snap = self._request("GET")

    def _request(self, method: str, body: dict[str, float] | None = None) -> dict[str, float]:
        import urllib.request

        data = json.dumps(body).encode() if body is not None else None
        if not self.admin_url.startswith("http://127.0.0.1:"):
            raise ValueError(f"the simulator admin API must be on 127.0.0.1, got {self.admin_url}")
        req = urllib.request.Request(  # noqa: S310 - checked: http://127.0.0.1 only
            f"{self.admin_url}/admin/clock",
            data=data,
            method=method,
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - 127.0.0.1 admin API
            snap: dict[str, float] = json.loads(resp.read())
        return snap

    def now(self) -> float:
        snap = self._snap
        return snap["sim_now"] + (time.time() - snap["real_now"]) * snap["scale"]

    def set_scale(self, scale: float) -> None:
        self._snap = self._request("POST", {"scale": scale})

    def advance(self, seconds: float) -> None:
        """Jump the simulated clock forward by ``seconds``."""
        self._snap = self._request("POST", {"advance": seconds})


def oci_config(cfg: NimbleConfig) -> dict[str, Any]:
    """The OCI SDK config of the profile named in ``cfg.oci`` (region override applied)."""
    import oci

    path = os.path.expanduser(cfg.oci.config_file)
    try:
        config = dict(oci.config.from_file(path, cfg.oci.profile))
    except (
        oci.exceptions.ConfigFileNotFound,
        oci.exceptions.InvalidConfig,
        oci.exceptions.ProfileNotFound,
    ) as exc:
        raise ProviderError(
            f"OCI config {path} [{cfg.oci.profile}]: {exc}", hint="run nimble doctor"
        ) from None
    if cfg.oci.region:
        config["region"] = cfg.oci.region
    return config


def oci_target(cfg: NimbleConfig, env: Mapping[str, str], *, require_key: bool = True) -> Target:
    from nimble_oke.cloud.oci.provider import OciProvider

    config = oci_config(cfg)
    provider = OciProvider(config, compartment_id=cfg.oci.compartment_id, poll_s=5.0)
    key = ngc_key(cfg, env, simulated_ok=False)[0] if require_key else ""
    return Target("oci", provider, dict(config), 1.0, 5.0, Timeouts(), key, False, {})


def read_endpoints(state_dir: Path) -> dict[str, Any] | None:
    path = state_dir / "endpoints.json"
    if not path.exists():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data
