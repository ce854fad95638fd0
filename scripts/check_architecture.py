"""Architecture checks over ``src/nimble_oke`` by reading the AST (nothing is imported).

- import cycles between modules, counting imports inside functions too (a lazy import
  hides a cycle from Python, not from the reader); imports under ``if TYPE_CHECKING:`` are
  annotations only and make no edge;
- simulator modules (``nimble_oke.sim``) that import product services or CLI modules
  (the simulator depends on the product's public surface only); here annotation-only
  imports count too, as they do for import-linter's contract (``.importlinter``);
- functions longer than ``--max-lines`` lines (default 80).

Prints each finding and exits 1 if there is any (``--report`` prints and exits 0).
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "nimble_oke"
SIM_FORBIDDEN = ("nimble_oke.services", "nimble_oke.cli")


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    is_package: bool


def discover(src: Path) -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for path in sorted((src / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        name = ".".join(parts)
        modules[name] = Module(name, path, is_package)
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    """``TYPE_CHECKING`` or ``typing.TYPE_CHECKING`` (not ``not TYPE_CHECKING``)."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of the nodes inside the body of ``if TYPE_CHECKING:`` blocks (their ``else:``
    runs)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                found.update(id(n) for n in ast.walk(child))
    return found


def imported_names(module: Module, tree: ast.AST, *, annotations: bool = False) -> Iterator[str]:
    """Every module name this module imports at run time, anywhere in its body (with
    ``annotations``, also those imported under ``if TYPE_CHECKING:``)."""
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    annotations_only = set() if annotations else _type_checking_only(tree)
    for node in ast.walk(tree):
        if id(node) in annotations_only:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            for alias in node.names:
                yield f"{base}.{alias.name}"


def resolve(name: str, modules: dict[str, Module]) -> str | None:
    """The longest known module that ``name`` is or lies in."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph(modules: dict[str, Module], *, annotations: bool = False) -> dict[str, set[str]]:
    """Module -> the project modules it imports (see :func:`imported_names`)."""
    graph: dict[str, set[str]] = {}
    for module in modules.values():
        tree = ast.parse(module.path.read_text(encoding="utf-8"), str(module.path))
        edges: set[str] = set()
        for name in imported_names(module, tree, annotations=annotations):
            if not name.startswith(PACKAGE):
                continue
            target = resolve(name, modules)
            # a package's own __init__ importing its submodules is not a dependency cycle
            if target and target != module.name and not target.startswith(module.name + "."):
                edges.add(target)
        graph[module.name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root, root_edges in graph.items():
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(root_edges)))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def sim_violations(graph: dict[str, set[str]]) -> list[str]:
    """``graph`` should count annotation-only imports (``import_graph(annotations=True)``)."""
    return sorted(
        f"{module} imports {target}"
        for module, targets in graph.items()
        if module.startswith(f"{PACKAGE}.sim")
        for target in targets
        if target.startswith(SIM_FORBIDDEN)
    )


def long_functions(modules: dict[str, Module], max_lines: int) -> list[str]:
    """``path:line name (n lines)`` of every function (decorators included) longer than
    ``max_lines``; a nested function is counted on its own and in its outer function."""
    found: list[str] = []
    for module in modules.values():
        tree = ast.parse(module.path.read_text(encoding="utf-8"), str(module.path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                length = (node.end_lineno or node.lineno) - first + 1
                if length > max_lines:
                    found.append(f"{module.path}:{node.lineno} {node.name} ({length} lines)")
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--src", type=Path, default=Path(__file__).parent.parent / "src")
    parser.add_argument("--max-lines", type=int, default=80)
    parser.add_argument("--report", action="store_true", help="print findings, exit 0")
    args = parser.parse_args(argv)
    modules = discover(args.src)
    graph = import_graph(modules)
    findings = {
        "import cycles": [" ↔ ".join(c) for c in cycles(graph)],
        "simulator → product service/CLI imports": sim_violations(
            import_graph(modules, annotations=True)
        ),
        f"functions over {args.max_lines} lines": long_functions(modules, args.max_lines),
    }
    total = 0
    for title, items in findings.items():
        sys.stdout.write(f"{title}: {len(items)}\n")
        for item in items:
            sys.stdout.write(f"  {item}\n")
        total += len(items)
    return 0 if args.report or total == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
