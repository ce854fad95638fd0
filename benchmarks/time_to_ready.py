"""Time to ready, GPU-billed minutes and cost per scenario, measured on the simulators.

Runs the real `up` (provision → deploy → wait) on the joined simulators with calibrated
timings and reads every figure from the simulated cloud itself — its clock and its billing
meter — not from constants. Next to each measured figure it prints what `nimble plan`
predicted, and the deviation.

Scenarios (VM.GPU.A10.1, meta/llama-3.1-8b-instruct, cache volume as the planner chooses):
- cold, naive: a new session; NIM downloads the model onto the cache volume on the GPU
  node (`cache.warm_up: gpu-node`);
- cold, warmed off the GPU: a new session; a CPU pool fills the cache volume while the GPU
  pool provisions (the default);
- warm: the next `up` after `down --keep-cache`; the kept volume (resting at Lower Cost) is
  raised online to the planner's VPUs while the GPU pool provisions, then attached: no
  download;
- warm, standby: after `down --keep-cache --keep-cluster` only a GPU pool is created;
- warm, standby + kept node image: after `down ... --keep-node-image` the GPU pool starts
  from a custom worker image holding the NIM image, so nothing is pulled; once more with
  the kept volume at 120 VPU/GB for the session (the user's choice, not the planner's);
- object storage (`cache.mode: object-storage`, the model pushed with `nimble models push`):
  hydrated by the NIM pod's init container on the GPU node (`cache.warm_up: gpu-node`), then
  by the same container as a Job on a CPU pool while the GPU pool provisions (the default).
  The simulated hydrate takes the emulated cache's bytes at 250 MB/s (Object Storage, as
  the planner models it), bounded by the cache volume's throughput.

- hibernated A10: `down --hibernate` of a ready session (the GPU VM stopped: storage only,
  no GPU second billed while asleep, by the meter), 8 h asleep, then `up`: START, the node
  Ready again, NIM scaled back from the boot volume's image and the attached cache; the plan
  predicts it with domain/hibernate.py's ``hibernate_wake`` (the start time is a stated
  assumption: typical and range).

Usage: python benchmarks/time_to_ready.py [--time-scale N] [--output json] [--only hibernated]
By default the simulators run the event clock (as `nimble sim start` does): simulated time
jumps over provisioning while this process waits and runs at real speed while it computes,
so the client's own overhead counts once, not multiplied. ``--time-scale N`` runs a scaled
clock instead (N simulated seconds per real second, always: the client's overhead is
multiplied by N).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from nimble_oke.catalog import load_catalog
from nimble_oke.domain.config import build_config
from nimble_oke.domain.plan import build_plan
from nimble_oke.services.lifecycle import down, up
from nimble_oke.services.models import Storage, push, repo_model_name
from nimble_oke.services.sim_tools import product_stack
from nimble_oke.services.targets import sim_target
from nimble_oke.sim.nim import NimSettings, warm_cache
from nimble_oke.sim.oci.billing import priced_usd
from nimble_oke.sim.stack import SimStack
from nimble_oke.state.store import StateStore


def _node_ready_minutes(stack: SimStack, cluster_name: str, result: Any) -> float | None:
    """When the session's GPU node registered (minutes after `up` started): the part of
    the time to ready that node provisioning takes, from the Kubernetes Node object."""
    apis = [api for api in stack.cluster_apis() if api.name == cluster_name]
    created = [
        datetime.fromisoformat(n["metadata"]["creationTimestamp"]).timestamp()
        for api in apis
        for n in api.kube.objects("Node")
        if (n["metadata"].get("labels") or {}).get("nvidia.com/gpu") == "true"
    ]
    if not created or result.started_at is None:
        return None
    return round((max(created) - float(result.started_at)) / 60, 2)


def measured_down(
    stack: SimStack, store: StateStore, target: Any, cfg: Any, keep_node_image: bool = False
) -> dict[str, float]:
    """`down --keep-cache --keep-cluster [--keep-node-image]`, priced from the billing meter:
    capturing the node image keeps the GPU node (and its bill) alive for the capture."""
    start = stack.clock.now()
    down(
        cfg.session_name,
        cfg,
        target,
        store,
        keep_cache=True,
        keep_cluster=True,
        keep_node_image=keep_node_image,
        say=lambda _m: None,
    )
    end = stack.clock.now()
    usd, gpu_s = priced_usd(stack.oci.billing(), start=start, end=end)
    return {
        "minutes": round((end - start) / 60, 2),
        "gpu_billed_minutes": round(gpu_s / 60, 2),
        "usd": round(usd, 4),
    }


def scenario(
    name: str,
    stack: SimStack,
    store: StateStore,
    target: Any,
    cfg: Any,
    warm: bool,
    standby: bool = False,
    node_image: bool = False,
) -> dict[str, Any]:
    plan = build_plan(cfg, load_catalog(), cache_warm=warm, standby=standby, node_image=node_image)
    cfg = plan.config or cfg
    result = up(cfg, plan, target, store, say=lambda _m: None, bench=False)
    if not result.ok or result.ready_at is None or result.started_at is None:
        raise SystemExit(f"{name}: up failed: {result.error}")
    epoch = stack.clock.wall() - stack.clock.now()
    ready_rel, start_rel = result.ready_at - epoch, result.started_at - epoch
    usd, gpu_s = priced_usd(stack.oci.billing(), start=start_rel, end=ready_rel)
    ready_s = result.ready_at - result.started_at
    pod = [p["name"].removeprefix("pod: ") for p in result.phases if p["name"].startswith("pod:")]
    return {
        "name": name,
        "ready_minutes": round(ready_s / 60, 2),
        "gpu_billed_minutes": round(gpu_s / 60, 2),
        "usd": round(usd, 4),
        # the GPU node filled the cache itself (NIM's download or the hydrate init container)
        "gpu_node_fill": "model download" in pod or "model hydrate" in pod,
        "warm_up": result.cache_warm_up,
        "node_ready_minutes": _node_ready_minutes(stack, cfg.session_name, result),
        "volume": f"{cfg.cache.size_gb} GB @ {cfg.cache.vpus_per_gb} VPU/GB",
        "plan_ready_minutes": round(plan.time_to_ready_s / 60, 2),
        "plan_gpu_billed_minutes": round(plan.gpu_billed_s / 60, 2),
        "ready_deviation_pct": round(
            100 * (ready_s - plan.time_to_ready_s) / plan.time_to_ready_s, 1
        ),
    }


def hibernated_scenario(
    stack: SimStack, store: StateStore, target: Any, cfg: Any, asleep_s: float = 8 * 3600
) -> dict[str, Any]:
    """`down --hibernate` of a ready session, `asleep_s` asleep, then `up`: the wake's
    figures from the simulated clock and billing meter, beside what the plan predicts
    (domain/hibernate.py ``hibernate_wake``: typical, and the start assumption's range)."""
    from nimble_oke.domain.hibernate import CASES, hibernate_wake
    from nimble_oke.services.hibernate import hibernate

    catalog = load_catalog()
    plan = build_plan(cfg, catalog)
    cfg = plan.config or cfg
    first = up(cfg, plan, target, store, say=lambda _m: None, bench=False)
    if not first.ok:
        raise SystemExit(f"hibernated A10: first up failed: {first.error}")
    asleep = hibernate(cfg.session_name, cfg, target, store, say=lambda _m: None)
    slept_from = stack.clock.now()
    stack.clock.advance(asleep_s)  # asleep: nothing provisions, so time is moved on
    _asleep_usd, asleep_gpu_s = priced_usd(
        stack.oci.billing(), start=slept_from, end=stack.clock.now()
    )
    result = up(cfg, plan, target, store, say=lambda _m: None, bench=False)
    if not result.ok or result.ready_at is None or result.started_at is None:
        raise SystemExit(f"hibernated A10: wake failed: {result.error}")
    epoch = stack.clock.wall() - stack.clock.now()
    usd, gpu_s = priced_usd(
        stack.oci.billing(), start=result.started_at - epoch, end=result.ready_at - epoch
    )
    ready_s = result.ready_at - result.started_at
    wakes = {case: hibernate_wake(cfg, catalog, case) for case in CASES}
    node_ready = None if result.node_ready_at is None else result.node_ready_at - result.started_at
    down(cfg.session_name, cfg, target, store, say=lambda _m: None)
    return {
        "name": "hibernated A10",
        "ready_minutes": round(ready_s / 60, 2),
        "gpu_billed_minutes": round(gpu_s / 60, 2),
        "usd": round(usd, 4),
        "gpu_node_fill": False,
        "warm_up": f"woken: {result.wake}",
        "node_ready_minutes": None if node_ready is None else round(node_ready / 60, 2),
        "volume": f"{cfg.cache.size_gb} GB @ {cfg.cache.vpus_per_gb} VPU/GB",
        "plan_ready_minutes": round(wakes["typical"].ready_s / 60, 2),
        "plan_ready_range_minutes": [round(wakes[c].ready_s / 60, 2) for c in ("best", "worst")],
        "plan_gpu_billed_minutes": round(wakes["typical"].gpu_billed_s / 60, 2),
        "ready_deviation_pct": round(
            100 * (ready_s - wakes["typical"].ready_s) / wakes["typical"].ready_s, 1
        ),
        "asleep_hours": round(asleep_s / 3600, 2),
        "asleep_gpu_billed_minutes": round(asleep_gpu_s / 60, 2),
        "asleep_usd_per_day": round(asleep.usd_per_day, 4),
    }


BUCKET = "nim-models"
MODEL = "meta/llama-3.1-8b-instruct"


def push_model(stack: SimStack, target: Any, cache_root: Path) -> str:
    """A model cache as NIM writes it, pushed as version v1 (`nimble models push`);
    returns the Object Storage namespace."""
    warm_cache(NimSettings.from_env({"NIM_CACHE_PATH": str(cache_root)}, model=MODEL, gpu="A10"))
    with Storage.from_provider(target.provider, stack.endpoints()["oci_regions"]) as storage:
        push(storage, cache_root, BUCKET, "v1", model=repo_model_name(MODEL))
        return str(storage.namespace())


def config(name: str, **cache: object) -> Any:
    return build_config(
        {
            "cluster": {"name": name},
            "budget": {"max_hours": 2, "max_usd": 50},  # the default lease
            "service": {"type": "ClusterIP"},
            "cache": cache,
        }
    )


def warm_scenarios(
    stack: SimStack, store: StateStore, target: Any, tmp: Path
) -> tuple[list[dict[str, Any]], dict[str, dict[str, float]]]:
    """The cold, warm, standby and object-storage scenarios (module docstring)."""
    quiet = lambda _m: None  # noqa: E731
    rows: list[dict[str, Any]] = []
    # One cache volume for every scenario (the planner's choice for the default
    # session), so the scenarios differ only in how the cache gets filled.
    warmed_cfg = build_plan(config("ttr"), load_catalog()).config
    assert warmed_cfg is not None
    volume = {"size_gb": warmed_cfg.cache.size_gb, "vpus_per_gb": warmed_cfg.cache.vpus_per_gb}
    naive_cfg = config("ttr-naive", warm_up="gpu-node", **volume)

    def run(name: str, cfg: Any, **kept: bool) -> None:
        rows.append(scenario(name, stack, store, target, cfg, **kept))

    def kept_down(cfg: Any, **node_image: bool) -> dict[str, float]:
        return measured_down(stack, store, target, cfg, **node_image)

    run("cold, naive (download on the GPU node)", naive_cfg, warm=False)
    down("ttr-naive", naive_cfg, target, store, say=quiet)
    run("cold, warmed off the GPU (CPU pool)", warmed_cfg, warm=False)
    down("ttr", warmed_cfg, target, store, keep_cache=True, say=quiet)
    # As `nimble up` plans a session with a kept cache: the volume's size is fixed,
    # its performance for the session is the planner's choice (raised online).
    kept_cfg = config("ttr", size_gb=volume["size_gb"])
    run("warm (kept cache volume)", kept_cfg, warm=True)
    downs = {"standby": kept_down(kept_cfg)}
    run("warm, standby (kept cache + cluster)", kept_cfg, warm=True, standby=True)
    downs["standby + node image capture"] = kept_down(kept_cfg, keep_node_image=True)
    warmest = {"warm": True, "standby": True, "node_image": True}
    run("warm, standby + kept node image", kept_cfg, **warmest)
    downs["standby, node image kept (no capture)"] = kept_down(kept_cfg, keep_node_image=True)
    # The same, with the kept volume raised to Ultra High Performance for the
    # session (cache.vpus_per_gb: 120) instead of the planner's cheapest choice.
    fast_cfg = config("ttr", size_gb=volume["size_gb"], vpus_per_gb=120)
    run("warm, standby + node image, 120 VPU/GB", fast_cfg, **warmest)
    down("ttr", fast_cfg, target, store, say=quiet)
    source = {
        "mode": "object-storage",
        "bucket": BUCKET,
        "namespace": push_model(stack, target, tmp / "nim-cache"),
        "version": "v1",
        **volume,
    }
    os_naive = config("ttr-os-naive", warm_up="gpu-node", **source)
    run("object storage, hydrate on the GPU node", os_naive, warm=False)
    down("ttr-os-naive", os_naive, target, store, say=quiet)
    os_warmed = config("ttr-os", **source)
    run("object storage, hydrated off the GPU", os_warmed, warm=False)
    down("ttr-os", os_warmed, target, store, say=quiet)
    return rows, downs


def hibernated_at_typical(time_scale: float | None, tmp: Path) -> dict[str, Any]:
    """The hibernated scenario with START and the node's rejoin pinned at their typical
    assumed figures (90 s, 60 s): the seeded stack draws them from the whole range."""
    from nimble_oke.domain.hibernate import INSTANCE_START, NODE_REJOIN
    from nimble_oke.sim.oci import FaultPlan

    pinned = {"instance_start_s": INSTANCE_START.typical, "node_rejoin_s": NODE_REJOIN.typical}
    with product_stack(
        tmp / "sim-typical", time_scale=time_scale, seed=11, faults=FaultPlan(timings=pinned)
    ) as stack:
        target = sim_target(config("ttr-hib"), stack.endpoints(), {})
        with (
            contextlib.closing(target.provider),
            StateStore(tmp / "home-typical", now=target.now) as store,
        ):
            row = hibernated_scenario(stack, store, target, config("ttr-hib"))
    row["name"] = "hibernated A10, typical start"
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--time-scale", type=float, default=None)
    parser.add_argument("--output", choices=["table", "json"], default="table")
    parser.add_argument(
        "--only", choices=["all", "hibernated"], default="all", help="run one scenario only"
    )
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        product_stack(Path(tmp) / "sim", time_scale=args.time_scale, seed=11) as stack,
    ):
        target = sim_target(config("ttr"), stack.endpoints(), {})
        with (
            contextlib.closing(target.provider),
            StateStore(Path(tmp) / "home", now=target.now) as store,
        ):
            rows: list[dict[str, Any]] = []
            downs: dict[str, dict[str, float]] = {}
            if args.only == "all":
                rows, downs = warm_scenarios(stack, store, target, Path(tmp))
            # VM.GPU.A10.1 (the default shape) pauses billing while stopped
            rows.append(hibernated_scenario(stack, store, target, config("ttr-hib")))
        rows.append(hibernated_at_typical(args.time_scale, Path(tmp)))
    clock = "event clock" if args.time_scale is None else f"scaled clock {args.time_scale:g}×"
    if args.output == "json":
        document = {"clock": clock, "time_scale": args.time_scale, "scenarios": rows}
        print(json.dumps({**document, "downs": downs}, indent=2))
        return
    print_table(clock, rows, downs)


