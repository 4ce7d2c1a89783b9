"""clickhouse-connect's own integration suite against the embedded ClickHouse.

The suite is not part of this repository (nor of clickhouse-connect's PyPI package):
check out clickhouse-connect's ``tests/`` folder (``tests/__init__.py``,
``tests/conftest.py``, ``tests/helpers.py``, ``tests/integration_tests/``) at the tag of
the installed client, outside this repository, into an environment that has the suite's
own test dependencies (pytest-asyncio, pytest-mock, pytest-timeout, pandas, pyarrow,
polars, SQLAlchemy, alembic, aiohttp, ...). Not the repository's ``clickhouse_connect/``
(it would shadow the installed client) nor its ``pyproject.toml`` (its pytest options
run four xdist workers); beside ``tests/`` put a ``pytest.ini`` with the one option the
suite needs from it, ``asyncio_default_fixture_loop_scope = session``. Then:

    .venv/bin/python bench/compat_connect.py SUITE_ROOT [--python SUITE_VENV/bin/python]
        [--timeout 120] [-- extra pytest arguments, e.g. -k or test files]

SUITE_ROOT is the folder that holds ``tests/``. A ``wiki-events clickhouse`` is started
from this checkout on a free port with a fresh data folder, the suite runs against it
(CLICKHOUSE_CONNECT_TEST_HOST/PORT), and the figures are printed: passed, failed,
errors, skipped, the pass rate of the tests that ran, and each failure with the first
line of its message (--junit PATH keeps pytest's JUnit XML).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers.clickhouse import ClickHouseProcess  # noqa: E402


def outcome(case: ET.Element) -> tuple[str, str]:
    """A JUnit test case's outcome and the first line of its message."""
    for kind in ("failure", "error", "skipped"):
        found = case.find(kind)
        if found is not None:
            message = (found.get("message") or found.text or "").strip().splitlines()
            return kind, message[0][:200] if message else ""
    return "passed", ""


def summarize(xml_path: Path) -> dict[str, list[tuple[str, str]]]:
    cases: dict[str, list[tuple[str, str]]] = {}
    for case in ET.parse(xml_path).getroot().iter("testcase"):
        kind, message = outcome(case)
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        cases.setdefault(kind, []).append((name, message))
    return cases


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite", type=Path, help="folder holding clickhouse-connect's tests/")
    parser.add_argument("--python", default=sys.executable, help="interpreter of the suite's venv")
    parser.add_argument("--timeout", type=int, default=120, help="pytest-timeout per test (s)")
    parser.add_argument("--junit", type=Path, help="keep pytest's JUnit XML here")
    argv = sys.argv[1:]  # what follows "--" goes to pytest as is (argparse would read it)
    cut = argv.index("--") if "--" in argv else len(argv)
    args, extra = parser.parse_args(argv[:cut]), argv[cut + 1 :]
    suite = args.suite.resolve()
    if not (suite / "tests" / "integration_tests" / "conftest.py").is_file():
        parser.error(f"{suite} has no tests/integration_tests/conftest.py (see --help)")
    with tempfile.TemporaryDirectory(prefix="compat-connect-") as tmp:
        junit = (args.junit or Path(tmp) / "junit.xml").resolve()
        server = ClickHouseProcess(Path(tmp) / "data").start()
        try:
            env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKHOUSE_")}
            env |= {
                "CLICKHOUSE_CONNECT_TEST_HOST": "localhost",
                "CLICKHOUSE_CONNECT_TEST_PORT": str(server.port),
                "CLICKHOUSE_CONNECT_TEST_DOCKER": "False",
                "CLICKHOUSE_CONNECT_TEST_CLOUD": "False",
            }
            targets = extra or ["tests/integration_tests"]
            command = [args.python, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
            command += [f"--timeout={args.timeout}", f"--junitxml={junit}", *targets]
            subprocess.run(command, cwd=suite, env=env, check=False)
        finally:
            server.stop()
        cases = summarize(junit)
    return report(cases, "clickhouse-connect")


def report(cases: dict[str, list[tuple[str, str]]], suite: str) -> int:
    count = {kind: len(cases.get(kind, [])) for kind in ("passed", "failure", "error", "skipped")}
    ran = count["passed"] + count["failure"] + count["error"]
    rate = 100.0 * count["passed"] / ran if ran else 0.0
    print(
        f"\n{suite} suite against the embedded server: {count['passed']} passed, "
        f"{count['failure']} failed, {count['error']} errors, {count['skipped']} skipped; "
        f"{count['passed']}/{ran} = {rate:.1f}% of the tests that ran"
    )
    modules: dict[str, dict[str, int]] = {}
    for kind, found in cases.items():
        for name, _ in found:
            # test classes add a part; a module skipped whole has no class, only its name
            parts = name.removeprefix("::").split("::")[0].split(".")
            module = next((part for part in parts if part.startswith("test_")), parts[-1])
            modules.setdefault(module, dict.fromkeys(("passed", "failure", "error", "skipped"), 0))
            modules[module][kind] += 1
    for module, by_kind in sorted(modules.items()):
        print(f"  {module}: " + ", ".join(f"{n} {kind}" for kind, n in by_kind.items() if n))
    for kind in ("failure", "error"):
        for name, message in cases.get(kind, []):
            print(f"{kind}: {name}: {message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
