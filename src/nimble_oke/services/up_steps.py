"""The steps of ``nimble up``, each with its ``do`` and its ``undo`` (run by services/saga.py).

What a step's undo removes is what *this run* owns: what it created, or what an unsettled
run before it (killed, or failed with ``--keep-on-failure``) created — never what a run
that ended ok left (a healthy session's network, cluster, pool or deployment, a standby's
cluster). A pool this run only scaled back up is scaled back down; a deployment it only
re-applied gets its previous revision back.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nimble_oke.domain.catalog import Catalog
from nimble_oke.domain.config import NimbleConfig
from nimble_oke.domain.plan import Plan
from nimble_oke.errors import BudgetError, EndpointError, NimbleError
from nimble_oke.ports import NETWORK_KINDS
from nimble_oke.services.cloud_guard import CloudGuard, record_guard_stop
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
    hold_kept_claim,
    kept_cache_ad,
    rest_kept_volumes,
    tune_kept_volume,
)
from nimble_oke.services.lease import install_watchdog, open_lease, planned_rate, worst_case_for
from nimble_oke.services.node_image import usable_node_image
from nimble_oke.services.preflight import PreflightReport, Rung, preflight
from nimble_oke.services.provision import Provisioner
from nimble_oke.services.saga import NoUndo, Step
from nimble_oke.state.status import SessionStatus
from nimble_oke.state.store import StateStore

if TYPE_CHECKING:
    from lightkube import Client

    from nimble_oke.services.targets import Target
    from nimble_oke.services.warmup import CacheWarmUp

Say = Callable[[str], None]


INTERNAL_ERROR_EXIT = 70  # what the CLI exits with for a bug (cli/common.py)


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
    rolled_back: list[str] = field(default_factory=list)  # "node pool s-gpu", "cluster s"
    rollback_failed: list[str] = field(default_factory=list)
    error: str | None = None
    started_at: float | None = None  # store clock (simulated time on the sim target)
    ready_at: float | None = None
    cache_warm_up: str | None = None  # how the cache was filled off the GPU, or why not
    # the failure itself: a NimbleError subclass (its exit_code is the CLI's), or the
    # exception of an internal error
    exception: BaseException | None = field(default=None, repr=False)
    failed_step: str | None = None
    # waking from hibernation: "hibernated" (woken), or what the fallback did and why
    wake: str | None = None
    node_ready_at: float | None = None  # a woken GPU node Ready again (store clock)

    @property
    def error_kind(self) -> str | None:
        return None if self.exception is None else type(self.exception).__name__

    @property
    def exit_code(self) -> int:
        """What the CLI exits with: 0, the NimbleError's code, or 70 for a bug."""
        if self.ok:
            return 0
        if isinstance(self.exception, NimbleError):
            return self.exception.exit_code
        return INTERNAL_ERROR_EXIT if self.exception is not None else 1


@dataclass(frozen=True)
class UpOptions:
    bench: bool = True
    keep_on_failure: bool = False
    bench_requests: int | None = None


@dataclass
class UpRun:
    """What the steps of one ``up`` share: its inputs, and what earlier steps produced."""

    cfg: NimbleConfig
    plan: Plan
    target: Target
    store: StateStore
    say: Say
    options: UpOptions
    result: UpResult
    catalog: Catalog
    run_id: str
    provisioner: Provisioner
    # the last run that ended ok was an `up`: a deployment found in the cluster is its
    deployment_settled: bool = False
    prior_status: str | None = None  # the session's status before this run
    lease_expires_at: float = 0.0
    report: PreflightReport | None = None
    cache_ad: str | None = None
    provision_started: float = 0.0
    network: dict[str, str] = field(default_factory=dict)
    cluster_id: str = ""
    kubeconfig: Path | None = None
    pool_id: str = ""
    placement: Rung | None = None
    warm: CacheWarmUp | None = None
    client: Client | None = None
    deploy_plan: Plan | None = None
    profile: str | None = None
    rolled_back: list[str] = field(default_factory=list)
    rollback_failed: list[str] = field(default_factory=list)
    stale_pools: list[str] = field(default_factory=list)  # a killed run's warm-up pools
    waking: bool = False  # the wake of a hibernated session (services/hibernate_wake.py)

    @property
    def session(self) -> str:
        return self.cfg.session_name

    @property
    def namespace(self) -> str:
        return self.cfg.nim.namespace

    def kube(self) -> Client:
        assert self.client is not None, "the cluster step connects first"
        return self.client

    def remove_owned(self, kinds: tuple[str, ...]) -> None:
        """Undo helper: delete what this run owns of these kinds, noting the outcome."""
        removed, failed = self.provisioner.rollback(kinds)
        self.rolled_back += removed
        self.rollback_failed += failed


