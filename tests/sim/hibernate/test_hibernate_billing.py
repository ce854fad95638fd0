"""What a stopped instance bills, read from the simulator's billing meter: the GPU meter of
a VM.GPU.A10 VM pauses while it is STOPPED (its boot volume keeps billing) and resumes with
START; BM.GPU.A10.4 and VM.GPU3.1 keep billing their GPUs, as ListShapes says
(``is_billed_for_stopped_instance``). A stopped instance still counts toward its limit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hibernate_helpers import Clients, active_node, billing_now, start, start_sim, state, stop
from ocisim_helpers import settle

from nimble_oke.sim.oci import OciSimulator
from nimble_oke.sim.oci.billing import priced_usd

HOUR = 3600.0


def _rows(sim: OciSimulator, ident: str) -> list[dict[str, Any]]:
    return [r for r in sim.billing() if r["id"] == ident]


def _seconds(rows: list[dict[str, Any]], key_prefix: str) -> float:
    return sum(r["seconds"] for r in rows if str(r["price_key"]).startswith(key_prefix))


def test_list_shapes_reports_which_shapes_bill_while_stopped(
    sim: OciSimulator, clients: Any
) -> None:
    shapes = {s.shape: s for s in clients["compute"].list_shapes(sim.compartment_id).data}
    billed = {name: s.is_billed_for_stopped_instance for name, s in shapes.items()}
    assert billed["VM.GPU.A10.1"] is False and billed["VM.GPU.A10.2"] is False
    assert billed["BM.GPU.A10.4"] is True  # A10, but bare metal
    assert billed["VM.GPU3.1"] is True  # a VM, but not the A10 series
    gpu = {name for name, s in shapes.items() if s.gpus}
    assert {n for n in gpu if billed[n]} == gpu - {"VM.GPU.A10.1", "VM.GPU.A10.2"}
    assert billed["VM.Standard.E5.Flex"] is False  # standard shapes pause
    assert {s.billing_type for s in shapes.values()} == {"PAID"}


def test_a_stopped_a10_vm_bills_its_boot_volume_only(sim: OciSimulator, clients: Any) -> None:
    _, node_id = active_node(sim, clients)
    settle(sim, 1800)
    stop(sim, clients, node_id)
    asleep_from = sim.world.now()
    settle(sim, 2 * HOUR)
    asleep_to = sim.world.now()
    start(sim, clients, node_id)
    settle(sim, 600)

    rows = _rows(sim, node_id)
    usd, gpu_s = priced_usd(rows, start=asleep_from, end=asleep_to)
    assert gpu_s == 0.0  # zero GPU-billed seconds while hibernated
    # 200 GB Balanced boot volume: ($0.0255 + 10 × $0.0017) per GB-month, 744 h
    assert usd == pytest.approx(200 * (0.0255 + 0.017) / 744 * 2, rel=0.01)
    _, gpu_awake = priced_usd(rows, start=asleep_to, end=sim.world.now())
    assert gpu_awake == pytest.approx(sim.world.now() - asleep_to, abs=1.0)  # resumed at START
    lifetime = sim.world.now() - min(r["start"] for r in rows)
    assert _seconds(rows, "block.storage") == pytest.approx(lifetime, abs=1.0)
    assert _seconds(rows, "gpu.") == pytest.approx(lifetime - 2 * HOUR, abs=5 * 60 + 10)
    assert _seconds(rows, "gpu.") < lifetime - 2 * HOUR


@pytest.mark.parametrize("shape", ["BM.GPU.A10.4", "VM.GPU3.1"])
def test_gpu_shapes_other_than_a10_vms_keep_billing_while_stopped(
    sim: OciSimulator, clients: Any, shape: str
) -> None:
    _, node_id = active_node(sim, clients, shape=shape)
    stop(sim, clients, node_id, "STOP")
    asleep_from = sim.world.now()
    settle(sim, HOUR)
    _, gpu_s = priced_usd(_rows(sim, node_id), start=asleep_from, end=sim.world.now())
    assert gpu_s == pytest.approx(HOUR, abs=1.0)
    start(sim, clients, node_id)


def test_a_stopped_instance_still_counts_toward_its_limit(sim: OciSimulator, clients: Any) -> None:
    _, node_id = active_node(sim, clients)
    stop(sim, clients, node_id)
    ad = clients["compute"].get_instance(node_id).data.availability_domain
    usage = clients["limits"].get_resource_availability(
        "compute", "gpu-a10-count", sim.compartment_id, availability_domain=ad
    )
    assert usage.data.used == 1


def _restarted_while_stopped(tmp_path: Path, identity: Path) -> tuple[OciSimulator, str]:
    """A cloud whose A10 node was stopped, saved, and loaded by a new simulator process."""
    first = start_sim(tmp_path / "state", identity)
    clients = Clients(first)
    try:
        _, node_id = active_node(first, clients)
        stop(first, clients, node_id)
    finally:
        clients.close()
        first.stop()
    return start_sim(tmp_path / "state", identity), node_id


def test_a_hibernated_cloud_survives_a_simulator_restart(
    tmp_path: Path, hibernate_identity: Path
) -> None:
    sim, node_id = _restarted_while_stopped(tmp_path, hibernate_identity)
    clients = Clients(sim)
    try:
        assert state(clients, node_id) == "STOPPED"
        settle(sim, HOUR)
        assert billing_now(sim, node_id) == {"block.storage", "block.vpu"}  # still paused
        start(sim, clients, node_id)
        assert "gpu.A10" in billing_now(sim, node_id)
    finally:
        clients.close()
        sim.stop()


def test_billing_segments_closed_before_a_restart_stay_in_the_past(
    tmp_path: Path, hibernate_identity: Path
) -> None:
    sim, node_id = _restarted_while_stopped(tmp_path, hibernate_identity)
    try:
        settle(sim, HOUR)
        now = sim.world.now()
        _, gpu_s = priced_usd(_rows(sim, node_id), start=now - HOUR, end=now)
        assert gpu_s == 0.0
    finally:
        sim.stop()
