"""Fixtures: the deploy engine (render → SSA apply → wait → diagnose) against a running
Kubernetes simulator through a real lightkube client. No mocks: pods run the NIM emulator.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from nimble_oke.catalog import load_catalog
from nimble_oke.domain.config import NimbleConfig, build_config
from nimble_oke.domain.plan import Plan, build_plan
from nimble_oke.kube.deploy import (
    ApplyResult,
    apply_manifests,
    ensure_namespace,
    ensure_ngc_secrets,
    kube_client,
)
from nimble_oke.kube.diagnose import Finding, collect, diagnose
from nimble_oke.kube.render import render_chart
from nimble_oke.kube.wait import WaitResult, wait_ready
from nimble_oke.ngc_keys import throwaway_key
from nimble_oke.services.values import chart_values
from nimble_oke.sim.clock import SimClock
from nimble_oke.sim.kube import KubeSimulator

# 600 simulated seconds per real second: the 12 GB NIM image pull (≈218 s at 55 MB/s,
# calibration.md) takes ≈0.4 s and the 16 GB model download (≈64 s) ≈0.1 s.
TIME_SCALE = 600
NAMESPACE = "nim"
SESSION = "kt"
# A well-formed fake NGC key: nvcr.io in the simulator and the NIM emulator accept it.
NGC_KEY = throwaway_key()
SELECTOR = {"app.kubernetes.io/instance": SESSION}


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass
class Deployer:
    """One simulated cluster plus the engine's calls, the way `nimble up` chains them."""

    kube: KubeSimulator
    client: Any
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def cfg(self) -> NimbleConfig:
        return build_config(self.config)

    def plan(self) -> Plan:
        return build_plan(self.cfg, load_catalog())

    def values(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        values = chart_values(self.cfg, self.plan(), session=SESSION)
        return deep_merge(values, overrides or {})

    def render(self, values: dict[str, Any]) -> list[dict[str, Any]]:
        return render_chart(values, release=SESSION, namespace=NAMESPACE)

    def secrets(self, key: str = NGC_KEY) -> None:
        ensure_namespace(self.client, NAMESPACE, SESSION)
        ensure_ngc_secrets(self.client, NAMESPACE, key, session=SESSION)

    def apply(self, manifests: list[dict[str, Any]]) -> ApplyResult:
        return apply_manifests(self.client, manifests, session=SESSION, namespace=NAMESPACE)

    def deploy(
        self,
        overrides: dict[str, Any] | None = None,
        *,
        edit: Callable[[list[dict[str, Any]]], None] | None = None,
        key: str = NGC_KEY,
    ) -> list[dict[str, Any]]:
        """Secrets, render, optional manifest edit, apply; returns what was applied."""
        self.secrets(key)
        manifests = self.render(self.values(overrides))
        if edit is not None:
            edit(manifests)
        self.apply(manifests)
        return manifests

    def wait(self, timeout_s: float = 20.0) -> WaitResult:
        return wait_ready(self.client, NAMESPACE, SELECTOR, timeout_s=timeout_s, poll_s=0.05)

    def findings(self) -> list[Finding]:
        return diagnose(collect(self.client, NAMESPACE))

    def await_finding(self, cause: str, timeout_s: float = 15.0) -> Finding:
        """Poll troubleshoot until a finding whose cause contains ``cause`` shows up."""
        deadline = time.monotonic() + timeout_s
        seen: list[Finding] = []
        while time.monotonic() < deadline:
            seen = self.findings()
            for finding in seen:
                if cause in finding.cause:
                    return finding
            time.sleep(0.1)
        raise AssertionError(f"no finding {cause!r} after {timeout_s}s; last: {seen}")

    def errors(self) -> list[Finding]:
        return [f for f in self.findings() if f.severity == "error"]


def deployment(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    return next(m for m in manifests if m["kind"] == "Deployment")


@pytest.fixture
def make_deployer(tmp_path: Path) -> Iterator[Callable[..., Deployer]]:
    """``make_deployer(gpu_nodes=1, shape=..., **KubeSimulator kwargs)`` → a Deployer on a
    fresh simulator; everything started is stopped at the end of the test."""
    with ExitStack() as stack:
        count = 0

        def make(
            *,
            gpu_nodes: int = 1,
            shape: str = "VM.GPU.A10.1",
            config: dict[str, Any] | None = None,
            **sim_kwargs: Any,
        ) -> Deployer:
            nonlocal count
            count += 1
            state = tmp_path / f"kube{count}"
            sim_kwargs.setdefault("lb_provision_seconds", 30)
            kube = stack.enter_context(KubeSimulator(state, SimClock(TIME_SCALE), **sim_kwargs))
            for _ in range(gpu_nodes):
                kube.add_gpu_node(shape=shape)
            client = kube_client(kube.write_kubeconfig(state / "kubeconfig"), NAMESPACE)
            stack.callback(client.close)
            return Deployer(kube, client, dict(config or {}))

        yield make


@pytest.fixture
def deployer(make_deployer: Callable[..., Deployer]) -> Deployer:
    return make_deployer()