class Budget(NoUndo):
    """The session's budget covers every up of it: refuse when what it has accrued plus
    this run's worst case (for the hours its lease leaves) would pass the budget."""

    name, phase = "budget", None

    def do(self, run: UpRun) -> None:
        from nimble_oke.services.costs import session_accrual

        store, cfg = run.store, run.cfg
        record = store.session(run.session)
        now = store.now()
        lease_end = open_lease(record, now)
        run.lease_expires_at = lease_end or now + cfg.budget.max_hours * 3600
        fresh = record is None or SessionStatus.of(record.status) is SessionStatus.DOWN
        accrued = (
            0.0
            if fresh
            else session_accrual(store, run.session, now=now, read_lease=False).accrual.total_usd
        )
        worst = worst_case_for(run.cfg, run.plan, run.catalog, (run.lease_expires_at - now) / 3600)
        budget = cfg.budget.max_usd
        if accrued + worst > budget:
            raise BudgetError(
                f"session {run.session} has accrued ${accrued:.2f} of its ${budget:.2f} budget; "
                f"this up's worst case ${worst:.2f} does not fit in the ${max(0.0, budget - accrued):.2f} left",
                hint="raise budget.max_usd (--budget), shorten --hours, or nimble down the session",
            )


class RecordSession(NoUndo):
    name, phase = "record session", None

    def do(self, run: UpRun) -> None:
        cfg, store, plan = run.cfg, run.store, run.plan
        record = store.session(run.session)
        restart = record is not None and SessionStatus.of(record.status) is SessionStatus.DOWN
        store.upsert_session(
            run.session,
            target=run.target.name,
            status=SessionStatus.PROVISIONING,
            config=cfg.model_dump(mode="json"),
            lease_expires_at=run.lease_expires_at,
            budget_usd=cfg.budget.max_usd,
            estimate_usd=plan.total_usd,
            worst_case_usd=plan.worst_case_usd,
        )
        if restart:  # the last down kept nothing: this is a new session of the same name
            store.restart_session(run.session)


class Preflight:
    """Credentials, versions, the fallback ladder; a kept cache steers the ladder to its
    AD and is raised to the session's performance; a kept node image is picked up."""

    name, phase = "preflight", "preflight"

    def undo(self, run: UpRun) -> None:
        if run.cache_ad:  # the kept volume rests at its between-sessions performance again
            rest_kept_volumes(run.cfg, run.target, run.store, run.session, run.say)

    def do(self, run: UpRun) -> None:
        cfg, target, store, say = run.cfg, run.target, run.store, run.say
        report = preflight(cfg, target.provider, run.catalog, say)
        run.cache_ad = kept_cache_ad(target, store, run.session)
        if run.cache_ad:
            cache_ad = run.cache_ad
            # A block volume attaches only within its AD: try that AD first.
            report.ladder.sort(key=lambda rung: rung.availability_domain != cache_ad)
            say(f"kept cache volume in {cache_ad.split(':')[-1]}: that AD goes first")
            tune_kept_volume(cfg, target, store, run.session, say)
        node_image = usable_node_image(cfg, target, store, run.session, say)
        if node_image is not None:
            report.gpu_image = (node_image.image_id, node_image.name)
            say(f"node image  GPU pool starts from {node_image.name} (NIM image on board)")
        run.report = report


class Network:
    name, phase = "network", "provision"

    def do(self, run: UpRun) -> None:
        run.provision_started = run.store.now()
        run.network = run.provisioner.network()

    def undo(self, run: UpRun) -> None:
        run.remove_owned(NETWORK_KINDS)


class Cluster:
    name, phase = "cluster", "provision"

    def do(self, run: UpRun) -> None:
        run.cluster_id = run.provisioner.cluster(run.network)
        run.kubeconfig = run.provisioner.write_kubeconfig(run.cluster_id)

    def undo(self, run: UpRun) -> None:
        run.remove_owned(("cluster",))


