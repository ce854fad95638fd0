"""oci-cli parity for the Compute instance API. oci-cli (≈800 MB) comes from ``make tools``
(.tools/oci-cli) or NIMBLE_TEST_OCI_CLI (tests/ocicli.py); without it the test is skipped."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from hibernate_helpers import Clients, active_node, start_sim
from ocisim_helpers import settle

from nimble_oke.sim.oci import FaultPlan, FaultRule, OciSimulator
from ocicli import OCI_CLI, needs_oci_cli

pytestmark = needs_oci_cli


def _cli(sim: OciSimulator, config: Path, *args: str) -> list[str]:
    assert OCI_CLI is not None
    return [str(OCI_CLI), "--config-file", str(config), "--endpoint", sim.endpoint, *args]


def _run(sim: OciSimulator, config: Path, *args: str) -> Any:
    done = subprocess.run(
        _cli(sim, config, *args), capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["data"]


def test_oci_cli_stops_and_starts_an_oke_node(tmp_path: Path, hibernate_identity: Path) -> None:
    rule = FaultRule(operation="InstanceAction", kind="out_of_host_capacity", times=1)
    sim = start_sim(tmp_path / "state", hibernate_identity, faults=FaultPlan(rules=[rule]))
    clients = Clients(sim)
    try:
        config = sim.write_config_file()
        _, node_id = active_node(sim, clients)
        comp = sim.compartment_id
        got = _run(sim, config, "compute", "instance", "get", "--instance-id", node_id)
        assert (got["id"], got["lifecycle-state"], got["shape"]) == (
            node_id,
            "RUNNING",
            "VM.GPU.A10.1",
        )
        shapes = _run(sim, config, "compute", "shape", "list", "--compartment-id", comp, "--all")
        billed = {s["shape"]: s["is-billed-for-stopped-instance"] for s in shapes}
        assert billed["VM.GPU.A10.1"] is False and billed["BM.GPU.A10.4"] is True

        # the CLI polls GetInstance until STOPPED while the test moves simulated time
        waiting = subprocess.Popen(
            _cli(
                sim,
                config,
                *("compute", "instance", "action", "--instance-id", node_id),
                *("--action", "SOFTSTOP", "--wait-for-state", "STOPPED"),
                *("--wait-interval-seconds", "1", "--max-wait-seconds", "60"),
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(2)
        settle(sim, 5 * 60)
        out, err = waiting.communicate(timeout=90)
        assert waiting.returncode == 0, err
        assert json.loads(out)["data"]["lifecycle-state"] == "STOPPED"
        listed = _run(
            sim,
            config,
            *("compute", "instance", "list", "--compartment-id", comp),
            *("--lifecycle-state", "STOPPED"),
        )
        assert [i["id"] for i in listed] == [node_id]

        # oci-cli retries a 500 by default (the injected failure fires once): --no-retry
        # shows it as OCI sends it
        start = ("compute", "instance", "action", "--instance-id", node_id, "--action", "START")
        failed = subprocess.run(
            _cli(sim, config, "--no-retry", *start),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert failed.returncode != 0
        assert '"code": "InternalError"' in failed.stderr and '"status": 500' in failed.stderr
        assert '"message": "Out of host capacity."' in failed.stderr
        assert _run(sim, config, *start)["lifecycle-state"] == "STARTING"
    finally:
        clients.close()
        sim.stop()
