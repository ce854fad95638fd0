"""Fixtures for the provisioning workflow tests: each test gets its own OCI simulator(s),
state store home and providers, all stopped/closed afterwards (see provisioning_helpers)."""

from __future__ import annotations

import functools
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import oci
import pytest
from provisioning_helpers import TIME_SCALE, Rig, RigFactory

from nimble_oke.catalog import load_catalog
from nimble_oke.sim.oci import OciSimulator
from nimble_oke.sim.oci.faults import FaultPlan

IDENTITY_FILES = ("oci/identity.json", "oci/oci_api_key.pem")


@pytest.fixture(scope="session", autouse=True)
def _fast_key_loading() -> Iterator[None]:
    """Load each PEM private key once per test session.

    ``cryptography`` validates an RSA key on every load (~0.13 s here) and the SDK loads it
    once per client: eight times per OciProvider. Caching this pure function (same bytes
    in, same key object out) keeps the suite in its time budget; signing stays real."""
    cached = functools.lru_cache(maxsize=8)(oci.signer.load_private_key)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(oci.signer, "load_private_key", cached)
        yield


@pytest.fixture(scope="session")
def sim_identity(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One simulated tenancy + API key for every simulator of the session (RSA key
    generation is slow); each test still gets its own simulator and cloud state."""
    template = tmp_path_factory.mktemp("sim-identity")
    OciSimulator(state_dir=template, seed=1)  # writes the identity; never started
    return template


@pytest.fixture
def make_rig(tmp_path: Path, sim_identity: Path) -> Iterator[RigFactory]:
    """``make_rig(faults=FaultPlan | dict | None, time_scale=...)`` → a started Rig."""
    rigs: list[Rig] = []
    sims: list[OciSimulator] = []

    def make(faults: FaultPlan | dict[str, Any] | None = None, **kw: Any) -> Rig:
        plan = FaultPlan.from_dict(faults) if isinstance(faults, dict) else faults
        index = len(sims)
        state_dir = tmp_path / f"sim{index}"
        for name in IDENTITY_FILES:
            (state_dir / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(sim_identity / name, state_dir / name)
        sim = OciSimulator(
            state_dir=state_dir,
            time_scale=kw.pop("time_scale", TIME_SCALE),
            faults=plan,
            seed=kw.pop("seed", 1),
        )
        sim.start()
        sims.append(sim)
        rig = Rig(sim, tmp_path / f"home{index}", load_catalog(), **kw)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.close()
    for sim in sims:
        sim.stop()


@pytest.fixture
def rig(make_rig: RigFactory) -> Rig:
    return make_rig()