class LeaseBeforeGpu:
    """Before any GPU exists, the enforcer: the lease (this session's end and budget) and
    the watchdog CronJob that scales every pool of the session to zero when either runs
    out. It runs on the first node that registers (it tolerates the GPU and preemptible
    taints), so a GPU node never runs without it — even if this process dies now. An earlier
    lease the watchdog already enforced is read into the journal first."""

    name, phase = "lease", "provision"

    def __init__(self) -> None:
        self.namespace_existed: bool | None = None
        self.previous: Any = None  # the lease this run replaced (restored by undo)

    def do(self, run: UpRun) -> None:
        from nimble_oke.kube.connect import client_for
        from nimble_oke.kube.deploy import ensure_namespace
        from nimble_oke.services.watchdog import lease_from_configmap

        assert run.kubeconfig is not None
        run.client = client_for(run.kubeconfig, run.target.token(run.cluster_id), run.namespace)
        self.namespace_existed = _namespace_exists(run.client, run.namespace)
        self.previous = lease_from_configmap(run.client, run.namespace)
        # a watchdog that scaled the pool to zero (or the cloud guard that stopped its
        # nodes): the pool bills again once this run brings it back
        now = run.store.now()
        provider = run.target.provider
        if (
            record_enforcement(
                run.client, run.namespace, provider, run.store, run.session, resumed_at=now
            )
            is None
        ):
            record_guard_stop(provider, run.store, run.session, run.say, resumed_at=now)
        ensure_namespace(run.client, run.namespace, run.session)
        install_watchdog(
            run.client,
            run.cfg,
            run.target,
            run.store,
            run.session,
            "",
            usd_per_hour=planned_rate(
                run.cfg, run.catalog, run.report.ladder if run.report else []
            ),
        )

    def undo(self, run: UpRun) -> None:
        from nimble_oke.services.watchdog import write_lease

        if run.client is None:
            return
        if self.namespace_existed is False:
            delete_deployment(run.client, run.cfg, run.say, run.target)
        elif self.previous is not None:
            write_lease(run.client, run.namespace, self.previous)


class GpuPool:
    """The GPU pool down the fallback ladder; while its create is in flight, the cache
    warm-up on a CPU pool beside it; the cluster autoscaler add-on when configured. A pool
    an earlier run made and the watchdog scaled to zero is scaled back (undo: to zero)."""

    name, phase = "gpu pool", "provision"

    def __init__(self) -> None:
        self.sizes_before: dict[str, int] = {}  # settled pools: id -> live nodes

    def do(self, run: UpRun) -> None:
        cfg, prov = run.cfg, run.provisioner
        assert run.report is not None
        if run.plan.warm_up is not None and not run.cache_ad:
            from nimble_oke.services.values import chart_values
            from nimble_oke.services.warmup import CacheWarmUp

            values = chart_values(cfg, run.plan, session=run.session)
            run.warm = CacheWarmUp(
                cfg, run.plan, run.target, run.store, prov, values=values, say=run.say
            )
        self.sizes_before = _settled_pool_sizes(run)
        pool_id, rung, _attempts = prov.node_pool(
            run.cluster_id, run.network, run.report, while_creating=run.warm
        )
        run.pool_id, run.placement = pool_id, rung
        if cfg.autoscaling.cluster_autoscaler:
            prov.cluster_autoscaler(run.cluster_id, pool_id, run.catalog.shape(rung.shape))
        run.result.placement = rung.label
        run.say(f"provision   network ✓  cluster ✓  gpu pool ✓ ({rung.label})")

    def undo(self, run: UpRun) -> None:
        warm = run.warm
        if warm is not None and warm.client is not None and not run.deployment_settled:
            # the warm-up's claim has a block volume behind it: it goes with the namespace
            delete_deployment(warm.client, run.cfg, run.say, run.target)
        for pool_id, size in self.sizes_before.items():
            _scale_back(run, pool_id, size)
        run.remove_owned(("volume", "node_pool"))


class Deploying(NoUndo):
    """The session is deploying: what a killed run's warm-up left is cleared (its CPU pool
    and Jobs), and the plan the deployment follows after the warm-up is settled."""

    name, phase = "deploying", None

    def do(self, run: UpRun) -> None:
        assert run.placement is not None
        clear_stale_warm_up(run)
        run.store.set_session_status(run.session, SessionStatus.DEPLOYING)
        run.deploy_plan, run.profile = after_warm_up(run, run.placement.availability_domain)


