"""``/openapi/v2`` and ``/openapi/v3`` for the kinds the simulated API server serves.

The schemas are Kubernetes' own: the definitions of the OpenAPI document of the claimed
Kubernetes minor version as the ``kubernetes-validate`` package ships them (its
``_definitions.json`` is the upstream swagger's ``definitions``, with JSON-Schema
nullability — ``type: [X, "null"]`` — and ``$defs`` references, which are undone here).
Paths are generated for the resource types the server registers, with the operations,
parameters (``dryRun``, ``fieldManager``, ``fieldValidation``, ``force``) and patch media
types the real server lists — what kubectl reads to decide on server-side field validation
and strategic merge patch, and what ``kubectl explain`` walks. Kinds the simulator serves
without an upstream schema (the CRD-backed ones) get the schema of a CRD that preserves
unknown fields, as their real CRDs would publish at least.
"""

from __future__ import annotations

import functools
import hashlib
import json
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

from .resources import ResourceType

Obj = dict[str, Any]

V2_REF = "#/definitions/"
V3_REF = "#/components/schemas/"
_DEFS_REF = "#/$defs/"
_PATCH_TYPES_BUILTIN = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)
_PATCH_TYPES_CUSTOM = _PATCH_TYPES_BUILTIN[:3]
_MEDIA = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")


# --- the schemas -------------------------------------------------------------------------------
def _schema_dir(minor: int) -> Path | None:
    """The kubernetes-validate directory of the newest version <= 1.<minor>."""
    try:
        base = importlib_resources.files("kubernetes_validate") / "kubernetes-json-schema"
    except ModuleNotFoundError:
        return None
    root = Path(str(base))
    if not root.is_dir():
        return None
    found = sorted(
        (int(p.name.split(".")[1]), p)
        for p in root.iterdir()
        if p.name.startswith("v1.")
        and p.name.endswith("-local")
        and (p / "_definitions.json").exists()
    )
    fitting = [p for m, p in found if m <= minor] or [p for _, p in found]
    return fitting[-1] if fitting else None


