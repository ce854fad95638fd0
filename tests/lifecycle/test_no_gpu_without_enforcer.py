"""No GPU instance ever exists without an enforcer (issue 16): ``up`` is SIGKILLed right
after it sent the GPU pool's create, nobody runs nimble again, hours of simulated time
pass — the GPU stops billing by the lease's end, because the lease and the watchdog were
in the cluster before the pool was asked for (and the cloud guard's schedule behind them).
Then the next ``up`` of the session converges and ``down`` leaves nothing."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nimble_oke.catalog import load_catalog
from nimble_oke.domain.config import build_config
from nimble_oke.domain.plan import build_plan
from nimble_oke.services.lifecycle import down, up
from nimble_oke.services.sim_tools import product_stack
from nimble_oke.services.targets import sim_target
from nimble_oke.sim.stack import SimStack
from nimble_oke.state.store import StateStore

CRASH_RUN = Path(__file__).parents[1] / "services" / "crash_run.py"
SCALE = 1000.0
CONFIG = {
    "cluster": {"name": "kill"},
    "budget": {"max_hours": 1, "max_usd": 50},
    "service": {"type": "ClusterIP"},
}
NOTHING_LEFT = {"oci_resources": 0, "kube_nodes": 0, "kube_namespaces": 0, "kube_pvs": 0}


def _gpu_rows(stack: SimStack) -> list[dict[str, object]]:
    return [r for r in stack.oci.billing() if str(r["price_key"]).startswith("gpu.")]


@pytest.mark.slow
def test_sigkill_after_the_gpu_pool_request_then_hours_the_gpu_stops_by_the_lease_end(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    with product_stack(tmp_path / "sim", time_scale=SCALE, seed=41) as stack:
        args = {
            "mode": "up",
            "endpoints": stack.endpoints(),
            "home": str(home),
            "config": CONFIG,
            "kill": {"after_create": "node_pool"},
        }
        child = subprocess.run(
            [sys.executable, str(CRASH_RUN), json.dumps(args)],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr
        assert "SIGKILL after the node_pool create was sent" in child.stdout
        with StateStore(home, now=stack.clock.wall) as store:
            record = store.session("kill")
            assert record is not None and record.lease_expires_at is not None
            lease_end = record.lease_expires_at
            assert store.runs("kill")[-1].status == "running"  # it died: nothing undone
        # nobody runs nimble: two hours past the lease's end go by on the simulated clock
        while stack.clock.wall() < lease_end + 2 * 3600:
            time.sleep(0.2)
        rows = _gpu_rows(stack)
        assert rows, "the GPU node was launched and billed"
        stopped = max(float(r["end"]) for r in rows)  # type: ignore[arg-type]
        assert stopped <= stack.oci.world.clock.now() - 3600  # not billing any more
        lease_end_sim = lease_end - (stack.clock.wall() - stack.clock.now())
        # at zero by the lease's end (the watchdog's last check before it; the node's
        # termination takes the simulator's node-delete time)
        assert stopped <= lease_end_sim + 180, (stopped - lease_end_sim, rows)
        pools = [r for r in stack.oci.inventory() if r["kind"] == "nodepool"]
        gpu_pools = [p for p in pools if p["display_name"] == "kill-gpu"]
        assert len(gpu_pools) == 1
        lease = next(
            c
            for c in stack.kube.objects("ConfigMap", "nim")
            if c["metadata"]["name"] == "nimble-lease"
        )
        assert json.loads(lease["data"]["lease.json"])["enforced_at"] is not None

        # the next up of the session (a new, longer lease: at this time scale the smoke
        # suite alone takes simulated minutes) converges on the same pool; down cleans up
        cfg = build_config({**CONFIG, "budget": {"max_hours": 24, "max_usd": 500}})
        target = sim_target(cfg, stack.endpoints(), {})
        with (
            contextlib.closing(target.provider),
            StateStore(home, now=stack.clock.wall) as store,
        ):
            messages: list[str] = []
            again = up(
                cfg,
                build_plan(cfg, load_catalog()),
                target,
                store,
                say=messages.append,
                bench=False,
            )
            assert again.ok, (again.error, messages)
            assert any("resuming" in m for m in messages), messages
            names = [r["display_name"] for r in stack.oci.inventory() if r["kind"] == "nodepool"]
            assert names == ["kill-gpu"]
            result = down("kill", cfg, target, store, say=lambda _m: None)
            assert result.teardown.failed == [] and result.teardown.remaining == []
        assert stack.leftovers() == NOTHING_LEFT, stack.oci.inventory()
