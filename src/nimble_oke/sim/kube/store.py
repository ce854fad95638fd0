"""The object store: versioned dicts, a global resourceVersion, watch history, listeners.

Everything runs on the simulator's event loop thread, so there is no locking: the server
handlers and the controllers call these methods directly.
"""

from __future__ import annotations

import builtins
import copy
import random
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from nimble_oke.sim.clock import SimClock

from . import apierrors
from .resources import ResourceType

Obj = dict[str, Any]
ObjKey = tuple[str, str, str]  # (resource key, namespace or "", name)

# Kubernetes' rand.SafeEncodeString alphabet (no vowels, no look-alikes): generated names.
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def random_suffix(n: int = 5) -> str:
    return "".join(random.choice(_SAFE) for _ in range(n))


def rfc3339(unix_seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(unix_seconds))


def parse_rfc3339(text: str) -> float:
    import calendar

    return float(calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")))


def _spec_part(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


@dataclass
class WatchEvent:
    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    key: str  # resource key
    obj: Obj


@dataclass
class Watcher:
    """A subscription to one resource key; ``push`` is called on the loop thread."""

    key: str
    namespace: str | None
    push: Callable[[WatchEvent], None]
    extra: dict[str, Any] = field(default_factory=dict)


class Store:
    """Objects by (resource key, namespace, name), plus history for watches from an RV."""

    def __init__(self, clock: SimClock, history: int = 50_000) -> None:
        self.clock = clock
        self.rv = 1
        self._objects: dict[ObjKey, Obj] = {}
        self._history: deque[WatchEvent] = deque(maxlen=history)
        self._watchers: list[Watcher] = []
        self._listeners: list[Callable[[str], None]] = []

    # --- time -------------------------------------------------------------------------
    def now_iso(self) -> str:
        return rfc3339(self.clock.wall())

    # --- reads --------------------------------------------------------------------------
    def get(self, rt: ResourceType, namespace: str, name: str) -> Obj | None:
        """The stored object (do not mutate; use :meth:`replace` with a copy)."""
        return self._objects.get((rt.key, namespace if rt.namespaced else "", name))

    def require(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        obj = self.get(rt, namespace, name)
        if obj is None:
            raise apierrors.not_found(rt.plural, name, rt.group)
        return obj

    def list(self, rt: ResourceType, namespace: str | None = None) -> list[Obj]:
        out = [
            o
            for (key, ns, _), o in self._objects.items()
            if key == rt.key and (namespace is None or not rt.namespaced or ns == namespace)
        ]
        out.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return out

    def all_objects(self) -> Iterable[tuple[ObjKey, Obj]]:
        return list(self._objects.items())

    # --- writes -------------------------------------------------------------------------
    def create(self, rt: ResourceType, obj: Obj) -> Obj:
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + random_suffix()
        ns = meta.get("namespace", "") if rt.namespaced else ""
        if not rt.namespaced:
            meta.pop("namespace", None)
        key = (rt.key, ns, meta["name"])
        if key in self._objects:
            raise apierrors.already_exists(rt.plural, meta["name"], rt.group)
        obj["apiVersion"] = rt.api_version
        obj["kind"] = rt.kind
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = self.now_iso()
        meta["generation"] = 1
        meta.pop("deletionTimestamp", None)
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        self._objects[key] = obj
        self._emit("ADDED", rt, obj)
        return obj

    def replace(self, rt: ResourceType, obj: Obj, *, expected_rv: str | None = None) -> Obj:
        """Store ``obj`` over the existing one (same name); bumps RV and, on spec change,
        generation. ``expected_rv`` implements optimistic concurrency (409 Conflict)."""
        meta = obj["metadata"]
        ns = meta.get("namespace", "") if rt.namespaced else ""
        key = (rt.key, ns, meta["name"])
        old = self._objects.get(key)
        if old is None:
            raise apierrors.not_found(rt.plural, meta["name"], rt.group)
        old_meta = old["metadata"]
        if expected_rv and expected_rv != old_meta["resourceVersion"]:
            raise apierrors.conflict(rt.plural, meta["name"], rt.group)
        for immutable in ("uid", "creationTimestamp"):
            meta[immutable] = old_meta[immutable]
        if "deletionTimestamp" in old_meta:
            meta["deletionTimestamp"] = old_meta["deletionTimestamp"]
        obj["apiVersion"] = rt.api_version
        obj["kind"] = rt.kind
        generation = old_meta.get("generation", 1)
        if _spec_part(obj) != _spec_part(old):
            generation += 1
        meta["generation"] = generation
        meta["resourceVersion"] = old_meta["resourceVersion"]
        if obj == old:
            return old  # no-op writes do not bump the resourceVersion (like the real server)
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        self._objects[key] = obj
        self._emit("MODIFIED", rt, obj)
        return obj

    def remove(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        key = (rt.key, namespace if rt.namespaced else "", name)
        obj = self._objects.pop(key, None)
        if obj is None:
            raise apierrors.not_found(rt.plural, name, rt.group)
        self.rv += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self._emit("DELETED", rt, obj)
        return obj

    def mutate(
        self, rt: ResourceType, namespace: str, name: str, change: Callable[[Obj], None]
    ) -> Obj | None:
        """Copy, apply ``change``, store if different. Returns the stored object (or None
        when it no longer exists)."""
        current = self.get(rt, namespace, name)
        if current is None:
            return None
        new = copy.deepcopy(current)
        change(new)
        if new == current:
            return current
        return self.replace(rt, new)

    # --- watch --------------------------------------------------------------------------
    def subscribe(self, watcher: Watcher) -> None:
        self._watchers.append(watcher)

    def unsubscribe(self, watcher: Watcher) -> None:
        if watcher in self._watchers:
            self._watchers.remove(watcher)

    def watcher_count(self) -> int:
        return len(self._watchers)

    def on_change(self, listener: Callable[[str], None]) -> None:
        """``listener(resource_key)`` after every write (controllers use it to wake up)."""
        self._listeners.append(listener)

    def history_since(self, key: str, rv: int) -> builtins.list[WatchEvent]:
        """Events for ``key`` after ``rv``; 410 Expired when the history no longer has it."""
        if self._history and rv < self._history[0].rv - 1:
            raise apierrors.gone(f"too old resource version: {rv} ({self._history[0].rv - 1})")
        return [e for e in self._history if e.key == key and e.rv > rv]

    def _emit(self, kind: str, rt: ResourceType, obj: Obj) -> None:
        event = WatchEvent(self.rv, kind, rt.key, obj)
        self._history.append(event)
        for watcher in list(self._watchers):
            if watcher.key != rt.key:
                continue
            if watcher.namespace and obj["metadata"].get("namespace") != watcher.namespace:
                continue
            watcher.push(event)
        for listener in list(self._listeners):
            listener(rt.key)
