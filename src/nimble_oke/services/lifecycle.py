"""``up`` and ``down``: the session lifecycle over any target.

Both are a list of steps run by one engine (services/saga.py): ``up``'s steps are in
services/up_steps.py (record → preflight → network → cluster → GPU pool with the cache
warm-up → connect → deploy → wait → endpoint → watchdog → ready → smoke → benchmark),
``down``'s in services/down_steps.py (deployment → node image → cloud → kept volumes).
Any failure of ``up`` — the project's own errors, an internal error, Ctrl-C — undoes what
this run created (unless ``keep_on_failure``) in reverse order and says what was removed;
a run killed outright is resumed by the next ``up`` of the session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nimble_oke.catalog import load_catalog
from nimble_oke.domain.config import NimbleConfig
from nimble_oke.domain.plan import Plan
from nimble_oke.errors import BudgetError, NimbleError
from nimble_oke.services.deployment import release_name
from nimble_oke.services.down_steps import DownRun, down_steps
from nimble_oke.services.hibernate_wake import wake_failed_for_capacity, wake_steps, wakes
from nimble_oke.services.provision import Keep, Provisioner, TeardownResult
from nimble_oke.services.saga import Saga, SagaFailedError, Step, Undone
from nimble_oke.services.session_bench import bench_line, run_bench
from nimble_oke.services.targets import Target
from nimble_oke.services.up_steps import UpOptions, UpResult, UpRun, up_steps
from nimble_oke.state.lock import SessionLock
from nimble_oke.state.status import SessionStatus
from nimble_oke.state.store import StateStore

Say = Callable[[str], None]
# re-exported: cli/bench_cmd.py, services/demo.py and tests import them from here
__all__ = [
    "DownResult",
    "UpOptions",
    "UpResult",
    "bench_line",
    "down",
    "release_name",
    "run_bench",
    "up",
]


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
) -> UpResult:
    """Bring the session up (idempotent: a re-run converges, a killed run is resumed)."""
    options = UpOptions(bench, keep_on_failure, bench_requests)
    cfg = plan.config or cfg  # with the planner's choices (cache volume size/VPUs)
    session = cfg.session_name
    result = UpResult(
        session, False, estimated_usd=plan.total_usd, worst_case_usd=plan.worst_case_usd
    )
    lock = SessionLock(store.home, session, command="nimble up")
    lock.acquire()
    try:
        if wakes(store, session):
            _wake(cfg, plan, target, store, say, options, result)
        else:
            saga: Saga[UpRun] = Saga(store, session, "up", say=say)
            run = _up_run(cfg, plan, target, store, say, options, result, saga)
            _run_up(saga, run)
    finally:
        lock.release()
    return result


def _wake(
    cfg: NimbleConfig,
    plan: Plan,
    target: Target,
    store: StateStore,
    say: Say,
    options: UpOptions,
    result: UpResult,
) -> None:
    """Up from hibernation (services/hibernate_wake.py); when START finds no host, the
    standby path: the stopped pool goes, cluster and cache stay, a new pool is created."""
    saga: Saga[UpRun] = Saga(store, cfg.session_name, "wake", say=say)
    run = _up_run(cfg, plan, target, store, say, options, result, saga)
    run.waking = True
    _run_up(saga, run, wake_steps(options))
    if result.ok:
        result.wake = "hibernated"
        return
    if result.rollback_failed or not wake_failed_for_capacity(result.failed_step, result.exception):
        return
    why = result.error
    say(
        f"wake failed ({why}); falling back to the standby path: the stopped node pool is "
        "deleted, the cluster and the cache volume stay, and a new GPU node pool is created "
        "down the fallback ladder (from a kept node image if there is one)"
    )
    _down_saga(cfg.session_name, cfg, target, store, Keep(cache=True, cluster=True), say)
    for name in ("error", "exception", "failed_step"):
        setattr(result, name, None)
    result.phases, result.rolled_back, result.rollback_failed = [], [], []
    result.wake = f"fell back to standby: {why}"
    saga = Saga(store, cfg.session_name, "up", say=say)
    _run_up(saga, _up_run(cfg, plan, target, store, say, options, result, saga))


def _up_run(
    cfg: NimbleConfig,
    plan: Plan,
    target: Target,
    store: StateStore,
    say: Say,
    options: UpOptions,
    result: UpResult,
    saga: Saga[UpRun],
) -> UpRun:
    catalog = load_catalog()
    settled = store.last_settled_run(cfg.session_name)
    record = store.session(cfg.session_name)
    provisioner = Provisioner(
        cfg.session_name,
        cfg,
        target.provider,
        store,
        catalog,
        say=say,
        timeouts=target.timeouts,
        run=saga.run_id,
        lineage=saga.lineage,
    )
    return UpRun(
        cfg,
        plan,
        target,
        store,
        say,
        options,
        result,
        catalog,
        saga.run_id,
        provisioner,
        deployment_settled=settled is not None and settled.command == "up",
        prior_status=record.status if record is not None else None,
    )


def _run_up(saga: Saga[UpRun], run: UpRun, steps: list[Step[UpRun]] | None = None) -> None:
    result = run.result
    result.started_at = run.store.now()
    stopped_at = saga.interrupted_at()
    if stopped_at is not None:
        run.say(
            f"resuming: the last up of {run.session} stopped in '{stopped_at}'; what it made "
            "is adopted (and removed if this run fails)"
        )
    try:
        saga.run(
            steps if steps is not None else up_steps(run.options),
            run,
            compensate=not run.options.keep_on_failure,
            on_failure=lambda step, exc: _failing(run, step, exc),
        )
        result.ok = True
    except SagaFailedError as failure:
        _failed(run, failure.undone)
        if isinstance(failure.error, KeyboardInterrupt):
            raise KeyboardInterrupt from None
    finally:
        if run.client is not None:
            run.client.close()
        if run.warm is not None:
            run.warm.close()
        result.phases[:0] = saga.ledger.done


def _failing(run: UpRun, step: str, exc: BaseException) -> None:
    """Said and recorded as soon as a step fails, before anything is undone."""
    result = run.result
    result.exception, result.failed_step = exc, step
    if isinstance(exc, KeyboardInterrupt):
        result.error = "interrupted"
    elif isinstance(exc, NimbleError):
        result.error = str(exc)
    else:
        result.error = f"internal error in {step}: {type(exc).__name__}: {exc}"
    run.store.event(run.session, "ERROR", f"up failed: {result.error}")
    if isinstance(exc, BudgetError) and step == "budget":
        run.say(f"up refused: {result.error}")
    elif run.options.keep_on_failure:
        run.say(
            "keeping what was created (--keep-on-failure); remove it with: "
            f"nimble down --name {run.session}"
        )
    else:
        run.say(f"up failed ({result.error}); rolling back what this run created")


def _failed(run: UpRun, undone: Undone | None) -> None:
    """After the rollback (or without one): the session's status and what is left."""
    result, session = run.result, run.session
    if result.failed_step == "budget":
        return  # refused before anything: the session is as it was
    if undone is None:
        run.store.set_session_status(session, SessionStatus.FAILED)
        return
    result.rolled_back = list(run.rolled_back)
    result.rollback_failed = [*run.rollback_failed, *undone.failed]
    if undone.aborted:
        run.say(f"rollback aborted; finish it with: nimble down --name {session}")
    failed = result.rollback_failed or undone.aborted
    if failed:
        status = SessionStatus.FAILED
    elif run.waking:
        status = SessionStatus.HIBERNATED  # every step undone: asleep again, storage only
    elif run.deployment_settled and run.prior_status is not None:
        # a healthy (or stopped) session this run only tried to change: it is as it was
        status = SessionStatus.of(run.prior_status) or SessionStatus.READY
    else:
        status = SessionStatus.ROLLED_BACK
    run.store.set_session_status(session, status)
    if result.rollback_failed:
        run.say(
            f"could not remove: {'; '.join(result.rollback_failed)} — finish with: "
            f"nimble down --name {session}"
        )


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
    """Delete the session's deployment and cloud resources but what ``keep`` keeps, then
    verify through the tag search that nothing else is left. ``keep_*``: the same as
    ``keep`` (kept for callers written before :class:`Keep`)."""
    keep = keep or Keep(keep_cache, keep_cluster, keep_node_image)
    lock = SessionLock(store.home, session, command="nimble down")
    lock.acquire()
    try:
        return _down_saga(session, cfg, target, store, keep, say)
    finally:
        lock.release()


def _down_saga(
    session: str, cfg: NimbleConfig, target: Target, store: StateStore, keep: Keep, say: Say
) -> DownResult:
    """``down``'s steps, under the caller's session lock."""
    run = DownRun(session, cfg, target, store, keep, say)
    saga: Saga[DownRun] = Saga(store, session, "down", say=say)
    try:
        saga.run(down_steps(keep), run, compensate=False)
    except SagaFailedError as failure:
        raise failure.error from None
    assert run.teardown is not None
    return DownResult(session, run.teardown, run.deployment_deleted)
