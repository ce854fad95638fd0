"""Fixtures: a running OCI simulator and real OCI SDK clients pointed at it."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import oci
import pytest
from ocisim_helpers import client_kwargs

from nimble_oke.sim.oci import OciSimulator

_FACTORIES: dict[str, Callable[..., Any]] = {
    "ce": oci.container_engine.ContainerEngineClient,
    "vn": oci.core.VirtualNetworkClient,
    "compute": oci.core.ComputeClient,
    "bs": oci.core.BlockstorageClient,
    "identity": oci.identity.IdentityClient,
    "limits": oci.limits.LimitsClient,
    "lb": oci.load_balancer.LoadBalancerClient,
}


@pytest.fixture(scope="session")
def tenancy_identity(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One simulated tenancy identity (OCIDs + RSA key) reused by every test's cloud:
    generating a 2048-bit key per test costs ~0.2 s on this machine."""
    state = tmp_path_factory.mktemp("identity")
    OciSimulator(state_dir=state, seed=1)  # writes state/oci/identity.json + the key
    return state / "oci"


@pytest.fixture
def sim(tmp_path: Path, tenancy_identity: Path) -> Iterator[OciSimulator]:
    """Scale 60 keeps short transitions (seconds of simulated time) observable on a busy
    machine; tests move time with ``settle`` (clock.advance) rather than by waiting."""
    state = tmp_path / "state"
    shutil.copytree(tenancy_identity, state / "oci")
    with OciSimulator(state_dir=state, time_scale=60, seed=1) as s:
        yield s


class _Clients(dict[str, Any]):
    """SDK clients created on first use (building all seven costs ~0.5 s per test)."""

    def __init__(self, sim: OciSimulator) -> None:
        super().__init__()
        self._sim = sim

    def __missing__(self, key: str) -> Any:
        client = _FACTORIES[key](self._sim.oci_config(), **client_kwargs(self._sim))
        self[key] = client
        return client


@pytest.fixture
def clients(sim: OciSimulator) -> Iterator[dict[str, Any]]:
    made = _Clients(sim)
    yield made
    for client in made.values():
        client.base_client.session.close()
