"""How a workflow reaches its target: the cloud provider, the time scale, the NGC key.

- ``sim``: the simulated stack's endpoints (an in-process :class:`SimStack` for the demo
  and tests, or the background service started by ``nimble sim start``). The OCI SDK talks
  to the OCI simulator with real request signing; waits are short in real time because
  the simulated clock jumps over provisioning while this process waits (it takes part in
  simulated time: :class:`SimClockClient`).
- ``oci``: the real OCI API from the user's config profile.

What differs between the two is declared once, in :data:`TARGETS` (a :class:`TargetKind`
each); workflows ask the registry (:func:`open_target`, :func:`target_kind`) instead of
comparing ``cfg.target`` with a name.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nimble_oke.cloud.oci.object_storage import OciObjectStorage
from nimble_oke.domain.config import NimbleConfig
from nimble_oke.errors import ConfigError, ProviderError
from nimble_oke.ngc_keys import NGC_KEY_RE, throwaway_key
from nimble_oke.ports import CloudProvider
from nimble_oke.services import sim_service
from nimble_oke.services.provision import Timeouts
from nimble_oke.services.sim_clock import EVENT_CLOCK_TIMEOUT_SCALE, SimClockClient
from nimble_oke.state.store import default_home

__all__ = [
    "EVENT_CLOCK_TIMEOUT_SCALE",
    "TARGETS",
    "SimClockClient",
    "Target",
    "TargetKind",
    "ngc_key",
    "oci_config",
    "oci_target",
    "open_target",
    "reachable_target_for",
    "sim_target",
    "target_kind",
    "target_storage",
]


@dataclass(kw_only=True)
class Target:
    """A reachable target. Both targets speak the OCI API (the sim through its simulator),
    so ``oci_config`` is the SDK config either way; ``endpoints`` is empty on OCI."""

    name: str
    provider: CloudProvider
    oci_config: dict[str, Any]
    ngc_key: str = ""
    ngc_key_simulated: bool = False  # the sim made one up ($NGC_API_KEY not set)
    # Simulated seconds per real second, as a bound for timeouts (1 on OCI).
    time_scale: float = 1.0
    poll_s: float = 5.0
    timeouts: Timeouts = field(default_factory=Timeouts)
    # The simulated stack's endpoints (OCI per region, kube, admin); empty on OCI.
    endpoints: dict[str, Any] = field(default_factory=dict)
    now: Callable[[], float] = time.time
    # Wait ``sim_seconds`` of the target's time: real time on OCI; on the sim a sleep the
    # simulated clock knows about (it may jump to its end while this process waits).
    sleep: Callable[[float], None] = time.sleep

    def real_seconds(self, sim_seconds: float) -> float:
        """A real-time bound for ``sim_seconds`` of the target's time (for timeouts)."""
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


# The OCI provider's waits on the sim: a sleep of up to this many simulated seconds, ended
# early by any lifecycle event in the simulated cloud.
PROVIDER_POLL_SIM_S = 30.0


def sim_target(cfg: NimbleConfig, endpoints: Mapping[str, Any], env: Mapping[str, str]) -> Target:
    import oci

    from nimble_oke.cloud.oci.provider import OciProvider, fast_retry_strategy

    config = oci.config.from_file(str(endpoints["oci_config"]), "DEFAULT")
    # The stack's clock (through its admin API): lifetimes this process records are on the
    # clock the simulated cloud bills with. This process takes part in simulated time: the
    # clock does not jump while it computes, and its waits are sleeps the clock knows.
    clock = SimClockClient(str(endpoints["admin"]))
    clock.join()
    scale = clock.timeout_scale
    provider = OciProvider(
        config,
        compartment_id=str(endpoints["compartment_id"]),
        service_endpoint=str(endpoints["oci"]),
        retry_strategy=fast_retry_strategy(),
        poll_s=0.02,
        sleep=lambda _real_s: clock.sleep(PROVIDER_POLL_SIM_S, wake_on=("oci",)),
    )
    # Real-time limits: the calibrated worst cases at this time scale, with margin.
    timeouts = Timeouts(
        network_s=60,
        cluster_s=max(60, 3600 / scale),
        node_pool_s=max(60, 3600 / scale),
        delete_s=max(60, 3600 / scale),
    )
    key, simulated = ngc_key(cfg, env, simulated_ok=True)
    return Target(
        name="sim",
        provider=provider,
        oci_config=dict(config),
        ngc_key=key,
        ngc_key_simulated=simulated,
        time_scale=scale,
        poll_s=0.05,
        timeouts=timeouts,
        endpoints=dict(endpoints),
        now=clock.now,
        sleep=clock.sleep,
    )


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
    return Target(name="oci", provider=provider, oci_config=dict(config), ngc_key=key)


def read_endpoints(state_dir: Path) -> dict[str, Any] | None:
    path = state_dir / "endpoints.json"
    if not path.exists():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data


