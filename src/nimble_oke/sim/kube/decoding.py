"""Decoding a JSON-shaped object into the kind's Go type, as the real API server does
before anything else: wrong types and malformed quantities or base64 fail the request,
unknown fields are dropped (``fieldValidation=Ignore``), reported as warnings (``Warn``,
the default) or fail it (``Strict``, what kubectl and helm send).

The checks walk Kubernetes' own OpenAPI schema of the kind (:mod:`.openapi`); kinds
without one (the CRD-backed kinds) are left as they are. How a failure is reported depends
on the verb, as upstream: a create/update body is a 400 ``BadRequest`` ("cannot be handled
as a ..."), a patched object a 422 ``Invalid`` on the field ``patch``, an applied
configuration a 500 from the typed conversion (see :func:`problem_for_verb`).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

from . import apierrors
from .openapi import definition_name, definitions
from .resources import ResourceType
from .version import SCHEMA_MINOR

Obj = dict[str, Any]

# resource.Quantity's parser (apimachinery pkg/api/resource/quantity.go)
QUANTITY_RE = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
_QUANTITY_SUFFIXES = {
    "", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
}  # fmt: skip
QUANTITY_ERROR = f"quantities must match the regular expression '{QUANTITY_RE}'"


@dataclass
class Problem:
    """The first decoding error: the Go JSON decoder stops there."""

    message: str  # e.g. json: cannot unmarshal string into Go struct field ... of type int32
    go_type: str  # the Go type that could not take the value (int32, resource.Quantity)


@dataclass
class Decoded:
    problem: Problem | None = None
    unknown: list[str] = field(default_factory=list)  # JSON paths of unknown fields


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _go_name(definition: str) -> str:
    parts = definition.split(".")
    return f"{parts[-2]}.{parts[-1]}"


def valid_quantity(text: str) -> bool:
    match = _QUANTITY.match(text.strip())
    if not match:
        return False
    number, suffix = match.groups()
    if number.count(".") > 1 or number in (".", "+.", "-."):
        return False
    if suffix in _QUANTITY_SUFFIXES:
        return True
    return bool(re.fullmatch(r"[eE][-+]?[0-9]+", suffix))


class _Walker:
    def __init__(self, defs: dict[str, Obj], prune: bool) -> None:
        self.defs = defs
        self.prune = prune
        self.result = Decoded()

    def resolve(self, schema: Obj) -> tuple[Obj, str]:
        """The schema behind a ``$ref`` and the definition name (``""`` inline)."""
        name = ""
        while "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            schema = self.defs.get(name, {})
        return schema, name

    def go_type(self, schema: Obj) -> str:
        schema, name = self.resolve(schema)
        if name.endswith("Quantity"):
            return "resource.Quantity"
        if name.endswith("IntOrString"):
            return "intstr.IntOrString"
        if name.endswith(("Time", "MicroTime")):
            return _go_name(name)
        if name:
            return _go_name(name)
        kind = schema.get("type")
        if kind == "integer":
            return str(schema.get("format") or "int64")
        if kind == "number":
            return "float64"
        if kind == "boolean":
            return "bool"
        if kind == "array":
            return "[]" + self.go_type(schema.get("items") or {})
        if kind == "object" and "additionalProperties" in schema:
            return "map[string]" + self.go_type(schema["additionalProperties"])
        if kind == "string" and schema.get("format") == "byte":
            return "[]uint8"
        return str(kind or "interface {}")

    def fail(self, value: Any, struct: str, path: list[str], go_type: str) -> None:
        if self.result.problem is None:
            where = f"Go struct field {struct}.{'.'.join(path)}" if struct else "Go value"
            self.result.problem = Problem(
                f"json: cannot unmarshal {_json_type(value)} into {where} of type {go_type}",
                go_type,
            )

    def walk(self, value: Any, schema: Obj, struct: str, path: list[str]) -> None:
        if value is None or self.result.problem is not None:
            return
        schema, name = self.resolve(schema)
        if name:
            if self._special(value, name, struct, path):
                return
            struct = name.rsplit(".", 1)[-1]
        kind = schema.get("type")
        if kind == "object" or "properties" in schema:
            self._object(value, schema, struct, path)
        elif kind == "array":
            if not isinstance(value, list):
                self.fail(value, struct, path, self.go_type(schema))
                return
            for item in value:
                self.walk(item, schema.get("items") or {}, struct, path)
        else:
            self._scalar(value, schema, struct, path)

    def _special(self, value: Any, name: str, struct: str, path: list[str]) -> bool:
        if name.endswith("api.resource.Quantity"):
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                self.fail(value, struct, path, "resource.Quantity")
            elif isinstance(value, str) and not valid_quantity(value) and not self.result.problem:
                self.result.problem = Problem(QUANTITY_ERROR, "resource.Quantity")
            return True
        if name.endswith("intstr.IntOrString"):
            if isinstance(value, bool) or not isinstance(value, str | int):
                self.fail(value, struct, path, "intstr.IntOrString")
            return True
        return name.endswith(("RawExtension", "FieldsV1"))

    def _object(self, value: Any, schema: Obj, struct: str, path: list[str]) -> None:
        if not isinstance(value, dict):
            self.fail(value, struct, path, self.go_type(schema))
            return
        if schema.get("x-kubernetes-preserve-unknown-fields"):
            return
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        if props is None:
            if isinstance(extra, dict):
                for key, item in value.items():
                    self.walk(item, extra, struct, [*path, key])
            return
        for key in list(value):
            if key in props:
                self.walk(value[key], props[key], struct, [*path, key])
            else:
                self.result.unknown.append(".".join([*path, key]))
                if self.prune:
                    del value[key]

    def _scalar(self, value: Any, schema: Obj, struct: str, path: list[str]) -> None:
        kind = schema.get("type")
        ok = {
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, int | float) and not isinstance(value, bool),
            "boolean": isinstance(value, bool),
            "string": isinstance(value, str),
        }.get(str(kind), True)
        if isinstance(value, float) and kind == "integer" and value.is_integer():
            ok = True
        if not ok:
            self.fail(value, struct, path, self.go_type(schema))
        elif kind == "string" and schema.get("format") == "byte":
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                if self.result.problem is None:
                    self.result.problem = Problem(
                        f"illegal base64 data at input byte {_bad_byte(value)}", "[]uint8"
                    )


def _bad_byte(text: str) -> int:
    for i, ch in enumerate(text):
        if not (ch.isalnum() or ch in "+/="):
            return i
    return len(text) - len(text) % 4


def decode(rt: ResourceType, obj: Any, *, prune: bool = True) -> Decoded:
    """Check ``obj`` against the kind's schema; with ``prune`` drop unknown fields in
    place (what decoding into the Go struct does)."""
    name = definition_name(SCHEMA_MINOR, rt.group, rt.version, rt.kind)
    defs = definitions(SCHEMA_MINOR)
    if name is None or not isinstance(obj, dict):
        return Decoded()
    walker = _Walker(defs, prune)
    top = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    walker.walk(top, {"$ref": "#/definitions/" + name}, "", [])
    if prune:
        for key in [k for k in obj if k not in ("apiVersion", "kind") and k not in top]:
            del obj[key]
    return walker.result


def strict_message(unknown: list[str]) -> str:
    fields = ", ".join(f'unknown field "{p}"' for p in sorted(unknown))
    return f"strict decoding error: {fields}"


def check_body(rt: ResourceType, obj: Any, directive: str, warnings: list[str]) -> None:
    """A create/update body: 400 for a type error, or for unknown fields under Strict."""
    result = decode(rt, obj)
    problem = result.problem.message if result.problem else None
    if problem is None and result.unknown and directive == "Strict":
        problem = strict_message(result.unknown)
    if problem is not None:
        raise apierrors.bad_request(
            f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: {problem}'
        )
    if directive == "Warn":
        warnings += [f'unknown field "{p}"' for p in sorted(result.unknown)]


def check_patched(
    rt: ResourceType, obj: Obj, patch: Any, patch_type: str, directive: str, warnings: list[str]
) -> None:
    """The object a merge/strategic/JSON patch produced (patch.go: 422 on field ``patch``)."""
    result = decode(rt, obj)
    problem = None
    if result.problem is not None:
        problem = result.problem.message
        if patch_type == "strategic":  # the unstructured converter's wording
            go_type = result.problem.go_type
            if result.problem.go_type not in ("resource.Quantity", "[]uint8"):
                problem = f"unrecognized type: {go_type}"
    elif result.unknown and directive == "Strict":
        problem = strict_message(result.unknown)
    if problem is not None:
        shown = go_format(patch) if patch_type == "strategic" else _compact(obj)
        raise apierrors.ApiError(
            422,
            "Invalid",
            f' "" is invalid: patch: Invalid value: {_go_quote(shown)}: {problem}',
            {
                "causes": [
                    {
                        "reason": "FieldValueInvalid",
                        "message": f"Invalid value: {_go_quote(shown)}: {problem}",
                        "field": "patch",
                    }
                ]
            },
        )
    if directive == "Warn":
        warnings += [f'unknown field "{p}"' for p in sorted(result.unknown)]


def check_applied(rt: ResourceType, config: Obj, namespace: str, name: str) -> None:
    """An applied configuration: structured-merge-diff's typed conversion fails (a 500,
    as upstream returns it) on a value of the wrong type."""
    result = decode(rt, config, prune=False)
    if result.problem is None:
        if not result.unknown:
            return
        detail = f".{result.unknown[0]}: field not declared in schema"
    else:
        detail = _smd_type_error(result.problem.message)
    gvk = f"{rt.api_version}, Kind={rt.kind}" if rt.group else f"/{rt.version}, Kind={rt.kind}"
    where_obj = f"{namespace}/{name}" if namespace else name
    raise apierrors.ApiError(  # not a Status error upstream: 500 with an empty reason
        500,
        "",
        f"failed to create typed patch object ({gvk}) {where_obj}: {detail}",
    )


def _smd_type_error(detail: str) -> str:
    """structured-merge-diff's wording for a value of the wrong type."""
    match = re.search(
        r"cannot unmarshal (\w+) into Go struct field \w+\.(\S+) of type (\S+)", detail
    )
    if match:
        got, where, go_type = match.groups()
        expected = {
            "int32": "numeric (int or float)",
            "int64": "numeric (int or float)",
            "float64": "numeric (int or float)",
            "bool": "boolean",
            "string": "string",
        }.get(go_type, "map" if not go_type.startswith("[]") else "list")
        detail = f".{where}: expected {expected}, got {got}"
    return detail


def go_format(value: Any) -> str:
    """Go's ``%+v`` of a decoded JSON value (maps with sorted keys): what the real server
    quotes as the invalid ``patch`` value."""
    if isinstance(value, dict):
        inner = " ".join(f"{k}:{go_format(v)}" for k, v in sorted(value.items()))
        return f"map[{inner}]"
    if isinstance(value, list):
        return "[" + " ".join(go_format(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _go_quote(text: str) -> str:
    """Go's %q."""
    out = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{out}"'


def _compact(obj: Obj) -> str:
    import json

    return json.dumps(obj, separators=(",", ":"), sort_keys=True)
