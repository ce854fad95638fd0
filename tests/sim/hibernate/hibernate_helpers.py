"""Helpers for the hibernate tests: an ACTIVE OKE node, its instance's state, errors."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import oci
import pytest
from ocisim_helpers import client_kwargs, create_cluster, make_network, pool_details, settle

from nimble_oke.sim.oci import FaultPlan, OciSimulator

ServiceError = oci.exceptions.ServiceError
# longest simulated times (the simulator's assumed ranges, sim/oci/catalog.py Timings)
NODE_ACTIVE_S = 13 * 60  # VM GPU node 10-12 min
BM_NODE_ACTIVE_S = 23 * 60  # + 5-10 min for bare metal
STOPPED_AFTER_S = 5 * 60 + 5  # SOFTSTOP's OS shutdown ≤ 2 min; a STOP ≤ 5 min
RUNNING_AFTER_S = 5 * 60 + 5  # START ≤ 5 min


_FACTORIES: dict[str, Callable[..., Any]] = {
    "ce": oci.container_engine.ContainerEngineClient,
    "vn": oci.core.VirtualNetworkClient,
    "compute": oci.core.ComputeClient,
    "limits": oci.limits.LimitsClient,
}


def start_sim(
    state: Path, identity: Path, faults: FaultPlan | None = None, seed: int = 1
) -> OciSimulator:
    """A simulator at time scale 1: simulated time moves only as fast as real time unless a
    test jumps it (``settle``)."""
    if not (state / "oci").exists():
        shutil.copytree(identity, state / "oci")
    return OciSimulator(state_dir=state, time_scale=1, seed=seed, faults=faults).start()


class Clients(dict[str, Any]):
    """SDK clients made on first use, closed with :meth:`close`."""

    def __init__(self, sim: OciSimulator) -> None:
        super().__init__()
        self._sim = sim

    def __missing__(self, key: str) -> Any:
        client = _FACTORIES[key](self._sim.oci_config(), **client_kwargs(self._sim))
        self[key] = client
        return client

    def close(self) -> None:
        for client in self.values():
            client.base_client.session.close()


def error(call: Callable[[], Any]) -> Any:
    """The ``oci.exceptions.ServiceError`` that ``call`` raises."""
    with pytest.raises(ServiceError) as info:
        call()
    return info.value


def launch_pool(
    sim: OciSimulator, clients: Any, shape: str = "VM.GPU.A10.1", **kw: Any
) -> tuple[str, str]:
    """A cluster and a one-node pool of ``shape`` (not yet ACTIVE): (pool id, node id)."""
    ce = clients["ce"]
    net = make_network(sim, clients["vn"])
    cluster_id = create_cluster(sim, ce, net)
    resp = ce.create_node_pool(pool_details(sim, ce, cluster_id, net["workers"], shape=shape, **kw))
    pool_id = ce.get_work_request(resp.headers["opc-work-request-id"]).data.resources[0].identifier
    node_id = ce.get_node_pool(pool_id).data.nodes[0].id
    return str(pool_id), str(node_id)


def active_node(
    sim: OciSimulator, clients: Any, shape: str = "VM.GPU.A10.1", **kw: Any
) -> tuple[str, str]:
    """:func:`launch_pool`, then time until the node is ACTIVE."""
    pool_id, node_id = launch_pool(sim, clients, shape, **kw)
    settle(sim, BM_NODE_ACTIVE_S if shape.startswith("BM.") else NODE_ACTIVE_S)
    nodes = clients["ce"].get_node_pool(pool_id).data.nodes
    assert [n.lifecycle_state for n in nodes] == ["ACTIVE"]
    return pool_id, node_id


def state(clients: Any, instance_id: str) -> str:
    return str(clients["compute"].get_instance(instance_id).data.lifecycle_state)


def stop(sim: OciSimulator, clients: Any, instance_id: str, action: str = "SOFTSTOP") -> None:
    assert clients["compute"].instance_action(instance_id, action).data.lifecycle_state == (
        "STOPPING"
    )
    settle(sim, STOPPED_AFTER_S)
    assert state(clients, instance_id) == "STOPPED"


def start(sim: OciSimulator, clients: Any, instance_id: str) -> None:
    assert clients["compute"].instance_action(instance_id, "START").data.lifecycle_state == (
        "STARTING"
    )
    settle(sim, RUNNING_AFTER_S)
    assert state(clients, instance_id) == "RUNNING"


def billing_now(sim: OciSimulator, instance_id: str) -> set[str]:
    """Price keys the instance is being billed for right now (its open billing rows)."""
    now = sim.world.now()
    return {r["price_key"] for r in sim.billing() if r["id"] == instance_id and r["end"] >= now}
