"""The steps of ``nimble down`` (run by services/saga.py without compensation: a deletion
is not undone). Each step is idempotent, so a killed ``down`` is finished by running it
again; a step that cannot reach what it needs says so and lets the teardown go on, since
what bills at GPU rates must go regardless."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nimble_oke.domain.config import NimbleConfig
from nimble_oke.errors import NimbleError
from nimble_oke.services.cloud_guard import record_guard_stop
from nimble_oke.services.deployment import delete_deployment
from nimble_oke.services.enforcement import record_enforcement
from nimble_oke.services.kept_cache import rest_kept_volumes, retain_cache_volume
from nimble_oke.services.node_image import keep_node_image
from nimble_oke.services.provision import Keep, TeardownResult, teardown
from nimble_oke.services.saga import NoUndo, Step
from nimble_oke.state.status import SessionStatus
from nimble_oke.state.store import StateStore

if TYPE_CHECKING:
    from nimble_oke.services.targets import Target

Say = Callable[[str], None]


@dataclass
class DownRun:
    session: str
    cfg: NimbleConfig
    target: Target
    store: StateStore
    keep: Keep
    say: Say
    deployment_deleted: bool = False
    teardown: TeardownResult | None = None


class MarkTearingDown(NoUndo):
    name, phase = "mark tearing down", None

    def do(self, run: DownRun) -> None:
        if run.store.session(run.session) is not None:
            run.store.set_session_status(run.session, SessionStatus.TEARING_DOWN)


class RemoveDeployment(NoUndo):
    """Read what the watchdog did, keep the cache volume if asked, delete the namespace
    (its LB and volumes go with it). An unreachable cluster is said, not fatal."""

    name, phase = "remove deployment", None

    def do(self, run: DownRun) -> None:
        from nimble_oke.kube.connect import client_for

        live = run.store.live_cluster(run.session)
        if live is None or not run.target.provider.state("cluster", live[1]):
            return
        kubeconfig, cluster_id = live
        namespace = run.cfg.nim.namespace
        try:
            client = client_for(kubeconfig, run.target.token(cluster_id), namespace)
            try:
                if (
                    record_enforcement(
                        client, namespace, run.target.provider, run.store, run.session
                    )
                    is None
                ):
                    record_guard_stop(run.target.provider, run.store, run.session, run.say)
                if run.keep.cache:
                    for volume in retain_cache_volume(client, run.cfg):
                        run.say(f"keeping the model cache: {volume} set to Retain")
                delete_deployment(client, run.cfg, run.say, run.target)
            finally:
                client.close()
            run.deployment_deleted = True
        except (NimbleError, OSError) as exc:
            run.say(
                f"could not reach the cluster to delete the deployment ({exc}); deleting its cloud resources directly"
            )


class CaptureNodeImage(NoUndo):
    name, phase = "capture node image", None

    def do(self, run: DownRun) -> None:
        try:
            keep_node_image(
                run.cfg,
                run.target,
                run.store,
                run.session,
                run.say,
                timeout_s=run.target.timeouts.node_pool_s,
            )
        except NimbleError as exc:
            # the teardown must go on: what bills at GPU rates goes regardless
            run.say(f"node image  not kept ({exc}); tearing down the rest")


class TeardownCloud(NoUndo):
    name, phase = "teardown", None

    def do(self, run: DownRun) -> None:
        run.teardown = teardown(
            run.session,
            run.target.provider,
            run.store,
            keep=run.keep,
            timeouts=run.target.timeouts,
            say=run.say,
        )


class RestKeptVolumes(NoUndo):
    name, phase = "rest kept volumes", None

    def do(self, run: DownRun) -> None:
        if run.teardown is not None and run.teardown.kept:
            rest_kept_volumes(run.cfg, run.target, run.store, run.session, run.say)


class MarkDown(NoUndo):
    name, phase = "mark down", None

    def do(self, run: DownRun) -> None:
        assert run.teardown is not None
        status = run.keep.status_after(run.teardown)
        run.store.set_session_status(run.session, status, clear_endpoint=True)


def down_steps(keep: Keep) -> list[Step[DownRun]]:
    steps: list[Step[DownRun]] = [MarkTearingDown(), RemoveDeployment()]
    if keep.node_image:
        steps.append(CaptureNodeImage())
    steps.append(TeardownCloud())
    if keep.cache:
        steps.append(RestKeptVolumes())
    steps.append(MarkDown())
    return steps