class Deploy:
    """Namespace, secrets, kept cache, chart render and server-side apply."""

    name, phase = "deploy", "deploy"

    def __init__(self) -> None:
        self.existed: bool | None = None  # None: not known (then a settled one is assumed)
        self.previous: dict[str, Any] | None = None
        self.kept_claim: str | None = None

    def do(self, run: UpRun) -> None:
        from nimble_oke.kube.deploy import apply_manifests, ensure_namespace, ensure_ngc_secrets
        from nimble_oke.kube.render import render_chart

        client, cfg = run.kube(), run.cfg
        self.existed = _release_exists(client, run.namespace, release_name(run.session))
        revisions = run.store.revisions(run.session)
        self.previous = json.loads(revisions[-1]["values_json"]) if revisions else None
        values = self._values(run)
        ensure_namespace(client, run.namespace, run.session)
        kept = attach_kept_cache(
            client, cfg, run.target, run.store, run.session, _placement_ad(run)
        )
        if kept is not None:
            self.kept_claim = kept
            values["cache"]["existingClaim"] = kept
            run.say(f"deploy      reusing the kept model cache volume (claim {kept})")
        par_ready = run.warm is not None and run.warm.outcome.par_secret
        if cfg.cache.mode == "object-storage" and not par_ready:
            ensure_model_par(client, cfg, run.target, run.session, values)
        manifests = render_chart(values, release=release_name(run.session), namespace=run.namespace)
        ensure_ngc_secrets(client, run.namespace, run.target.ngc_key, session=run.session)
        applied = apply_manifests(client, manifests, session=run.session, namespace=run.namespace)
        run.store.add_revision(
            run.session, applied.manifest_hash, json.dumps(values, sort_keys=True)
        )

    def _values(self, run: UpRun) -> dict[str, Any]:
        from nimble_oke.services.values import chart_values

        assert run.deploy_plan is not None
        values = chart_values(run.cfg, run.deploy_plan, session=run.session)
        if run.profile:
            # download-to-cache filled this profile; NIM must load the same one
            values["nim"]["modelProfile"] = run.profile
        return values

    def undo(self, run: UpRun) -> None:
        if run.client is None:
            return
        if self.existed is False or not run.deployment_settled:
            # the kept cache volume an earlier `down` kept is not this run's to delete
            kept_volume = hold_kept_claim(run.client, self.kept_claim)
            delete_deployment(run.client, run.cfg, run.say, run.target)
            if kept_volume is not None:
                run.store.mark_kept(run.session, "volume", kept_volume)
            run.remove_owned(("load_balancer", "volume"))
        elif self.existed and self.previous is not None:
            self._reapply_previous(run, self.previous)

    def _reapply_previous(self, run: UpRun, values: dict[str, Any]) -> None:
        """A healthy deployment this run only re-applied: its last good values again."""
        from nimble_oke.kube.deploy import apply_manifests
        from nimble_oke.kube.render import render_chart

        manifests = render_chart(values, release=release_name(run.session), namespace=run.namespace)
        applied = apply_manifests(
            run.kube(), manifests, session=run.session, namespace=run.namespace
        )
        run.store.add_revision(
            run.session, applied.manifest_hash, json.dumps(values, sort_keys=True)
        )
        run.say("deploy      the deployment is back at its previous revision")


class WaitReady(NoUndo):
    name, phase = "wait ready", "wait ready"

    def do(self, run: UpRun) -> None:
        from nimble_oke.kube.wait import wait_ready

        plan = run.deploy_plan or run.plan
        target = run.target
        waited = wait_ready(
            run.kube(),
            run.namespace,
            {"app.kubernetes.io/instance": release_name(run.session)},
            timeout_s=target.real_seconds(plan.startup.budget_s + plan.time_to_ready_s) + 60,
            poll_s=target.poll_s,
            on_phase=lambda p, d: run.say(f"deploy      {p}{' ' + d if d else ''}"),
            clock=run.store.now,
        )
        for name, seconds in waited.phases:
            run.result.phases.append(
                {"name": f"pod: {name}", "seconds": round(seconds, 3), "status": "ok"}
            )
            run.store.record_phase(run.session, run.run_id, f"pod: {name}", seconds)


class Endpoint(NoUndo):
    name, phase = "endpoint", "endpoint"

    def do(self, run: UpRun) -> None:
        run.result.endpoint = discover_endpoint(
            run.kube(), run.cfg, run.session, timeout_s=run.target.real_seconds(600) + 30
        )


class RecordKubeCreated(NoUndo):
    """The LB and volumes Kubernetes made join the journal; the warm-up's CPU pool is
    gone by now (its deletion was sent when the cache was full)."""

    name, phase = "record kube resources", None

    def do(self, run: UpRun) -> None:
        record_kube_created(run.target, run.store, run.cfg, run.session, run=run.run_id)
        if run.warm is not None:
            run.warm.finish()
        for pool_id in run.stale_pools:
            run.target.provider.await_deleted(
                "node_pool", pool_id, timeout_s=run.target.timeouts.delete_s
            )
            run.store.record_deleted(run.session, "node_pool", pool_id)
        if run.result.cache_warm_up:
            run.say(f"cache       {run.result.cache_warm_up}")


