"""Every import points down: the allowed edges between the project's packages.

``wiki_core`` is the bottom layer (settings, the event judge, the broker contract, time
formatting, the version); the stages beside one another import only it; ``wiki_events``
(the CLI, ``up``, ``status``, the SQL console) sits on top and may import anything.
Read from the source with ``ast``, so an import inside a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .conftest import ROOT

OURS = {
    "wiki_core",
    "local_clickhouse",
    "reader",
    "loader",
    "dumps",
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
    "dash_app": {"wiki_core"},
    "deploy": {"wiki_core"},  # deploy/rabbitmq/render_definitions.py: the topology
    "wiki_events": OURS - {"bench", "tests"},
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


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "import os\n\ndef f():\n    from reader.stream import Reader\n    from . import sibling\n"
    )
    assert imported_packages(module) == {"os", "reader"}
