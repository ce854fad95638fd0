"""``nimble down --hibernate``: keep everything of a ready session but the load balancer,
and stop its GPU node through the Compute API, so only storage bills until ``nimble up``
wakes it (services/hibernate_wake.py).

Only on a shape whose stopped instances OCI does not bill, *as the Compute API reports
it* (``Shape.is_billed_for_stopped_instance``; domain/hibernate.py ``may_hibernate``):
VM instances of the VM.GPU.A10 series. Every other GPU shape is refused before anything
changes, with the rule and the cheaper alternative.

The steps run on the saga engine (services/saga.py) as the command ``hibernate``, each with
its undo — a failure puts the session back as it was (ready) — and each idempotent, so a
killed hibernate is finished by running it again (or undone by ``nimble up``, which wakes):

preflight (refusal) → NIM scaled to zero → load balancer Service deleted (the cloud
controller deletes the LB) → GPU nodes cordoned → cache volume down to its resting VPUs →
SOFTSTOP each instance (STOP after OCI's 15-minute shutdown timeout) → the lease says
``hibernated`` → status HIBERNATED, with the storage cost per day.

The journal follows the bill: the GPU meters of the pool end when STOPPED is observed; the
boot volumes and the cache volume (re-rated at rest) keep billing; the LB is deleted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from nimble_oke.catalog import load_catalog
from nimble_oke.domain.config import NimbleConfig
from nimble_oke.domain.cost import BilledWindow, CostLine, cost_lines
from nimble_oke.domain.hibernate import DAY_S, INSTANCE_STOP, SOFTSTOP_TIMEOUT_S, may_hibernate
from nimble_oke.errors import ConfigError, ProviderError, StateError
from nimble_oke.services import hibernate_kube as hk
from nimble_oke.services.saga import NoUndo, Saga, SagaFailedError, Step
from nimble_oke.state.lock import SessionLock
from nimble_oke.state.status import SessionStatus
from nimble_oke.state.store import ResourceRecord, StateStore

if TYPE_CHECKING:
    from lightkube import Client

    from nimble_oke.services.targets import Target

Say = Callable[[str], None]
COMMAND = "hibernate"


# --- what the session is made of ---------------------------------------------------------


@dataclass(frozen=True)
class GpuNode:
    instance_id: str  # the Compute instance (= the OKE node's id)
    name: str  # the Kubernetes Node
    pool_id: str


def gpu_pools(store: StateStore, session: str) -> list[ResourceRecord]:
    """The session's live GPU node pools (those with a GPU meter)."""
    return [
        r
        for r in store.resources(session, live_only=True)
        if r.kind == "node_pool" and any(m.price_key.startswith("gpu.") for m in r.meters)
    ]


def gpu_nodes(target: Target, store: StateStore, session: str) -> list[GpuNode]:
    gone = ("DELETED", "DELETING", "TERMINATED", "TERMINATING")
    return [
        GpuNode(str(n["id"]), str(n["name"]), pool.resource_id)
        for pool in gpu_pools(store, session)
        for n in target.provider.node_pool_nodes(pool.resource_id)
        if n["state"] not in gone
    ]


def cache_volumes(store: StateStore, session: str) -> list[ResourceRecord]:
    return [r for r in store.resources(session, live_only=True) if r.kind == "volume"]


def retry_token(run_id: str, instance_id: str, action: str) -> str:
    """One token per (run, instance, action): a retried call is not done twice, and a
    START after a STOP is a new request."""
    return hashlib.sha256(f"{run_id}/{instance_id}/{action}".encode()).hexdigest()[:40]


def set_gpu_meters(
    store: StateStore, session: str, pool_id: str, *, open_at: float | None, close_at: float | None
) -> None:
    """Close the pool's open GPU meters at ``close_at`` (billing paused at STOPPED) or open
    new ones from ``open_at`` (billing resumes at START); idempotent."""
    for pool in gpu_pools(store, session):
        if pool.resource_id != pool_id:
            continue
        gpu = [m for m in pool.meters if m.price_key.startswith("gpu.")]
        running = [m for m in gpu if m.until is None]
        meters = list(pool.meters)
        if close_at is not None and running:
            meters = [replace(m, until=close_at) if m in running else m for m in meters]
        elif open_at is not None and not running and gpu:
            meters.append(replace(gpu[-1], since=open_at, until=None))
        else:
            return
        store.set_meters(session, "node_pool", pool_id, meters)


