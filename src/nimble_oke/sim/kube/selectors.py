"""Label selectors (query strings and ``LabelSelector`` objects) and field selectors."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from . import apierrors

Obj = dict[str, Any]
Predicate = Callable[[Obj], bool]

_SET_EXPR = re.compile(r"^\s*(!?)\s*([\w./-]+)\s*(?:(in|notin)\s*\(([^)]*)\))?\s*$")


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside ``( )``."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def parse_label_selector(text: str | None) -> Predicate:
    """``app=x,tier!=db,env in (a,b),env notin (c),gpu,!legacy`` -> predicate on labels."""
    if not text:
        return lambda _obj: True
    checks: list[Callable[[dict[str, str]], bool]] = []
    for term in _split_top_level(text):
        checks.append(_label_term(term))

    def match(obj: Obj) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(check(labels) for check in checks)

    return match


def _equality(key: str, value: str, negate: bool) -> Callable[[dict[str, str]], bool]:
    if negate:
        return lambda labels: labels.get(key) != value
    return lambda labels: labels.get(key) == value


def _label_term(term: str) -> Callable[[dict[str, str]], bool]:
    for op in ("!=", "==", "="):
        if op in term:
            key, value = (s.strip() for s in term.split(op, 1))
            return _equality(key, value, negate=op == "!=")
    m = _SET_EXPR.match(term)
    if not m:
        raise apierrors.bad_request(f"unable to parse requirement: {term!r}")
    negate, key, op, values = m.groups()
    if op:
        allowed = {v.strip() for v in values.split(",") if v.strip()}
        if op == "in":
            return lambda labels: key in labels and labels[key] in allowed
        return lambda labels: key not in labels or labels[key] not in allowed
    if negate:
        return lambda labels: key not in labels
    return lambda labels: key in labels


def match_label_selector(selector: Obj | None, labels: dict[str, str] | None) -> bool:
    """Match a ``LabelSelector`` object (matchLabels + matchExpressions). An empty selector
    matches everything; ``None`` matches nothing (as for a Service without selector)."""
    if selector is None:
        return False
    labels = labels or {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _field_value(obj: Obj, path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    return "" if cur is None else str(cur)


SUPPORTED_FIELDS = {
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "status.phase",
    "involvedObject.name",
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.uid",
    "reason",
    "type",
    "spec.unschedulable",
}


def _field_check(path: str, value: str, negate: bool) -> Predicate:
    if negate:
        return lambda obj: _field_value(obj, path) != value
    return lambda obj: _field_value(obj, path) == value


def parse_field_selector(text: str | None) -> Predicate:
    """``metadata.name=x,status.phase!=Running`` -> predicate (a fixed set of fields)."""
    if not text:
        return lambda _obj: True
    checks: list[Predicate] = []
    for term in _split_top_level(text):
        negate = "!=" in term
        field_path, value = (
            s.strip() for s in term.replace("==", "=").split("!=" if negate else "=", 1)
        )
        if field_path not in SUPPORTED_FIELDS:
            raise apierrors.bad_request(
                f'"{field_path}" is not a known field selector: only "metadata.name", '
                '"metadata.namespace"'
            )
        checks.append(_field_check(field_path, value, negate))
    return lambda obj: all(c(obj) for c in checks)
