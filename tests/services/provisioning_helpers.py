"""Helpers for the provisioning tests: a running OCI simulator, the real OCI SDK behind
:class:`OciProvider`, and a state store whose clock is the simulator's clock (so lifetimes
recorded by the store and the simulator's billing meter are measured on the same clock).

Everything is real: HTTP over 127.0.0.1, request signing, retries, work requests. Faults
come from the simulator's :class:`FaultPlan`; crashes are injected with
:class:`CrashingProvider` (a real provider that dies right after its n-th create call) or
with SIGKILL in a subprocess (``crash_run.py``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from nimble_oke.cloud.oci.provider import OciProvider, fast_retry_strategy
from nimble_oke.domain.catalog import Catalog
from nimble_oke.domain.config import NimbleConfig, build_config
from nimble_oke.domain.cost import accrue
from nimble_oke.ports import Created
from nimble_oke.services.preflight import PreflightReport, preflight
from nimble_oke.services.provision import Provisioner, Timeouts
from nimble_oke.sim.oci import OciSimulator
from nimble_oke.sim.oci.billing import priced_usd
from nimble_oke.state.store import StateStore

SESSION = "t1"
# Fast enough for a 90 s suite: 10000 simulated seconds per real second turns a 7-minute
# cluster create into ~0.04 s; polls every 10 ms (100 simulated seconds). Tests that
# measure lifetimes (cost) run slower, see COST_SCALE.
TIME_SCALE = 10_000.0
# The store sees a deletion one poll + one simulator tick (~20-30 ms real) after the
# simulated cloud stops billing: at 1000x that is ~25 simulated seconds, ~0.2% of a
# 3-hour session (measured), well inside the 1% the issue allows even on a loaded machine.
COST_SCALE = 1000.0
POLL_S = 0.01
TIMEOUTS = Timeouts(network_s=20, cluster_s=20, node_pool_s=20, delete_s=20)

# One clean provision of the default config (own VCN, three subnets, one GPU node):
# simulator kind -> live count.
NETWORK_COUNTS = {
    "vcn": 1,
    "internetgateway": 1,
    "natgateway": 1,
    "servicegateway": 1,
    "routetable": 2,
    "securitylist": 3,
    "subnet": 3,
}
FULL_COUNTS = {**NETWORK_COUNTS, "cluster": 1, "nodepool": 1, "node": 1}
# The journal steps of a clean provision, in order (node pool: first rung of the ladder).
NETWORK_STEPS = [
    "network/vcn",
    "network/igw",
    "network/nat",
    "network/sgw",
    "network/rt-public",
    "network/rt-private",
    "network/sl-api",
    "network/sl-workers",
    "network/sl-lb",
    "network/subnet-api",
    "network/subnet-workers",
    "network/subnet-lb",
]
ALL_STEPS = [*NETWORK_STEPS, "cluster", "node-pool/VM.GPU.A10.1/US-ASHBURN-AD-1/od"]
# What the simulator bills that the test counts as "a resource of ours".
_NOT_OURS = {"compartment", "dhcpoptions"}


class SimulatedCrash(BaseException):
    """Stands for the process dying: not an Exception, so no ``except Exception`` in the
    code under test can swallow it (like KeyboardInterrupt / SIGKILL)."""


CRASH_POINTS = ("before_send", "after_create", "while_waiting")


def raise_crash(where: str) -> NoReturn:
    raise SimulatedCrash(where)


class CrashingProvider(OciProvider):
    """A real OciProvider whose process 'dies' around its ``crash_after``-th create call:

    - ``before_send``: only the intent is journaled, nothing was sent;
    - ``after_create``: the resource exists in the cloud, the caller has not journaled it;
    - ``while_waiting``: journaled as sent, the work request / lifecycle still running.

    ``crash`` does the dying: raise :class:`SimulatedCrash` in-process, or SIGKILL the
    process (``crash_run.py``)."""

    def __init__(
        self,
        *args: Any,
        crash_after: int,
        at: str = "after_create",
        crash: Callable[[str], NoReturn] = raise_crash,
        **kw: Any,
    ) -> None:
        if at not in CRASH_POINTS:
            raise ValueError(f"at must be one of {CRASH_POINTS}")
        super().__init__(*args, **kw)
        self.crash_after = crash_after
        self.at = at
        self.crash = crash
        self.creates = 0

    def create(self, kind: str, spec: Mapping[str, Any], *, retry_token: str) -> Created:
        self.creates += 1
        if self.at == "before_send" and self.creates == self.crash_after:
            self.crash(f"before sending create #{self.creates} ({kind})")
        created = super().create(kind, spec, retry_token=retry_token)
        if self.at == "after_create" and self.creates == self.crash_after:
            self.crash(f"after create #{self.creates} ({kind})")
        return created

    def await_ready(self, kind: str, created: Created, *, timeout_s: float) -> None:
        if self.at == "while_waiting" and self.creates == self.crash_after:
            self.crash(f"while waiting for create #{self.creates} ({kind})")
        super().await_ready(kind, created, timeout_s=timeout_s)


@dataclass
class Rig:
    """One simulated cloud plus everything needed to provision a session into it."""

    sim: OciSimulator
    home: Path
    catalog: Catalog
    timeouts: Timeouts = TIMEOUTS
    messages: list[str] = field(default_factory=list)
    _providers: list[OciProvider] = field(default_factory=list)
    _stores: list[StateStore] = field(default_factory=list)

    def say(self, message: str) -> None:
        self.messages.append(message)

    def provider(self, cls: type[OciProvider] = OciProvider, **kw: Any) -> OciProvider:
        made = cls(
            self.sim.oci_config(),
            compartment_id=self.sim.compartment_id,
            service_endpoint=self.sim.endpoint,
            retry_strategy=fast_retry_strategy(),
            poll_s=POLL_S,
            **kw,
        )
        self._providers.append(made)
        return made

    def store(self, home: Path | None = None) -> StateStore:
        made = StateStore(home or self.home, now=self.sim.clock.wall)
        self._stores.append(made)
        return made

    def config(self, **sections: Any) -> NimbleConfig:
        return build_config({"cluster": {"name": SESSION}, **sections})

    def preflight(self, cfg: NimbleConfig, provider: OciProvider) -> PreflightReport:
        return preflight(cfg, provider, self.catalog, self.say)

    def provisioner(
        self,
        cfg: NimbleConfig,
        provider: OciProvider,
        store: StateStore,
        session: str = SESSION,
    ) -> Provisioner:
        return Provisioner(
            session, cfg, provider, store, self.catalog, say=self.say, timeouts=self.timeouts
        )

    # -- what the simulated cloud holds ------------------------------------------------

    def live(self) -> Counter[str]:
        """Live resources by kind, without the VCN's default objects."""
        return Counter(
            r["kind"]
            for r in self.sim.inventory()
            if not r["default"] and r["kind"] not in _NOT_OURS
        )

    def ever(self) -> Counter[str]:
        """Every resource the simulated cloud ever created, by kind (deleted ones too)."""
        with self.sim.world.lock:
            return Counter(
                r.kind
                for r in self.sim.world.resources.values()
                if not r.extra.get("default")
                and r.kind not in _NOT_OURS
                and r.kind not in ("workrequest", "lbworkrequest")
            )

    def live_ids(self, kind: str) -> list[str]:
        return [r["id"] for r in self.sim.inventory() if r["kind"] == kind and not r["default"]]

    def wire(self, resource_id: str) -> dict[str, Any]:
        with self.sim.world.lock:
            return dict(self.sim.world.resources[resource_id].wire)

    def close(self) -> None:
        for provider in self._providers:
            provider.close()
        for store in self._stores:
            store.close()


RigFactory = Callable[..., Rig]


# -- cost: the store's accrual vs the simulator's billing meter ----------------------------


def store_accrued_usd(rig: Rig, store: StateStore, session: str = SESSION) -> float:
    usages = [r.usage() for r in store.resources(session)]
    return accrue(rig.catalog, usages, now=rig.sim.clock.wall()).total_usd


def sim_billed_usd(rig: Rig) -> float:
    """Every billing row of the simulator priced with the project's price list."""
    return priced_usd(rig.sim.billing())[0]