def storage_per_day(store: StateStore, session: str) -> tuple[float, list[CostLine]]:
    """What the session's journal bills per day as it stands (open meters only): for a
    hibernated session, storage."""
    windows = [
        BilledWindow(r.resource_id, tuple(m for m in r.meters if m.until is None), 0.0, DAY_S)
        for r in store.resources(session, live_only=True)
    ]
    lines = [line for line in cost_lines(load_catalog(), windows) if line.usd > 0]
    return sum(line.usd for line in lines), lines


def await_lbs_deleted(target: Target, store: StateStore, session: str) -> list[str]:
    """Wait for the session's journaled load balancers to be gone (the cloud controller
    deletes them after their Service) and journal them deleted; the names still there."""
    from nimble_oke.polling import wait_quietly

    provider, left = target.provider, []
    for lb in [r for r in store.resources(session, live_only=True) if r.kind == "load_balancer"]:

        def gone(lb_id: str = lb.resource_id) -> bool | None:
            return True if provider.state("load_balancer", lb_id) is None else None

        if wait_quietly(gone, timeout_s=target.real_seconds(600) + 30, interval_s=0.1):
            store.record_deleted(session, "load_balancer", lb.resource_id)
        else:
            left.append(lb.name or lb.resource_id)
    return left


# --- the run -----------------------------------------------------------------------------


@dataclass
class HibernateRun:
    session: str
    cfg: NimbleConfig
    target: Target
    store: StateStore
    say: Say
    run_id: str = ""
    client: Client | None = None
    nodes: list[GpuNode] = field(default_factory=list)
    shape: str = ""
    usd_per_day: float = 0.0
    lines: list[CostLine] = field(default_factory=list)

    def kube(self) -> Client:
        assert self.client is not None, "the preflight connects first"
        return self.client


@dataclass(frozen=True)
class HibernateResult:
    session: str
    shape: str
    stopped: list[str]  # instance ids
    usd_per_day: float
    lines: list[CostLine]


def refusal(target: Target, cfg: NimbleConfig, shape: str, ad: str | None) -> str | None:
    """Why this shape may not hibernate (from the Compute API's answer), or None."""
    billed = target.provider.shape_billed_when_stopped(shape, ad)
    decision = may_hibernate(shape, billed, preemptible=cfg.gpu_pool.preemptible)
    return None if decision.allowed else decision.reason


class Preflight(NoUndo):
    """Nothing changes yet: a ready session, its GPU nodes, the shape's billing rule."""

    name, phase = "hibernate preflight", None

    def do(self, run: HibernateRun) -> None:
        from nimble_oke.kube.connect import client_for

        record = run.store.session(run.session)
        status = SessionStatus.of(record.status) if record else None
        if status is not SessionStatus.READY and not _resumable(run):
            shown = record.status if record else "unknown"
            raise StateError(
                f"session {run.session} is {shown}: only a ready session can hibernate"
            )
        run.nodes = gpu_nodes(run.target, run.store, run.session)
        infos = [run.target.provider.instance_info(n.instance_id) for n in run.nodes]
        if not run.nodes or any(i is None for i in infos):
            raise StateError(f"session {run.session} has no GPU node to hibernate")
        first = infos[0]
        assert first is not None
        run.shape = first.shape
        why = refusal(run.target, run.cfg, first.shape, first.availability_domain)
        if why is not None:
            raise ConfigError(why, hint="nimble down --keep-cluster --keep-cache --keep-node-image")
        live = run.store.live_cluster(run.session)
        if live is None:
            raise StateError(f"session {run.session} has no live cluster")
        kubeconfig, cluster_id = live
        run.client = client_for(kubeconfig, run.target.token(cluster_id), run.cfg.nim.namespace)
        run.store.set_session_status(run.session, SessionStatus.TEARING_DOWN)


def _resumable(run: HibernateRun) -> bool:
    """Hibernated already (a repeat is a no-op), or a killed hibernate to finish."""
    record = run.store.session(run.session)
    if record is not None and SessionStatus.of(record.status) is SessionStatus.HIBERNATED:
        return True
    killed = [
        r
        for r in run.store.unfinished_runs(run.session)
        if r.status == "running" and r.id != run.run_id
    ]
    return bool(killed) and killed[-1].command == COMMAND


