"""Argo CD CRD schema validation (deploy/argocd/schema) and a goTemplate renderer for the
list generator, as the ApplicationSet controller does for plain ``{{ .key }}`` fields."""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "deploy" / "argocd" / "schema"
_FIELD = re.compile(r"\{\{\s*\.(\w+)\s*\}\}")


def strict(schema: Any) -> Any:
    """What `kubectl apply --validate=strict` enforces on a structural CRD schema: an object
    with declared properties and no x-kubernetes-preserve-unknown-fields rejects unknown
    fields (Kubernetes would otherwise prune them silently)."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if (
            out.get("type") == "object"
            and "properties" in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
            and "additionalProperties" not in out
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


@cache
def _validator(kind: str) -> jsonschema.Draft7Validator:
    doc = json.loads((SCHEMA_DIR / f"{kind.lower()}.json").read_text(encoding="utf-8"))
    assert doc["kind"] == kind and doc["group"] == "argoproj.io"
    schema = strict(doc["openAPIV3Schema"])
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def validate(obj: dict[str, Any]) -> None:
    assert obj["apiVersion"] == "argoproj.io/v1alpha1"
    _validator(obj["kind"]).validate(obj)


def render_list_generator(appset: dict[str, Any]) -> list[dict[str, Any]]:
    """The Applications an ApplicationSet's list generator produces (missingkey=error)."""
    spec = appset["spec"]
    assert spec["goTemplate"] is True
    apps = []
    for generator in spec["generators"]:
        for element in generator["list"]["elements"]:
            app = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application"}
            app.update(_render(copy.deepcopy(spec["template"]), element))
            apps.append(app)
    return apps


def _render(node: Any, params: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        return {k: _render(v, params) for k, v in node.items()}
    if isinstance(node, list):
        return [_render(v, params) for v in node]
    if isinstance(node, str):

        def sub(match: re.Match[str]) -> str:
            if match.group(1) not in params:
                raise KeyError(f"map has no entry for key {match.group(1)!r}")
            return str(params[match.group(1)])

        return _FIELD.sub(sub, node)
    return node
