"""A kept cache volume rests at Lower Cost between sessions and is raised online to the
session's performance while the next GPU pool provisions; `up` plans that warm session
from the journal (size fixed by the kept volume, no download).

Real OCI SDK against the joined simulators; the volume's VPUs are read back through
``BlockstorageClient.get_volume``, and the journal's meters through the state store."""

from __future__ import annotations

import contextlib
from pathlib import Path

import oci
import yaml

from nimble_oke.catalog import load_catalog
from nimble_oke.domain.cost import accrue
from nimble_oke.services.lifecycle import down, up
from nimble_oke.services.planning import plan_session, session_warmth
from nimble_oke.services.sim_tools import product_stack
from nimble_oke.services.targets import sim_target
from nimble_oke.sim.stack import SimStack
from nimble_oke.state.store import StateStore

CONFIG = {
    "cluster": {"name": "kept"},
    "budget": {"max_hours": 48, "max_usd": 500},
    "cache": {"warm_up": "gpu-node", "size_gb": 100, "vpus_per_gb": 20},
}


def _blocks(stack: SimStack) -> oci.core.BlockstorageClient:
    config = oci.config.from_file(str(stack.oci_config_path))
    return oci.core.BlockstorageClient(config, service_endpoint=stack.oci.endpoint)


def _open_vpu_meters(store: StateStore, session: str) -> list[float]:
    return [
        m.quantity
        for r in store.resources(session, live_only=True)
        if r.kind == "volume"
        for m in r.meters
        if m.price_key == "block.vpu" and m.until is None
    ]


def test_kept_volume_rests_cheap_and_is_raised_for_the_next_session(tmp_path: Path) -> None:
    config_file = tmp_path / "nimble.yaml"
    config_file.write_text(yaml.safe_dump(CONFIG))
    quiet = lambda _m: None  # noqa: E731
    with product_stack(tmp_path / "sim", time_scale=600, seed=6) as stack:
        cold = plan_session(str(config_file), {}, yes=True, warmth=session_warmth)
        assert not any("kept cache" in n for n in cold.plan.notes)
        cfg = cold.config
        target = sim_target(cfg, stack.endpoints(), {})
        blocks = _blocks(stack)
        with contextlib.closing(target.provider), StateStore(now=target.now) as store:
            first = up(cfg, cold.plan, target, store, say=quiet, bench=False)
            assert first.ok, first.error
            messages: list[str] = []
            down("kept", cfg, target, store, keep_cache=True, say=messages.append)
            (volume_id,) = [r["id"] for r in stack.oci.inventory() if r["kind"] == "volume"]
            # between sessions: Lower Cost (0 VPU/GB), billed as storage only from now on
            assert blocks.get_volume(volume_id).data.vpus_per_gb == 0
            assert any("keeping the model cache at 0 VPU/GB (was 20)" in m for m in messages)
            assert _open_vpu_meters(store, "kept") == []
            rested = store.now()

            # the next up plans a warm session: the kept size is fixed, VPUs are chosen
            warm = plan_session(str(config_file), {}, yes=True, warmth=session_warmth)
            assert warm.config.cache.size_gb == 100
            assert any("kept cache volume: 100 GB" in n for n in warm.plan.notes)
            assert warm.plan.time_to_ready_s < cold.plan.time_to_ready_s
            vpus = warm.config.cache.vpus_per_gb
            messages.clear()
            second = up(warm.config, warm.plan, target, store, say=messages.append, bench=False)
            assert second.ok, second.error
            assert any(f"kept volume 0 -> {vpus} VPU/GB online" in m for m in messages), messages
            assert blocks.get_volume(volume_id).data.vpus_per_gb == vpus
            assert _open_vpu_meters(store, "kept") == [100.0 * vpus]
            pods = [p["name"] for p in second.phases if p["name"].startswith("pod:")]
            assert "pod: model download" not in pods

            # the journal prices each performance level only while it applied
            (record,) = [r for r in store.resources("kept") if r.kind == "volume"]
            vpu_windows = [(m.since, m.until) for m in record.meters if m.price_key == "block.vpu"]
            assert vpu_windows[0][1] is not None and vpu_windows[0][1] <= rested
            assert vpu_windows[-1][0] is not None and vpu_windows[-1][0] >= rested
            accrual = accrue(load_catalog(), [record.usage()], store.now())
            assert accrual.per_resource[record.usage().resource] > 0
            # an idempotent re-run keeps using the kept volume: no new cache, no download
            again = up(warm.config, warm.plan, target, store, say=quiet, bench=False)
            assert again.ok, again.error
            pods = [p["name"] for p in again.phases if p["name"].startswith("pod:")]
            assert "pod: model download" not in pods
            volumes = [r for r in stack.oci.inventory() if r["kind"] == "volume"]
            assert [v["id"] for v in volumes] == [volume_id], volumes
            blocks.base_client.session.close()
            down("kept", warm.config, target, store, say=quiet)
        assert stack.leftovers()["oci_resources"] == 0
