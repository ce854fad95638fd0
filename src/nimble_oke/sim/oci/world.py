"""The simulated cloud's state, its clock-driven event queue, and persistence.

Every resource is kept in *wire form* (the camelCase JSON OCI returns), so handlers can
return it as is. Internal bookkeeping lives next to it (``extra``), never on the wire.
Everything is mutated under one lock: HTTP handlers run on the simulator's loop thread,
the Python API (:mod:`nimble_oke.sim.oci.api`) from any thread.
"""

from __future__ import annotations

import base64
import heapq
import json
import random
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nimble_oke.sim.clock import ACTIVITY, SCHEDULED, SimClock
from nimble_oke.sim.oci.api_error import ApiError, not_found
from nimble_oke.sim.oci.auth import ApiKey, KeyRing
from nimble_oke.sim.oci.catalog import Timings
from nimble_oke.sim.oci.faults import FaultInjector, FaultPlan
from nimble_oke.sim.oci.hooks import NodeHooks
from nimble_oke.sim.oci.ids import IdFactory, availability_domains

STATE_VERSION = 1
Action = Callable[[dict[str, Any]], None]


@dataclass
class Resource:
    id: str
    kind: str
    region: str
    wire: dict[str, Any]
    etag: str
    created: float  # simulated seconds (clock.now())
    deleted: float | None = None  # when it reached TERMINATED / DELETED
    billing: list[dict[str, Any]] = field(default_factory=list)  # price_key, quantity, unit
    billed_from: float | None = None
    billed_to: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def live(self) -> bool:
        return self.deleted is None


@dataclass
class PendingHook:
    name: str  # node_ready | node_removed
    cluster_id: str
    payload: Any