# --- the registry ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TargetKind:
    """What differs between targets, declared once.

    - ``open``: build the :class:`Target` (``require_key``: fail without an NGC key; on the
      sim a missing key is replaced by a simulated one either way), starting what it needs.
    - ``reachable``: the target of a recorded session *without starting anything*, or None
      when nothing can have changed there (a stopped simulator's clock is frozen: its
      watchdog cannot have enforced a lease since it stopped).
    - ``live_clock``: the clock the target bills by, or None while it is frozen.
    - ``oci_profile``: it reads the user's OCI config profile (doctor checks that file).
    - ``real_registry``: images come from nvcr.io with a real NGC key (doctor probes it);
      the sim has a simulated registry and accepts a simulated key.
    - ``model_storage``: the model repository's Object Storage for ``nimble models`` (no
      cloud provider needed); ``target_storage``: the same for a built :class:`Target`
      (its signer and retry policy shared); ``storage_poll_s``: how often to look at a
      replica being filled.
    """

    name: str
    summary: str
    open: Callable[[NimbleConfig, Mapping[str, str], bool], Target]
    reachable: Callable[[Path, NimbleConfig, Mapping[str, str]], Target | None]
    live_clock: Callable[[Path], Callable[[], float] | None]
    oci_profile: bool
    real_registry: bool
    model_storage: Callable[[NimbleConfig], OciObjectStorage]
    target_storage: Callable[[Target], OciObjectStorage]
    storage_poll_s: float


def _open_sim(cfg: NimbleConfig, env: Mapping[str, str], _require_key: bool) -> Target:
    return sim_target(cfg, sim_service.ensure_running(default_home()), env)


def _reachable_sim(home: Path, cfg: NimbleConfig, env: Mapping[str, str]) -> Target | None:
    current = sim_service.status(home)
    if not current["running"]:
        return None
    return sim_target(cfg, current["endpoints"], env)


def _sim_clock(home: Path) -> Callable[[], float] | None:
    current = sim_service.status(home)
    if current["running"] and current["endpoints"]:
        return SimClockClient(str(current["endpoints"]["admin"])).now
    return None


def _sim_model_storage(_cfg: NimbleConfig) -> OciObjectStorage:
    """The simulator service's Object Storage: its regions' endpoints, fast retries."""
    import oci

    from nimble_oke.cloud.oci.provider import fast_retry_strategy

    endpoints = sim_service.ensure_running(default_home())
    return OciObjectStorage(
        config=dict(oci.config.from_file(str(endpoints["oci_config"]), "DEFAULT")),
        compartment_id=str(endpoints["compartment_id"]),
        endpoints=dict(endpoints.get("oci_regions") or {}),
        retry_strategy=fast_retry_strategy(),
    )


def _oci_model_storage(cfg: NimbleConfig) -> OciObjectStorage:
    """The OCI config profile's Object Storage (new buckets in the configured compartment,
    else the tenancy)."""
    config = oci_config(cfg)
    compartment = cfg.oci.compartment_id or str(config.get("tenancy", ""))
    return OciObjectStorage(config=config, compartment_id=compartment)


def _target_storage(target: Target) -> OciObjectStorage:
    """Object Storage through the target's provider; on the sim, its regions' endpoints
    (an empty mapping on OCI)."""
    regions = target.endpoints.get("oci_regions") or None
    return OciObjectStorage.from_provider(target.provider, regions)


def _open_oci(cfg: NimbleConfig, env: Mapping[str, str], require_key: bool) -> Target:
    return oci_target(cfg, env, require_key=require_key)


def _reachable_oci(_home: Path, cfg: NimbleConfig, env: Mapping[str, str]) -> Target | None:
    return oci_target(cfg, env, require_key=False)


TARGETS: dict[str, TargetKind] = {
    kind.name: kind
    for kind in (
        TargetKind(
            name="sim",
            summary="the local simulator of OCI, Kubernetes and NIM (bills $0)",
            open=_open_sim,
            reachable=_reachable_sim,
            live_clock=_sim_clock,
            oci_profile=False,
            real_registry=False,
            model_storage=_sim_model_storage,
            target_storage=_target_storage,
            storage_poll_s=0.05,
        ),
        TargetKind(
            name="oci",
            summary="Oracle Cloud through the OCI config profile",
            open=_open_oci,
            reachable=_reachable_oci,
            live_clock=lambda _home: time.time,
            oci_profile=True,
            real_registry=True,
            model_storage=_oci_model_storage,
            target_storage=_target_storage,
            storage_poll_s=10.0,
        ),
    )
}


def target_kind(name: str) -> TargetKind:
    """The registered target called ``name`` (one clear error for any other name)."""
    try:
        return TARGETS[name]
    except KeyError:
        raise ConfigError(f"target {name!r}: allowed {', '.join(sorted(TARGETS))}") from None


def open_target(
    cfg: NimbleConfig, env: Mapping[str, str] | None = None, *, require_key: bool = True
) -> Target:
    """The configured target, ready to use (the sim's service started if it is not)."""
    return target_kind(cfg.target).open(cfg, os.environ if env is None else env, require_key)


def reachable_target_for(
    home: Path, target: str, cfg: NimbleConfig, env: Mapping[str, str] | None = None
) -> Target | None:
    """A recorded session's target without starting anything (see :class:`TargetKind`)."""
    return target_kind(target).reachable(home, cfg, os.environ if env is None else env)


def target_storage(target: Target) -> OciObjectStorage:
    """Object Storage of a built target (the deployment's model PAR), as a context manager."""
    return target_kind(target.name).target_storage(target)
