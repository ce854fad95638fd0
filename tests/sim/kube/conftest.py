"""Fixtures: a running Kubernetes simulator and a real lightkube client pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lightkube import Client, KubeConfig

from nimble_oke.sim.clock import SimClock
from nimble_oke.sim.kube import KubeSimulator

# 600 simulated seconds per real second: a 12 GB NIM image pull (≈218 s) takes ≈0.4 s.
TIME_SCALE = 600


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeSimulator]:
    with KubeSimulator(tmp_path / "kube", SimClock(TIME_SCALE), lb_provision_seconds=30) as k:
        yield k


@pytest.fixture
def client(kube: KubeSimulator, tmp_path: Path) -> Iterator[Client]:
    config = KubeConfig.from_file(kube.write_kubeconfig(tmp_path / "kubeconfig"))
    with Client(config, field_manager="nimble-test") as c:
        yield c