class ScaleToZero:
    name, phase = "scale nim to zero", "hibernate"

    def __init__(self) -> None:
        self.before: list[hk.Workload] = []

    def do(self, run: HibernateRun) -> None:
        ns = run.cfg.nim.namespace
        self.before = hk.nim_workloads(run.kube(), ns, run.session)
        for workload in self.before:
            hk.scale_workload(run.kube(), ns, workload, 0)
        hk.wait_pods_gone(run.kube(), ns, run.session, timeout_s=run.target.real_seconds(300) + 30)
        run.say("hibernate   NIM scaled to zero")

    def undo(self, run: HibernateRun) -> None:
        for workload in self.before:
            if workload.replicas > 0:
                hk.scale_workload(run.kube(), run.cfg.nim.namespace, workload, workload.replicas)


class DeleteLoadBalancer:
    """The LB Service goes (the cloud controller deletes the OCI LB): it bills by the hour
    and nothing can reach a stopped node anyway. Undo: the Service again."""

    name, phase = "delete load balancer", "hibernate"

    def __init__(self) -> None:
        self.deleted: list[str] = []

    def do(self, run: HibernateRun) -> None:
        ns = run.cfg.nim.namespace
        self.deleted = hk.load_balancer_services(run.kube(), ns, run.session)
        hk.delete_services(run.kube(), ns, self.deleted)
        left = await_lbs_deleted(run.target, run.store, run.session)
        if left:
            raise ProviderError(f"load balancer {', '.join(left)} is not deleted")
        run.say("hibernate   load balancer deleted")

    def undo(self, run: HibernateRun) -> None:
        from nimble_oke.services.deployment import record_kube_created

        if self.deleted:
            ns = run.cfg.nim.namespace
            hk.apply_last_revision(run.kube(), run.store, run.session, ns, only="Service")
            record_kube_created(run.target, run.store, run.cfg, run.session, run=run.run_id)


class Cordon:
    name, phase = "cordon", "hibernate"

    def do(self, run: HibernateRun) -> None:
        for node in run.nodes:
            hk.cordon(run.kube(), node.name)

    def undo(self, run: HibernateRun) -> None:
        for node in run.nodes:
            hk.cordon(run.kube(), node.name, on=False)


class RestCache:
    """The cache volume stays attached (the weights for the wake) at its resting VPUs."""

    name, phase = "rest cache volume", "hibernate"

    def __init__(self) -> None:
        self.before: dict[str, int] = {}

    def do(self, run: HibernateRun) -> None:
        from nimble_oke.services.kept_cache import set_volume_level

        rest = run.cfg.cache.kept_vpus_per_gb
        for volume in cache_volumes(run.store, run.session):
            was = set_volume_level(run.target, run.store, run.session, volume.resource_id, rest)
            if was is not None:
                self.before[volume.resource_id] = was
                run.say(f"hibernate   cache volume {was} -> {rest} VPU/GB (online, kept attached)")

    def undo(self, run: HibernateRun) -> None:
        from nimble_oke.services.kept_cache import set_volume_level

        for volume_id, vpus in self.before.items():
            set_volume_level(run.target, run.store, run.session, volume_id, vpus)


class StopInstances:
    """SOFTSTOP (NIM is at zero: the OS shuts down cleanly); OCI powers the instance off by
    itself after 15 minutes, and a STOP follows only if it is still STOPPING after that.
    The GPU meters end when STOPPED is observed. Undo: START what this step stopped."""

    name, phase = "stop instances", "hibernate"

    def __init__(self) -> None:
        self.stopped: list[GpuNode] = []

    def do(self, run: HibernateRun) -> None:
        for node in run.nodes:
            stop_instance(run, node)
            self.stopped.append(node)
            set_gpu_meters(
                run.store, run.session, node.pool_id, open_at=None, close_at=run.store.now()
            )
            run.say(f"hibernate   {node.name} stopped (instance STOPPED: its GPU is not billed)")

    def undo(self, run: HibernateRun) -> None:
        provider = run.target.provider
        for node in self.stopped:
            info = provider.instance_info(node.instance_id)
            if info is not None and info.state == "STOPPED":
                provider.instance_action(
                    node.instance_id,
                    "START",
                    retry_token=retry_token(run.run_id, node.instance_id, "UNDO"),
                )
                set_gpu_meters(
                    run.store, run.session, node.pool_id, open_at=run.store.now(), close_at=None
                )


