"""The lifecycle's modules keep the shape issue 17 asks for: no function over 80 lines, and
no import cycle through them (in-function imports included). The same checks over all of
src/ are the goal; these are the modules they are kept true for so far."""

from __future__ import annotations

import ast
from pathlib import Path

import nimble_oke

SRC = Path(nimble_oke.__file__).parent
LIMIT = 80
CHECKED = [
    "polling.py",
    "ports.py",
    "services/lifecycle.py",
    "services/saga.py",
    "services/up_steps.py",
    "services/down_steps.py",
    "services/deployment.py",
    "services/lease.py",
    "services/session_bench.py",
    "services/cloud_guard.py",
    "services/warmup.py",
    "services/provision.py",
    "services/kept_cache.py",
    "services/node_image.py",
    "services/enforcement.py",
    "services/costs.py",
    "services/sessions.py",
    "services/planning.py",
    "services/watchdog.py",
    "services/preflight.py",
    "state/store.py",
    "state/lock.py",
    "state/status.py",
    "domain/cost.py",
    "domain/plan.py",
    "domain/timings.py",
    "cloud/oci/provider.py",
    "cloud/oci/errors.py",
    "cloud/oci/token.py",
    "cloud/oci/guard.py",
    "sim/oci/services/__init__.py",
    "sim/oci/services/power.py",
    "sim/oci/services/resourcescheduler.py",
    "sim/oci/services/tagging.py",
]


def long_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > LIMIT
    ]


def test_no_function_over_80_lines() -> None:
    found = [hit for name in CHECKED for hit in long_functions(SRC / name)]
    assert found == []


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The project modules ``path`` imports, at any depth of its code."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                out.add(full if full in modules else node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out & modules


def _cycle_through(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    """A path start → … → start in the import graph, if there is one."""
    stack = [(start, [start])]
    seen = set()
    while stack:
        node, path = stack.pop()
        for nxt in graph.get(node, ()):
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def test_no_import_cycle_through_the_lifecycle_modules() -> None:
    files = {
        "nimble_oke."
        + ".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__"): p
        for p in SRC.rglob("*.py")
    }
    modules = set(files)
    graph = {name: _imports(path, modules) for name, path in files.items()}
    cycles = []
    for name in CHECKED:
        module = "nimble_oke." + name.removesuffix(".py").replace("/", ".").removesuffix(
            ".__init__"
        )
        cycle = _cycle_through(module, graph)
        if cycle is not None:
            cycles.append(" → ".join(cycle))
    assert cycles == []
