"""``up`` and ``down``: the session lifecycle over any target.

up: plan → budget guard → lock → preflight → provision (network, cluster, GPU pool) →
namespace + NGC secrets → render chart → server-side apply → wait with live phases →
endpoint → smoke → optional benchmark → summary. Any failure or Ctrl-C rolls back what
this run created (unless ``keep_on_failure``) and says exactly what was removed.

down: delete the deployment (its load balancer and, unless kept, cache volumes go with it)
→ node pool → cluster → network, then verify through the tag search that nothing of the
session is left.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nimble_oke.catalog import load_catalog
from nimble_oke.domain.config import NimbleConfig
from nimble_oke.domain.plan import Plan
from nimble_oke.errors import NimbleError
from nimble_oke.services.deployment import (
    delete_deployment,
    discover_endpoint,
    ensure_model_par,
    record_kube_created,
    release_name,
)
from nimble_oke.services.enforcement import record_enforcement
from nimble_oke.services.kept_cache import (
    attach_kept_cache,
    kept_cache_ad,
    rest_kept_volumes,
    retain_cache_volume,
    tune_kept_volume,
)
from nimble_oke.services.node_image import keep_node_image as capture_node_image
from nimble_oke.services.node_image import usable_node_image
from nimble_oke.services.preflight import preflight
from nimble_oke.services.provision import Keep, Provisioner, TeardownResult, teardown
from nimble_oke.services.targets import Target
from nimble_oke.state.lock import SessionLock
from nimble_oke.state.status import SessionStatus
from nimble_oke.state.store import StateStore

Say = Callable[[str], None]
# release_name is re-exported: cli/bench_cmd.py and tests/bench import it from here
__all__ = ["DownResult", "UpResult", "bench_line", "down", "release_name", "run_bench", "up"]


@dataclass
class UpResult:
    session: str
    ok: bool
    endpoint: str | None = None
    phases: list[dict[str, Any]] = field(default_factory=list)
    smoke: dict[str, Any] | None = None
    bench: dict[str, Any] | None = None
    placement: str | None = None
    estimated_usd: float = 0.0
    worst_case_usd: float = 0.0
    rolled_back: list[str] = field(default_factory=list)
    rollback_failed: list[str] = field(default_factory=list)
    error: str | None = None
    started_at: float | None = None  # store clock (simulated time on the sim target)
    ready_at: float | None = None
    cache_warm_up: str | None = None  # how the cache was filled off the GPU, or why not


class _Phases:
    """Times each phase (real seconds) and records it in the store (the ledger)."""

    def __init__(self, store: StateStore, session: str, run: str, say: Say) -> None:
        self.store, self.session, self.run, self.say = store, session, run, say
        self.done: list[dict[str, Any]] = []

    def __call__(self, name: str) -> _Phase:
        return _Phase(self, name)


class _Phase:
    def __init__(self, owner: _Phases, name: str) -> None:
        self.owner, self.name = owner, name

    def __enter__(self) -> _Phase:
        self.start = time.perf_counter()
        self.id = self.owner.store.phase_started(self.owner.session, self.owner.run, self.name)
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        seconds = time.perf_counter() - self.start
        status = "ok" if exc_type is None else "failed"
        self.owner.store.phase_ended(self.id, status)
        self.owner.done.append({"name": self.name, "seconds": round(seconds, 3), "status": status})


def up(
    cfg: NimbleConfig,
    plan: Plan,
    target: Target,
    store: StateStore,
    *,
    say: Say = print,
    bench: bool = True,
    keep_on_failure: bool = False,
    bench_requests: int | None = None,
    on_realtime: Callable[[bool], None] | None = None,
) -> UpResult:
    """Bring the session up. ``on_realtime(True/False)`` brackets the phases that run in
    real time (smoke, benchmark) — the demo uses it to run the simulated clock 1:1 then."""
    cfg = plan.config or cfg  # with the planner's choices (cache volume size/VPUs)
    session = cfg.session_name
    catalog = load_catalog()
    result = UpResult(
        session, False, estimated_usd=plan.total_usd, worst_case_usd=plan.worst_case_usd
    )
    run_id = time.strftime("%Y%m%dT%H%M%S")
    phases = _Phases(store, session, run_id, say)
    lock = SessionLock(store.home, session, command="nimble up")
    lock.acquire()
    provisioner = Provisioner(
        session, cfg, target.provider, store, catalog, say=say, timeouts=target.timeouts
    )
    deployed = False
    client: Any = None
    warm: Any = None
    on_realtime = on_realtime or target.realtime
    result.started_at = store.now()
    try:
        store.upsert_session(
            session,
            target=target.name,
            status=SessionStatus.PROVISIONING,
            config=cfg.model_dump(mode="json"),
            lease_expires_at=store.now() + cfg.budget.max_hours * 3600,
            budget_usd=cfg.budget.max_usd,
            estimate_usd=plan.total_usd,
            worst_case_usd=plan.worst_case_usd,
        )
        with phases("preflight"):
            report = preflight(cfg, target.provider, catalog, say)
            cache_ad = kept_cache_ad(target, store, session)
            if cache_ad:
                # A block volume attaches only within its AD: try that AD first.
                report.ladder.sort(key=lambda rung: rung.availability_domain != cache_ad)
                say(f"kept cache volume in {cache_ad.split(':')[-1]}: that AD goes first")
                tune_kept_volume(cfg, target, store, session, say)
            node_image = usable_node_image(cfg, target, store, session, say)
            if node_image is not None:
                report.gpu_image = (node_image.image_id, node_image.name)
                say(f"node image  GPU pool starts from {node_image.name} (NIM image on board)")
        if plan.warm_up is not None and not cache_ad:
            from nimble_oke.services.values import chart_values as _values
            from nimble_oke.services.warmup import CacheWarmUp

            warm = CacheWarmUp(
                cfg,
                plan,
                target,
                store,
                provisioner,
                values=_values(cfg, plan, session=session),
                say=say,
            )
        provision_started = store.now()
        with phases("provision"):
            prov = provisioner.provision(report, while_gpu_pool_creates=warm)
        assert prov.placement is not None and prov.kubeconfig_path is not None
        result.placement = prov.placement.label
        say(f"provision   network ✓  cluster ✓  gpu pool ✓ ({prov.placement.label})")
        from nimble_oke.kube.connect import client_for
        from nimble_oke.kube.deploy import apply_manifests, ensure_namespace, ensure_ngc_secrets
        from nimble_oke.kube.render import render_chart
        from nimble_oke.kube.wait import wait_ready
        from nimble_oke.services.values import chart_values

        client = client_for(
            prov.kubeconfig_path, target.token(prov.ids["cluster"]), cfg.nim.namespace
        )
        # a watchdog that scaled the pool to zero: the pool bills again from this run on
        record_enforcement(
            client, cfg.nim.namespace, target.provider, store, session, resumed_at=provision_started
        )
        store.set_session_status(session, SessionStatus.DEPLOYING)
        plan, profile = _after_warm_up(
            warm, plan, cfg, catalog, prov.placement.availability_domain, result, say
        )
        with phases("deploy"):
            values = chart_values(cfg, plan, session=session)
            if profile:
                # download-to-cache filled this profile; NIM must load the same one
                values["nim"]["modelProfile"] = profile
            ensure_namespace(client, cfg.nim.namespace, session)
            kept = attach_kept_cache(
                client, cfg, target, store, session, prov.placement.availability_domain
            )
            if kept is not None:
                values["cache"]["existingClaim"] = kept
                say(f"deploy      reusing the kept model cache volume (claim {kept})")
            par_ready = warm is not None and warm.outcome.par_secret
            if cfg.cache.mode == "object-storage" and not par_ready:
                ensure_model_par(client, cfg, target, session, values)
            manifests = render_chart(
                values, release=release_name(session), namespace=cfg.nim.namespace
            )
            ensure_ngc_secrets(client, cfg.nim.namespace, target.ngc_key, session=session)
            applied = apply_manifests(
                client, manifests, session=session, namespace=cfg.nim.namespace
            )
            deployed = True
            _record_revision(store, session, applied.manifest_hash, values)
        with phases("wait ready"):
            budget_real = target.real_seconds(plan.startup.budget_s + plan.time_to_ready_s) + 60
            waited = wait_ready(
                client,
                cfg.nim.namespace,
                {"app.kubernetes.io/instance": release_name(session)},
                timeout_s=budget_real,
                poll_s=target.poll_s,
                on_phase=lambda p, d: say(f"deploy      {p}{' ' + d if d else ''}"),
                clock=store.now,
            )
        for name, seconds in waited.phases:
            result.phases.append(
                {"name": f"pod: {name}", "seconds": round(seconds, 3), "status": "ok"}
            )
            store.record_phase(session, run_id, f"pod: {name}", seconds)
        with phases("endpoint"):
            result.endpoint = discover_endpoint(
                client, cfg, session, timeout_s=target.real_seconds(600) + 30
            )
        record_kube_created(target, store, cfg, session)
        if warm is not None:
            warm.finish()
        if result.cache_warm_up:
            say(f"cache       {result.cache_warm_up}")
        with phases("watchdog"):
            install_watchdog(client, cfg, target, store, session, prov.ids["node_pool"])
        result.ready_at = store.now()
        store.set_session_status(session, SessionStatus.READY, endpoint=result.endpoint)
        if on_realtime:
            on_realtime(True)
        say(f"endpoint    {result.endpoint}")
        with phases("smoke"):
            from nimble_oke.nim.smoke import run_smoke, to_dict

            smoke = run_smoke(result.endpoint, cfg.nim.served_model_name)
            result.smoke = to_dict(smoke)
        passed = sum(1 for c in smoke.checks if c.passed)
        say(f"smoke       {passed}/{len(smoke.checks)} passed")
        if not smoke.passed:
            failed = [c.name for c in smoke.checks if not c.passed]
            raise NimbleError(f"smoke test failed: {', '.join(failed)}")
        if bench:
            with phases("bench"):
                result.bench = run_bench(result.endpoint, cfg, requests=bench_requests)
            store.add_bench_run(session, result.bench)
            say("bench       " + bench_line(result.bench))
        result.ok = True
        return result
    except (NimbleError, KeyboardInterrupt) as exc:
        result.error = str(exc) if isinstance(exc, NimbleError) else "interrupted"
        store.event(session, "ERROR", f"up failed: {result.error}")
        if keep_on_failure:
            store.set_session_status(session, SessionStatus.FAILED)
            say(
                f"keeping what was created (--keep-on-failure); remove it with: nimble down --name {session}"
            )
        else:
            say(f"up failed ({result.error}); rolling back what this run created")
            try:
                if deployed and client is not None:
                    delete_deployment(client, cfg, say, target)
                elif warm is not None and warm.client is not None:
                    # the warm-up's claim has a block volume behind it: delete it too
                    delete_deployment(warm.client, cfg, say, target)
                removed, failed = provisioner.rollback()
            except KeyboardInterrupt:
                say(f"rollback aborted; finish it with: nimble down --name {session}")
                raise
            result.rolled_back, result.rollback_failed = removed, failed
            store.set_session_status(
                session, SessionStatus.ROLLED_BACK if not failed else SessionStatus.FAILED
            )
            if failed:
                say(
                    f"could not remove: {'; '.join(failed)} — finish with: nimble down --name {session}"
                )
        if isinstance(exc, KeyboardInterrupt):
            raise
        result.ok = False
        return result
    finally:
        if on_realtime:
            on_realtime(False)
        if client is not None:
            client.close()
        if warm is not None:
            warm.close()
        lock.release()
        result.phases[:0] = phases.done


def _after_warm_up(
    warm: Any,
    plan: Plan,
    cfg: NimbleConfig,
    catalog: Any,
    placement_ad: str | None,
    result: UpResult,
    say: Say,
) -> tuple[Plan, str | None]:
    """The plan and NIM profile the deployment uses after the cache warm-up: the warmed
    cache (profile pinned, no download in the startup budget), or the naive plan when the
    warm-up fell back or the GPU pool landed in another AD than the warmed volume."""
    from nimble_oke.domain.plan import build_plan
    from nimble_oke.services.warmup import pinned_profile

    if warm is None:
        # a kept or re-used cache was filled for the pinned profile: keep pinning it
        pinned = cfg.cache.warm_up == "cpu-pool" and cfg.cache.mode == "pvc"
        return plan, pinned_profile(cfg, plan) if pinned else None

    outcome = warm.outcome
    for name, seconds in outcome.phases:
        result.phases.append(
            {"name": f"warm-up: {name}", "seconds": round(seconds, 3), "status": "ok"}
        )
    if outcome.warmed and outcome.availability_domain == placement_ad:
        how = f" (profile {outcome.profile})" if outcome.profile else " (hydrated)"
        result.cache_warm_up = f"warmed off the GPU on {outcome.shape}{how}"
        return plan, outcome.profile
    if outcome.warmed:
        reason = (
            f"the GPU pool landed in {str(placement_ad).rsplit(':', 1)[-1]}, the warmed volume is in "
            f"{str(outcome.availability_domain).rsplit(':', 1)[-1]}"
        )
        say(f"cache warm-up: {reason}; a new cache is filled on the GPU node")
        warm.discard_claim()
    else:
        reason = outcome.fallback_reason or "the GPU pool already existed (nothing new to warm)"
    if cfg.cache.mode == "object-storage":
        result.cache_warm_up = f"fell back to hydrating on the GPU node: {reason}"
        return build_plan(cfg, catalog, warm_up=False), None
    result.cache_warm_up = f"fell back to a download on the GPU node: {reason}"
    # the same profile either way, so a re-run does not roll the Deployment over
    return build_plan(cfg, catalog, warm_up=False), pinned_profile(cfg, plan)


def _record_revision(
    store: StateStore, session: str, manifest_hash: str, values: dict[str, Any]
) -> None:
    store.add_revision(session, manifest_hash, json.dumps(values, sort_keys=True))


def install_watchdog(
    client: Any,
    cfg: NimbleConfig,
    target: Target,
    store: StateStore,
    session: str,
    node_pool_id: str,
) -> None:
    """Put the session's lease into the cluster and the CronJob that enforces it."""
    from nimble_oke.kube.deploy import apply_manifests
    from nimble_oke.services import watchdog
    from nimble_oke.services.costs import session_accrual

    now = store.now()
    record = store.session(session)
    expires = (
        record.lease_expires_at
        if record and record.lease_expires_at
        else now + cfg.budget.max_hours * 3600
    )
    accrual = session_accrual(store, session, now=now, read_lease=False).accrual
    lease = watchdog.Lease(
        session=session,
        node_pool_id=node_pool_id,
        started_at=now,
        expires_at=expires,
        budget_usd=cfg.budget.max_usd,
        usd_per_hour=accrual.running_usd_per_hour,
        accrued_before_usd=accrual.total_usd,
    )
    env = {
        "NIMBLE_OCI_AUTH": "workload_identity"
        if cfg.cluster.type == "enhanced"
        else "instance_principal",
        "OCI_RESOURCE_PRINCIPAL_REGION": str(target.oci_config.get("region", "")),
        "NIMBLE_COMPARTMENT_ID": target.provider.compartment_id,
    }
    apply_manifests(
        client,
        watchdog.manifests(cfg.nim.namespace, session, env=env),
        session=session,
        namespace=cfg.nim.namespace,
        prune=False,
    )
    watchdog.write_lease(client, cfg.nim.namespace, lease)


