"""Production path on the sim target: a model pushed to Object Storage is hydrated into the
cache volume by the chart's init container (nimble's own tool, PAR auth) and NIM starts
without downloading from NGC."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest

from nimble_oke.catalog import load_catalog
from nimble_oke.domain.config import build_config
from nimble_oke.domain.plan import build_plan
from nimble_oke.services.lifecycle import down, up
from nimble_oke.services.models import Storage, push, repo_model_name
from nimble_oke.services.sim_tools import product_stack
from nimble_oke.services.targets import sim_target
from nimble_oke.sim.nim import NimSettings, warm_cache
from nimble_oke.state.store import StateStore

MODEL = "meta/llama-3.1-8b-instruct"


@pytest.mark.parametrize("warm_up", ["cpu-pool", "gpu-node"])
def test_object_storage_cache_is_hydrated_and_nim_skips_the_download(
    tmp_path: Path, warm_up: str
) -> None:
    """cpu-pool (the default): the hydrate runs as a Job on a CPU pool while the GPU pool
    provisions, and the NIM pod's init container finds the manifest matching; gpu-node: the
    init container hydrates on the GPU node."""
    # A model cache as NIM writes it (what `nimble models push` uploads from a PVC).
    cache_root = tmp_path / "cache"
    warm_cache(NimSettings.from_env({"NIM_CACHE_PATH": str(cache_root)}, model=MODEL, gpu="A10"))
    with product_stack(tmp_path / "sim", time_scale=3000, seed=9) as stack:
        probe = build_config({})
        target0 = sim_target(probe, stack.endpoints(), {})
        with (
            contextlib.closing(target0.provider),
            Storage.from_provider(target0.provider, stack.endpoints()["oci_regions"]) as storage,
        ):
            pushed = push(storage, cache_root, "nim-models", "v1", model=repo_model_name(MODEL))
            namespace = storage.namespace()
        assert pushed.files > 0
        cfg = build_config(
            {
                "cluster": {"name": "os"},
                "budget": {"max_hours": 48, "max_usd": 500},
                "cache": {
                    "mode": "object-storage",
                    "bucket": "nim-models",
                    "namespace": namespace,
                    "version": "v1",
                    "warm_up": warm_up,
                },
            }
        )
        plan = build_plan(cfg, load_catalog())
        target = sim_target(cfg, stack.endpoints(), {})
        quiet = lambda _m: None  # noqa: E731
        with (
            contextlib.closing(target.provider),
            StateStore(tmp_path / "home", now=target.now) as store,
        ):
            result = up(cfg, plan, target, store, say=quiet, bench=False)
            assert result.ok, result.error
            pods = [
                p for p in stack.kube.objects("Pod", "nim") if "nimble-nim" in p["metadata"]["name"]
            ]
            nim_log = "\n".join(stack.kube.logs("nim", pods[0]["metadata"]["name"], "nim"))
            hydrate_log = "\n".join(
                stack.kube.logs("nim", pods[0]["metadata"]["name"], "hydrate-cache")
            )
            assert "Model files found in cache" in nim_log
            assert "Downloading model files" not in nim_log
            assert "hydrate:" in hydrate_log and "/p/" not in hydrate_log  # the PAR never logged
            pod_phases = [p["name"] for p in result.phases if p["name"].startswith("pod:")]
            assert "pod: model download" not in pod_phases
            warm_phases = [p["name"] for p in result.phases if p["name"].startswith("warm-up:")]
            if warm_up == "cpu-pool":
                assert (
                    result.cache_warm_up == "warmed off the GPU on VM.Standard.E4.Flex (hydrated)"
                )
                assert warm_phases == [
                    "warm-up: cpu node pool",
                    "warm-up: model hydrate (cpu node)",
                ]
                assert "skipped=True" in hydrate_log  # the GPU pod found the cache filled
                assert {r.kind for r in store.resources("os")} >= {"node_pool"}
                pools = {r.name for r in store.resources("os") if r.kind == "node_pool"}
                assert pools == {"os-gpu", "os-cache-warmup"}
            else:
                assert result.cache_warm_up is None and warm_phases == []
                assert "skipped=False" in hydrate_log
                # the emulator's 15 GB take their simulated time at Object Storage's rate,
                # bounded by the cache volume's throughput
                took = re.search(r"([\d.]+) GB at (\d+) MB/s \((\d+) simulated s\)", hydrate_log)
                assert took is not None, hydrate_log
                gb, mb_s, seconds = (float(x) for x in took.groups())
                assert gb > 14 and mb_s <= 250
                assert seconds == pytest.approx(gb * 1e3 / mb_s, rel=0.02)
            down("os", cfg, target, store, say=quiet)
        remaining = [
            r
            for r in stack.oci.inventory()
            if r["kind"] not in ("bucket", "object", "par", "preauthenticatedrequest")
        ]
        assert remaining == [], remaining
