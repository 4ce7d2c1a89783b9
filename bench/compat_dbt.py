"""dbt-clickhouse's own integration suite against the embedded server.

The suite is not part of this repository: check out dbt-clickhouse (the tag matching
the installed adapter, 1.10.x; its ``tests/`` and ``pytest.ini`` only: a checkout's
``dbt/`` would shadow the installed adapter) somewhere else, and make a venv for the suite
with the adapter, its test framework (``dbt-tests-adapter``, a version for dbt-core 1.11),
pytest, pytest-dotenv, pytest-timeout, pandas and freezegun. Then::

    .venv/bin/python bench/compat_dbt.py CHECKOUT [TEST_PATH ...] --python SUITE_VENV/bin/python
        [--pytest ARG ...]

(``TEST_PATH`` defaults to ``tests/integration``; ``--pytest`` passes the rest to pytest.
Run ``replicated_database`` last, or alone: it sets a Replicated database engine in the
session's shared test configuration, and every test after it fails to create its schema.)

It starts ``wiki-events clickhouse`` from this checkout, with this interpreter, on a free
port with a fresh data folder, points the suite at it (``DBT_CH_TEST_HOST`` /
``DBT_CH_TEST_PORT``, http driver, no docker) and runs pytest in the checkout with the
suite's interpreter. Its figures, and the failures left by cause, are in
bench/RESULTS.md.

One thing is changed in the suite's run, through a pytest plugin
(bench/compat_dbt_plugin.py) rather than in its files: its session set-up creates three users
with ``CREATE USER`` for its grants tests, which the embedded server refuses (chDB has no
writable access storage, see README: Security). The plugin lets that set-up statement
(and the matching ``DROP USER`` at the end) fail with a warning instead of failing every
test; the grants tests themselves still meet the refusal and are counted as they end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", type=Path, help="a dbt-clickhouse checkout")
    parser.add_argument(
        "paths", nargs="*", default=["tests/integration"], help="test paths in the checkout"
    )
    parser.add_argument("--python", default=sys.executable, help="the suite venv's interpreter")
    parser.add_argument("--pytest", nargs=argparse.REMAINDER, default=[], help="more pytest args")
    args = parser.parse_args()
    checkout = args.checkout.resolve()

    from bench.compat_connect import report, summarize
    from tests.helpers.clickhouse import ClickHouseProcess
    from tests.helpers.ports import free_port

    # kept after the run: the server's log is in it
    tmp = tempfile.mkdtemp(prefix="compat-dbt-")
    server = ClickHouseProcess(Path(tmp) / "data", free_port()).start()
    env = {
        **os.environ,
        "DBT_CH_TEST_HOST": "127.0.0.1",
        "DBT_CH_TEST_PORT": str(server.port),
        "DBT_CH_TEST_DRIVER": "http",
        "DBT_CH_TEST_USE_DOCKER": "0",
        # the checkout's tests/ is a namespace package: ours must not shadow it
        "PYTHONPATH": os.pathsep.join([str(checkout), str(ROOT / "bench")]),
    }
    junit = Path(tmp) / "junit.xml"  # the figures per module, printed at the end
    command = [args.python, "-m", "pytest", "-p", "compat_dbt_plugin", "-q", "-rfEs"]
    command += [f"--junitxml={junit}"]
    started = time.monotonic()
    try:
        done = subprocess.run(
            [*command, *args.paths, *args.pytest], cwd=checkout, env=env, check=False
        )
    finally:
        server.stop()
    print(f"compat_dbt: {time.monotonic() - started:.0f} s, server log {server.log}")
    if junit.is_file():
        report(summarize(junit), "dbt-clickhouse")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
