"""Generate :mod:`.k8s_schema` from Kubernetes' own sources (run by hand when the served
Kubernetes version moves; the output is committed).

    python -m nimble_oke.sim.kube.wire.gen_schema <kubernetes/api git dir> \
        <kubernetes/apimachinery git dir> <tag, e.g. v0.35.7>

For every message of the packages below it records, per protobuf field number: the JSON
name, the protobuf type (a scalar or a fully qualified message), whether the field is
repeated or a map, and — read from the Go struct tags in ``types.go`` — whether the Go
field is a pointer (a zero value on the wire is then meaningful), ``omitempty`` and
``inline`` (an embedded struct whose JSON fields are flattened into the parent). Field
numbers are stable across Kubernetes releases (its API compatibility rules).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

API_PACKAGES = (
    "core/v1",
    "apps/v1",
    "batch/v1",
    "autoscaling/v1",
    "autoscaling/v2",
    "networking/v1",
    "policy/v1",
    "rbac/v1",
    "storage/v1",
    "authorization/v1",
    "authentication/v1",
    "coordination/v1",
    "discovery/v1",
    "events/v1",
)
MACHINERY_PACKAGES = (
    "pkg/apis/meta/v1",
    "pkg/runtime",
    "pkg/runtime/schema",
    "pkg/api/resource",
    "pkg/util/intstr",
)

_FIELD = re.compile(
    r"^\s*(optional|repeated)\s+([\w.]+)\s+(\w+)\s*=\s*(\d+)\s*;"
    r"|^\s*map<\s*(\w+)\s*,\s*([\w.]+)\s*>\s+(\w+)\s*=\s*(\d+)\s*;"
)
_SCALARS = {
    "string",
    "bytes",
    "bool",
    "int32",
    "int64",
    "uint32",
    "uint64",
    "sint32",
    "sint64",
    "double",
    "float",
    "fixed32",
    "fixed64",
}


def _git(repo: Path, *args: str) -> str:
    command = ["git", "--git-dir", str(repo), *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout  # noqa: S603


def _git_show(repo: Path, tag: str, path: str) -> str:
    return _git(repo, "show", f"{tag}:{path}")


def _git_ls(repo: Path, tag: str, path: str) -> list[str]:
    return _git(repo, "ls-tree", "--name-only", f"{tag}:{path}").split()


def _qualify(package: str, type_name: str) -> str:
    if type_name in _SCALARS:
        return type_name
    if type_name.startswith("."):
        return type_name[1:]
    return f"{package}.{type_name}"


def parse_proto(text: str) -> tuple[str, dict[str, dict[str, object]]]:
    """(package, message name -> {"fields": [...], "wrapper": bool})."""
    package = re.search(r"^package\s+([\w.]+);", text, re.M)
    assert package is not None
    pkg = package.group(1)
    messages: dict[str, dict[str, object]] = {}
    current: list[tuple[object, ...]] | None = None
    comments: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("//"):
            comments.append(stripped)
            continue
        start = re.match(r"^message\s+(\w+)\s*{", stripped)
        if start:
            current = []
            wrapper = any("+protobuf.nullable=true" in c for c in comments)
            messages[f"{pkg}.{start.group(1)}"] = {"fields": current, "wrapper": wrapper}
            comments = []
            continue
        if stripped == "}":
            current = None
        comments = [] if stripped else comments
        match = _FIELD.match(line)
        if match and current is not None:
            if match.group(1):
                label, typ, name, num = match.group(1, 2, 3, 4)
                current.append((int(num), name, _qualify(pkg, typ), label == "repeated", None))
            else:
                key, value, name, num = match.group(5, 6, 7, 8)
                current.append((int(num), name, _qualify(pkg, value), False, key))
    return pkg, messages


_STRUCT = re.compile(r"^type\s+(\w+)\s+struct\s*{\s*$")
_TAG = re.compile(r"`([^`]*)`")


def parse_go(text: str) -> dict[str, dict[int, tuple[bool, bool, bool]]]:
    """Go struct name -> protobuf field number -> (pointer, omitempty, inline)."""
    out: dict[str, dict[int, tuple[bool, bool, bool]]] = {}
    current: dict[int, tuple[bool, bool, bool]] | None = None
    for line in text.splitlines():
        start = _STRUCT.match(line)
        if start:
            current = out.setdefault(start.group(1), {})
            continue
        if line.startswith("}"):
            current = None
            continue
        if current is None:
            continue
        tag = _TAG.search(line)
        if not tag or "protobuf:" not in tag.group(1):
            continue
        words = line[: tag.start()].split()
        go_type = words[-1] if words else ""
        proto = re.search(r'protobuf:"([^"]*)"', tag.group(1))
        json_tag = re.search(r'json:"([^"]*)"', tag.group(1))
        assert proto is not None
        parts = proto.group(1).split(",")
        if len(parts) < 2 or not parts[1].isdigit():
            continue  # e.g. protobuf:"-" (not serialized)
        number = int(parts[1])
        json_parts = (json_tag.group(1) if json_tag else "").split(",")
        current[number] = (
            go_type.startswith("*"),
            "omitempty" in json_parts[1:],
            "inline" in json_parts[1:],
        )
    return out


def _go_json_names(text: str) -> dict[tuple[str, str], str]:
    """(struct, proto field name) -> JSON name, where they differ (rare)."""
    out: dict[tuple[str, str], str] = {}
    struct = ""
    for line in text.splitlines():
        start = _STRUCT.match(line)
        if start:
            struct = start.group(1)
            continue
        tag = _TAG.search(line)
        if not tag:
            continue
        proto = re.search(r'protobuf:"[^"]*name=(\w+)', tag.group(1))
        json_tag = re.search(r'json:"([^",]*)', tag.group(1))
        if proto and json_tag and json_tag.group(1) and json_tag.group(1) != proto.group(1):
            out[(struct, proto.group(1))] = json_tag.group(1)
    return out


def collect(repo: Path, tag: str, package_dir: str) -> dict[str, tuple[object, ...]]:
    _pkg, messages = parse_proto(_git_show(repo, tag, f"{package_dir}/generated.proto"))
    go_text = "\n".join(
        _git_show(repo, tag, f"{package_dir}/{name}")
        for name in _git_ls(repo, tag, package_dir)
        if name.endswith(".go")
        and not name.endswith("_test.go")
        and not name.startswith(("zz_generated", "generated."))
    )
    go = parse_go(go_text)
    renames = _go_json_names(go_text)
    table: dict[str, tuple[object, ...]] = {}
    for full, msg in messages.items():
        struct = full.rsplit(".", 1)[1]
        fields = []
        for num, name, typ, repeated, key in msg["fields"]:  # type: ignore[attr-defined]
            pointer, omitempty, inline = go.get(struct, {}).get(num, (False, True, False))
            flags = "".join(
                flag
                for flag, on in (
                    ("r", repeated),
                    ("p", pointer),
                    ("o", omitempty),
                    ("i", inline),
                )
                if on
            )
            json_name = renames.get((struct, name), name)
            fields.append((num, json_name, typ, flags, key))
        table[full] = (bool(msg["wrapper"]), tuple(fields))
    return table


def main(argv: list[str]) -> None:
    api, machinery, tag = Path(argv[0]), Path(argv[1]), argv[2]
    table: dict[str, tuple[object, ...]] = {}
    for package in API_PACKAGES:
        table.update(collect(api, tag, package))
    for package in MACHINERY_PACKAGES:
        table.update(collect(machinery, tag, package))
    out = Path(__file__).with_name("k8s_schema.py")
    lines = "".join(f"    {name!r}: {entry!r},\n" for name, entry in sorted(table.items()))
    out.write_text(
        f'"""Kubernetes protobuf schema ({tag} of k8s.io/api and k8s.io/apimachinery),\n'
        "generated by gen_schema.py: message -> (list wrapper, fields); a field is\n"
        "(number, JSON name, type, flags r=repeated p=pointer o=omitempty i=inline,\n"
        'map key type or None). Do not edit."""\n\n'
        "# fmt: off\n"
        "SCHEMA: dict[str, tuple[bool, tuple[tuple[int, str, str, str, str | None], ...]]] = {\n"
        f"{lines}}}\n"
    )
    sys.stdout.write(f"wrote {out} ({len(table)} messages)\n")


if __name__ == "__main__":
    main(sys.argv[1:])
