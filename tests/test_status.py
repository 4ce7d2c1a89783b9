"""``wiki-events status`` against the embedded ClickHouse."""

from __future__ import annotations

import time
from pathlib import Path

from loader.bronze import Bronze
from wiki_core.config import Settings, clickhouse_client
from wiki_core.event import Valid, judge
from wiki_events.status import clickhouse_lines

from .helpers.clickhouse import ClickHouseProcess
from .helpers.paths import RAW


def test_freshness_ignores_events_dated_in_the_future(ch: ClickHouseProcess) -> None:
    recorded = judge(RAW.read_bytes().splitlines()[0])
    assert isinstance(recorded, Valid)
    # a row from the future, as bronze may hold from before the judge quarantined them
    ahead = Valid(
        "from-the-future", int(time.time() * 1000) + 86_400_000, "enwiki", "edit", recorded.raw
    )
    Bronze(clickhouse_client(ch.url)).write([recorded, ahead], [])
    lines = clickhouse_lines(Settings.from_env({"CLICKHOUSE_URL": ch.url}))
    [freshness] = [line for line in lines if line.stage == "freshness"]
    assert freshness.state == "error"  # the recorded event is from 2024
    assert freshness.text.startswith("newest event ") and " days old" in freshness.text


def test_the_dumps_are_reported_without_the_live_edits(tmp_path: Path) -> None:
    """Only the dumps set up here (no bronze.wiki_raw): status still reports them."""
    from dumps import schema

    server = ClickHouseProcess(tmp_path / "dumps-only").start()
    try:
        schema.migrate(clickhouse_client(server.url))
        lines = clickhouse_lines(Settings.from_env({"CLICKHOUSE_URL": server.url}))
    finally:
        server.stop()
    stages = {line.stage: line for line in lines}
    assert stages["bronze"].text.startswith("no bronze.wiki_raw yet")
    assert stages["dumps"].state == "info"
    assert stages["dumps"].text.startswith("no file loaded yet: `wiki-events pageviews")
