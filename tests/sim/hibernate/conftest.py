"""Fixtures for the hibernate tests: an OCI simulator on a slow clock (tests move time with
``settle``, so a loaded machine cannot skip a transitional state) and real SDK clients."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# the OCI simulator tests' helpers (network, cluster, pool details, settle)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "oci"))

from hibernate_helpers import Clients, start_sim

from nimble_oke.sim.oci import OciSimulator


@pytest.fixture(scope="session")
def hibernate_identity(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tenancy identity (OCIDs + RSA key) reused by every test's cloud."""
    state = tmp_path_factory.mktemp("hibernate-identity")
    OciSimulator(state_dir=state, seed=1)
    return state / "oci"


@pytest.fixture
def sim(tmp_path: Path, hibernate_identity: Path) -> Iterator[OciSimulator]:
    s = start_sim(tmp_path / "state", hibernate_identity)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def clients(sim: OciSimulator) -> Iterator[Clients]:
    made = Clients(sim)
    yield made
    made.close()
