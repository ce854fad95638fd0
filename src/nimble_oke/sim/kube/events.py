"""Kubernetes Events (core/v1) with the real aggregation: a repeat of the same reason and
message for the same object bumps ``count`` and ``lastTimestamp``."""

from __future__ import annotations

import secrets
from typing import Any

from .resources import by_name
from .store import Obj, Store

EVENTS = by_name("Event")
NAMESPACES = by_name("Namespace")


class EventRecorder:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._names: dict[tuple[str, str, str, str], str] = {}

    def record(
        self,
        obj: Obj,
        reason: str,
        message: str,
        *,
        type_: str = "Normal",
        component: str = "kubelet",
        host: str | None = None,
        field_path: str | None = None,
    ) -> None:
        meta = obj["metadata"]
        namespace = meta.get("namespace") or "default"
        ns_obj = self.store.get(NAMESPACES, "", namespace)
        if ns_obj is None or ns_obj["metadata"].get("deletionTimestamp"):
            return
        now = self.store.now_iso()
        ident = (meta.get("uid", ""), reason, message, type_)
        name = self._names.get(ident)
        if name is not None:

            def bump(ev: Obj) -> None:
                ev["count"] = int(ev.get("count", 1)) + 1
                ev["lastTimestamp"] = now

            if self.store.mutate(EVENTS, namespace, name, bump) is not None:
                return
        name = f"{meta['name']}.{secrets.token_hex(8)}"
        self._names[ident] = name
        involved: dict[str, Any] = {
            "kind": obj.get("kind"),
            "namespace": meta.get("namespace"),
            "name": meta["name"],
            "uid": meta.get("uid"),
            "apiVersion": obj.get("apiVersion"),
            "resourceVersion": meta.get("resourceVersion"),
        }
        if field_path:
            involved["fieldPath"] = field_path
        source: dict[str, str] = {"component": component}
        if host:
            source["host"] = host
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {k: v for k, v in involved.items() if v is not None},
            "reason": reason,
            "message": message,
            "type": type_,
            "count": 1,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "source": source,
            "reportingComponent": component,
            "reportingInstance": host or "",
        }
        self.store.create(EVENTS, event)
