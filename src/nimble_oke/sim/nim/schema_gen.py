"""A JSON value that satisfies a JSON Schema: what structured output makes a model produce.

vLLM constrains decoding to a grammar compiled from the schema, so the text always parses
and validates (unless cut by ``max_tokens``). The emulator builds a matching value
directly, deterministically from the request's random generator. Supported keywords: type
(one or a list), enum, const, properties/required, items/prefixItems, min/maxItems,
min/maxLength, format (date, date-time, time, email, uuid, uri), minimum/maximum and their
exclusive forms, multipleOf (integers), anyOf/oneOf (the first usable branch), allOf
(merged), ``$ref`` into ``#/$defs`` / ``#/definitions``. A schema the emulator cannot
satisfy (``pattern``, ``not``, an unknown ``$ref``) raises :class:`UnsupportedSchemaError`.
"""

from __future__ import annotations

import math
import random
from typing import Any

from nimble_oke.sim.nim.text import VOCABULARY

_MAX_DEPTH = 12


class UnsupportedSchemaError(ValueError):
    """The schema uses a construct the emulator cannot generate text for."""


def generate(schema: Any, rng: random.Random) -> Any:
    """A value valid against ``schema`` (``{}`` / ``True`` accept anything: an object)."""
    return _Gen(schema if isinstance(schema, dict) else {}, rng).value(schema, 0)


class _Gen:
    def __init__(self, root: dict[str, Any], rng: random.Random) -> None:
        self.root = root
        self.rng = rng

    def value(self, schema: Any, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise UnsupportedSchemaError("schema nested too deeply")
        if schema is True or schema == {} or schema is None:
            return {"answer": self.words(2)}
        if not isinstance(schema, dict):
            raise UnsupportedSchemaError(f"not a schema: {schema!r}")
        schema = self.resolve(schema)
        for keyword in ("pattern", "not", "patternProperties"):
            if keyword in schema:
                raise UnsupportedSchemaError(f"the emulator cannot generate '{keyword}'")
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return schema["enum"][0]
        if "allOf" in schema:
            return self.value(self.merged(schema), depth + 1)
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list) and schema[key]:
                return self.value(schema[key][0], depth + 1)
        kind = self.kind(schema)
        maker = getattr(self, f"make_{kind}", None)
        if maker is None:
            raise UnsupportedSchemaError(f"unknown type {kind!r}")
        return maker(schema, depth)

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        if not isinstance(ref, str):
            return schema
        node: Any = self.root
        if not ref.startswith("#/"):
            raise UnsupportedSchemaError(f"cannot resolve $ref {ref!r}")
        for part in ref[2:].split("/"):
            if not isinstance(node, dict) or part not in node:
                raise UnsupportedSchemaError(f"cannot resolve $ref {ref!r}")
            node = node[part]
        if not isinstance(node, dict):
            raise UnsupportedSchemaError(f"$ref {ref!r} is not a schema")
        return {**node, **{k: v for k, v in schema.items() if k != "$ref"}}

    def merged(self, schema: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in schema.items() if k != "allOf"}
        for raw in schema["allOf"]:
            part = self.resolve(raw) if isinstance(raw, dict) else {}
            for key, value in part.items():
                if key == "properties":
                    out["properties"] = {**out.get("properties", {}), **value}
                elif key == "required":
                    out["required"] = sorted({*out.get("required", []), *value})
                else:
                    out.setdefault(key, value)
        return out

    @staticmethod
    def kind(schema: dict[str, Any]) -> str:
        kind = schema.get("type")
        if isinstance(kind, list):
            usable = [k for k in kind if k != "null"] or kind
            kind = usable[0] if usable else "object"
        if kind is None:
            if "properties" in schema:
                return "object"
            if "items" in schema or "prefixItems" in schema:
                return "array"
            return "string"
        return str(kind)

    def words(self, count: int) -> str:
        return " ".join(self.rng.choice(VOCABULARY) for _ in range(max(1, count)))

    def make_object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        props = schema.get("properties") or {}
        if not props:
            return {} if schema.get("additionalProperties") is False else {"answer": self.words(3)}
        return {name: self.value(sub, depth + 1) for name, sub in props.items()}

    def make_array(self, schema: dict[str, Any], depth: int) -> list[Any]:
        prefix = [self.value(s, depth + 1) for s in schema.get("prefixItems") or []]
        low = int(schema.get("minItems", 1 if not prefix else 0))
        high = int(schema.get("maxItems", max(low, 3)))
        count = max(low, min(high, max(len(prefix), 2)))
        items = schema.get("items", {"type": "string"})
        rest = [self.value(items, depth + 1) for _ in range(max(0, count - len(prefix)))]
        return (prefix + rest)[: max(count, len(prefix))]

    def make_string(self, schema: dict[str, Any], depth: int) -> str:
        fmt = schema.get("format")
        if fmt == "date":
            return f"2026-{self.rng.randint(1, 12):02d}-{self.rng.randint(1, 28):02d}"
        if fmt == "date-time":
            return f"2026-{self.rng.randint(1, 12):02d}-{self.rng.randint(1, 28):02d}T12:00:00Z"
        if fmt == "time":
            return f"{self.rng.randint(0, 23):02d}:{self.rng.randint(0, 59):02d}:00"
        if fmt == "email":
            return f"{self.rng.choice(VOCABULARY).lower()}@example.com"
        if fmt == "uuid":
            a, b, c, d, e = (self.rng.getrandbits(bits) for bits in (32, 16, 12, 12, 48))
            return f"{a:08x}-{b:04x}-4{c:03x}-8{d:03x}-{e:012x}"
        if fmt in ("uri", "url"):
            return f"https://example.com/{self.rng.choice(VOCABULARY).lower()}"
        text = self.words(self.rng.randint(1, 4))
        low = int(schema.get("minLength", 0))
        high = schema.get("maxLength")
        while len(text) < low:
            text += " " + self.words(1)
        if high is not None:
            text = text[: int(high)]
        return text

    def make_integer(self, schema: dict[str, Any], depth: int) -> int:
        low, high = self.bounds(schema, integer=True)
        step = schema.get("multipleOf")
        low, high = math.ceil(low), math.floor(high)
        if high < low:
            raise UnsupportedSchemaError("no integer satisfies the schema's bounds")
        value = self.rng.randint(low, high)
        if isinstance(step, int) and step > 0:
            value = (value // step) * step
            if value < low:
                value += step
        return value

    def make_number(self, schema: dict[str, Any], depth: int) -> float:
        low, high = self.bounds(schema, integer=False)
        return round(self.rng.uniform(low, high), 2) if high > low else float(low)

    def bounds(self, schema: dict[str, Any], *, integer: bool) -> tuple[float, float]:
        nudge = 1 if integer else 0.01
        low = schema.get("minimum", 0)
        high = schema.get("maximum", max(low, 0) + 100)
        if "exclusiveMinimum" in schema:
            low = schema["exclusiveMinimum"] + nudge
        if "exclusiveMaximum" in schema:
            high = schema["exclusiveMaximum"] - nudge
        if high < low:
            raise UnsupportedSchemaError("no number satisfies the schema's bounds")
        return float(low), float(high)

    def make_boolean(self, schema: dict[str, Any], depth: int) -> bool:
        return self.rng.random() < 0.5

    def make_null(self, schema: dict[str, Any], depth: int) -> None:
        return None
