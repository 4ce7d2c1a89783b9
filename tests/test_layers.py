"""Every import points down: the allowed edges between the project's packages.

Four floors. 1: ``wiki_core`` (settings, the event judge, the broker contract, the
shapes of a status line and a verdict) and ``local_clickhouse``, importing none of ours.
2: the stages beside one another (``reader``, ``loader``, ``dumps``, ``transform``,
``dash_app``; ``deploy``'s scripts), importing only ``wiki_core``. 3: ``wiki_events``,
which composes them (the CLI, ``up``, ``status``, ``health``). 4: ``bench``, which may
use anything, and of the tests only their shared machinery, ``tests/helpers/``.
Nothing imports a test module or ``conftest.py``. Read from the source with ``ast``, so
an import inside a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .helpers.paths import ROOT

OURS = {
    "wiki_core",
    "local_clickhouse",
    "reader",
    "loader",
    "dumps",
    "transform",
    "dash_app",
    "wiki_events",
    "bench",
    "tests",
}
ALLOWED: dict[str, set[str]] = {
    "wiki_core": set(),
    "local_clickhouse": set(),
    "reader": {"wiki_core"},
    "loader": {"wiki_core"},
    "dumps": {"wiki_core"},
    "transform": {"wiki_core"},
    "dash_app": {"wiki_core"},
    "deploy": {"wiki_core"},  # deploy/rabbitmq/render_definitions.py: the topology
    "wiki_events": OURS - {"bench", "tests"},
    "bench": OURS,  # of tests/, tests/helpers/ only (test_bench_uses_only_the_tests_helpers)
}


def imported_packages(path: Path) -> set[str]:
    """The top-level names ``path`` imports absolutely (relative imports stay inside)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def imported_modules(path: Path, package: tuple[str, ...]) -> set[str]:
    """Every dotted name ``path`` (a module of ``package``) imports, relative imports
    resolved: ``from .conftest import ROOT`` in tests/ is ``tests.conftest.ROOT``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = [*package[: len(package) - node.level + 1]] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return found


def is_test_module(name: str) -> bool:
    """Whether ``name`` is (or is inside) a test module or a conftest of tests/."""
    parts = name.split(".")
    return parts[0] == "tests" and any(p == "conftest" or p.startswith("test_") for p in parts[1:2])


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(p for p in ALLOWED if (ROOT / p).is_dir()))
def test_a_package_imports_only_the_layers_below_it(package: str) -> None:
    assert modules(package), f"{package}/ has no modules"
    wrong = {
        str(path.relative_to(ROOT)): sorted(
            (imported_packages(path) & OURS) - ALLOWED[package] - {package}
        )
        for path in modules(package)
    }
    assert {path: names for path, names in wrong.items() if names} == {}


def test_every_package_of_ours_has_a_rule() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages - {"bench", "tests"} <= set(ALLOWED)


def test_no_test_module_is_imported() -> None:
    """pytest loads test modules and conftest.py; what tests and benchmarks share is in
    tests/helpers/."""
    importers = [*(ROOT / "tests").glob("*.py"), *modules("tests/helpers"), *modules("bench")]
    wrong = {
        str(path.relative_to(ROOT)): sorted(
            name
            for name in imported_modules(path, path.relative_to(ROOT).parent.parts)
            if is_test_module(name)
        )
        for path in importers
    }
    assert {path: names for path, names in wrong.items() if names} == {}


def test_bench_uses_only_the_tests_helpers() -> None:
    wrong = {
        str(path.relative_to(ROOT)): sorted(
            name
            for name in imported_modules(path, ("bench",))
            if name.split(".")[0] == "tests" and not name.startswith("tests.helpers.")
        )
        for path in modules("bench")
    }
    assert {path: names for path, names in wrong.items() if names} == {}


def test_the_check_resolves_relative_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from .conftest import ROOT\nfrom . import test_x\nimport tests.helpers.ports\n"
        "def f():\n    from .helpers.paths import RAW\n"
    )
    names = imported_modules(module, ("tests",))
    assert names == {
        "tests.conftest.ROOT",
        "tests.test_x",
        "tests.helpers.ports",
        "tests.helpers.paths.RAW",
    }
    assert [is_test_module(n) for n in sorted(names)] == [True, False, False, True]


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "import os\n\ndef f():\n    from reader.stream import Reader\n    from . import sibling\n"
    )
    assert imported_packages(module) == {"os", "reader"}
