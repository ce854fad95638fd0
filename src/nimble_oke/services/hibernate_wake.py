"""``nimble up`` on a hibernated session: START the stopped GPU node, wait for it to be
Ready, uncordon, scale NIM back with its load balancer, then the usual endpoint, watchdog,
ready, smoke and benchmark steps of ``up`` (services/up_steps.py).

The image is in the node's containerd (its boot volume) and the weights on the attached
cache volume: nothing is pulled or downloaded. The steps run on the saga engine as the
command ``wake``, each with its undo, so a failed wake leaves the session hibernated again
(instances STOPPED, lease back to ``hibernated``, cache at rest, no load balancer) — never
half-woken — and a killed wake is resumed by the next ``up``.

Budget and lease: the budget step counts what the session accrued (its GPU time before the
stop and the storage since) plus this wake's worst case; the new lease is written into the
cluster *before* START (the API server runs without workers), so the watchdog bounds the
woken node from its first minute even if this process dies.

START without a host ("Out of host capacity": a stopped VM gave its host back) is retried a
few times; then ``up`` (services/lifecycle.py) falls back to the standby path: the stopped
pool goes, the cluster and cache volume stay, and a new GPU pool comes down the fallback
ladder (from a kept node image when there is one) — and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nimble_oke.domain.hibernate import INSTANCE_START, INSTANCE_STOP, NODE_REJOIN
from nimble_oke.errors import CapacityError, ProviderError, StateError
from nimble_oke.services import hibernate_kube as hk
from nimble_oke.services.cloud_guard import KIND as SCHEDULE_KIND
from nimble_oke.services.hibernate import (
    GpuNode,
    await_lbs_deleted,
    cache_volumes,
    gpu_nodes,
    refusal,
    retry_token,
    set_gpu_meters,
)
from nimble_oke.services.preflight import PreflightReport, Rung
from nimble_oke.services.saga import NoUndo, Step
from nimble_oke.services.up_steps import (
    Budget,
    LeaseBeforeGpu,
    RecordSession,
    UpOptions,
    UpRun,
    serving_steps,
)
from nimble_oke.state.status import SessionStatus
from nimble_oke.state.store import StateStore

COMMAND = "wake"
START_ATTEMPTS = 3  # rung 1 of the ladder: capacity may free up within minutes
START_RETRY_S = 60.0  # simulated / real seconds between START attempts


def wakes(store: StateStore, session: str) -> bool:
    """Whether ``up`` of this session is a wake: it hibernates, or a hibernate or a wake of
    it was killed (the wake's steps finish either)."""
    record = store.session(session)
    if record is not None and SessionStatus.of(record.status) is SessionStatus.HIBERNATED:
        return True
    unfinished = [r for r in store.unfinished_runs(session) if r.status == "running"]
    return bool(unfinished) and unfinished[-1].command in ("hibernate", COMMAND)


@dataclass
class Woken:
    """What the wake's steps share beside the UpRun."""

    nodes: list[GpuNode] = field(default_factory=list)


class WakePreflight(NoUndo):
    name, phase = "wake preflight", None

    def __init__(self, woken: Woken) -> None:
        self.woken = woken

    def do(self, run: UpRun) -> None:
        nodes = gpu_nodes(run.target, run.store, run.session)
        if not nodes:
            raise StateError(f"session {run.session} has no GPU node to wake")
        live = run.store.live_cluster(run.session)
        if live is None:
            raise StateError(f"session {run.session} has no live cluster to wake")
        run.kubeconfig, run.cluster_id = live
        run.pool_id = nodes[0].pool_id
        self.woken.nodes = nodes
        info = run.target.provider.instance_info(nodes[0].instance_id)
        if info is None:
            raise StateError(f"the instance of node {nodes[0].name} is gone: nothing to wake")
        # the woken shape's rate is what the lease (written before START) enforces
        rung = Rung(info.shape, info.availability_domain, preemptible=False)
        run.report, run.placement = PreflightReport(ladder=[rung]), rung
        run.result.placement = rung.label
        if refusal(run.target, run.cfg, info.shape, None) is not None:
            run.say(
                f"wake        note: the Compute API now reports that a stopped {info.shape} "
                "is billed; waking it anyway (down without --hibernate next time)"
            )
        run.say(f"wake        {run.session}: starting {len(nodes)} hibernated GPU node(s)")


class WakeGuard(NoUndo):
    """The cloud guard's stop schedule follows the new lease (else it would stop the woken
    node at the old lease's hour)."""

    name, phase = "cloud guard", None

    def do(self, run: UpRun) -> None:
        from nimble_oke.services.cloud_guard import schedule_spec
        from nimble_oke.services.provision import session_tags

        schedules = [
            r for r in run.store.resources(run.session, live_only=True) if r.kind == SCHEDULE_KIND
        ]
        for schedule in schedules:
            spec = schedule_spec(run.session, run.lease_expires_at, session_tags(run.session))
            run.target.provider.update_schedule(schedule.resource_id, spec)


class RaiseCache:
    """The cache volume back to the session's VPUs, online, before START (the weights load
    at the speed the plan counted on). Undo: back to rest."""

    name, phase = "raise cache volume", "start"

    def __init__(self) -> None:
        self.before: dict[str, int] = {}

    def do(self, run: UpRun) -> None:
        from nimble_oke.services.kept_cache import set_volume_level

        for volume in cache_volumes(run.store, run.session):
            was = set_volume_level(
                run.target, run.store, run.session, volume.resource_id, run.cfg.cache.vpus_per_gb
            )
            if was is not None:
                self.before[volume.resource_id] = was

    def undo(self, run: UpRun) -> None:
        from nimble_oke.services.kept_cache import set_volume_level

        for volume_id, vpus in self.before.items():
            set_volume_level(run.target, run.store, run.session, volume_id, vpus)


class StartInstances:
    """START each stopped instance (billing resumes with START: the GPU meters open then).
    Out of host capacity: retried, then CapacityError (``up`` falls back). Undo: STOP again,
    the GPU meters end — back to hibernated."""

    name, phase = "start instances", "start"

    def __init__(self, woken: Woken) -> None:
        self.woken = woken

    def do(self, run: UpRun) -> None:
        for node in self.woken.nodes:
            _start(run, node)
            set_gpu_meters(
                run.store, run.session, node.pool_id, open_at=run.store.now(), close_at=None
            )

    def undo(self, run: UpRun) -> None:
        provider = run.target.provider
        for node in self.woken.nodes:
            info = provider.instance_info(node.instance_id)
            if info is None or info.state == "STOPPED":
                continue
            if info.state == "STARTING":
                provider.await_instance_state(
                    node.instance_id, {"RUNNING"}, timeout_s=_real(run, INSTANCE_START.worst)
                )
            provider.instance_action(
                node.instance_id,
                "STOP",
                retry_token=retry_token(run.run_id, node.instance_id, "STOP"),
            )
            provider.await_instance_state(
                node.instance_id, {"STOPPED"}, timeout_s=_real(run, INSTANCE_STOP.worst)
            )
            set_gpu_meters(
                run.store, run.session, node.pool_id, open_at=None, close_at=run.store.now()
            )
            run.say(f"wake        {node.name} stopped again (hibernated)")


def _real(run: UpRun, sim_seconds: float) -> float:
    return run.target.real_seconds(sim_seconds) + 30


def _start(run: UpRun, node: GpuNode) -> None:
    """START, bounded retries when OCI has no host; idempotent for a resumed run."""
    provider, iid = run.target.provider, node.instance_id
    info = provider.instance_info(iid)
    state = info.state if info else "TERMINATED"
    if state == "STOPPING":  # a killed hibernate: let it finish first
        state = provider.await_instance_state(iid, {"STOPPED"}, timeout_s=_real(run, 1200))
    if state in ("RUNNING", "STARTING"):
        return
    if state != "STOPPED":
        raise ProviderError(f"instance {iid} of node {node.name} is {state}: cannot start it")
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            provider.instance_action(
                iid, "START", retry_token=retry_token(run.run_id, iid, f"START{attempt}")
            )
            return
        except CapacityError as exc:
            if attempt == START_ATTEMPTS:
                raise CapacityError(
                    f"starting hibernated node {node.name}: OCI has no host for it after "
                    f"{START_ATTEMPTS} attempts ({exc.message})",
                    code=exc.code,
                    status=exc.status,
                ) from None
            run.say(f"wake        no host for {node.name} yet (attempt {attempt}); retrying")
            run.target.sleep(START_RETRY_S)


class WaitNodeReady(NoUndo):
    """RUNNING, then the kubelet posts Ready again (no OKE bootstrap: it is registered)."""

    name, phase = "node ready", "node ready"

    def __init__(self, woken: Woken) -> None:
        self.woken = woken

    def do(self, run: UpRun) -> None:
        provider = run.target.provider
        for node in self.woken.nodes:
            provider.await_instance_state(
                node.instance_id, {"RUNNING"}, timeout_s=_real(run, INSTANCE_START.worst)
            )
            hk.wait_node_ready(
                run.kube(),
                node.name,
                timeout_s=_real(run, NODE_REJOIN.worst),
                sleep=lambda _s: run.target.sleep(5.0),
            )
            run.say(f"wake        node {node.name} Ready")
        run.result.node_ready_at = run.store.now()


class Uncordon:
    name, phase = "uncordon", "deploy"

    def __init__(self, woken: Woken) -> None:
        self.woken = woken

    def do(self, run: UpRun) -> None:
        for node in self.woken.nodes:
            hk.cordon(run.kube(), node.name, on=False)

    def undo(self, run: UpRun) -> None:
        if run.client is None:
            return
        for node in self.woken.nodes:
            hk.cordon(run.kube(), node.name)


class Redeploy:
    """The last deployed chart values again: NIM at its replicas, the LB Service back (the
    cloud controller creates the load balancer while NIM loads). Undo: NIM at zero, the LB
    Service deleted — as hibernated."""

    name, phase = "redeploy", "deploy"

    def do(self, run: UpRun) -> None:
        hk.apply_last_revision(run.kube(), run.store, run.session, run.namespace)
        run.say("wake        NIM scaled back; load balancer requested")

    def undo(self, run: UpRun) -> None:
        if run.client is None:
            return
        client, ns = run.kube(), run.namespace
        for workload in hk.nim_workloads(client, ns, run.session):
            hk.scale_workload(client, ns, workload, 0)
        hk.delete_services(client, ns, hk.load_balancer_services(client, ns, run.session))
        await_lbs_deleted(run.target, run.store, run.session)


def wake_steps(options: UpOptions) -> list[Step[UpRun]]:
    """The steps of ``up`` from hibernation (fresh objects: each keeps its undo state)."""
    woken = Woken()
    steps: list[Step[UpRun]] = [
        Budget(),
        RecordSession(),
        WakePreflight(woken),
        LeaseBeforeGpu(),
        WakeGuard(),
        RaiseCache(),
        StartInstances(woken),
        WaitNodeReady(woken),
        Uncordon(woken),
        Redeploy(),
        *serving_steps(options),
    ]
    return steps


def wake_failed_for_capacity(step: str | None, exc: Any) -> bool:
    """The fallback's trigger: START found no host (after its retries)."""
    return step == StartInstances.name and isinstance(exc, CapacityError)
