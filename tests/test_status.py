"""``wiki-events status`` against the embedded ClickHouse."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from loader.bronze import Bronze, migrate
from wiki_core.config import Settings, clickhouse_client
from wiki_core.event import Valid, judge
from wiki_events.status import Report, check_clickhouse

from .conftest import RAW, ClickHouseProcess


@pytest.fixture
def ch(tmp_path: Path) -> Iterator[ClickHouseProcess]:
    server = ClickHouseProcess(tmp_path / "ch").start()
    migrate(clickhouse_client(server.url))
    yield server
    server.stop()


def test_freshness_ignores_events_dated_in_the_future(ch: ClickHouseProcess) -> None:
    recorded = judge(RAW.read_bytes().splitlines()[0])
    assert isinstance(recorded, Valid)
    # a row from the future, as bronze may hold from before the judge quarantined them
    ahead = Valid(
        "from-the-future", int(time.time() * 1000) + 86_400_000, "enwiki", "edit", recorded.raw
    )
    Bronze(clickhouse_client(ch.url)).write([recorded, ahead], [])
    report = Report()
    check_clickhouse(report, Settings.from_env({"CLICKHOUSE_URL": ch.url}))
    [freshness] = [line for line in report.lines if line.stage == "freshness"]
    assert freshness.state == "error"  # the recorded event is from 2024
    assert freshness.text.startswith("newest event ") and " days old" in freshness.text


def test_the_dumps_are_reported_without_the_live_edits(tmp_path: Path) -> None:
    """Only the dumps set up here (no bronze.wiki_raw): status still reports them."""
    from dumps import schema

    server = ClickHouseProcess(tmp_path / "dumps-only").start()
    try:
        schema.migrate(clickhouse_client(server.url))
        report = Report()
        check_clickhouse(report, Settings.from_env({"CLICKHOUSE_URL": server.url}))
    finally:
        server.stop()
    stages = {line.stage: line for line in report.lines}
    assert stages["bronze"].text.startswith("no bronze.wiki_raw yet")
    assert stages["dumps"].state == "info"
    assert stages["dumps"].text.startswith("no file loaded yet: `wiki-events pageviews")
