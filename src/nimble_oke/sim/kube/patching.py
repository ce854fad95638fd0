"""JSON merge patch, strategic merge patch and JSON patch, with the list merge keys of the
fields Nimble's manifests use (the same keys drive server-side apply in :mod:`.fields`)."""

from __future__ import annotations

import copy
from typing import Any

from . import apierrors

Obj = dict[str, Any]

# Field name -> merge key for associative lists. ``ports`` depends on where it sits.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "volumeClaimTemplates": "metadata.name",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "subsets": "",  # atomic
}


def merge_key(path: tuple[str, ...], field: str) -> str | None:
    """The merge key of list ``field`` found under ``path`` (None: atomic list)."""
    if field == "ports":
        return "port" if path[-1:] == ("spec",) else "containerPort"
    key = MERGE_KEYS.get(field)
    return key or None


def item_key(item: Any, key: str) -> Any:
    if not isinstance(item, dict):
        return item
    cur: Any = item
    for part in key.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any, path: tuple[str, ...] = ()) -> Any:
    """Kubernetes strategic merge patch: like merge patch, but associative lists merge by
    their key, ``$patch: delete`` removes an item and ``$patch: replace`` replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            result[name] = [v for v in result.get(name, []) if v not in value]
            continue
        if value is None:
            result.pop(key, None)
            continue
        mkey = merge_key(path, key) if isinstance(value, list) else None
        if mkey and isinstance(result.get(key), list):
            result[key] = _merge_list(result[key], value, mkey, (*path, key))
        elif isinstance(value, dict):
            result[key] = strategic_merge_patch(result.get(key), value, (*path, key))
        elif isinstance(value, list) and key == "finalizers":
            merged = list(result.get(key) or [])
            merged += [v for v in value if v not in merged]
            result[key] = merged
        else:
            result[key] = _strip_directives(copy.deepcopy(value))
    return result


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [
            _strip_directives(v)
            for v in value
            if not (isinstance(v, dict) and v.get("$patch") == "delete")
        ]
    return value


def _merge_list(current: list[Any], patch: list[Any], key: str, path: tuple[str, ...]) -> list[Any]:
    result = copy.deepcopy(current)
    for item in patch:
        if isinstance(item, dict) and item.get("$patch") == "replace":
            return [_strip_directives(i) for i in patch if i is not item]
        ident = item_key(item, key)
        index = next((i for i, cur in enumerate(result) if item_key(cur, key) == ident), None)
        if isinstance(item, dict) and item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
            continue
        if index is None:
            result.append(_strip_directives(copy.deepcopy(item)))
        else:
            result[index] = strategic_merge_patch(result[index], item, path)
    return result


def json_patch(target: Obj, ops: list[Obj]) -> Obj:
    """RFC 6902 (add, remove, replace, test, copy, move)."""
    doc: Any = copy.deepcopy(target)
    for op in ops:
        kind, path = op.get("op"), op.get("path", "")
        if kind == "test":
            if _resolve(doc, path) != op.get("value"):
                raise apierrors.ApiError(422, "Invalid", f"the test operation failed at {path}")
            continue
        if kind in ("copy", "move"):
            value = copy.deepcopy(_resolve(doc, op["from"]))
            if kind == "move":
                doc = _apply_op(doc, "remove", op["from"], None)
            doc = _apply_op(doc, "add", path, value)
            continue
        doc = _apply_op(doc, str(kind), path, op.get("value"))
    return doc  # type: ignore[no-any-return]


def _tokens(path: str) -> list[str]:
    return [t.replace("~1", "/").replace("~0", "~") for t in path.split("/")[1:]]


def _resolve(doc: Any, path: str) -> Any:
    cur = doc
    for token in _tokens(path):
        cur = cur[int(token)] if isinstance(cur, list) else cur[token]
    return cur


def _apply_op(doc: Any, kind: str, path: str, value: Any) -> Any:
    tokens = _tokens(path)
    if not tokens:
        return value
    try:
        parent = (
            _resolve(
                doc, "/" + "/".join(t.replace("~", "~0").replace("/", "~1") for t in tokens[:-1])
            )
            if len(tokens) > 1
            else doc
        )
        last = tokens[-1]
        if isinstance(parent, list):
            index = len(parent) if last == "-" else int(last)
            if kind == "add":
                parent.insert(index, value)
            elif kind == "remove":
                parent.pop(index)
            elif kind == "replace":
                parent[index] = value
        elif kind in ("add", "replace"):
            if kind == "replace" and last not in parent:
                raise KeyError(last)
            parent[last] = value
        elif kind == "remove":
            del parent[last]
        else:
            raise apierrors.bad_request(f"unknown JSON patch operation {kind!r}")
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        raise apierrors.ApiError(
            422,
            "Invalid",
            f"the server rejected our request due to an error in our request: "
            f"jsonpatch {kind} operation does not apply: doc is missing path: {path!r}",
        ) from exc
    return doc
