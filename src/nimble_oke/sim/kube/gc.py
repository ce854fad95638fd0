"""Garbage collection: dependents whose owners are gone, pods on vanished nodes, and the
namespace controller (a deleted namespace empties, then disappears)."""

from __future__ import annotations

import contextlib
import logging

from . import apierrors
from .cluster import NAMESPACES, NODES, PODS, SERVICE_ACCOUNTS, Cluster
from .resources import by_key, storage_types
from .store import Obj

log = logging.getLogger(__name__)


class GarbageCollector:
    def __init__(self, cluster: Cluster) -> None:
        self.c = cluster

    def reconcile(self) -> None:
        self._namespaces()
        self._orphans()
        self._pods_without_nodes()

    def _orphans(self) -> None:
        objects = self.c.store.all_objects()
        uids = {obj["metadata"]["uid"] for _, obj in objects}
        for (key, ns, name), obj in objects:
            refs = obj["metadata"].get("ownerReferences") or []
            if refs and not any(r.get("uid") in uids for r in refs):
                rt = by_key(key)
                if obj["metadata"].get("deletionTimestamp"):
                    continue
                with contextlib.suppress(apierrors.ApiError):  # removed meanwhile
                    self.c.api.delete(rt, ns, name, propagation="Background")

    def _pods_without_nodes(self) -> None:
        nodes = {n["metadata"]["name"] for n in self.c.store.list(NODES)}
        for pod in self.c.store.list(PODS):
            node = pod["spec"].get("nodeName")
            if node and node not in nodes:
                self.c.api.remove(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])

    def _namespaces(self) -> None:
        for ns in self.c.store.list(NAMESPACES):
            name = ns["metadata"]["name"]
            if not ns["metadata"].get("deletionTimestamp"):
                if self.c.store.get(SERVICE_ACCOUNTS, name, "default") is None:
                    self.c.store.create(
                        SERVICE_ACCOUNTS, {"metadata": {"name": "default", "namespace": name}}
                    )
                continue
            remaining = self._empty_namespace(name)
            if remaining == 0:
                self.c.api.remove(NAMESPACES, "", name)
            else:
                self._terminating_conditions(ns, remaining)

    def _empty_namespace(self, name: str) -> int:
        remaining = 0
        for rt in storage_types():
            if not rt.namespaced:
                continue
            for obj in self.c.store.list(rt, name):
                remaining += 1
                if obj["metadata"].get("deletionTimestamp"):
                    continue
                with contextlib.suppress(apierrors.ApiError):
                    self.c.api.delete(rt, name, obj["metadata"]["name"], propagation="Background")
        return remaining

    def _terminating_conditions(self, ns: Obj, remaining: int) -> None:
        def mark(o: Obj) -> None:
            o.setdefault("status", {})["phase"] = "Terminating"
            o["status"]["conditions"] = [
                {
                    "type": "NamespaceContentRemaining",
                    "status": "True",
                    "reason": "SomeResourcesRemain",
                    "message": f"Some resources are remaining: {remaining} objects",
                    "lastTransitionTime": ns["metadata"].get("deletionTimestamp"),
                }
            ]

        self.c.store.mutate(NAMESPACES, "", ns["metadata"]["name"], mark)