def print_table(clock: str, rows: list[dict[str, Any]], downs: dict[str, dict[str, float]]) -> None:
    print(
        f"time to ready on the simulators ({clock}; figures from the simulated clock and billing meter)"
    )
    print(
        f"  {'scenario':<40} {'ready min':>9} {'plan':>6} {'dev':>6} {'GPU-billed min':>15} {'plan':>6} {'USD':>7} {'node min':>8}  GPU node fills cache"
    )
    for r in rows:
        print(
            f"  {r['name']:<40} {r['ready_minutes']:>9.1f} {r['plan_ready_minutes']:>6.1f} {r['ready_deviation_pct']:>5.1f}%"
            f" {r['gpu_billed_minutes']:>15.1f} {r['plan_gpu_billed_minutes']:>6.1f} {r['usd']:>7.3f}"
            f" {r['node_ready_minutes'] or 0:>8.1f}  {'yes' if r['gpu_node_fill'] else 'no'}"
        )
        if "asleep_gpu_billed_minutes" in r:
            low, high = r["plan_ready_range_minutes"]
            print(
                f"    asleep {r['asleep_hours']:g} h: {r['asleep_gpu_billed_minutes']:.1f} GPU-billed "
                f"min, storage ${r['asleep_usd_per_day']:.3f}/day; plan range {low:.1f}-{high:.1f} "
                "min (GPU VM start time: a stated assumption)"
            )
    print("  volume: " + ", ".join(sorted({r["volume"] for r in rows})))
    for name, d in downs.items():
        print(
            f"  down ({name}): {d['minutes']:.1f} min, {d['gpu_billed_minutes']:.1f} GPU-billed "
            f"min, ${d['usd']:.3f}"
        )


if __name__ == "__main__":
    main()