def run_bench(endpoint: str, cfg: NimbleConfig, *, requests: int | None = None) -> dict[str, Any]:
    from nimble_oke.bench import BenchConfig, run, summarize

    config = BenchConfig(
        endpoint=endpoint,
        model=cfg.nim.served_model_name,
        concurrency=cfg.bench.concurrency,
        requests=requests or cfg.bench.requests,
        warmup=cfg.bench.warmup,
        input_tokens_mean=cfg.bench.input_tokens,
        output_tokens=cfg.bench.output_tokens,
        duration_s=cfg.bench.duration_s,
    )
    summary: dict[str, Any] = summarize(run(config))
    return summary


def bench_line(summary: dict[str, Any]) -> str:
    ttft = summary.get("time_to_first_token", {}).get("p50")
    itl = summary.get("inter_token_latency", {}).get("p50")
    tps = summary.get("output_token_throughput", {}).get("avg")
    validity = summary.get("validity", {}).get("status", "?")
    errors = (
        summary.get("error_count", summary.get("errors", {}).get("count", 0))
        if isinstance(summary.get("errors"), dict)
        else summary.get("error_count", 0)
    )
    conc = summary.get("config", {}).get("concurrency")
    parts = [f"concurrency {conc}:" if conc else ""]
    if ttft is not None:
        parts.append(f"TTFT p50 {ttft:.0f} ms ·")
    if itl is not None:
        parts.append(f"ITL p50 {itl:.1f} ms ·")
    if tps is not None:
        parts.append(f"{tps:.0f} tok/s ·")
    parts.append(f"{errors} errors · {validity}")
    return " ".join(p for p in parts if p)


