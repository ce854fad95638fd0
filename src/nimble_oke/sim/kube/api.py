"""API verbs on top of the store: create/replace/patch/apply/delete with admission, status
subresources, field ownership and deletion semantics (finalizers, graceful pod deletion,
propagation policies). The HTTP layer (:mod:`.server`) only parses and renders."""

from __future__ import annotations

import copy
import ipaddress
import json
import random
from collections.abc import Callable
from typing import Any

import yaml

from . import admission, apierrors, decoding, fields, versions
from .resources import ResourceType, by_kind, by_name
from .selectors import Predicate
from .store import Obj, ObjKey, Store
from .streams import PodRuntime

NAMESPACES = by_name("Namespace")
PODS = by_name("Pod")
SERVICES = by_name("Service")

_SERVER_META = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
)


def _key(rt: ResourceType, namespace: str, name: str) -> ObjKey:
    return (rt.key, namespace if rt.namespaced else "", name)


class Api:
    """The verbs. ``on_graceful_delete(rt, obj)`` lets the kubelet finish a pod deletion."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.owners: dict[ObjKey, fields.Owners] = {}
        self._service_ips = ipaddress.ip_network("10.96.0.0/16").hosts()
        next(self._service_ips)  # 10.96.0.1 is the kubernetes Service
        self._node_ports: set[int] = set()
        self.graceful_kinds: set[str] = {"Pod"}
        self.delete_hooks: list[Callable[[ResourceType, Obj], None]] = []
        # What runs the pods' containers (the kubelet registers itself): port-forward and
        # exec reach containers through it.
        self.runtime: PodRuntime | None = None

    # --- helpers --------------------------------------------------------------------------
    def _check_body(self, rt: ResourceType, namespace: str, name: str | None, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise apierrors.bad_request("the body of the request was not a JSON object")
        api_version, kind = body.get("apiVersion"), body.get("kind")
        if (kind and kind != rt.kind) or (
            api_version and by_kind(api_version, kind or rt.kind) is None
        ):
            raise apierrors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({rt.api_version})"
            )
        meta = body.setdefault("metadata", {})
        if meta is None:
            body["metadata"] = meta = {}
        if name is not None and meta.get("name") and meta["name"] != name:
            raise apierrors.bad_request(
                "the name of the object "
                f"({meta['name']}) does not match the name on the URL ({name})"
            )
        if name is not None:
            meta["name"] = name
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise apierrors.bad_request(
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        return body

    def _check_namespace(self, rt: ResourceType, namespace: str) -> None:
        if not rt.namespaced:
            return
        ns = self.store.get(NAMESPACES, "", namespace)
        if ns is None:
            raise apierrors.not_found("namespaces", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise apierrors.ApiError(
                403,
                "Forbidden",
                f'{rt.plural} "{ns["metadata"]["name"]}" is forbidden: unable to create new '
                f"content in namespace {namespace} because it is being terminated",
            )

    def _finish(self, rt: ResourceType, obj: Obj, owners: fields.Owners) -> None:
        obj["metadata"]["managedFields"] = fields.render(owners)
        if not obj["metadata"]["managedFields"]:
            del obj["metadata"]["managedFields"]

    def _allocate(self, rt: ResourceType, obj: Obj, old: Obj | None) -> None:
        """Service cluster IPs and node ports, kept across updates."""
        if rt.kind != "Service":
            return
        spec = obj.setdefault("spec", {})
        old_spec = (old or {}).get("spec") or {}
        if spec.get("type") == "ExternalName":
            return
        if not spec.get("clusterIP"):
            spec["clusterIP"] = old_spec.get("clusterIP") or str(next(self._service_ips))
        if spec["clusterIP"] != "None":
            spec["clusterIPs"] = [spec["clusterIP"]]
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        if spec.get("type") in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
            old_ports = {p.get("port"): p.get("nodePort") for p in old_spec.get("ports") or []}
            for port in spec.get("ports") or []:
                if not port.get("nodePort"):
                    port["nodePort"] = old_ports.get(port.get("port")) or self._node_port()
        if spec.get("type") == "LoadBalancer":
            spec.setdefault("allocateLoadBalancerNodePorts", True)
            obj.setdefault("status", {}).setdefault("loadBalancer", {})

    def _node_port(self) -> int:
        while True:
            port = random.randint(30000, 32767)
            if port not in self._node_ports:
                self._node_ports.add(port)
                return port

    # --- verbs ------------------------------------------------------------------------------
    def create(
        self,
        rt: ResourceType,
        namespace: str,
        body: Any,
        *,
        manager: str,
        dry_run: bool = False,
        field_validation: str = "Ignore",
        warnings: list[str] | None = None,
    ) -> Obj:
        obj = self._check_body(rt, namespace, None, copy.deepcopy(body))
        decoding.check_body(rt, obj, field_validation, warnings if warnings is not None else [])
        served, rt = rt, versions.storage(rt)
        obj = versions.to_storage(served, obj)
        meta = obj["metadata"]
        for k in _SERVER_META:
            meta.pop(k, None)
        if rt.has_status and rt.kind not in ("Node", "PersistentVolume"):
            obj.pop("status", None)
        if not meta.get("name") and meta.get("generateName"):
            from .store import random_suffix

            meta["name"] = meta["generateName"] + random_suffix()
        self._check_namespace(rt, namespace)
        if self.store.get(rt, namespace, meta.get("name", "")) is not None:
            raise apierrors.already_exists(rt.plural, meta["name"], rt.group)
        owners: fields.Owners = {}
        fields.record_update(
            None,
            obj,
            owners,
            manager=manager,
            api_version=rt.api_version,
            now=self.store.now_iso(),
            skip_status=rt.has_status,
        )
        admission.default(rt, obj)
        admission.validate(rt, obj)
        admission.on_create(rt, obj)
        self._allocate(rt, obj, None)
        self._finish(rt, obj, owners)
        if dry_run:
            return versions.from_storage(served, obj)
        created = self.store.create(rt, obj)
        self.owners[_key(rt, namespace, meta["name"])] = owners
        return versions.from_storage(served, created)

    def replace(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        *,
        manager: str,
        subresource: str = "",
        dry_run: bool = False,
        field_validation: str = "Ignore",
        warnings: list[str] | None = None,
    ) -> Obj:
        new = self._check_body(rt, namespace, name, copy.deepcopy(body))
        decoding.check_body(rt, new, field_validation, warnings if warnings is not None else [])
        served, rt = rt, versions.storage(rt)
        new = versions.to_storage(served, new)
        old = self.store.require(rt, namespace, name)
        expected = new["metadata"].get("resourceVersion")
        written = self._write(
            rt,
            old,
            new,
            manager=manager,
            subresource=subresource,
            expected_rv=expected,
            dry_run=dry_run,
        )
        return versions.from_storage(served, written)

    def _write(
        self,
        rt: ResourceType,
        old: Obj,
        new: Obj,
        *,
        manager: str,
        subresource: str,
        expected_rv: str | None,
        dry_run: bool,
        owners: fields.Owners | None = None,
    ) -> Obj:
        namespace = old["metadata"].get("namespace", "")
        name = old["metadata"]["name"]
        if subresource == "status":
            status = new.get("status")
            new = copy.deepcopy(old)
            if status is not None:
                new["status"] = status
        elif rt.has_status:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        meta = new["metadata"]
        for k in _SERVER_META:
            if k in old["metadata"]:
                meta[k] = copy.deepcopy(old["metadata"][k])
            else:
                meta.pop(k, None)
        key = _key(rt, namespace, name)
        if owners is None:
            owners = copy.deepcopy(self.owners.get(key, {}))
            if subresource != "status":
                fields.record_update(
                    old,
                    new,
                    owners,
                    manager=manager,
                    api_version=rt.api_version,
                    now=self.store.now_iso(),
                    skip_status=rt.has_status,
                )
        admission.default(rt, new)
        admission.validate(rt, new)
        self._allocate(rt, new, old)
        self._finish(rt, new, owners)
        if dry_run:
            return new
        stored = self.store.replace(rt, new, expected_rv=expected_rv)
        self.owners[key] = owners
        self._maybe_finalize(rt, stored)
        return self.store.get(rt, namespace, name) or stored

    def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        raw: bytes,
        content_type: str,
        *,
        manager: str | None,
        force: bool = False,
        subresource: str = "",
        dry_run: bool = False,
        field_validation: str = "Ignore",
        warnings: list[str] | None = None,
    ) -> Obj:
        content_type = content_type.split(";", maxsplit=1)[0].strip()
        if content_type == "application/apply-patch+yaml":
            return self.apply(
                rt,
                namespace,
                name,
                raw,
                manager=manager,
                force=force,
                subresource=subresource,
                dry_run=dry_run,
            )
        try:
            body = json.loads(raw or b"null")
        except ValueError as exc:
            raise apierrors.bad_request(f"error decoding patch: {exc}") from exc
        stored = self.store.require(rt, namespace, name)
        old = versions.from_storage(rt, stored)  # patched in the version it was sent in
        if content_type == "application/merge-patch+json":
            from .patching import merge_patch

            new = merge_patch(old, body)
        elif content_type == "application/strategic-merge-patch+json":
            from .patching import strategic_merge_patch

            new = strategic_merge_patch(old, body)
        elif content_type == "application/json-patch+json":
            from .patching import json_patch

            if not isinstance(body, list):
                raise apierrors.bad_request("a JSON patch must be a list of operations")
            new = json_patch(old, body)
        else:
            raise apierrors.ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - "
                f"accepted media types include: application/json-patch+"
                f"json, application/merge-patch+json, application/apply-"
                f"patch+yaml (got {content_type})",
            )
        expected = None
        if isinstance(body, dict):
            expected = (body.get("metadata") or {}).get("resourceVersion")
        kind = "strategic" if "strategic" in content_type else "json"
        decoding.check_patched(
            rt, new, body, kind, field_validation, warnings if warnings is not None else []
        )
        new = self._check_body(rt, namespace, name, new)
        written = self._write(
            versions.storage(rt),
            stored,
            versions.to_storage(rt, new),
            manager=manager or "unknown",
            subresource=subresource,
            expected_rv=expected,
            dry_run=dry_run,
        )
        return versions.from_storage(rt, written)

    def apply(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        raw: bytes,
        *,
        manager: str | None,
        force: bool,
        subresource: str = "",
        dry_run: bool = False,
    ) -> Obj:
        if not manager:
            raise apierrors.bad_request(
                'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is '
                "required for apply patch"
            )
        try:
            config = yaml.safe_load(raw or b"{}")
        except yaml.YAMLError as exc:
            raise apierrors.bad_request(f"error decoding YAML: {exc}") from exc
        config = self._check_body(rt, namespace, name, config)
        decoding.check_applied(rt, config, namespace if rt.namespaced else "", name)
        served, rt = rt, versions.storage(rt)
        config = versions.to_storage(served, config)
        if not config.get("apiVersion") or not config.get("kind"):
            raise apierrors.bad_request("apiVersion and kind must be set in an applied config")
        for k in _SERVER_META:
            config["metadata"].pop(k, None)
        if rt.has_status and subresource != "status":
            config.pop("status", None)
        key = _key(rt, namespace, name)
        live = self.store.get(rt, namespace, name)
        owners = copy.deepcopy(self.owners.get(key, {}))
        merged = fields.apply(
            live,
            config,
            owners,
            manager=manager,
            force=force,
            api_version=rt.api_version,
            now=self.store.now_iso(),
            skip_status=rt.has_status and subresource != "status",
        )
        if live is None:
            self._check_namespace(rt, namespace)
            admission.default(rt, merged)
            admission.validate(rt, merged)
            admission.on_create(rt, merged)
            self._allocate(rt, merged, None)
            self._finish(rt, merged, owners)
            if dry_run:
                return versions.from_storage(served, merged)
            created = self.store.create(rt, merged)
            self.owners[key] = owners
            return versions.from_storage(served, created)
        written = self._write(
            rt,
            live,
            merged,
            manager=manager,
            subresource=subresource,
            expected_rv=None,
            dry_run=dry_run,
            owners=owners,
        )
        return versions.from_storage(served, written)

    # --- deletion -----------------------------------------------------------------------------
    def delete(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        *,
        propagation: str | None = None,
        grace: int | None = None,
        dry_run: bool = False,
    ) -> Obj:
        served, rt = rt, versions.storage(rt)
        obj = self.store.require(rt, namespace, name)
        if dry_run:
            return versions.from_storage(served, self._dry_run_delete(rt, obj, grace))
        return versions.from_storage(
            served, self._delete_now(rt, obj, propagation=propagation, grace=grace)
        )

    def _delete_now(
        self, rt: ResourceType, obj: Obj, *, propagation: str | None, grace: int | None
    ) -> Obj:
        meta = obj["metadata"]
        namespace, name = meta.get("namespace", ""), meta["name"]
        policy = propagation or "Background"
        if policy == "Orphan":
            self._orphan(meta["uid"])
        elif policy == "Foreground":
            for dep_rt, dep in self.dependents(meta["uid"]):
                dep_meta = dep["metadata"]
                self.delete(
                    dep_rt,
                    dep_meta.get("namespace", ""),
                    dep_meta["name"],
                    propagation="Foreground",
                    grace=grace,
                )
        if rt.kind == "Namespace":
            return self._mark_deleting(rt, obj, phase="Terminating")
        if meta.get("finalizers"):
            return self._mark_deleting(rt, obj)
        if (
            rt.kind in self.graceful_kinds
            and grace != 0
            and (obj.get("spec") or {}).get("nodeName")
            and (obj.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        ):
            period = (
                grace
                if grace is not None
                else (obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
            )
            return self._mark_deleting(rt, obj, grace=period)
        return self.remove(rt, namespace, name)

    def _dry_run_delete(self, rt: ResourceType, obj: Obj, grace: int | None) -> Obj:
        """What :meth:`delete` would answer, with nothing changed: an object that lingers
        (finalizers, a namespace, a running pod's grace period) comes back marked for
        deletion; one that would go at once comes back as it is."""
        meta = obj["metadata"]
        spec = obj.get("spec") or {}
        lingers = (
            rt.kind == "Namespace"
            or bool(meta.get("finalizers"))
            or (
                rt.kind in self.graceful_kinds
                and grace != 0
                and bool(spec.get("nodeName"))
                and (obj.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            )
        )
        if not lingers:
            return copy.deepcopy(obj)
        out = copy.deepcopy(obj)
        out["metadata"].setdefault("deletionTimestamp", self.store.now_iso())
        if rt.kind in self.graceful_kinds:
            period = grace if grace is not None else spec.get("terminationGracePeriodSeconds", 30)
            out["metadata"]["deletionGracePeriodSeconds"] = period
        if rt.kind == "Namespace":
            out.setdefault("status", {})["phase"] = "Terminating"
        return out

    def remove(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        """Remove from storage now (after finalizers/graceful stop) and run delete hooks."""
        removed = self.store.remove(rt, namespace, name)
        self.owners.pop(_key(rt, namespace, name), None)
        for hook in self.delete_hooks:
            hook(rt, removed)
        return removed

    def _mark_deleting(
        self, rt: ResourceType, obj: Obj, phase: str | None = None, grace: int | None = None
    ) -> Obj:
        """Set deletionTimestamp (and the grace period / Terminating phase); something else
        (kubelet, namespace controller, finalizer owner) removes the object later."""
        new = copy.deepcopy(obj)
        new["metadata"].setdefault("deletionTimestamp", self.store.now_iso())
        if grace is not None:
            new["metadata"]["deletionGracePeriodSeconds"] = grace
        if phase:
            new.setdefault("status", {})["phase"] = phase
        return self.store.replace(rt, new) if new != obj else obj

    def remove_finalizer(self, rt: ResourceType, namespace: str, name: str, finalizer: str) -> None:
        """What a controller does when its cleanup is done; the last finalizer of an object
        being deleted lets it go."""
        obj = self.store.get(rt, namespace, name)
        if obj is None or finalizer not in (obj["metadata"].get("finalizers") or []):
            return
        new = copy.deepcopy(obj)
        new["metadata"]["finalizers"] = [f for f in new["metadata"]["finalizers"] if f != finalizer]
        if not new["metadata"]["finalizers"]:
            del new["metadata"]["finalizers"]
            if new["metadata"].get("deletionTimestamp"):
                self.remove(rt, namespace, name)
                return
        self.store.replace(rt, new)

    def _maybe_finalize(self, rt: ResourceType, obj: Obj) -> None:
        """An object being deleted whose last finalizer was removed goes away."""
        meta = obj["metadata"]
        if (
            meta.get("deletionTimestamp")
            and not meta.get("finalizers")
            and rt.kind not in ("Namespace", *self.graceful_kinds)
        ):
            self.remove(rt, meta.get("namespace", ""), meta["name"])

    def dependents(self, uid: str) -> list[tuple[ResourceType, Obj]]:
        from .resources import by_key

        out = []
        for (key, _, _), obj in self.store.all_objects():
            refs = obj["metadata"].get("ownerReferences") or []
            if any(r.get("uid") == uid for r in refs):
                out.append((by_key(key), obj))
        return out

    def _orphan(self, uid: str) -> None:
        for dep_rt, dep in self.dependents(uid):
            meta = dep["metadata"]

            def drop(o: Obj) -> None:
                refs = [r for r in o["metadata"].get("ownerReferences") or [] if r["uid"] != uid]
                if refs:
                    o["metadata"]["ownerReferences"] = refs
                else:
                    o["metadata"].pop("ownerReferences", None)

            self.store.mutate(dep_rt, meta.get("namespace", ""), meta["name"], drop)

    def delete_collection(
        self,
        rt: ResourceType,
        namespace: str | None,
        predicate: Predicate,
        *,
        propagation: str | None = None,
        grace: int | None = None,
        dry_run: bool = False,
    ) -> list[Obj]:
        out = []
        for obj in self.store.list(rt, namespace):
            if predicate(obj):
                meta = obj["metadata"]
                out.append(
                    self.delete(
                        rt,
                        meta.get("namespace", ""),
                        meta["name"],
                        propagation=propagation,
                        grace=grace,
                        dry_run=dry_run,
                    )
                )
        return out