def _normalize(node: Any, parent_key: str = "") -> Any:
    """Undo kubernetes-validate's JSON-Schema dialect: nullable types, ``$defs`` refs,
    ``oneOf`` for IntOrString/Quantity."""
    if isinstance(node, list):
        return [_normalize(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: Obj = {}
    for key, value in node.items():
        if key == "type" and isinstance(value, list):
            kinds = [v for v in value if v != "null"]
            out[key] = kinds[0] if len(kinds) == 1 else kinds
        elif key == "$ref" and isinstance(value, str):
            out[key] = V2_REF + value.split("/")[-1]
        elif key == "oneOf" and parent_key == "":
            out["type"] = "string"
        elif key in ("properties", "patternProperties"):
            out[key] = {k: _normalize(v) for k, v in value.items()}
        else:
            out[key] = _normalize(value, key)
    return out


@functools.cache
def definitions(minor: int) -> dict[str, Obj]:
    """Swagger 2.0 ``definitions`` of Kubernetes 1.<minor> (empty when the package with
    the schemas is not installed)."""
    directory = _schema_dir(minor)
    if directory is None:
        return {}
    raw = json.loads((directory / "_definitions.json").read_text())["$defs"]
    defs = {name: _normalize(schema) for name, schema in raw.items()}
    defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"] = "int-or-string"
    for schema in defs.values():  # the package pins apiVersion/kind of each kind: not upstream
        for prop in ("apiVersion", "kind"):
            (schema.get("properties") or {}).get(prop, {}).pop("enum", None)
    return defs


def definition_name(minor: int, group: str, version: str, kind: str) -> str | None:
    for name, schema in definitions(minor).items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            if (gvk.get("group"), gvk.get("version"), gvk.get("kind")) == (group, version, kind):
                return name
    return None


def custom_definition(rt: ResourceType) -> tuple[str, Obj]:
    """What a CRD without a structural schema publishes for its kind."""
    name = f"{'.'.join(reversed(rt.group.split('.')))}.{rt.version}.{rt.kind}"
    return name, {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
        "x-kubernetes-group-version-kind": [
            {"group": rt.group, "version": rt.version, "kind": rt.kind}
        ],
    }


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        out = set()
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                out.add(value.rsplit("/", 1)[-1])
            else:
                out |= _refs(value)
        return out
    if isinstance(node, list):
        return set().union(*(_refs(n) for n in node)) if node else set()
    return set()


def closure(defs: dict[str, Obj], roots: set[str]) -> dict[str, Obj]:
    """``roots`` and every definition they reference."""
    seen: set[str] = set()
    todo = [r for r in roots if r in defs]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += [r for r in _refs(defs[name]) if r in defs and r not in seen]
    return {name: defs[name] for name in sorted(seen)}


# --- paths -------------------------------------------------------------------------------------
def _param(name: str, description: str, typ: str = "string", where: str = "query") -> Obj:
    return {"name": name, "in": where, "description": description, "type": typ, "uniqueItems": True}


_DRY_RUN = _param(
    "dryRun",
    "When present, indicates that modifications should not be persisted. An invalid or "
    "unrecognized dryRun directive will result in an error response and no further processing "
    "of the request. Valid values are: - All: all dry run stages will be processed",
)
_FIELD_MANAGER = _param(
    "fieldManager",
    "fieldManager is a name associated with the actor or entity that is making these changes.",
)
_FIELD_VALIDATION = _param(
    "fieldValidation",
    "fieldValidation instructs the server on how to handle objects in the request "
    "(POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore - "
    "Warn - Strict",
)
_FORCE = _param("force", 'Force is going to "force" Apply requests.', "boolean")


def _base_path(rt: ResourceType, namespaced_path: bool) -> str:
    prefix = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    middle = "/namespaces/{namespace}" if namespaced_path else ""
    return f"{prefix}{middle}/{rt.plural}"


def _gvk(rt: ResourceType) -> Obj:
    return {"group": rt.group, "version": rt.version, "kind": rt.kind}


def _op(rt: ResourceType, action: str, verb: str, ref: str, params: list[Obj]) -> Obj:
    op_name = f"{verb}{rt.kind}"
    return {
        "description": f"{verb} {rt.kind}",
        "operationId": op_name,
        "parameters": params,
        "responses": {"200": {"description": "OK", "schema": {"$ref": ref}}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": _gvk(rt),
    }


def v2_paths(rt: ResourceType, ref: str, builtin: bool) -> dict[str, Obj]:
    """Swagger 2.0 path items of one resource type (collection and item)."""
    base = _base_path(rt, rt.namespaced)
    body = {"name": "body", "in": "body", "required": True, "schema": {"$ref": ref}}
    patch_body = {"name": "body", "in": "body", "required": True, "schema": {"type": "object"}}
    writes = [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION]
    path_params = [_param("namespace", "object name and auth scope", where="path")] * int(
        rt.namespaced
    )
    name_param = _param("name", f"name of the {rt.kind}", where="path")
    patch = _op(rt, "patch", "patch", ref, [patch_body, *writes, _FORCE])
    patch["consumes"] = list(_PATCH_TYPES_BUILTIN if builtin else _PATCH_TYPES_CUSTOM)
    collection = {
        "get": _op(rt, "list", "list", ref + "List", []),
        "post": _op(rt, "post", "create", ref, [body, *writes]),
        "parameters": path_params,
    }
    item = {
        "get": _op(rt, "get", "read", ref, []),
        "put": _op(rt, "put", "replace", ref, [body, *writes]),
        "patch": patch,
        "delete": _op(rt, "delete", "delete", ref, [_DRY_RUN]),
        "parameters": [name_param, *path_params],
    }
    return {base: collection, f"{base}/{{name}}": item}


def _v3_param(param: Obj) -> Obj:
    out = {k: v for k, v in param.items() if k not in ("type", "uniqueItems")}
    out["schema"] = {"type": param["type"], "uniqueItems": True}
    if param["in"] == "path":
        out["required"] = True
    return out


def _v3_operation(op: Obj) -> Obj:
    out = {k: v for k, v in op.items() if k not in ("parameters", "responses", "consumes")}
    params = [p for p in op["parameters"] if p["in"] != "body"]
    body = next((p for p in op["parameters"] if p["in"] == "body"), None)
    if params:
        out["parameters"] = [_v3_param(p) for p in params]
    if body is not None:
        schema = _v3_schema(body["schema"])
        types = op.get("consumes") or list(_MEDIA[:2])
        out["requestBody"] = {
            "content": {t: {"schema": schema} for t in types},
            "required": True,
        }
    ref = _v3_schema(op["responses"]["200"]["schema"])
    out["responses"] = {
        "200": {"description": "OK", "content": {m: {"schema": ref} for m in _MEDIA}},
        "401": {"description": "Unauthorized"},
    }
    return out


def _v3_path_item(item: Obj) -> Obj:
    out: Obj = {}
    for key, value in item.items():
        if key == "parameters":
            if value:
                out[key] = [_v3_param(p) for p in value]
        else:
            out[key] = _v3_operation(value)
    return out


def _v3_schema(node: Any) -> Any:
    """A v2 schema as OpenAPI 3: ``#/components/schemas`` refs, and a ref with siblings
    wrapped in ``allOf`` (OpenAPI 3.0 ignores the siblings of a bare ``$ref``)."""
    if isinstance(node, list):
        return [_v3_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = {"$ref": V3_REF + node["$ref"].rsplit("/", 1)[-1]}
        siblings = {k: _v3_schema(v) for k, v in node.items() if k != "$ref"}
        if not siblings:
            return ref
        return {**siblings, "allOf": [ref]}
    out: Obj = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties"):
            out[key] = {k: _v3_schema(v) for k, v in value.items()}
        else:
            out[key] = _v3_schema(value)
    return out


# --- documents ---------------------------------------------------------------------------------
class OpenApi:
    """The documents of one server (cached: the served types do not change)."""

    def __init__(self, types: tuple[ResourceType, ...], kube_version: str) -> None:
        self.types = types
        self.version = kube_version
        self.minor = int(kube_version.lstrip("v").split(".")[1])

    @property
    def available(self) -> bool:
        return bool(definitions(self.minor))

    def _kind_definitions(self, types: list[ResourceType]) -> tuple[dict[str, Obj], dict[str, str]]:
        """(definitions needed, resource key -> definition name)."""
        defs = definitions(self.minor)
        names: dict[str, str] = {}
        extra: dict[str, Obj] = {}
        for rt in types:
            name = definition_name(self.minor, rt.group, rt.version, rt.kind)
            if name is None:
                name, schema = custom_definition(rt)
                extra[name] = schema
                extra[name + "List"] = {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                }
            names[rt.key] = name
        roots = set(names.values()) | {n + "List" for n in names.values()}
        roots.add("io.k8s.apimachinery.pkg.apis.meta.v1.Patch")
        found = closure(defs, roots)
        return {**found, **extra}, names

    def _paths(self, types: list[ResourceType]) -> tuple[dict[str, Obj], dict[str, Obj]]:
        schemas, names = self._kind_definitions(types)
        paths: dict[str, Obj] = {}
        for rt in types:
            builtin = definition_name(self.minor, rt.group, rt.version, rt.kind) is not None
            paths.update(v2_paths(rt, V2_REF + names[rt.key], builtin))
        return paths, schemas

    @functools.cached_property
    def v2(self) -> bytes:
        paths, schemas = self._paths(list(self.types))
        doc = {
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": self.version},
            "paths": paths,
            "definitions": schemas,
        }
        return json.dumps(doc, separators=(",", ":")).encode()

    def group_versions(self) -> dict[str, list[ResourceType]]:
        """``api/v1`` / ``apis/<group>/<version>`` -> its types."""
        out: dict[str, list[ResourceType]] = {}
        for rt in self.types:
            key = f"apis/{rt.group}/{rt.version}" if rt.group else f"api/{rt.version}"
            out.setdefault(key, []).append(rt)
        return out

    @functools.cached_property
    def _v3_docs(self) -> dict[str, bytes]:
        docs: dict[str, bytes] = {}
        for gv, types in self.group_versions().items():
            paths, schemas = self._paths(types)
            doc = {
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes", "version": self.version},
                "paths": {p: _v3_path_item(item) for p, item in paths.items()},
                "components": {"schemas": {n: _v3_schema(s) for n, s in schemas.items()}},
            }
            docs[gv] = json.dumps(doc, separators=(",", ":")).encode()
        return docs

    def v3_discovery(self) -> bytes:
        paths = {
            gv: {"serverRelativeURL": f"/openapi/v3/{gv}?hash={_hash(doc)}"}
            for gv, doc in self._v3_docs.items()
        }
        return json.dumps({"paths": paths}, separators=(",", ":")).encode()

    def v3(self, gv: str) -> bytes | None:
        return self._v3_docs.get(gv)

    def schema_of(self, rt: ResourceType) -> tuple[Obj, dict[str, Obj]] | None:
        """(the kind's v2 schema, all definitions) for validation; None without schemas."""
        name = definition_name(self.minor, rt.group, rt.version, rt.kind)
        if name is None:
            return None
        defs = definitions(self.minor)
        return defs[name], defs


def _hash(doc: bytes) -> str:
    return hashlib.sha512(doc).hexdigest().upper()[:128]