@dataclass
class DownResult:
    session: str
    teardown: TeardownResult
    deployment_deleted: bool


def down(
    session: str,
    cfg: NimbleConfig,
    target: Target,
    store: StateStore,
    *,
    keep: Keep | None = None,
    say: Say = print,
    keep_cache: bool = False,
    keep_cluster: bool = False,
    keep_node_image: bool = False,
) -> DownResult:
    """``keep_*``: the same as ``keep`` (kept for callers written before :class:`Keep`)."""
    keep = keep or Keep(keep_cache, keep_cluster, keep_node_image)
    record = store.session(session)
    lock = SessionLock(store.home, session, command="nimble down")
    lock.acquire()
    try:
        if record is not None:
            store.set_session_status(session, SessionStatus.TEARING_DOWN)
        deleted = False
        live = store.live_cluster(session)
        if live is not None and target.provider.state("cluster", live[1]):
            kubeconfig, cluster_id = live
            from nimble_oke.kube.connect import client_for

            try:
                client = client_for(kubeconfig, target.token(cluster_id), cfg.nim.namespace)
                try:
                    record_enforcement(client, cfg.nim.namespace, target.provider, store, session)
                    if keep.cache:
                        for volume in retain_cache_volume(client, cfg):
                            say(f"keeping the model cache: {volume} set to Retain")
                    delete_deployment(client, cfg, say, target)
                finally:
                    client.close()
                deleted = True
            except (NimbleError, OSError) as exc:
                say(
                    f"could not reach the cluster to delete the deployment ({exc}); deleting its cloud resources directly"
                )
        if keep.node_image:
            try:
                capture_node_image(
                    cfg, target, store, session, say, timeout_s=target.timeouts.node_pool_s
                )
            except NimbleError as exc:
                # the teardown must go on: what bills at GPU rates goes regardless
                say(f"node image  not kept ({exc}); tearing down the rest")
        result = teardown(
            session,
            target.provider,
            store,
            keep=keep,
            timeouts=target.timeouts,
            say=say,
        )
        if keep.cache and result.kept:
            rest_kept_volumes(cfg, target, store, session, say)
        store.set_session_status(session, keep.status_after(result), clear_endpoint=True)
        return DownResult(session, result, deleted)
    finally:
        lock.release()
