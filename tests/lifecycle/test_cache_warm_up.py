"""The model cache warmed on a CPU pool while the GPU pool provisions (issue 10), on the
joined simulators with the real OCI SDK, lightkube, the chart and the NIM emulator — and the
clean fallbacks when the AD or quota does not allow it."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest

from nimble_oke.catalog import load_catalog
from nimble_oke.domain.config import NimbleConfig, build_config
from nimble_oke.domain.plan import build_plan
from nimble_oke.services.lifecycle import UpResult, down, up
from nimble_oke.services.sim_tools import product_stack
from nimble_oke.services.targets import sim_target
from nimble_oke.sim.oci import FaultPlan
from nimble_oke.state.store import StateStore

SCALE = 3000.0
CPU_SHAPES = ("VM.Standard.E4.Flex", "VM.Standard.E5.Flex", "VM.Standard3.Flex")
CPU_LIMITS = ("standard-e4-core-count", "standard-e5-core-count", "standard3-core-count")
ADS = ("AD-1", "AD-2", "AD-3")


def _cfg(**cache: object) -> NimbleConfig:
    return build_config(
        {
            "cluster": {"name": "warm"},
            "budget": {"max_hours": 48, "max_usd": 500},
            "service": {"type": "ClusterIP"},
            "cache": {"size_gb": 200, "vpus_per_gb": 10, **cache},
        }
    )


def _run(tmp_path: Path, faults: FaultPlan | None = None) -> tuple[UpResult, list[str], Any]:
    """up then down on fresh simulators; returns the up result, messages and a summary."""
    messages: list[str] = []
    with product_stack(tmp_path / "sim", time_scale=SCALE, seed=21, faults=faults) as stack:
        cfg = _cfg()
        plan = build_plan(cfg, load_catalog())
        assert plan.warm_up is not None
        target = sim_target(cfg, stack.endpoints(), {})
        with (
            contextlib.closing(target.provider),
            StateStore(tmp_path / "home", now=target.now) as store,
        ):
            result = up(cfg, plan, target, store, say=messages.append, bench=False)
            pools = [r for r in stack.oci.inventory() if r["kind"] == "nodepool"]
            billed = {row.get("price_key") for row in stack.oci.billing()}
            records = [(r.kind, r.deleted_at is not None) for r in store.resources("warm")]
            down("warm", cfg, target, store, say=lambda _m: None)
        summary = {
            "pools_after_up": pools,
            "billed": billed,
            "records": records,
            "leftovers": stack.leftovers(),
        }
    return result, messages, summary


def _pod_phases(result: UpResult) -> list[str]:
    return [p["name"] for p in result.phases if p["name"].startswith("pod:")]


def test_cache_is_warmed_on_a_cpu_pool_and_the_gpu_node_never_downloads(tmp_path: Path) -> None:
    result, messages, summary = _run(tmp_path)
    assert result.ok, (result.error, messages)
    assert result.cache_warm_up is not None and result.cache_warm_up.startswith("warmed off")
    assert "pod: model download" not in _pod_phases(result)
    assert "pod: model load" in _pod_phases(result)
    warm_phases = [p["name"] for p in result.phases if p["name"].startswith("warm-up:")]
    assert warm_phases == ["warm-up: cpu node pool", "warm-up: model download (cpu node)"]
    # the CPU pool is gone once the endpoint is ready; it was billed and recorded
    assert [p["display_name"] for p in summary["pools_after_up"]] == ["warm-gpu"]
    assert ("node_pool", True) in summary["records"]
    assert {"compute.ocpu", "compute.memory"} <= summary["billed"]  # the CPU node, billed
    assert any("CPU pool" in m for m in messages)
    assert summary["leftovers"]["oci_resources"] == 0


def _no_cpu_quota() -> FaultPlan:
    return FaultPlan.from_dict({"limits": {name: dict.fromkeys(ADS, 0) for name in CPU_LIMITS}})


def _no_cpu_hosts() -> FaultPlan:
    return FaultPlan.from_dict({"capacity": {shape: dict.fromkeys(ADS, 0) for shape in CPU_SHAPES}})


def _cpu_pool_launch_fails() -> FaultPlan:
    return FaultPlan.from_dict(
        {
            "rules": [
                {"operation": "CreateNodePool", "kind": "out_of_host_capacity", "shape": s}
                for s in CPU_SHAPES
            ]
        }
    )


@pytest.mark.parametrize(
    ("faults", "reason"),
    [
        (_no_cpu_quota, "0 of 2 OCPUs left"),
        (_no_cpu_hosts, "OUT_OF_HOST_CAPACITY"),
        (_cpu_pool_launch_fails, "the CPU pool did not come up"),
    ],
    ids=["no-core-quota", "no-cpu-hosts-in-the-ad", "cpu-pool-launch-fails"],
)
def test_warm_up_falls_back_to_a_download_on_the_gpu_node(
    tmp_path: Path, faults: Any, reason: str
) -> None:
    result, messages, summary = _run(tmp_path, faults())
    assert result.ok, (result.error, messages)
    assert result.cache_warm_up is not None and "fell back" in result.cache_warm_up
    assert reason in result.cache_warm_up
    assert any("falling back" in m and reason in m for m in messages), messages
    assert "pod: model download" in _pod_phases(result)  # NIM downloaded on the GPU node
    assert [p["display_name"] for p in summary["pools_after_up"]] == ["warm-gpu"]
    assert summary["leftovers"]["oci_resources"] == 0


def test_standby_keeps_network_and_cluster_and_the_next_up_only_adds_a_gpu_pool(
    tmp_path: Path,
) -> None:
    with product_stack(tmp_path / "sim", time_scale=SCALE, seed=22) as stack:
        cfg = _cfg()
        plan = build_plan(cfg, load_catalog())
        target = sim_target(cfg, stack.endpoints(), {})
        quiet = lambda _m: None  # noqa: E731
        with (
            contextlib.closing(target.provider),
            StateStore(tmp_path / "home", now=target.now) as store,
        ):
            first = up(cfg, plan, target, store, say=quiet, bench=False)
            assert first.ok, first.error
            cluster_id = next(r.resource_id for r in store.resources("warm") if r.kind == "cluster")
            standby = down(
                "warm", cfg, target, store, keep_cache=True, keep_cluster=True, say=quiet
            )
            assert standby.teardown.failed == [] and standby.teardown.remaining == []
            kinds = {r["kind"] for r in stack.oci.inventory() if not r["default"]}
            assert "cluster" in kinds and "vcn" in kinds and "volume" in kinds
            assert "nodepool" not in kinds and "loadbalancer" not in kinds
            assert store.session("warm").status == "standby (cluster kept)"  # type: ignore[union-attr]
            assert store.session("warm").endpoint is None  # type: ignore[union-attr]
            messages: list[str] = []
            again = up(
                cfg,
                build_plan(cfg, load_catalog(), cache_warm=True, standby=True),
                target,
                store,
                say=messages.append,
                bench=False,
            )
            assert again.ok, again.error
            assert cluster_id in {r.resource_id for r in store.resources("warm", live_only=True)}
            assert "pod: model download" not in _pod_phases(again)
            assert any("reusing the kept model cache" in m for m in messages), messages
            # the second run waited only for the GPU pool: no cluster create in between
            assert again.ready_at is not None and again.started_at is not None
            assert first.ready_at is not None and first.started_at is not None
            assert (again.ready_at - again.started_at) < (first.ready_at - first.started_at) - 300
            final = down("warm", cfg, target, store, say=quiet)
            assert final.teardown.failed == [] and final.teardown.remaining == []
        assert stack.leftovers()["oci_resources"] == 0


def test_rollback_after_a_warm_up_also_removes_the_warmed_volume(tmp_path: Path) -> None:
    # Every GPU pool launch fails for capacity, but only after the warm-up (beside the first
    # one) has filled a cache volume: the rollback must take that volume too.
    faults = FaultPlan.from_dict(
        {
            "rules": [
                {
                    "operation": "CreateNodePool",
                    "kind": "out_of_host_capacity",
                    "shape": "VM.GPU.A10.1",
                }
            ]
        }
    )
    with product_stack(tmp_path / "sim", time_scale=SCALE, seed=23, faults=faults) as stack:
        cfg = _cfg()
        target = sim_target(cfg, stack.endpoints(), {})
        messages: list[str] = []
        with (
            contextlib.closing(target.provider),
            StateStore(tmp_path / "home", now=target.now) as store,
        ):
            result = up(cfg, build_plan(cfg, load_catalog()), target, store, say=messages.append)
            assert not result.ok and "fallback ladder failed" in (result.error or "")
            assert any("model in the cache volume" in m for m in messages), messages
            assert result.rollback_failed == []
        assert stack.leftovers()["oci_resources"] == 0, stack.oci.inventory()