def stop_instance(run: HibernateRun, node: GpuNode) -> None:
    """SOFTSTOP → STOPPED, else STOP after OCI's own timeout; idempotent (a resumed run
    finds it STOPPING or STOPPED)."""
    provider, iid = run.target.provider, node.instance_id
    info = provider.instance_info(iid)
    state = info.state if info else "TERMINATED"
    if state == "RUNNING":
        state = provider.instance_action(
            iid, "SOFTSTOP", retry_token=retry_token(run.run_id, iid, "SOFTSTOP")
        )
    if state == "STOPPED":
        return
    if state != "STOPPING":
        raise ProviderError(f"instance {iid} of node {node.name} is {state}: cannot stop it")
    softstop_s = run.target.real_seconds(SOFTSTOP_TIMEOUT_S + 60) + 30
    try:
        provider.await_instance_state(iid, {"STOPPED"}, timeout_s=softstop_s)
        return
    except ProviderError:
        run.say(f"hibernate   {node.name} did not shut down in 15 min: powering it off (STOP)")
    provider.instance_action(iid, "STOP", retry_token=retry_token(run.run_id, iid, "STOP"))
    provider.await_instance_state(
        iid, {"STOPPED"}, timeout_s=run.target.real_seconds(INSTANCE_STOP.worst) + 30
    )


class HibernatedLease:
    """The lease says ``hibernated`` (the API server answers without workers): a watchdog
    that runs at all then runs on a node started outside nimble, and stops it."""

    name, phase = "lease", None

    def __init__(self) -> None:
        self.previous: Any = None

    def do(self, run: HibernateRun) -> None:
        from nimble_oke.services import watchdog

        ns = run.cfg.nim.namespace
        self.previous = watchdog.lease_from_configmap(run.kube(), ns)
        if self.previous is None:
            return
        lease = replace(
            self.previous,
            mode=watchdog.HIBERNATED,
            instance_ids=tuple(n.instance_id for n in run.nodes),
            usd_per_hour=0.0,
        )
        watchdog.write_lease(run.kube(), ns, lease)

    def undo(self, run: HibernateRun) -> None:
        from nimble_oke.services import watchdog

        if self.previous is not None:
            watchdog.write_lease(run.kube(), run.cfg.nim.namespace, self.previous)


class MarkHibernated(NoUndo):
    name, phase = "mark hibernated", None

    def do(self, run: HibernateRun) -> None:
        run.store.set_session_status(run.session, SessionStatus.HIBERNATED, clear_endpoint=True)
        run.usd_per_day, run.lines = storage_per_day(run.store, run.session)
        run.store.event(run.session, "INFO", f"hibernated: storage ${run.usd_per_day:.3f}/day")
        run.say(f"hibernate   {run.session} hibernated: storage only, ${run.usd_per_day:.3f}/day")


def hibernate_steps() -> list[Step[HibernateRun]]:
    return [
        Preflight(),
        ScaleToZero(),
        DeleteLoadBalancer(),
        Cordon(),
        RestCache(),
        StopInstances(),
        HibernatedLease(),
        MarkHibernated(),
    ]


def hibernate(
    session: str, cfg: NimbleConfig, target: Target, store: StateStore, *, say: Say = print
) -> HibernateResult:
    """``down --hibernate`` (see the module docstring). Refusals (ConfigError, StateError)
    change nothing; any other failure is undone (the session is ready again) and raised."""
    lock = SessionLock(store.home, session, command="nimble down --hibernate")
    lock.acquire()
    run = HibernateRun(session, cfg, target, store, say)
    try:
        saga: Saga[HibernateRun] = Saga(store, session, COMMAND, say=say)
        run.run_id = saga.run_id
        saga.run(hibernate_steps(), run, on_failure=lambda step, exc: _failing(run, step, exc))
    except SagaFailedError as failure:
        record = store.session(session)
        if record is not None and record.status == SessionStatus.TEARING_DOWN:
            store.set_session_status(session, SessionStatus.READY)
        raise failure.error from None
    finally:
        if run.client is not None:
            run.client.close()
        lock.release()
    return HibernateResult(
        session, run.shape, [n.instance_id for n in run.nodes], run.usd_per_day, run.lines
    )


def _failing(run: HibernateRun, step: str, exc: BaseException) -> None:
    if step != "hibernate preflight":
        run.say(f"hibernate failed in {step} ({exc}); putting the session back as it was")