class World:
    """State + clock + event queue shared by every simulated service."""

    def __init__(
        self,
        clock: SimClock,
        plan: FaultPlan,
        seed: int | None,
        regions: list[str],
        tenancy: str,
        api_key: ApiKey,
    ) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self._save_lock = threading.Lock()
        self.seed = seed
        self.ids = IdFactory(seed)
        self.rng = random.Random(seed)
        self.injector = FaultInjector(plan)
        self.timings = Timings()
        self.timings.override(plan.timings)
        self.regions = regions
        self.home_region = regions[0]
        self.tenancy = tenancy
        self.api_key = api_key
        self.keys = KeyRing()
        self.keys.add(api_key.key_id, api_key.public_key)
        self.namespace = "nimblesim" + self.ids.token(6).lower()
        self.resources: dict[str, Resource] = {}
        self.retry_tokens: dict[str, dict[str, Any]] = {}
        self.blobs: dict[str, Any] = {}  # object storage: see services/objectstorage.py
        self._events: list[tuple[float, int, str, dict[str, Any]]] = []
        self._event_kinds: dict[int, str] = {}  # seq → clock timer kind, if not ACTIVITY
        self._seq = 0
        self._event_time: float | None = None
        self.actions: dict[str, Action] = {}
        self.hooks: NodeHooks | None = None
        # One Kubernetes API for every cluster (``attach_kube(url=…)``: a bare OCI simulator
        # in tests), or one per cluster (``cluster_apis``: the joined stack).
        self.kube_url: str | None = None
        self.kube_ca_data: str | None = None
        self.cluster_apis: dict[str, tuple[str, str | None]] = {}  # id -> (URL, CA data)
        self.pending_hooks: list[PendingHook] = []
        self.dirty = False
        self.endpoints: dict[str, str] = {}  # region -> base URL
        # called (from the clock's thread) when an event falls due: the simulator runs them
        self.on_due: Callable[[], None] | None = None
        self.events_run = 0

    # --- time ------------------------------------------------------------------------
    def now(self) -> float:
        """Simulated now; while an event runs, the time it was due (events applied late,
        e.g. after ``clock.advance``, still record exact lifecycle and billing times)."""
        return self._event_time if self._event_time is not None else self.clock.now()

    def timestamp(self, sim_seconds: float | None = None) -> str:
        """RFC 3339 as OCI formats it (millisecond precision, 'Z')."""
        t = self.wall_of(self.now() if sim_seconds is None else sim_seconds)
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    def wall_of(self, sim_seconds: float) -> float:
        return self.clock.wall() - self.clock.now() + sim_seconds

    # --- events ----------------------------------------------------------------------
    def later(self, delay_s: float, action: str, /, **args: Any) -> None:
        """Run ``actions[action](args)`` once ``delay_s`` simulated seconds have passed. A
        lifecycle event is an *activity* of the simulated clock (it may jump to it)."""
        self._queue(delay_s, action, args, ACTIVITY)

    def at_scheduled_time(self, delay_s: float, action: str, /, **args: Any) -> None:
        """Like :meth:`later`, for a run a schedule fixes in advance (a Resource Scheduler
        recurrence): a *scheduled* timer, which the clock stops at when it jumps or is
        advanced but never jumps *to* — a pending schedule is not provisioning, and as an
        activity it would fast-forward every idle session's lease."""
        self._queue(delay_s, action, args, SCHEDULED)

    def _queue(self, delay_s: float, action: str, args: dict[str, Any], kind: str) -> None:
        self._seq += 1
        due = self.now() + max(0.0, delay_s)
        heapq.heappush(self._events, (due, self._seq, action, args))
        if kind != ACTIVITY:
            self._event_kinds[self._seq] = kind
        self.clock.schedule(due, kind, self._due)

    def _due(self) -> None:
        if self.on_due is not None:
            self.on_due()

    def run_due(self) -> list[PendingHook]:
        """Apply every due event (in time order); return hook calls to make outside the lock."""
        with self.lock:
            now = self.now()
            while self._events and self._events[0][0] <= now:
                due, seq, action, args = heapq.heappop(self._events)
                self._event_kinds.pop(seq, None)
                self._event_time = due
                try:
                    self.actions[action](args)
                finally:
                    self._event_time = None
                self.dirty = True
                self.events_run += 1
            hooks, self.pending_hooks = self.pending_hooks, []
            return hooks

    # --- resources -------------------------------------------------------------------
    def add(self, kind: str, region: str, wire: dict[str, Any], **kw: Any) -> Resource:
        res = Resource(
            id=wire["id"],
            kind=kind,
            region=region,
            wire=wire,
            etag=self.ids.etag(),
            created=self.now(),
            **kw,
        )
        self.resources[res.id] = res
        self.dirty = True
        return res

    def get(self, ident: str, kind: str | tuple[str, ...], what: str = "") -> Resource:
        res = self.resources.get(ident)
        kinds = (kind,) if isinstance(kind, str) else kind
        if res is None or res.kind not in kinds:
            raise not_found(what or kinds[0], ident)
        return res

    def find(self, kind: str, **wire_eq: Any) -> list[Resource]:
        return [
            r
            for r in self.resources.values()
            if r.kind == kind and all(r.wire.get(k) == v for k, v in wire_eq.items())
        ]

    def touch(self, res: Resource) -> None:
        res.etag = self.ids.etag()
        self.dirty = True

    def set_state(self, res: Resource, state: str, field_name: str = "lifecycleState") -> None:
        res.wire[field_name] = state
        self.touch(res)

    def mark_deleted(self, res: Resource, state: str = "TERMINATED") -> None:
        res.wire["lifecycleState"] = state
        if res.deleted is None:
            res.deleted = self.now()
        if res.billed_from is not None and res.billed_to is None:
            res.billed_to = res.deleted
        self.touch(res)

    def rebill(self, res: Resource, lines: list[dict[str, Any]]) -> None:
        """Close the current billing interval and open one with new quantities."""
        now = self.now()
        if res.billed_from is not None and res.billing:
            res.extra.setdefault("billing_segments", []).append(
                {"from": res.billed_from, "to": now, "lines": res.billing}
            )
        res.billing, res.billed_from = lines, now

    def start_billing(self, res: Resource) -> None:
        if res.billed_from is None:
            res.billed_from = self.now()

    def ads(self, region: str | None = None) -> list[str]:
        return availability_domains(region or self.home_region)

    def check_ad(self, ad: str | None, region: str) -> str:
        if not ad or ad not in self.ads(region):
            raise ApiError("InvalidParameter", f"Invalid availabilityDomain: {ad}")
        return ad

    def compartment_ok(self, compartment_id: str | None) -> str:
        if not compartment_id:
            raise ApiError("MissingParameter", "compartmentId is required")
        if compartment_id != self.tenancy:
            res = self.resources.get(compartment_id)
            if res is None or res.kind != "compartment":
                raise not_found("compartment", compartment_id)
        return compartment_id

    # --- Kubernetes APIs ---------------------------------------------------------------
    def kube_api(self, cluster_id: str) -> tuple[str | None, str | None]:
        """(URL, base64 CA data) of the cluster's Kubernetes API, or (None, None)."""
        if cluster_id in self.cluster_apis:
            return self.cluster_apis[cluster_id]
        return self.kube_url, self.kube_ca_data

    def waits_for_cluster_api(self, cluster_id: str) -> bool:
        """A joined Kubernetes side creates each cluster's API itself: until it has said
        where that API listens, the cluster cannot be ACTIVE (its endpoint is unknown)."""
        joined = self.hooks is not None and hasattr(self.hooks, "cluster_created")
        return joined and self.kube_url is None and cluster_id not in self.cluster_apis

    # --- hooks -----------------------------------------------------------------------
    def emit(self, name: str, cluster_id: str, payload: Any) -> None:
        self.pending_hooks.append(PendingHook(name, cluster_id, payload))

    # --- persistence -----------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "version": STATE_VERSION,
                "now": self.now(),
                "namespace": self.namespace,
                "resources": [asdict(r) for r in self.resources.values()],
                "events": [
                    [due, seq, a, args, self._event_kinds.get(seq, ACTIVITY)]
                    for due, seq, a, args in self._events
                ],
                "retry_tokens": self.retry_tokens,
                "blobs": _encode_bytes(self.blobs),
            }

    def restore(self, data: dict[str, Any]) -> None:
        """Load a snapshot, shifting its simulated times onto this process's clock."""
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported OCI simulator state version {data.get('version')}")
        shift = self.now() - float(data["now"])
        with self.lock:
            # a fresh id stream: the same seed must not re-issue the restored OCIDs
            self.ids = IdFactory(
                None if self.seed is None else self.seed * 1_000_003 + len(data["resources"])
            )
            self.namespace = data["namespace"]
            for raw in data["resources"]:
                res = Resource(**raw)
                res.created += shift
                for attr in ("deleted", "billed_from", "billed_to"):
                    value = getattr(res, attr)
                    if value is not None:
                        setattr(res, attr, value + shift)
                # closed billing intervals (World.rebill) move with the clock too: else a
                # segment closed before a restart lands in the new clock's future
                for segment in res.extra.get("billing_segments", []):
                    segment["from"] += shift
                    segment["to"] += shift
                self.resources[res.id] = res
            self._events, self._event_kinds = [], {}
            for due, seq, action, args, *kind in data["events"]:
                self._events.append((due + shift, seq, action, args))
                if kind and kind[0] != ACTIVITY:
                    self._event_kinds[seq] = kind[0]
            heapq.heapify(self._events)
            for due, seq, *_ in self._events:
                self.clock.schedule(due, self._event_kinds.get(seq, ACTIVITY), self._due)
            self._seq = max((e[1] for e in self._events), default=0)
            self.retry_tokens = data.get("retry_tokens", {})
            self.blobs = _decode_bytes(data.get("blobs", {}))

    def save(self, path: Path) -> None:
        with self._save_lock:  # the ticker and stop()/tests may save concurrently
            self.dirty = False
            data = self.snapshot()
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data))
            tmp.replace(path)


def _encode_bytes(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"__b64__": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {k: _encode_bytes(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode_bytes(v) for v in value]
    return value


def _decode_bytes(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__b64__"}:
            return base64.b64decode(value["__b64__"])
        return {k: _decode_bytes(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_bytes(v) for v in value]
    return value
