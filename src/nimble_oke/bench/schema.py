"""The JSON Schemas of the exports: a shipped skeleton completed from the metric registry.

The skeletons (``schemas/*.schema.json``) describe what is not a metric (outcome,
validity, config…). Each metric of :mod:`nimble_oke.bench.metrics` adds its property
here — a distribution or ``{"unit", "avg"}`` object with the unit fixed — so adding a
metric never means editing a schema file.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any

from nimble_oke.bench.metrics import METRICS


@cache
def _skeleton(name: str) -> dict[str, Any]:
    text = resources.files("nimble_oke.bench").joinpath(f"schemas/{name}.schema.json")
    data: dict[str, Any] = json.loads(text.read_text("utf-8"))
    return data


def _unit(unit: str) -> dict[str, Any]:
    return {"properties": {"unit": {"const": unit}}}


def schema(name: str) -> dict[str, Any]:
    """``"profile_export"`` (a summary / ``profile_export_aiperf.json``) or
    ``"request_record"`` (one line of ``profile_export.jsonl``)."""
    if name not in ("profile_export", "request_record"):
        raise ValueError(f"unknown schema {name!r}")
    out = copy.deepcopy(_skeleton(name))
    if name == "profile_export":
        for metric in METRICS:
            kind = "scalar" if metric.kind == "run" else "distribution"
            out["properties"][metric.key] = {
                "allOf": [{"$ref": f"#/$defs/{kind}"}, _unit(metric.unit)]
            }
            if metric.always:
                out["required"].append(metric.key)
        return out
    metrics = out["properties"]["metrics"]["properties"]
    for metric in METRICS:
        if metric.kind == "run":
            continue
        value: dict[str, Any] = {"type": "number"}
        if metric.kind == "samples":
            value = {"type": "array", "items": {"type": "number"}}
        metrics[metric.key] = {
            "type": "object",
            "required": ["value", "unit"],
            "properties": {"value": value, "unit": {"const": metric.unit}},
            "additionalProperties": False,
        }
    return out
