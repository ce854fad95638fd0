"""Re-running ``up`` on a session that exists (issue 16): a re-up that fails removes what
it made and nothing else, and the session's budget covers every up of it."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from nimble_oke.catalog import load_catalog
from nimble_oke.domain.config import NimbleConfig, build_config
from nimble_oke.domain.plan import build_plan
from nimble_oke.errors import BudgetError, KubeError
from nimble_oke.kube import wait
from nimble_oke.services.costs import session_accrual
from nimble_oke.services.lifecycle import down, up
from nimble_oke.services.sim_tools import product_stack
from nimble_oke.services.targets import sim_target
from nimble_oke.sim.oci.billing import priced_usd
from nimble_oke.sim.stack import SimStack
from nimble_oke.state.store import StateStore

SCALE = 3000.0
NOTHING_LEFT = {"oci_resources": 0, "kube_nodes": 0, "kube_namespaces": 0, "kube_pvs": 0}


def _cfg(**sections: object) -> NimbleConfig:
    base: dict[str, object] = {
        "cluster": {"name": "re"},
        "budget": {"max_hours": 48, "max_usd": 500},
    }
    base.update(sections)
    return build_config(base)


def _live_ids(stack: SimStack) -> set[str]:
    return {r["id"] for r in stack.oci.inventory() if not r["default"]}


def _image(stack: SimStack) -> str:
    (deployment,) = stack.kube.objects("Deployment", "nim")
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


def test_a_failed_re_up_of_a_healthy_session_removes_nothing_it_did_not_make(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: the failed re-up deleted the healthy deployment (and the lease and watchdog
    with its namespace) and left the pool, cluster and network billing with nobody to
    enforce the lease, the session marked "rolled back"."""
    with product_stack(tmp_path / "sim", time_scale=SCALE, seed=51) as stack:
        cfg = _cfg()
        target = sim_target(cfg, stack.endpoints(), {})
        with (
            contextlib.closing(target.provider),
            StateStore(tmp_path / "home", now=stack.clock.wall) as store,
        ):
            first = up(
                cfg,
                build_plan(cfg, load_catalog()),
                target,
                store,
                say=lambda _m: None,
                bench=False,
            )
            assert first.ok, first.error
            live, image = _live_ids(stack), _image(stack)
            # the user re-runs up with a NIM image tag that does not exist; its new pod never
            # gets Ready and the wait gives up
            typo = _cfg(nim={"image_tag": "1.8.0-typo"})

            def never_ready(*_a: object, **_k: object) -> None:
                raise KubeError("pod re-nimble-nim-… not Ready: ErrImagePull (image not found)")

            monkeypatch.setattr(wait, "wait_ready", never_ready)
            messages: list[str] = []
            again = up(
                typo,
                build_plan(typo, load_catalog()),
                target,
                store,
                say=messages.append,
                bench=False,
            )
            assert not again.ok and isinstance(again.exception, KubeError), again.error
            assert again.failed_step == "wait ready" and again.exit_code == 6
            assert again.rolled_back == [] and again.rollback_failed == []
            assert _live_ids(stack) == live  # nothing removed, nothing left over
            assert _image(stack) == image  # the deployment is back at its last good revision
            names = {c["metadata"]["name"] for c in stack.kube.objects("ConfigMap", "nim")}
            assert "nimble-lease" in names
            assert [c["metadata"]["name"] for c in stack.kube.objects("CronJob", "nim")] == [
                "nimble-watchdog"
            ]
            record = store.session("re")
            assert record is not None and record.status == "ready"
            assert record.endpoint == first.endpoint
            assert any("previous revision" in m for m in messages), messages
            monkeypatch.undo()
            result = down("re", cfg, target, store, say=lambda _m: None)
            assert result.teardown.failed == [] and result.teardown.remaining == []
            # the journal's accrual and the simulated cloud's bill agree
            journal = session_accrual(store, "re", now=stack.clock.wall(), read_lease=False)
            billed = priced_usd(stack.oci.billing())[0]
            assert journal.accrual.total_usd == pytest.approx(billed, rel=0.02)
        assert stack.leftovers() == NOTHING_LEFT


def test_a_session_is_refused_an_up_its_remaining_budget_cannot_cover(tmp_path: Path) -> None:
    with product_stack(tmp_path / "sim", time_scale=SCALE, seed=52) as stack:
        # a budget one up fits in, with little to spare (a lease long enough for the
        # compressed clock: the smoke suite runs on it)
        probe = build_plan(_cfg(budget={"max_hours": 24, "max_usd": 500}), load_catalog())
        budget = round(probe.worst_case_usd + 0.5, 2)
        cfg = _cfg(budget={"max_hours": 24, "max_usd": budget}, service={"type": "ClusterIP"})
        plan = build_plan(cfg, load_catalog())
        target = sim_target(cfg, stack.endpoints(), {})
        with (
            contextlib.closing(target.provider),
            StateStore(tmp_path / "home", now=stack.clock.wall) as store,
        ):
            first = up(cfg, plan, target, store, say=lambda _m: None, bench=False)
            assert first.ok, first.error
            standby = down("re", cfg, target, store, keep_cluster=True, say=lambda _m: None)
            assert standby.teardown.failed == []
            live = _live_ids(stack)
            messages: list[str] = []
            again = up(cfg, plan, target, store, say=messages.append, bench=False)
            assert not again.ok and isinstance(again.exception, BudgetError)
            assert again.exit_code == 3 and again.failed_step == "budget"
            assert again.error is not None and f"of its ${budget:.2f} budget" in again.error
            assert any(m.startswith("up refused:") for m in messages), messages
            assert _live_ids(stack) == live  # nothing was created
            record = store.session("re")
            assert record is not None and record.status == "standby (cluster kept)"
            down("re", cfg, target, store, say=lambda _m: None)
        assert stack.leftovers() == NOTHING_LEFT
