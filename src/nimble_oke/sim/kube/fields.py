"""Server-side apply: field sets per manager, conflicts, pruning, and ``managedFields``.

A field path is a tuple of ``f:<name>`` (map key) and ``k:{"<mergeKey>":value}``
(associative-list item) elements, the same notation as the real ``fieldsV1`` format. Each
manager owns a set of paths; applying a config makes the manager own exactly the paths of
that config, and the paths it owned before but no longer applies are removed from the
object unless another manager still owns them. That is what makes SSA pruning work.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from . import apierrors
from .patching import item_key, merge_key

Obj = dict[str, Any]
Path = tuple[str, ...]

_TRACKED_METADATA = ("labels", "annotations", "ownerReferences", "finalizers")


@dataclass
class Owner:
    manager: str
    operation: str  # Apply | Update
    api_version: str
    time: str
    fields: set[Path] = field(default_factory=set)


Owners = dict[tuple[str, str], Owner]


def _item_path_element(key: str, ident: Any) -> str:
    return "k:" + json.dumps({key: ident}, sort_keys=True, separators=(",", ":"))


def field_paths(obj: Obj, skip_status: bool = True) -> set[Path]:
    """All paths set in ``obj`` (intermediate maps included), skipping server-owned
    metadata and, for types with a status subresource, ``status``."""
    out: set[Path] = set()
    for key, value in obj.items():
        if key in ("apiVersion", "kind") or (key == "status" and skip_status):
            continue
        if key == "metadata":
            meta = {k: v for k, v in (value or {}).items() if k in _TRACKED_METADATA}
            if meta:
                out.add(("f:metadata",))
                out |= _paths(meta, ("f:metadata",), ("metadata",))
            continue
        out.add((f"f:{key}",))
        out |= _paths_of_value(value, (f"f:{key}",), (), key)
    return out


def _paths(value: Obj, path: Path, names: tuple[str, ...]) -> set[Path]:
    out: set[Path] = set()
    for key, child in value.items():
        p = (*path, f"f:{key}")
        out.add(p)
        out |= _paths_of_value(child, p, names, key)
    return out


def _paths_of_value(value: Any, path: Path, names: tuple[str, ...], key: str) -> set[Path]:
    if isinstance(value, dict) and value:
        return _paths(value, path, (*names, key))
    if isinstance(value, list):
        mkey = merge_key(names, key)
        if mkey:
            out: set[Path] = set()
            for item in value:
                ip = (*path, _item_path_element(mkey, item_key(item, mkey)))
                out.add(ip)
                if isinstance(item, dict):
                    out |= _paths(item, ip, (*names, key))
            return out
    return set()


def _step(cur: Any, element: str) -> tuple[bool, Any, Any]:
    """(found, container, index-or-key) for one path element."""
    if element.startswith("f:"):
        name = element[2:]
        if isinstance(cur, dict) and name in cur:
            return True, cur, name
        return False, None, None
    ident = json.loads(element[2:])
    ((mkey, value),) = ident.items()
    if isinstance(cur, list):
        for i, item in enumerate(cur):
            if item_key(item, mkey) == value:
                return True, cur, i
    return False, None, None


def get_at(obj: Any, path: Path) -> tuple[bool, Any]:
    cur = obj
    for element in path:
        found, container, index = _step(cur, element)
        if not found:
            return False, None
        cur = container[index]
    return True, cur


def delete_at(obj: Any, path: Path) -> None:
    found, parent = get_at(obj, path[:-1])
    if not found:
        return
    ok, container, index = _step(parent, path[-1])
    if ok:
        del container[index]


def _is_leaf(config: Obj, path: Path) -> bool:
    """A value a manager sets as a whole: a scalar, an empty map or an atomic list (maps
    and associative lists are owned item by item)."""
    found, value = get_at(config, path)
    if not found or (isinstance(value, dict) and value):
        return False
    keyed = path[-1].startswith("f:") and merge_key((), path[-1][2:]) is not None
    return not (isinstance(value, list) and value and keyed)


def ssa_merge(current: Any, config: Any, names: tuple[str, ...] = ()) -> Any:
    """Merge an applied config into the live object (maps recurse, associative lists merge
    by key in config order, atomic lists and scalars replace)."""
    if not isinstance(config, dict) or not isinstance(current, dict):
        return copy.deepcopy(config)
    result = copy.deepcopy(current)
    for key, value in config.items():
        mkey = merge_key(names, key) if isinstance(value, list) else None
        if mkey and isinstance(result.get(key), list):
            existing = result[key]
            merged = []
            for item in value:
                ident = item_key(item, mkey)
                match = next((e for e in existing if item_key(e, mkey) == ident), None)
                merged.append(
                    ssa_merge(match, item, (*names, key))
                    if match is not None
                    else copy.deepcopy(item)
                )
            idents = {item_key(i, mkey) for i in value}
            merged += [copy.deepcopy(e) for e in existing if item_key(e, mkey) not in idents]
            result[key] = merged
        elif isinstance(value, dict) and value:
            result[key] = ssa_merge(result.get(key), value, (*names, key))
        else:
            result[key] = copy.deepcopy(value)
    return result


def _describe(path: Path) -> str:
    out = ""
    for element in path:
        if element.startswith("f:"):
            out += "." + element[2:]
        else:
            ((k, v),) = json.loads(element[2:]).items()
            out += f"[{k}={v}]"
    return out


def apply(
    live: Obj | None,
    config: Obj,
    owners: Owners,
    *,
    manager: str,
    force: bool,
    api_version: str,
    now: str,
    skip_status: bool = True,
) -> Obj:
    """Return the object after ``manager`` applies ``config``; updates ``owners`` in place.
    Raises 409 Conflict when another manager owns a field with a different value."""
    base = copy.deepcopy(live) if live is not None else {}
    new_set = field_paths(config, skip_status)
    conflicts: list[tuple[Owner, Path]] = []
    for ident, owner in owners.items():
        if ident == (manager, "Apply"):
            continue
        for p in new_set & owner.fields:
            if _is_leaf(config, p) and get_at(config, p)[1] != get_at(base, p)[1]:
                conflicts.append((owner, p))
    if conflicts and not force:
        causes = [
            {
                "reason": "FieldManagerConflict",
                "message": f'conflict with "{o.manager}" using {o.api_version}',
                "field": _describe(p),
            }
            for o, p in sorted(conflicts, key=lambda c: _describe(c[1]))
        ]
        text = "\n".join(f"- {c['message']}: {c['field']}" for c in causes)
        count = len(causes)
        raise apierrors.ApiError(
            409,
            "Conflict",
            f"Apply failed with {count} conflict{'s' if count > 1 else ''}: {text}",
            {"causes": causes},
        )
    for owner, p in conflicts:
        owner.fields.discard(p)
    previous = owners.get((manager, "Apply"))
    removed = (previous.fields if previous else set()) - new_set
    others = [o for i, o in owners.items() if i != (manager, "Apply")]
    # Shortest first: an item or map nobody else owns anything under goes as a whole.
    for p in sorted(removed, key=len):
        if any(q[: len(p)] == p for o in others for q in o.fields):
            continue
        if len(p) >= 2 and p[-2].startswith("k:") and f'"{p[-1][2:]}"' in p[-2]:
            continue  # the merge key of an item that stays
        delete_at(base, p)
    merged = ssa_merge(base, config)
    owners[(manager, "Apply")] = Owner(manager, "Apply", api_version, now, new_set)
    _drop_empty(owners)
    return merged  # type: ignore[no-any-return]


def record_update(
    old: Obj | None,
    new: Obj,
    owners: Owners,
    *,
    manager: str,
    api_version: str,
    now: str,
    skip_status: bool = True,
) -> None:
    """Account for a non-apply write (create, PUT, merge/strategic/JSON patch): the writer
    takes ownership of the fields it changed; fields that disappeared lose their owners."""
    new_paths = field_paths(new, skip_status)
    old_paths = field_paths(old, skip_status) if old else set()
    changed = {p for p in new_paths if old is None or get_at(old, p) != get_at(new, p)}
    gone = old_paths - new_paths
    for owner in owners.values():
        owner.fields -= gone
        if owner.manager != manager:
            owner.fields -= {p for p in changed if _is_leaf(new, p)}
    if changed:
        entry = owners.setdefault((manager, "Update"), Owner(manager, "Update", api_version, now))
        entry.fields |= changed
        entry.time = now
    _drop_empty(owners)


def _drop_empty(owners: Owners) -> None:
    for ident in [i for i, o in owners.items() if not o.fields]:
        del owners[ident]


def render(owners: Owners) -> list[Obj]:
    """``metadata.managedFields`` entries in the real ``FieldsV1`` shape."""
    out = []
    for owner in owners.values():
        tree: Obj = {}
        for p in sorted(owner.fields):
            node = tree
            for element in p:
                node = node.setdefault(element, {})
            if p[-1].startswith("k:"):
                node.setdefault(".", {})
        out.append(
            {
                "manager": owner.manager,
                "operation": owner.operation,
                "apiVersion": owner.api_version,
                "time": owner.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": tree,
            }
        )
    return out
