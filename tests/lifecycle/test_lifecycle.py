"""End-to-end lifecycle on the sim target: the joined simulators, the real OCI SDK,
lightkube, the chart, the NIM emulator, the smoke suite and the benchmark."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nimble_oke.catalog import load_catalog
from nimble_oke.cli.app import app
from nimble_oke.domain.config import NimbleConfig, build_config
from nimble_oke.domain.plan import build_plan
from nimble_oke.ngc_keys import throwaway_key
from nimble_oke.services.lifecycle import down, up
from nimble_oke.services.sim_tools import product_stack
from nimble_oke.services.targets import sim_target
from nimble_oke.sim.stack import SimStack
from nimble_oke.state.store import StateStore

SCALE = 3000.0


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[SimStack]:
    with product_stack(tmp_path / "sim", time_scale=SCALE, seed=3) as s:
        yield s


def _cfg(**sections: object) -> NimbleConfig:
    base: dict[str, object] = {
        "cluster": {"name": "e2e"},
        # a lease long enough for the compressed clock (3000×: an hour is 1.2 s)
        "budget": {"max_hours": 48, "max_usd": 500},
        "bench": {
            "requests": 8,
            "concurrency": 2,
            "input_tokens": 32,
            "output_tokens": 16,
            "warmup": 0,
        },
    }
    base.update(sections)
    return build_config(base)


def test_demo_passes_and_leaves_both_simulators_empty() -> None:
    result = CliRunner().invoke(app, ["demo", "--output", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["ok"] is True
    assert data["leaked_resources"] == 0
    assert data["smoke"]["failed"] == 0 and data["smoke"]["passed"] >= 7
    assert data["bench"]["validity"]["status"] in ("VALID", "INVALID")
    assert data["bench"]["request_throughput"]["avg"] > 0
    assert data["cost"]["accrued_usd"] > 0 and data["cost"]["spent_usd"] == 0
    names = [p["name"] for p in data["phases"]]
    for phase in ("preflight", "provision", "deploy", "wait ready", "smoke", "bench"):
        assert phase in names
    assert data["wall_seconds"] < 60


def test_up_twice_is_one_set_of_resources_and_down_leaves_nothing(
    stack: SimStack, tmp_path: Path
) -> None:
    cfg = _cfg()
    plan = build_plan(cfg, load_catalog())
    target = sim_target(cfg, stack.endpoints(), {})
    with (
        contextlib.closing(target.provider),
        StateStore(tmp_path / "home", now=stack.clock.wall) as store,
    ):
        first = up(cfg, plan, target, store, say=lambda _m: None, bench=False)
        assert first.ok, first.error
        kinds_after_first = Counter(r["kind"] for r in stack.oci.inventory())
        second = up(cfg, plan, target, store, say=lambda _m: None, bench=False)
        assert second.ok, second.error
        assert Counter(r["kind"] for r in stack.oci.inventory()) == kinds_after_first
        assert second.endpoint is not None
        result = down("e2e", cfg, target, store, say=lambda _m: None)
        assert result.teardown.failed == [] and result.teardown.remaining == []
    assert stack.leftovers() == {
        "oci_resources": 0,
        "kube_nodes": 0,
        "kube_namespaces": 0,
        "kube_pvs": 0,
    }


def _refuse_revoked(registry: str, username: str, password: str) -> str | None:
    """nvcr.io as the simulator models it, except that revoked keys get 401."""
    return "unauthorized" if "revoked" in password else None


def test_failed_deploy_rolls_back_everything_this_run_created(tmp_path: Path) -> None:
    # Break the deployment after the cloud side exists: nvcr.io refuses the NGC key, the
    # pod sits in ImagePullBackOff, and up must remove everything this run created.
    with product_stack(
        tmp_path / "sim", time_scale=SCALE, seed=4, kube_options={"pull_auth": _refuse_revoked}
    ) as stack:
        _rollback_case(stack, tmp_path)


def _rollback_case(stack: SimStack, tmp_path: Path) -> None:
    cfg = _cfg()
    plan = build_plan(cfg, load_catalog())
    target = sim_target(cfg, stack.endpoints(), {"NGC_API_KEY": throwaway_key("revoked")})
    messages: list[str] = []
    with (
        contextlib.closing(target.provider),
        StateStore(tmp_path / "home", now=stack.clock.wall) as store,
    ):
        result = up(cfg, plan, target, store, say=messages.append, bench=False)
        assert not result.ok
        assert result.error
        assert result.rolled_back, messages
        assert store.session("e2e").status == "rolled back"  # type: ignore[union-attr]
        assert "ImagePullBackOff" in result.error or "ErrImagePull" in result.error
    assert stack.leftovers()["oci_resources"] == 0


def test_keep_cache_then_up_skips_the_download(tmp_path: Path) -> None:
    with product_stack(tmp_path / "sim", time_scale=600, seed=6) as stack:
        cfg = _cfg(cache={"warm_up": "gpu-node"})  # the naive cold path: NIM downloads
        plan = build_plan(cfg, load_catalog())
        target = sim_target(cfg, stack.endpoints(), {})
        quiet = lambda _m: None  # noqa: E731
        with (
            contextlib.closing(target.provider),
            StateStore(tmp_path / "home", now=target.now) as store,
        ):
            cold = up(cfg, plan, target, store, say=quiet, bench=False)
            assert cold.ok, cold.error
            cold_pod = [p["name"] for p in cold.phases if p["name"].startswith("pod:")]
            assert "pod: model download" in cold_pod
            kept = down("e2e", cfg, target, store, keep_cache=True, say=quiet)
            assert len(kept.teardown.kept) == 1 and kept.teardown.remaining == []
            inventory = stack.oci.inventory()
            assert [r["kind"] for r in inventory] == ["volume"], inventory
            assert stack.leftovers()["kube_namespaces"] == 0  # the cluster (and its API) is gone
            warm = up(cfg, plan, target, store, say=quiet, bench=False)
            assert warm.ok, warm.error
            warm_pod = [p["name"] for p in warm.phases if p["name"].startswith("pod:")]
            assert "pod: model download" not in warm_pod
            ledger = [p["name"] for p in store.phases("e2e") if p["name"].startswith("pod:")]
            assert ledger.count("pod: model download") == 1  # only the cold run downloaded
            final = down("e2e", cfg, target, store, say=quiet)
            assert final.teardown.failed == []
        assert stack.leftovers() == {
            "oci_resources": 0,
            "kube_nodes": 0,
            "kube_namespaces": 0,
            "kube_pvs": 0,
        }


class _CtrlCOnNodePool:
    """The real provider, except that the user presses Ctrl-C while the node pool is being
    created (the create itself went through)."""

    def __init__(self, inner: object) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    def create(self, kind: str, spec: object, *, retry_token: str) -> object:
        created = self._inner.create(kind, spec, retry_token=retry_token)  # type: ignore[attr-defined]
        if kind == "node_pool":
            raise KeyboardInterrupt
        return created


def test_ctrl_c_rolls_back_what_this_run_created(stack: SimStack, tmp_path: Path) -> None:
    cfg = _cfg()
    plan = build_plan(cfg, load_catalog())
    target = sim_target(cfg, stack.endpoints(), {})
    real = target.provider
    target.provider = _CtrlCOnNodePool(real)  # type: ignore[assignment]
    messages: list[str] = []
    with contextlib.closing(real), StateStore(tmp_path / "home", now=target.now) as store:
        with pytest.raises(KeyboardInterrupt):
            up(cfg, plan, target, store, say=messages.append, bench=False)
        assert store.session("e2e").status == "rolled back"  # type: ignore[union-attr]
    assert any("rolling back" in m for m in messages)
    assert stack.oci.inventory() == []


def test_kept_cache_steers_the_pool_into_the_volumes_ad(tmp_path: Path) -> None:
    from nimble_oke.sim.oci import FaultPlan, FaultRule

    # The first pool create in AD-1 finds no capacity, so the first session lands in AD-2
    # and its cache volume is created there. Later AD-1 has capacity again, but a block
    # volume attaches only within its AD: the next `up` must go to AD-2 and reuse it.
    faults = FaultPlan(
        rules=[
            FaultRule(
                operation="CreateNodePool",
                kind="out_of_host_capacity",
                availability_domain="AD-1",
                nth=[1],
            )
        ]
    )
    with product_stack(tmp_path / "sim", time_scale=SCALE, seed=8, faults=faults) as stack:
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
            assert first.placement is not None and "AD-2" in first.placement
            down("e2e", cfg, target, store, keep_cache=True, say=quiet)
            messages: list[str] = []
            second = up(cfg, plan, target, store, say=messages.append, bench=False)
            assert second.ok, second.error
            assert second.placement is not None and "AD-2" in second.placement
            assert any("reusing the kept model cache" in m for m in messages), messages
            down("e2e", cfg, target, store, say=quiet)
        assert stack.leftovers()["oci_resources"] == 0
