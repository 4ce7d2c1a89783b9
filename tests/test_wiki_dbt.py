"""The dbt project on the embedded ClickHouse: silver and gold as materialized views.

One warehouse for the module: bronze filled by the loader's own code from the recorded
events, then ``dbt build``. The tests run in order, each building on the last: gold
equals Python's count, streaming inserts fire the views, a rerun changes nothing, a
tampered gold table fails the reconciliation, and the documented rebuild repairs it.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator

import pytest

from wiki_core.config import Settings
from wiki_events.status import clickhouse_lines

from .helpers.expected import assert_gold_equals, gold_numbers
from .helpers.paths import SHARED_DATA
from .helpers.warehouse import Warehouse

RECORDINGS = sorted((SHARED_DATA / "recentchange").glob("*.ndjson"))
FIRST = RECORDINGS[:3]  # includes the file with 42 duplicate copies
LATER = RECORDINGS[3:] + sorted((SHARED_DATA / "recentchange" / "legacy").glob("*.ndjson"))
# the recorded events are old: the reconciliation's closed window reaches up to now
NOW = ["--vars", "{reconcile_lag_minutes: 0}"]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    house = Warehouse.start(tmp_path_factory.mktemp("warehouse"))
    house.load(FIRST)
    try:
        yield house
    finally:
        house.server.stop()


@pytest.fixture
def built(warehouse: Warehouse) -> Warehouse:
    """The warehouse with silver and gold built: by the module's first test in a whole
    run (which checks the build itself), here when a test runs alone."""
    if warehouse.scalar("SELECT count() FROM system.databases WHERE name = 'gold'") == "0":
        warehouse.dbt("build", *NOW)
    return warehouse


def test_build_creates_silver_and_gold_and_every_test_passes(warehouse: Warehouse) -> None:
    assert "All checks passed" in warehouse.dbt("debug")
    out = warehouse.dbt("build", *NOW)
    assert "ERROR=0" in out and "SKIP=0" in out
    # unit tests, generic tests and the singular reconciliations all ran
    for name in (
        "wiki_names_numeric_and_unknown_types",
        "unique_wiki_event_id",
        "assert_gold_matches_silver",
        "assert_silver_matches_bronze",
    ):
        assert name in out, name
    engines = dict(
        warehouse.query(
            "SELECT concat(database, '.', name), engine FROM system.tables "
            "WHERE database IN ('silver', 'gold')"
        )
    )
    assert engines["silver.wiki_mv"] == "MaterializedView"
    assert engines["gold.events_per_minute"] == "SummingMergeTree"
    assert engines["gold.wiki_totals"] == "AggregatingMergeTree"
    assert engines["gold.wiki_weekday_hour_profile"] == "View"


@pytest.mark.usefixtures("built")
def test_gold_equals_the_numbers_computed_from_the_ndjson(warehouse: Warehouse) -> None:
    want = warehouse.expected()
    assert want.total == 202 + 2387 + 100  # the 42 duplicate copies counted once
    assert int(warehouse.scalar("SELECT count() FROM silver.wiki")) == want.total
    assert_gold_equals(gold_numbers(warehouse.query), want)


@pytest.mark.usefixtures("built")
def test_inserts_fire_the_views_and_gold_is_right_before_parts_merge(
    warehouse: Warehouse,
) -> None:
    # merges held back, so the reads below meet several unmerged parts
    warehouse.query("SYSTEM STOP MERGES gold.events_per_minute")
    warehouse.load(LATER)  # includes a canary, a "142", 2016 events and the legacy format
    want = warehouse.expected()
    parts = int(
        warehouse.scalar(
            "SELECT count() FROM system.parts WHERE database = 'gold' "
            "AND table = 'events_per_minute' AND active"
        )
    )
    assert parts > 1  # several unmerged parts: the GROUP BY readers must still be exact
    assert_gold_equals(gold_numbers(warehouse.query), want)
    warehouse.query("SYSTEM START MERGES gold.events_per_minute")
    assert warehouse.scalar("SELECT count() FROM silver.wiki_invalid") == "0"
    warehouse.dbt("test", *NOW)


@pytest.mark.usefixtures("built")
def test_weekday_profile_is_an_average_over_observed_weeks(warehouse: Warehouse) -> None:
    # commonswiki's 2016-08-16 (a Tuesday) 02:00 event: one observed week, 1 event
    rows = warehouse.query(
        "SELECT weekday, hour_of_day, events, weeks_observed, avg_events "
        "FROM gold.wiki_weekday_hour_profile WHERE wiki = 'commonswiki' "
        "AND weekday = 2 AND hour_of_day = 2"
    )
    assert rows == [("2", "2", "1", "1", "1")]
    # an hour observed twice (two weeks apart) halves the average: add a week-later event
    event = {
        "meta": {
            "id": str(uuid.uuid4()),
            "dt": "2016-08-23T02:10:00Z",
            "domain": "test.wikipedia.org",
        },
        "wiki": "testwiki",
        "type": "edit",
        "namespace": 0,
        "title": "T",
        "user": "U",
        "bot": False,
    }
    path = warehouse.work / "week-later.ndjson"
    path.write_text(json.dumps(event) + "\n")
    warehouse.load([path])
    rows = warehouse.query(
        "SELECT events, weeks_observed, avg_events FROM gold.wiki_weekday_hour_profile "
        "WHERE wiki = 'commonswiki' AND weekday = 2 AND hour_of_day = 2"
    )
    assert rows == [("1", "2", "0.5")]


@pytest.mark.usefixtures("built")
def test_a_second_run_changes_nothing(warehouse: Warehouse) -> None:
    tables = (
        "SELECT name, uuid, total_rows FROM system.tables "
        "WHERE database IN ('silver', 'gold') AND engine != 'View' ORDER BY name"
    )
    before = warehouse.query(tables)
    out = warehouse.dbt("run")
    assert "PASS=" in out
    assert warehouse.query(tables) == before  # no drop, no recreate, no second backfill
    assert_gold_equals(gold_numbers(warehouse.query), warehouse.expected())


@pytest.mark.usefixtures("built")
def test_a_tampered_gold_table_fails_reconciliation_and_the_rebuild_repairs_it(
    warehouse: Warehouse,
) -> None:
    warehouse.query("INSERT INTO gold.events_per_minute VALUES ('2024-08-22 04:03:00', 'bot', 5)")
    out = warehouse.dbt("test", "--select", "assert_gold_matches_silver", *NOW, ok=False)
    assert "FAIL 1 assert_gold_matches_silver" in out  # one key differs: the tampered minute
    # the documented rebuild: silver and everything downstream, from bronze
    warehouse.dbt("run", "--full-refresh", "--select", "wiki+")
    assert_gold_equals(gold_numbers(warehouse.query), warehouse.expected())
    warehouse.dbt("test", *NOW)
    # and the views fire into the rebuilt tables
    more = warehouse.work / "after-rebuild.ndjson"
    more.write_text(
        "".join(
            json.dumps(
                {
                    "meta": {
                        "id": str(uuid.uuid4()),
                        "dt": "2024-08-22T04:05:00Z",
                        "domain": "en.wikipedia.org",
                    },
                    "wiki": "enwiki",
                    "type": "edit",
                    "namespace": 0,
                    "title": f"P{i}",
                    "user": "10.0.0.1",
                    "bot": False,
                    "length": {"old": 10, "new": 4},
                }
            )
            + "\n"
            for i in range(3)
        )
    )
    warehouse.load([more])
    assert_gold_equals(gold_numbers(warehouse.query), warehouse.expected())


@pytest.mark.usefixtures("built")
def test_a_sorted_copy_holding_a_row_under_another_key_fails_its_test(
    warehouse: Warehouse,
) -> None:
    """page_edits_by_page is fed by page_edits_per_hour's inserts; an edit counted under
    another page (same sums, another key) fails the test, the repaired copy passes (the
    untouched one passed the build's tests: the module's first test, or ``built``)."""
    test = ("test", "--select", "assert_sorted_copies_match_their_source", *NOW)
    row = "'2024-08-22 04:00:00', 'enwiki', 'registered', 0, '{}', 1, 7"
    warehouse.query(f"INSERT INTO gold.page_edits_per_hour VALUES ({row.format('Moved')})")
    assert (
        warehouse.scalar("SELECT sum(edits) FROM gold.page_edits_by_page WHERE title = 'Moved'")
        == "1"
    )  # the insert fired the copy's view
    delete = "ALTER TABLE gold.{} DELETE WHERE title = '{}' SETTINGS mutations_sync = 1"
    warehouse.query(delete.format("page_edits_by_page", "Moved"))
    warehouse.query(f"INSERT INTO gold.page_edits_by_page VALUES ({row.format('Elsewhere')})")
    out = warehouse.dbt(*test, ok=False)
    assert "FAIL 1 assert_sorted_copies_match_their_source" in out  # the one hour differs
    warehouse.query(delete.format("page_edits_by_page", "Elsewhere"))
    warehouse.query(delete.format("page_edits_per_hour", "Moved"))
    assert "PASS assert_sorted_copies_match_their_source" in warehouse.dbt(*test)


@pytest.mark.usefixtures("built")
def test_source_freshness_errors_on_old_data_and_passes_on_fresh(warehouse: Warehouse) -> None:
    out = warehouse.dbt("source", "freshness", ok=False)
    assert "ERROR STALE" in out
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    fresh = warehouse.work / "fresh.ndjson"
    fresh.write_text(
        json.dumps(
            {
                "meta": {"id": str(uuid.uuid4()), "dt": now, "domain": "x"},
                "wiki": "enwiki",
                "type": "edit",
                "namespace": 0,
                "title": "T",
            }
        )
        + "\n"
    )
    warehouse.load([fresh])
    assert "PASS" in warehouse.dbt("source", "freshness")


@pytest.mark.usefixtures("built")
def test_docs_generate_describes_every_model_and_column(warehouse: Warehouse) -> None:
    warehouse.dbt("docs", "generate")
    manifest = json.loads((warehouse.work / "target" / "manifest.json").read_text())
    catalog = json.loads((warehouse.work / "target" / "catalog.json").read_text())
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    assert len(models) >= 10
    for model in models:
        assert model["description"].strip(), model["name"]
        node = catalog["nodes"][model["unique_id"]]
        for column in node["columns"]:
            documented = model["columns"].get(column, {}).get("description", "")
            assert documented.strip(), f"{model['name']}.{column}"


@pytest.mark.usefixtures("built")
def test_silver_drops_rows_past_its_retention_gold_keeps_them_and_the_tests_still_hold(
    warehouse: Warehouse,
) -> None:
    """Silver's TTL is SILVER_RETENTION_DAYS (silver_retention_days) from ingestion; an
    existing table follows a changed setting (ALTER ... MODIFY TTL, not a rebuild). Rows
    ingested before it go from silver, gold keeps them, and the reconciliations compare
    only the hours silver still holds whole, yet still catch a difference inside them.
    Last in the module: it leaves a tampered gold table behind."""

    def ttl_and_uuid() -> tuple[str, str]:
        ((engine, table_uuid),) = warehouse.query(
            "SELECT engine_full, uuid FROM system.tables "
            "WHERE database = 'silver' AND name = 'wiki'"
        )
        return engine[engine.index("TTL ") : engine.index(" SETTINGS")], table_uuid

    ttl, table_uuid = ttl_and_uuid()
    assert ttl == "TTL toDateTime(ingested_at) + toIntervalDay(90)"  # the default, in the DDL
    days = "run-operation", "apply_silver_retention", "--vars"
    out = warehouse.dbt(*days, "{silver_retention_days: 365}")
    assert "silver retention of silver.wiki set to 365 days (was 90 days)" in out
    assert ttl_and_uuid() == ("TTL toDateTime(ingested_at) + toIntervalDay(365)", table_uuid)
    # a bad value is one line naming it
    out = warehouse.dbt(*days, "{silver_retention_days: 30}", ok=False)
    assert "silver_retention_days=30 is shorter than bronze_retention_days=90" in out

    # two events ingested 200 days ago, kept under 365 days: a live one of its own hour,
    # and a late one in an hour of 2016 whose recorded events were ingested today
    long_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(days=200)).replace(microsecond=0)
    old_hour = f"{long_ago:%Y-%m-%d %H}:00:00"
    gold_hour = "SELECT sum(events) FROM gold.events_per_hour WHERE hour = '{}'"
    silver_hour = "SELECT count() FROM silver.wiki WHERE toStartOfHour(event_time) = '{}'"
    in_2016 = int(warehouse.scalar(gold_hour.format("2016-08-16 02:00:00")))
    silver_before = int(warehouse.scalar("SELECT count() FROM silver.wiki"))
    for event_time, wiki in (
        (f"{long_ago:%Y-%m-%d %H:%M:%S}", "enwiki"),
        ("2016-08-16 02:40:00", "testwiki"),
    ):
        event_id = str(uuid.uuid4())
        raw = json.dumps(
            {
                "meta": {"id": event_id, "dt": event_time.replace(" ", "T") + "Z"},
                "wiki": wiki,
                "type": "edit",
                "namespace": 0,
                "title": "Old",
                "user": "U",
            }
        )
        warehouse.query(
            "INSERT INTO bronze.wiki_raw (event_id, event_time, wiki, type, ingested_at, raw) "
            f"VALUES ('{event_id}', '{event_time}', '{wiki}', 'edit', "
            f"'{long_ago:%Y-%m-%d %H:%M:%S}', '{raw}')"
        )
    assert warehouse.scalar(gold_hour.format(old_hour)) == "1"
    assert warehouse.scalar(silver_hour.format(old_hour)) == "1"

    # back to the default: the run's end shortens the TTL, ClickHouse drops the rows
    out = warehouse.dbt("run", "--select", "wiki")
    assert "silver retention of silver.wiki set to 90 days (was 365 days)" in out
    assert ttl_and_uuid() == ("TTL toDateTime(ingested_at) + toIntervalDay(90)", table_uuid)
    # the TTL's own materialization runs in the background; this one waits for it
    warehouse.query("ALTER TABLE silver.wiki MATERIALIZE TTL SETTINGS mutations_sync = 2")
    old = "SELECT count() FROM silver.wiki WHERE ingested_at < now() - INTERVAL 90 DAY"
    assert warehouse.scalar(old) == "0"
    assert int(warehouse.scalar("SELECT count() FROM silver.wiki")) == silver_before
    assert warehouse.scalar(silver_hour.format(old_hour)) == "0"
    assert warehouse.scalar(gold_hour.format(old_hour)) == "1"  # gold keeps what silver dropped
    # the 2016 hour: gold counts the late event too, silver no longer: that hour is left out
    assert int(warehouse.scalar(gold_hour.format("2016-08-16 02:00:00"))) == in_2016 + 1
    assert int(warehouse.scalar(silver_hour.format("2016-08-16 02:00:00"))) == in_2016
    out = warehouse.dbt("test", *NOW)
    assert "ERROR=0" in out and "assert_gold_matches_silver" in out
    assert status_of(warehouse) == {"silver": "ok", "gold": "ok"}  # `wiki-events status` too

    # a difference in an hour silver holds whole is caught; one in an hour it dropped is not
    warehouse.query(
        "INSERT INTO gold.events_per_hour VALUES "
        f"('2024-08-22 04:00:00', 'bot', 5), ('{old_hour}', 'bot', 5)"
    )
    out = warehouse.dbt("test", "--select", "assert_gold_matches_silver", *NOW, ok=False)
    assert "FAIL 1 assert_gold_matches_silver" in out
    assert status_of(warehouse) == {"silver": "ok", "gold": "warn"}
    # and the hours the bound relies on are checked themselves: an hour silver has that
    # gold.hours_ingested lost would be compared though it may be incomplete
    warehouse.query(
        "ALTER TABLE gold.hours_ingested DELETE WHERE hour = '2024-08-22 04:00:00' "
        "SETTINGS mutations_sync = 2"
    )
    out = warehouse.dbt("test", "--select", "assert_hours_ingested_covers_silver", *NOW, ok=False)
    assert "FAIL 1 assert_hours_ingested_covers_silver" in out


def status_of(warehouse: Warehouse) -> dict[str, str]:
    """``wiki-events status``'s verdict on silver and gold for this warehouse."""
    lines = clickhouse_lines(Settings.from_env({"CLICKHOUSE_URL": warehouse.clickhouse_url}))
    return {line.stage: line.state for line in lines if line.stage in ("silver", "gold")}