class Watchdog(NoUndo):
    name, phase = "watchdog", "watchdog"

    def do(self, run: UpRun) -> None:
        install_watchdog(run.kube(), run.cfg, run.target, run.store, run.session, run.pool_id)


class MarkReady(NoUndo):
    name, phase = "ready", None

    def do(self, run: UpRun) -> None:
        run.result.ready_at = run.store.now()
        run.store.set_session_status(run.session, SessionStatus.READY, endpoint=run.result.endpoint)
        run.say(f"endpoint    {run.result.endpoint}")


class Smoke(NoUndo):
    name, phase = "smoke", "smoke"

    def do(self, run: UpRun) -> None:
        from nimble_oke.nim.smoke import run_smoke, to_dict

        assert run.result.endpoint is not None
        # the profile the plan chose (or the warm-up pinned): NIM's /v1/metadata must agree
        expected = run.profile or run.cfg.nim.model_profile
        smoke = run_smoke(
            run.result.endpoint, run.cfg.nim.served_model_name, expected_profile=expected
        )
        run.result.smoke = to_dict(smoke)
        run.say(f"smoke       {smoke.summary}")
        if not smoke.passed:
            failed = smoke.failed
            first = failed[0]
            raise EndpointError(
                f"smoke test failed: {', '.join(c.name for c in failed)} "
                f"({first.name}: {first.detail})"
            )


class Bench(NoUndo):
    name, phase = "bench", "bench"

    def do(self, run: UpRun) -> None:
        from nimble_oke.services.session_bench import bench_line, run_bench

        assert run.result.endpoint is not None
        summary = run_bench(run.result.endpoint, run.cfg, requests=run.options.bench_requests)
        run.result.bench = summary
        run.store.add_bench_run(run.session, summary)
        run.say("bench       " + bench_line(summary))


def up_steps(options: UpOptions) -> list[Step[UpRun]]:
    """The steps of ``up``, in order (a fresh object each, for its own undo state)."""
    steps: list[Step[UpRun]] = [
        Budget(),
        RecordSession(),
        Preflight(),
        Network(),
        Cluster(),
        LeaseBeforeGpu(),
        CloudGuard(),
        GpuPool(),
        Deploying(),
        Deploy(),
        *serving_steps(options),
    ]
    return steps


def serving_steps(options: UpOptions) -> list[Step[UpRun]]:
    """From a deployed NIM to a served, enforced, smoke-tested endpoint: the tail that
    ``up`` and the wake from hibernation share."""
    steps: list[Step[UpRun]] = [
        WaitReady(),
        Endpoint(),
        RecordKubeCreated(),
        Watchdog(),
        MarkReady(),
        Smoke(),
    ]
    if options.bench:
        steps.append(Bench())
    return steps


# -- helpers ---------------------------------------------------------------------------------


def _namespace_exists(client: Any, namespace: str) -> bool:
    from lightkube.core.exceptions import ApiError
    from lightkube.resources.core_v1 import Namespace

    try:
        client.get(Namespace, namespace)
    except ApiError as exc:
        if exc.status.code == 404:
            return False
        raise
    return True


def _settled_pools(run: UpRun) -> list[str]:
    """The live GPU pools of the session a settled run made (not this run's to delete)."""
    return [
        r.resource_id
        for r in run.store.resources(run.session, live_only=True)
        if r.kind == "node_pool"
        and r.run not in run.provisioner.lineage
        and any(m.price_key.startswith("gpu.") for m in r.meters)
    ]


def _settled_pool_sizes(run: UpRun) -> dict[str, int]:
    gone = ("DELETED", "DELETING", "TERMINATED", "TERMINATING")
    provider = run.target.provider
    return {
        pool: sum(1 for n in provider.node_pool_nodes(pool) if n["state"] not in gone)
        for pool in _settled_pools(run)
        if provider.state("node_pool", pool) is not None
    }


