"""The shape issue 17 asks of all of ``src/nimble_oke``, read from the AST (nothing is
imported), with the checks of ``scripts/check_architecture.py``:

(a) no import cycle between modules. An import inside a function is an edge (a lazy import
    hides a cycle from Python, not from the reader); an import under ``if TYPE_CHECKING:``
    is an annotation and makes no edge. A package's ``__init__`` importing its own
    submodules is not a dependency.
(b) the simulator depends on the product in one direction only: no module under
    ``nimble_oke.sim`` imports ``nimble_oke.services`` or ``nimble_oke.cli`` (nor anything
    under them), at run time or for annotations, at any depth of its code. Everything else
    of the product is its public surface and may be imported; today the simulator imports,
    outside ``nimble_oke.sim``, only ``nimble_oke.domain`` (cost, hibernate),
    ``nimble_oke.catalog`` and ``nimble_oke.ngc_keys``. The glue between the two lives on
    the product side (``services/sim_service.py``, ``services/sim_tools.py``,
    ``services/demo.py``, ``cli/sim_nim_cmd.py``). import-linter's ``sim-independent``
    contract (``.importlinter``) states the same rule.
(c) no function longer than 80 lines, decorators included.

The checker itself is tested on a small tree where each rule is broken once, so these tests
can fail.
"""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
MAX_LINES = 80


def _load_checker() -> ModuleType:
    name = "check_architecture"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


arch = _load_checker()


@pytest.fixture(scope="module")
def modules() -> dict[str, object]:
    found: dict[str, object] = arch.discover(SRC)
    assert "nimble_oke.cli.app" in found and "nimble_oke.sim.oci.world" in found
    return found


def test_no_import_cycle(modules: dict[str, object]) -> None:
    assert arch.cycles(arch.import_graph(modules)) == []


def test_the_simulator_imports_no_product_service_or_cli(modules: dict[str, object]) -> None:
    assert arch.sim_violations(arch.import_graph(modules, annotations=True)) == []


def test_no_function_over_80_lines(modules: dict[str, object]) -> None:
    assert arch.long_functions(modules, MAX_LINES) == []


# --- the checker on a tree that breaks each rule ---------------------------------------------
def _tree(root: Path, files: dict[str, str]) -> dict[str, object]:
    for rel, text in files.items():
        path = root / "nimble_oke" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    found: dict[str, object] = arch.discover(root)
    return found


def _body(lines: int) -> str:
    """A function of exactly ``lines`` lines, decorator included."""
    statements = "".join("    x = 1\n" for _ in range(lines - 3))
    return f"@staticmethod\ndef f() -> None:\n{statements}    return None\n"


def test_the_checker_sees_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    modules = _tree(
        tmp_path,
        {
            "__init__.py": "from . import a\n",
            "a.py": "def f():\n    from nimble_oke import b\n",
            "b.py": "import nimble_oke.a\n",
            "pkg/__init__.py": "from .c import x\n",
            "pkg/c.py": "from .. import b\nx = 1\n",
        },
    )
    assert arch.cycles(arch.import_graph(modules)) == [["nimble_oke.a", "nimble_oke.b"]]


def test_the_checker_makes_no_edge_of_an_annotation_import(tmp_path: Path) -> None:
    modules = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "import nimble_oke.b\n",
            "b.py": """
                import typing
                from typing import TYPE_CHECKING

                if TYPE_CHECKING:
                    from nimble_oke import a
                if typing.TYPE_CHECKING:
                    import nimble_oke.a
            """,
            "c.py": """
                from typing import TYPE_CHECKING

                if not TYPE_CHECKING:
                    from nimble_oke import d
            """,
            "d.py": "from nimble_oke.c import *\n",
        },
    )
    graph = arch.import_graph(modules)
    assert graph["nimble_oke.b"] == set()
    assert arch.cycles(graph) == [["nimble_oke.c", "nimble_oke.d"]]
    # with annotations: ``from nimble_oke import a`` reaches the package and the module
    annotated = arch.import_graph(modules, annotations=True)
    assert annotated["nimble_oke.b"] == {"nimble_oke", "nimble_oke.a"}


def test_the_checker_sees_the_simulator_reach_into_services_or_cli(tmp_path: Path) -> None:
    modules = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "domain.py": "",
            "services/__init__.py": "",
            "services/models.py": "",
            "cli/__init__.py": "",
            "cli/app.py": "",
            "sim/__init__.py": "",
            "sim/ok.py": "from nimble_oke import domain\n",
            "sim/lazy.py": "def f():\n    from nimble_oke.services.models import x\n",
            "sim/typed.py": """
                from typing import TYPE_CHECKING

                if TYPE_CHECKING:
                    from ..cli import app
            """,
        },
    )
    assert arch.sim_violations(arch.import_graph(modules, annotations=True)) == [
        "nimble_oke.sim.lazy imports nimble_oke.services.models",
        "nimble_oke.sim.typed imports nimble_oke.cli",
        "nimble_oke.sim.typed imports nimble_oke.cli.app",
    ]


def test_the_checker_sees_a_function_over_the_limit(tmp_path: Path) -> None:
    modules = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "fits.py": _body(MAX_LINES),
            "long.py": "class C:\n" + textwrap.indent(_body(MAX_LINES + 1), "    "),
        },
    )
    found = arch.long_functions(modules, MAX_LINES)
    assert [f.rpartition("/")[2] for f in found] == [f"long.py:3 f ({MAX_LINES + 1} lines)"]
