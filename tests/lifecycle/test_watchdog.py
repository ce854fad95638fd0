"""The lease is enforced inside the (simulated) cloud: a CronJob running nimble's own
watchdog scales the GPU pool to zero and deletes the load balancer when the lease ends."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import pytest

from nimble_oke.catalog import load_catalog
from nimble_oke.domain.config import build_config
from nimble_oke.domain.cost import BilledWindow
from nimble_oke.domain.plan import build_plan
from nimble_oke.services.lifecycle import down, up
from nimble_oke.services.sim_tools import product_stack
from nimble_oke.services.targets import sim_target
from nimble_oke.services.watchdog import Lease, decide
from nimble_oke.sim.oci.billing import priced_usd
from nimble_oke.state.store import StateStore


def _lease(**kw: object) -> Lease:
    base: dict[str, object] = {
        "session": "s",
        "node_pool_id": "ocid1.nodepool.oc1..x",
        "started_at": 1000.0,
        "expires_at": 1000.0 + 3600,
        "budget_usd": 5.0,
        "usd_per_hour": 2.0,
        "accrued_before_usd": 0.5,
    }
    base.update(kw)
    return Lease(**base)  # type: ignore[arg-type]


def test_decide_lease_budget_and_once() -> None:
    lease = _lease()
    assert not decide(lease, 1000.0 + 1800).enforce
    assert decide(lease, 1000.0 + 3600).reason == "lease expired"
    # $0.50 before + $2/h: the $5 budget is reached after 2.25 h, before a 3 h lease ends
    long = _lease(expires_at=1000.0 + 3 * 3600)
    hit = decide(long, 1000.0 + 2.25 * 3600)
    assert hit.enforce and hit.reason.startswith("budget reached")
    assert not decide(_lease(enforced_at=2000.0, reason="lease expired"), 99999.0).enforce
    assert Lease.from_json(lease.to_json()) == lease


def test_watchdog_scales_pool_to_zero_at_lease_expiry(tmp_path: Path) -> None:
    with product_stack(tmp_path / "sim", time_scale=600, seed=5) as stack:
        cfg = build_config({"cluster": {"name": "wd"}, "budget": {"max_hours": 2}})
        plan = build_plan(cfg, load_catalog())
        target = sim_target(cfg, stack.endpoints(), {})
        with (
            contextlib.closing(target.provider),
            # the stack's own clock: it sees the jump below at once
            StateStore(tmp_path / "home", now=stack.clock.wall) as store,
        ):
            result = up(cfg, plan, target, store, say=lambda _m: None, bench=False)
            assert result.ok, result.error
            assert [c["metadata"]["name"] for c in stack.kube.objects("CronJob", "nim")] == [
                "nimble-watchdog"
            ]
            role = stack.kube.objects("Role", "nim")[0]
            assert role["rules"][0]["resourceNames"] == ["nimble-lease"]  # least privilege

            def gpu_billed() -> float:
                return sum(
                    r["seconds"] for r in stack.oci.billing() if r["price_key"].startswith("gpu")
                )

            assert stack.kube.objects("Node")
            # the laptop is closed; skip to 8 minutes before the lease ends: the watchdog's
            # own runs (every 5 minutes) scale the pool to zero before it ends
            record = store.session("wd")
            assert record is not None and record.lease_expires_at is not None
            stack.clock.advance(record.lease_expires_at - stack.clock.wall() - 8 * 60)
            deadline = time.monotonic() + 30
            while stack.kube.objects("Node") and time.monotonic() < deadline:
                time.sleep(0.2)
            assert stack.kube.objects("Node") == []
            kinds = {r["kind"] for r in stack.oci.inventory()}
            assert "node" not in kinds and "loadbalancer" not in kinds
            before = gpu_billed()
            time.sleep(1.0)  # 10 simulated minutes
            assert gpu_billed() == before  # accrued GPU cost stopped growing
            lease = [
                c
                for c in stack.kube.objects("ConfigMap", "nim")
                if c["metadata"]["name"] == "nimble-lease"
            ]
            assert "before the next check" in lease[0]["data"]["lease.json"]
            assert json.loads(lease[0]["data"]["lease.json"])["enforced_at"] <= (
                record.lease_expires_at
            )  # at zero by the lease's end
            # the next `up` converges: the pool is scaled back and a fresh lease installed
            # (a long lease this time, so a slow machine cannot run it out during the test)
            longer = build_config(
                {"cluster": {"name": "wd"}, "budget": {"max_hours": 48, "max_usd": 500}}
            )
            again = up(
                longer,
                build_plan(longer, load_catalog()),
                target,
                store,
                say=lambda _m: None,
                bench=False,
            )
            assert again.ok, again.error
            assert len(stack.kube.objects("Node")) == 1
            lease = [
                c
                for c in stack.kube.objects("ConfigMap", "nim")
                if c["metadata"]["name"] == "nimble-lease"
            ]
            assert '"enforced_at": null' in lease[0]["data"]["lease.json"]
            down("wd", cfg, target, store, say=lambda _m: None)
            # the journal learned of the enforcement: it bills the pool's GPU for the hours
            # the cloud billed (not through the hours the pool sat at zero)
            (pool,) = [
                r
                for r in store.resources("wd")
                if r.kind == "node_pool" and any(m.price_key.startswith("gpu.") for m in r.meters)
            ]
            gpu = [m for m in pool.meters if m.price_key.startswith("gpu.")]
            assert [m.until is not None for m in gpu] == [True, False]  # the 2nd ends with the pool
            assert pool.deleted_at is not None
            assert gpu[1].since is not None and gpu[1].since > (gpu[0].until or 0)
            window = pool.usage()
            end = window.deleted_at or store.now()
            journal_s = sum(
                BilledWindow("pool", window.meters, window.created_at, end).meter_seconds(m)
                for m in gpu
            )
            _usd, sim_gpu_s = priced_usd(stack.oci.billing())
            assert journal_s == pytest.approx(sim_gpu_s, rel=0.05)
        assert stack.leftovers()["oci_resources"] == 0
