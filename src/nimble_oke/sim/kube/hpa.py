"""HorizontalPodAutoscaler (autoscaling/v2) controller: the metrics pipeline and the HPA.

In a real cluster Prometheus scrapes NIM's ``/v1/metrics``, prometheus-adapter serves the
gauges as ``custom.metrics.k8s.io`` Pods metrics, and kube-controller-manager's HPA
controller turns them into a replica count every ``--horizontal-pod-autoscaler-sync-period``.
Here one controller plays all three: every ``sync_period`` *simulated* seconds it scrapes
the Ready pods of each HPA's target (asynchronously, with aiohttp, so the controller loop
never blocks), then runs the upstream algorithm and writes the target's ``spec.replicas``,
the HPA's ``status`` and Events.

The arithmetic follows the Kubernetes documentation ("Horizontal Pod Autoscaling",
section "Algorithm details") and the controller it describes
(``pkg/controller/podautoscaler``: replica_calculator.go, horizontal.go); it lives in the
pure functions of :mod:`.hpa_algorithm`. ``type: Resource`` (CPU/memory) metrics need
metrics-server, which the simulator does not run: they are reported as unavailable
(``ScalingActive=False``, ``FailedGetResourceMetric``), never faked.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from dataclasses import dataclass, field

import aiohttp

from nimble_oke.sim.clock import SAMPLE

from .apierrors import ApiError
from .cluster import PODS, Cluster
from .hpa_algorithm import (
    DEFAULT_CPU_METRIC,
    METRICS_PATH,
    SCRAPE_TIMEOUT_S,
    SYNC_PERIOD_S,
    Behavior,
    MetricsError,
    PodView,
    Stamped,
    Tolerances,
    behavior_of,
    format_milli,
    max_proposal,
    parse_prometheus,
    plain_metric_replicas,
    rate_limited,
    stabilize,
    to_milli,
)
from .quantity import parse
from .resources import by_kind, by_name
from .selectors import match_label_selector
from .store import Obj

log = logging.getLogger(__name__)

HPAS = by_name("HorizontalPodAutoscaler")
COMPONENT = "horizontal-pod-autoscaler"
FIELD_MANAGER = "kube-controller-manager"


# --- the controller ----------------------------------------------------------------------------
@dataclass
class _HpaState:
    """What kube-controller-manager keeps in memory per HPA."""

    last_sync: float = -math.inf
    recommendations: list[Stamped] = field(default_factory=list)
    ups: list[Stamped] = field(default_factory=list)
    downs: list[Stamped] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


@dataclass
class _MetricResult:
    proposal: int
    name: str  # "pods metric num_requests_waiting"
    status: Obj


@dataclass
class _Decision:
    """What one sync decided: the replica count, the reason the events give, whether to
    write the scale, and the metric statuses; ``computed`` is False when no count could be
    computed from the metrics (the conditions say why)."""

    desired: int
    reason: str = ""
    rescale: bool = True
    metrics: list[Obj] = field(default_factory=list)
    computed: bool = True


class _MetricError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


_UNSUPPORTED = {
    "Resource": (
        "FailedGetResourceMetric",
        "failed to get {name} utilization: unable to get metrics for resource {name}: "
        "no metrics returned from resource metrics API",
    ),
    "ContainerResource": (
        "FailedGetContainerResourceMetric",
        "failed to get {name} utilization: unable to get metrics for resource {name}: "
        "no metrics returned from resource metrics API",
    ),
    "Object": (
        "FailedGetObjectMetric",
        "unable to get metric {name}: unable to fetch metrics from custom metrics API",
    ),
    "External": (
        "FailedGetExternalMetric",
        "unable to get external metric {name}: unable to fetch metrics from external metrics API",
    ),
}


class HpaController:
    """Reconciles every HorizontalPodAutoscaler; add :meth:`reconcile` to the loop."""

    def __init__(
        self,
        cluster: Cluster,
        sync_period: float = SYNC_PERIOD_S,
        scrape_timeout_s: float = SCRAPE_TIMEOUT_S,
    ) -> None:
        self.c = cluster
        self.sync_period = sync_period
        self.scrape_timeout_s = scrape_timeout_s
        self._state: dict[str, _HpaState] = {}
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    # --- loop entry (synchronous, never blocks) ----------------------------------------------
    def reconcile(self) -> None:
        if self._closed:
            return
        now = self.c.clock.now()
        alive: set[str] = set()
        for hpa in self.c.store.list(HPAS):
            uid = hpa["metadata"]["uid"]
            alive.add(uid)
            state = self._state.setdefault(uid, _HpaState())
            busy = state.task is not None and not state.task.done()
            if busy or hpa["metadata"].get("deletionTimestamp"):
                continue
            if now - state.last_sync < self.sync_period:
                # the next sync is a sampling stop of the simulated clock's jumps
                self.c.wake_at(f"hpa/{uid}", state.last_sync + self.sync_period, SAMPLE)
                continue
            state.last_sync = now
            self.c.wake_at(f"hpa/{uid}", now + self.sync_period, SAMPLE)
            ns, name = hpa["metadata"]["namespace"], hpa["metadata"]["name"]
            state.task = asyncio.get_running_loop().create_task(self._sync(ns, name, uid))
        for uid in [u for u in self._state if u not in alive]:
            state = self._state.pop(uid)
            if state.task is not None:
                state.task.cancel()

    async def close(self) -> None:
        self._closed = True
        tasks = [s.task for s in self._state.values() if s.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- one sync of one HPA --------------------------------------------------------------------
    async def _sync(self, ns: str, name: str, uid: str) -> None:
        with self.c.clock.busy():  # a scrape and its decision happen at one moment
            await self._sync_once(ns, name, uid)

    async def _sync_once(self, ns: str, name: str, uid: str) -> None:
        try:
            hpa = self.c.store.get(HPAS, ns, name)
            if hpa is None or hpa["metadata"]["uid"] != uid:
                return
            target = self._target(hpa)
            samples: dict[str, dict[str, float]] = {}
            if target is not None:
                samples = await self._scrape(self._selected_pods(target))
            self._reconcile_one(ns, name, uid, samples)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("HPA %s/%s sync failed", ns, name)

    def _target(self, hpa: Obj) -> Obj | None:
        ref = hpa["spec"].get("scaleTargetRef") or {}
        rt = by_kind(str(ref.get("apiVersion", "")), str(ref.get("kind", "")))
        if rt is None or "scale" not in rt.subresources:
            return None
        return self.c.store.get(rt, hpa["metadata"]["namespace"], str(ref.get("name", "")))

    def _selected_pods(self, target: Obj) -> list[Obj]:
        selector = target["spec"].get("selector")
        return [
            p
            for p in self.c.store.list(PODS, target["metadata"]["namespace"])
            if match_label_selector(selector, p["metadata"].get("labels"))
        ]

    async def _scrape(self, pods: list[Obj]) -> dict[str, dict[str, float]]:
        """Metrics of the Ready pods (what the adapter would serve), by pod name."""
        wanted = [p for p in pods if _ready(p) and not p["metadata"].get("deletionTimestamp")]
        names = [p["metadata"]["name"] for p in wanted]
        results = await asyncio.gather(*(self._scrape_pod(p) for p in wanted))
        return {n: r for n, r in zip(names, results, strict=True) if r is not None}

    async def _scrape_pod(self, pod: Obj) -> dict[str, float] | None:
        port = self._metrics_port(pod)
        if port is None:
            return None
        if self._session is None:
            # One connection per scrape: pods come and go, no keep-alive socket outlives one.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=True),
                timeout=aiohttp.ClientTimeout(total=self.scrape_timeout_s),
            )
        try:
            async with self._session.get(f"http://127.0.0.1:{port}{METRICS_PATH}") as resp:
                if resp.status != 200:
                    return None
                return parse_prometheus(await resp.text())
        except (aiohttp.ClientError, TimeoutError):
            return None

    def _metrics_port(self, pod: Obj) -> int | None:
        """The local port of the container port the ServiceMonitor scrapes (named ``http``,
        else the first declared port)."""
        local = self.c.pod_ports.get((pod["metadata"]["namespace"], pod["metadata"]["name"]))
        if not local:
            return None
        declared = [p for c in pod["spec"].get("containers") or [] for p in c.get("ports") or []]
        declared.sort(key=lambda p: p.get("name") != "http")
        for p in declared:
            port = local.get(int(p["containerPort"]))
            if port is not None:
                return port
        return None

    # --- the algorithm applied to the stored objects --------------------------------------------
    def _reconcile_one(
        self, ns: str, name: str, uid: str, samples: dict[str, dict[str, float]]
    ) -> None:
        hpa = self.c.store.get(HPAS, ns, name)
        if hpa is None or hpa["metadata"]["uid"] != uid:
            return
        state = self._state.setdefault(uid, _HpaState())
        status = json.loads(json.dumps(hpa.get("status") or {}))
        conditions: list[Obj] = status.get("conditions") or []
        target = self._target(hpa)
        if target is None:
            self._target_missing(hpa, status, conditions)
            return
        self._condition(
            conditions,
            "AbleToScale",
            True,
            "SucceededGetScale",
            "the HPA controller was able to get the target's current scale",
        )
        now = self.c.clock.now()
        current = int(target["spec"].get("replicas", 1))
        decision = self._decide(hpa, state, target, current, samples, conditions, now)
        if not decision.computed:
            status.update(
                currentReplicas=current, currentMetrics=decision.metrics, conditions=conditions
            )
            self._write_status(hpa, status)
            return
        desired = current
        if decision.rescale:
            if not self._rescale(hpa, target, state, current, decision, conditions, now):
                status.update(currentReplicas=current, conditions=conditions)
                self._write_status(hpa, status)
                return
            desired = decision.desired
            status["lastScaleTime"] = self.c.store.now_iso()
        self._prune(state, hpa["spec"], now)
        status.update(
            currentReplicas=current,
            desiredReplicas=desired,
            currentMetrics=decision.metrics,
            conditions=conditions,
            observedGeneration=hpa["metadata"].get("generation", 1),
        )
        self._write_status(hpa, status)

    def _target_missing(self, hpa: Obj, status: Obj, conditions: list[Obj]) -> None:
        """The scale target does not exist: AbleToScale=False, a FailedGetScale event."""
        ref = hpa["spec"].get("scaleTargetRef") or {}
        rt = by_kind(str(ref.get("apiVersion", "")), str(ref.get("kind", "")))
        what = f"{rt.plural if rt else str(ref.get('kind', '')).lower()}"
        group = f".{rt.group}" if rt and rt.group else ""
        message = f'{what}{group} "{ref.get("name", "")}" not found'
        self._condition(
            conditions,
            "AbleToScale",
            False,
            "FailedGetScale",
            f"the HPA controller was unable to get the target's current scale: {message}",
        )
        self._event(hpa, "FailedGetScale", message, warning=True)
        self._write_status(hpa, {**status, "conditions": conditions})

    def _decide(
        self,
        hpa: Obj,
        state: _HpaState,
        target: Obj,
        current: int,
        samples: dict[str, dict[str, float]],
        conditions: list[Obj],
        now: float,
    ) -> _Decision:
        """The replica count to write and why: clamped into [min, max] first (as upstream
        does before reading metrics), else the metrics' proposal, stabilized and rate
        limited."""
        spec = hpa["spec"]
        min_replicas = int(spec.get("minReplicas", 1))
        max_replicas = int(spec["maxReplicas"])
        if not state.recommendations:
            state.recommendations.append(Stamped(current, now))
        if current == 0 and min_replicas != 0:
            self._condition(
                conditions,
                "ScalingActive",
                False,
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
            )
            return _Decision(0, rescale=False)
        if current > max_replicas:
            return _Decision(max_replicas, "Current number of replicas above Spec.MaxReplicas")
        if current < min_replicas:
            return _Decision(min_replicas, "Current number of replicas below Spec.MinReplicas")
        pods = [_view(p) for p in self._selected_pods(target)]
        proposal, metric_name, metrics = self._replicas_for_metrics(
            hpa, current, pods, samples, conditions, behavior_of(spec)
        )
        if proposal is None:
            return _Decision(current, rescale=False, metrics=metrics, computed=False)
        desired = max(0, proposal)
        reason = ""
        if desired > current:
            reason = f"{metric_name} above target"
        elif desired < current:
            reason = "All metrics below target"
        desired = self._normalize(
            spec, state, conditions, current, desired, min_replicas, max_replicas, now
        )
        return _Decision(desired, reason, rescale=desired != current, metrics=metrics)

    def _rescale(
        self,
        hpa: Obj,
        target: Obj,
        state: _HpaState,
        current: int,
        decision: _Decision,
        conditions: list[Obj],
        now: float,
    ) -> bool:
        """Write the target's scale; False (FailedRescale, AbleToScale=False) if refused."""
        desired, reason = decision.desired, decision.reason
        try:
            self._scale(target, desired)
        except ApiError as exc:
            self._event(
                hpa,
                "FailedRescale",
                f"New size: {desired}; reason: {reason}; error: {exc}",
                warning=True,
            )
            self._condition(
                conditions,
                "AbleToScale",
                False,
                "FailedUpdateScale",
                f"the HPA controller was unable to update the target scale: {exc}",
            )
            return False
        self._condition(
            conditions,
            "AbleToScale",
            True,
            "SucceededRescale",
            f"the HPA controller was able to update the target scale to {desired}",
        )
        self._event(hpa, "SuccessfulRescale", f"New size: {desired}; reason: {reason}")
        change = Stamped(abs(desired - current), now)
        (state.ups if desired > current else state.downs).append(change)
        return True

    def _replicas_for_metrics(
        self,
        hpa: Obj,
        current: int,
        pods: list[PodView],
        samples: dict[str, dict[str, float]],
        conditions: list[Obj],
        behavior: Behavior,
    ) -> tuple[int | None, str, list[Obj]]:
        """(max proposal over the metrics, its name, metric statuses); the proposal is None
        (conditions and events say why) when all metrics failed, or some failed and the
        others would scale down."""
        # API defaulting: no metrics means CPU at 80 % utilization (autoscaling/v2 defaults).
        specs: list[Obj] = hpa["spec"].get("metrics") or [DEFAULT_CPU_METRIC]
        tolerances = Tolerances(down=behavior.down.tolerance, up=behavior.up.tolerance)
        statuses: list[Obj] = []
        proposals: list[tuple[int, str] | None] = []
        failures: list[_MetricError] = []
        for metric in specs:
            try:
                result = self._one_metric(metric, current, pods, samples, tolerances)
            except _MetricError as failure:
                failures.append(failure)
                proposals.append(None)
                statuses.append({"type": ""})  # kubectl shows <unknown>
                self._event(hpa, failure.reason, str(failure), warning=True)
                continue
            statuses.append(result.status)
            proposals.append((result.proposal, result.name))
        best = max_proposal(proposals, current)
        if best is None and failures:
            first = failures[0]
            self._condition(
                conditions,
                "ScalingActive",
                False,
                first.reason,
                f"the HPA was unable to compute the replica count: {first}",
            )
            self._event(
                hpa,
                "FailedComputeMetricsReplicas",
                f"invalid metrics ({len(failures)} invalid out of {len(specs)}), first error "
                f"is: {first}",
                warning=True,
            )
            return None, "", statuses
        if best is None:
            return None, "", statuses
        self._condition(
            conditions,
            "ScalingActive",
            True,
            "ValidMetricFound",
            f"the HPA was able to successfully calculate a replica count from {best[1]}",
        )
        return best[0], best[1], statuses

    def _one_metric(
        self,
        metric: Obj,
        current: int,
        pods: list[PodView],
        samples: dict[str, dict[str, float]],
        tolerances: Tolerances,
    ) -> _MetricResult:
        kind = str(metric.get("type", ""))
        if kind != "Pods":
            source = metric.get(kind[:1].lower() + kind[1:]) or {}
            name = str(source.get("name") or (source.get("metric") or {}).get("name") or "")
            reason, template = _UNSUPPORTED.get(
                kind, ("FailedGetMetric", "unsupported metric source type {name}")
            )
            raise _MetricError(reason, template.format(name=name or kind))
        pods_spec = metric.get("pods") or {}
        name = str((pods_spec.get("metric") or {}).get("name", ""))
        target = pods_spec.get("target") or {}

        target_milli = to_milli(float(parse(target.get("averageValue", "0"))))
        if target_milli <= 0:
            raise _MetricError(
                "FailedGetPodsMetric", f"invalid target averageValue for metric {name}"
            )
        values = {pod: to_milli(m[name]) for pod, m in samples.items() if name in m}
        if not samples:
            raise _MetricError(
                "FailedGetPodsMetric",
                f"unable to get metric {name}: no metrics returned from custom metrics API",
            )
        if not values:
            raise _MetricError(
                "FailedGetPodsMetric",
                f"unable to get metric {name}: unable to fetch metrics from custom metrics "
                f"API: the server could not find the metric {name} for pods",
            )
        try:
            proposal, usage = plain_metric_replicas(current, target_milli, values, pods, tolerances)
        except MetricsError as exc:
            raise _MetricError("FailedGetPodsMetric", str(exc)) from exc
        status = {
            "type": "Pods",
            "pods": {"metric": {"name": name}, "current": {"averageValue": format_milli(usage)}},
        }
        return _MetricResult(proposal, f"pods metric {name}", status)

    def _normalize(
        self,
        spec: Obj,
        state: _HpaState,
        conditions: list[Obj],
        current: int,
        desired: int,
        min_replicas: int,
        max_replicas: int,
        now: float,
    ) -> int:
        behavior = behavior_of(spec)
        up_window = 0 if behavior.legacy else behavior.up.stabilization_s
        stabilized, reason, message = stabilize(
            state.recommendations, now, current, desired, up_window, behavior.down.stabilization_s
        )
        state.recommendations.append(Stamped(desired, now))
        if stabilized != desired:
            self._condition(conditions, "AbleToScale", True, reason, message)
        else:
            self._condition(
                conditions,
                "AbleToScale",
                True,
                "ReadyForNewScale",
                "recommended size matches current size",
            )
        limited, reason, message = rate_limited(
            current,
            stabilized,
            min_replicas,
            max_replicas,
            behavior,
            state.ups,
            state.downs,
            now,
        )
        self._condition(conditions, "ScalingLimited", limited != stabilized, reason, message)
        return limited

    def _prune(self, state: _HpaState, spec: Obj, now: float) -> None:
        behavior = behavior_of(spec)
        keep_recs = max(behavior.up.stabilization_s, behavior.down.stabilization_s)
        state.recommendations = [r for r in state.recommendations if r.t > now - keep_recs] or [
            state.recommendations[-1]
        ]
        longest = max(
            (p.period_s for p in (*behavior.up.policies, *behavior.down.policies)), default=0
        )
        state.ups = [e for e in state.ups if e.t > now - longest]
        state.downs = [e for e in state.downs if e.t > now - longest]

    # --- writes -----------------------------------------------------------------------------------
    def _scale(self, target: Obj, replicas: int) -> None:
        """What ``PUT .../scale`` does: the target's spec.replicas."""
        rt = by_kind(target["apiVersion"], target["kind"])
        assert rt is not None
        meta = target["metadata"]
        body = json.dumps({"spec": {"replicas": replicas}}).encode()
        self.c.api.patch(
            rt,
            meta["namespace"],
            meta["name"],
            body,
            "application/merge-patch+json",
            manager=FIELD_MANAGER,
        )

    def _write_status(self, hpa: Obj, status: Obj) -> None:
        # Both counts are required fields of HorizontalPodAutoscalerStatus (clients reject
        # a status without them); they keep their zero value until first computed.
        status.setdefault("currentReplicas", 0)
        status.setdefault("desiredReplicas", 0)

        def write(obj: Obj) -> None:
            obj["status"] = status

        self.c.store.mutate(HPAS, hpa["metadata"]["namespace"], hpa["metadata"]["name"], write)

    def _condition(
        self, conditions: list[Obj], kind: str, ok: bool, reason: str, message: str
    ) -> None:
        """setCondition: the transition time moves only when the status flips."""
        value = "True" if ok else "False"
        now = self.c.store.now_iso()
        for cond in conditions:
            if cond.get("type") == kind:
                if cond.get("status") != value:
                    cond["lastTransitionTime"] = now
                cond.update(status=value, reason=reason, message=message)
                return
        conditions.append(
            {
                "type": kind,
                "status": value,
                "lastTransitionTime": now,
                "reason": reason,
                "message": message,
            }
        )

    def _event(self, hpa: Obj, reason: str, message: str, warning: bool = False) -> None:
        self.c.events.record(
            hpa, reason, message, type_="Warning" if warning else "Normal", component=COMPONENT
        )


def _ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def _view(pod: Obj) -> PodView:
    return PodView(
        name=pod["metadata"]["name"],
        phase=str((pod.get("status") or {}).get("phase", "Pending")),
        deleting=bool(pod["metadata"].get("deletionTimestamp")),
    )