def _scale_back(run: UpRun, pool_id: str, size: int) -> None:
    """Undo of scaling a settled pool up: back to its size; at zero its meters end now."""
    from dataclasses import replace

    if run.target.provider.state("node_pool", pool_id) is None:
        return
    gone = ("DELETED", "DELETING", "TERMINATED", "TERMINATING")
    live = [n for n in run.target.provider.node_pool_nodes(pool_id) if n["state"] not in gone]
    if len(live) == size:
        return
    run.target.provider.scale_node_pool(pool_id, size)
    run.say(f"gpu pool: scaled back to {size} node(s)")
    if size == 0:
        now = run.store.now()
        for record in run.store.resources(run.session, live_only=True):
            if record.resource_id == pool_id:
                meters = [replace(m, until=now) if m.until is None else m for m in record.meters]
                run.store.set_meters(run.session, "node_pool", pool_id, meters)


def clear_stale_warm_up(run: UpRun) -> None:
    """What a killed run's warm-up left when this run ran none (its GPU pool was adopted,
    so no warm-up started): its Jobs (they hold the cache claim) and its CPU pool — found
    by the journal or, if the run died before journaling it, by the warm-up's step tag."""
    from nimble_oke.services.provision import TAG_SESSION, TAG_STEP
    from nimble_oke.services.warmup import STEP, delete_warm_up_jobs

    this_run = run.warm is not None and run.warm.client is not None
    if not this_run and run.client is not None:
        delete_warm_up_jobs(run.client, run.namespace)
    mine = run.warm.outcome.cpu_pool_id if run.warm is not None else None
    provider = run.target.provider
    found = {
        f.resource_id
        for f in provider.find_tagged({TAG_SESSION: run.session, TAG_STEP: STEP})
        if f.kind == "node_pool"
    }
    entry = run.store.journal_entry(run.session, STEP)
    if entry is not None and entry.resource_id:
        found.add(entry.resource_id)
    recorded = {r.resource_id for r in run.store.resources(run.session)}
    for pool_id in sorted(found - {mine}):
        if provider.state("node_pool", pool_id) is None:
            continue
        if pool_id not in recorded:  # it died before journaling it: it billed all the same
            run.store.record_created(
                run.session,
                "node_pool",
                pool_id,
                name=f"{run.session}-cache-warmup",
                meters=_warm_up_meters(run),
                created_at=entry.created_at if entry is not None else None,
                run=run.run_id,
            )
        provider.delete("node_pool", pool_id)
        run.stale_pools.append(pool_id)
        run.say("cache warm-up: deleting the CPU pool an interrupted run left")


def _warm_up_meters(run: UpRun) -> tuple[Any, ...]:
    from nimble_oke.domain.cost import cpu_pool_meters
    from nimble_oke.domain.plan import warm_up_for

    warm = run.plan.warm_up or warm_up_for(run.cfg, run.catalog, cache_warm=False)
    return cpu_pool_meters(run.catalog, warm.ocpus, warm.memory_gb, 1) if warm else ()


def _placement_ad(run: UpRun) -> str | None:
    return run.placement.availability_domain if run.placement else None


def _release_exists(client: Any, namespace: str, release: str) -> bool:
    """Whether the release's workload is in the cluster already (a re-run of ``up``)."""
    from lightkube.core.exceptions import ApiError
    from lightkube.resources.apps_v1 import Deployment, StatefulSet

    labels = {"app.kubernetes.io/instance": release}
    try:
        return any(
            next(iter(client.list(kind, namespace=namespace, labels=labels)), None) is not None
            for kind in (Deployment, StatefulSet)
        )
    except ApiError as exc:
        if exc.status.code == 404:
            return False
        raise


def after_warm_up(run: UpRun, placement_ad: str | None) -> tuple[Plan, str | None]:
    """The plan and NIM profile the deployment uses after the cache warm-up: the warmed
    cache (profile pinned, no download in the startup budget), or the naive plan when the
    warm-up fell back or the GPU pool landed in another AD than the warmed volume."""
    from nimble_oke.domain.plan import build_plan
    from nimble_oke.services.warmup import pinned_profile

    cfg, plan, warm, result = run.cfg, run.plan, run.warm, run.result
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
        run.say(f"cache warm-up: {reason}; a new cache is filled on the GPU node")
        warm.discard_claim()
    else:
        reason = outcome.fallback_reason or "the GPU pool already existed (nothing new to warm)"
    naive = build_plan(cfg, run.catalog, warm_up=False)
    if cfg.cache.mode == "object-storage":
        result.cache_warm_up = f"fell back to hydrating on the GPU node: {reason}"
        return naive, None
    result.cache_warm_up = f"fell back to a download on the GPU node: {reason}"
    # the same profile either way, so a re-run does not roll the Deployment over
    return naive, pinned_profile(cfg, plan)
