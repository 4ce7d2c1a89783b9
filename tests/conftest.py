"""Shared fixtures: real services, started for real.

The embedded ClickHouse runs as its own process (``wiki-events clickhouse``, see
``helpers/clickhouse.py``), exactly as users run it; tests talk to it over HTTP with
real clients. What tests and benchmarks share beyond fixtures lives in ``helpers/``;
nothing imports this file.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from loader.bronze import migrate
from wiki_core.config import clickhouse_client

from .helpers.clickhouse import USERS_XML, ClickHouseProcess
from .helpers.rabbitmq import rabbitmqctl
from .helpers.warehouse import Warehouse, dashboard_warehouse


@pytest.fixture(scope="session")
def users_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("users") / "users.xml"
    path.write_text(USERS_XML)
    return path


@pytest.fixture(scope="session")
def clickhouse(
    tmp_path_factory: pytest.TempPathFactory, users_file: Path
) -> Iterator[ClickHouseProcess]:
    """One embedded ClickHouse for the session, with a read-only and a loader user."""
    server = ClickHouseProcess(tmp_path_factory.mktemp("ch") / "data", users=users_file).start()
    yield server
    server.stop()


@pytest.fixture
def ch_client(clickhouse: ClickHouseProcess):  # type: ignore[no-untyped-def]
    import clickhouse_connect

    client = clickhouse_connect.get_client(host="127.0.0.1", port=clickhouse.port)
    yield client
    client.close()


@pytest.fixture
def ch(tmp_path: Path) -> Iterator[ClickHouseProcess]:
    """An embedded ClickHouse of the test's own, bronze migrated."""
    server = ClickHouseProcess(tmp_path / "ch").start()
    migrate(clickhouse_client(server.url))
    yield server
    if server.proc is not None:
        server.stop()


@pytest.fixture(scope="module")
def dash_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    """The dashboard's gold (``helpers/warehouse.py``: dashboard_warehouse), built for
    each module that asks."""
    house = dashboard_warehouse(tmp_path_factory.mktemp("dash"))
    try:
        yield house
    finally:
        if house.server.proc is not None:
            house.server.stop()


# The fixtures that build a warehouse with dbt (20-60 s, once per module that asks): a
# test that needs one (directly or through another fixture) takes that build with it.
WAREHOUSE_FIXTURES = {
    "dash_warehouse",  # the dashboard's gold (test_dash_app, test_dash_hardening)
    "data",  # test_dash_readers: a day of generated dumps beside the edits
    "house",  # test_dumps: the dumps' models
    "warehouse",  # test_wiki_dbt: silver and gold from the recordings
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``slow``: the tests over ~5 s on this 2-core machine, marked where they stand, and
    every test that needs a warehouse built by dbt. ``pytest -m "not slow"`` runs the
    quick half (under 3 minutes)."""
    for item in items:
        if WAREHOUSE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def pytest_setup_options():  # type: ignore[no-untyped-def]
    """Chromium for dash[testing]'s browser tests: headless, no sandbox, no network."""
    from .helpers.browser import chromium_options

    return chromium_options()


@pytest.fixture
def amqp_url() -> Iterator[str]:
    """A vhost of its own on the real broker, so tests never see each other's queues."""
    vhost = f"wiki-test-{uuid.uuid4().hex[:8]}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True, timeout=120)


def pytest_configure(config: pytest.Config) -> None:
    from .helpers.browser import stop_only_the_servers_thread

    stop_only_the_servers_thread()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Modules with a long scenario beside the suite (tests/test_stack.py) start it as
    soon as the session knows one of their tests runs (not for ``--collect-only``: the
    session ends before the scenario's set-up, which would then outlive it)."""
    if session.config.option.collectonly:
        return
    for module in {item.module for item in session.items if isinstance(item, pytest.Function)}:
        start = getattr(module, "start_in_background", None)
        if start is not None:
            start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    for module in {item.module for item in session.items if isinstance(item, pytest.Function)}:
        close = getattr(module, "close_in_background", None)
        if close is not None:
            close()
