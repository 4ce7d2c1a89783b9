"""pytest plugin for bench/compat_dbt.py, loaded in dbt-clickhouse's suite run.

Its session set-up creates three users with ``CREATE USER`` for its grants tests, which
the embedded server refuses (chDB has no writable access storage, see README:
Security). This lets that set-up statement, and the matching ``DROP USER`` at the end,
fail with a warning instead of failing every test; the grants tests still meet the
refusal and are counted as they end.

It also imports pandas before any test runs: the sample-mode tests freeze the clock with
freezegun, which walks every loaded module's attributes; that makes clickhouse-connect
import pandas lazily inside the frozen clock, and the test process segfaults (a client
crash, whatever the server). Nothing else in the suite's run is changed.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

# The suite's set-up statements the plugin lets fail: its users for the grants tests.
_SETUP_USERS = re.compile(r"\s*(CREATE USER IF NOT EXISTS|DROP USER)\s", re.IGNORECASE)


def pytest_configure(config: Any) -> None:
    """Wraps clickhouse-connect's ``command`` for the set-up statements only."""
    import importlib.util

    if importlib.util.find_spec("pandas") is not None:
        import pandas  # noqa: F401 - loaded before freezegun walks the modules
    from clickhouse_connect.driver.exceptions import DatabaseError
    from clickhouse_connect.driver.httpclient import HttpClient

    command = HttpClient.command

    def tolerant(self: HttpClient, cmd: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return command(self, cmd, *args, **kwargs)
        except DatabaseError as exc:
            if not _SETUP_USERS.match(cmd) or "SQL access management" not in str(exc):
                raise
            warnings.warn(f"compat_dbt: set-up statement refused: {cmd.split()[:3]}", stacklevel=2)
            return None

    HttpClient.command = tolerant  # type: ignore[method-assign,assignment]
