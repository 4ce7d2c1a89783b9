"""dbt-clickhouse's own integration suite against the embedded server.

The suite is not part of this repository: check out dbt-clickhouse (the tag matching
the installed adapter, 1.10.x) somewhere else and install its test framework into the
venv you run this with (``pip install dbt-tests-adapter``, a version for dbt-core 1.11).
Then::

    .venv/bin/python bench/compat_dbt.py CHECKOUT [TEST_PATH ...] [--pytest ARG ...]

(``TEST_PATH`` defaults to ``tests/integration``; ``--pytest`` passes the rest to pytest.)

It starts ``wiki-events clickhouse`` on a free port with a fresh data folder, points the
suite at it (``DBT_CH_TEST_HOST`` / ``DBT_CH_TEST_PORT``, http driver, no docker) and runs
pytest in the checkout. Its figures, and the failures left by cause, are in
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
    parser.add_argument("--pytest", nargs=argparse.REMAINDER, default=[], help="more pytest args")
    args = parser.parse_args()
    checkout = args.checkout.resolve()

    from tests.conftest import ClickHouseProcess, free_port

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
    command = [sys.executable, "-m", "pytest", "-p", "compat_dbt_plugin", "-q", "-rfEs"]
    started = time.monotonic()
    try:
        done = subprocess.run(
            [*command, *args.paths, *args.pytest], cwd=checkout, env=env, check=False
        )
    finally:
        server.stop()
    print(f"compat_dbt: {time.monotonic() - started:.0f} s, server log {server.log}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
