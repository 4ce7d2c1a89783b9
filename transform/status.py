"""The dbt side's face in ``wiki-events status`` and ``wiki-events health dbt``: silver
and gold against bronze, freshness against the dbt source's own thresholds
(``wiki_dbt/models/staging/_staging__sources.yml``), and whether dbt built this image's
models (the marker). Also what ``up`` asks of gold: whether it exists, how much it holds.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from wiki_core.config import Settings, clickhouse_client
from wiki_core.health import Line, Verdict
from wiki_core.timefmt import age_text, naive_utc

from . import marker
from .project import PROJECT

PERIOD_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def freshness_thresholds() -> tuple[float, float]:
    """(warn, error) seconds, read from the dbt source so they live in one place."""
    import yaml  # type: ignore[import-untyped]

    doc = yaml.safe_load((PROJECT / "models/staging/_staging__sources.yml").read_text())
    table = next(t for s in doc["sources"] for t in s["tables"] if t["name"] == "wiki_raw")
    config = table["config"]["freshness"]

    def seconds(rule: dict[str, Any]) -> float:
        return float(rule["count"]) * PERIOD_SECONDS[rule["period"]]

    return seconds(config["warn_after"]), seconds(config["error_after"])


def lines(client: Any, tables: set[str], settings: Settings) -> list[Line]:
    """The live edits' silver, gold and freshness (nothing before bronze exists). Silver
    is compared with bronze over the rows bronze still holds, gold with silver over the
    hours silver still holds whole (their retentions; as wiki_dbt's reconciliations do)."""
    if "bronze.wiki_raw" not in tables:
        return []
    # rows ingested inside bronze's retention less a day: silver keeps them too
    held = f"ingested_at >= now64(3) - INTERVAL {settings.retention_days - 1} DAY"
    ((count, held_count, newest, last_insert),) = client.query(
        # freshness from events not dated in the future (the judge lets through up to
        # its tolerance; rows from before it may be further ahead)
        f"SELECT count(), countIf({held}), maxIf(event_time, event_time <= now64(3)), "
        "max(ingested_at) FROM bronze.wiki_raw"
    ).result_rows
    found = [
        silver_line(client, tables, held, held_count, settings),
        gold_line(client, tables, settings),
    ]
    if count:
        found.append(freshness_line(newest, last_insert))
    return found


def silver_line(
    client: Any, tables: set[str], held: str, held_count: int, settings: Settings
) -> Line:
    if "silver.wiki" not in tables:
        return Line("silver", "warn", "silver.wiki missing: run `dbt build` in wiki_dbt/")
    ((silver, silver_held),) = client.query(
        f"SELECT count(), countIf({held}) FROM silver.wiki"
    ).result_rows
    ((invalid, invalid_held),) = client.query(
        f"SELECT count(), countIf({held}) FROM silver.wiki_invalid"
    ).result_rows
    return Line(
        "silver",
        "ok" if silver_held + invalid_held == held_count else "warn",
        f"{silver:,} events, {invalid:,} left out (silver.wiki_invalid); kept "
        f"{settings.silver_retention_days} days",
    )


def gold_line(client: Any, tables: set[str], settings: Settings) -> Line:
    if "gold.wiki_totals" not in tables:
        return Line("gold", "warn", "gold missing: run `dbt build` in wiki_dbt/")
    gold = client.command("SELECT sum(events) FROM gold.wiki_totals")
    wikis = client.command("SELECT uniqExact(wiki) FROM gold.wiki_totals")
    models = sum(1 for t in tables if t.startswith("gold.") and not t.endswith("_mv"))
    agrees = "silver.wiki" not in tables or gold_agrees_with_silver(
        client, tables, settings.silver_retention_days
    )
    return Line(
        "gold",
        "ok" if agrees else "warn",
        f"{int(gold):,} events in {int(wikis):,} wikis; {models} gold tables and views",
    )


def freshness_line(newest: Any, last_insert: Any) -> Line:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    event_age = (now - naive_utc(newest)).total_seconds()
    lag = (naive_utc(last_insert) - naive_utc(newest)).total_seconds()
    warn, error = freshness_thresholds()
    return Line(
        "freshness",
        "error" if event_age > error else "warn" if event_age > warn else "ok",
        f"newest event {age_text(event_age)} old (dbt source freshness: warn "
        f"after {age_text(warn)}, error after {age_text(error)}); "
        f"last insert {age_text((now - naive_utc(last_insert)).total_seconds())} "
        f"ago; ingestion lag {age_text(max(lag, 0))}",
    )


def gold_agrees_with_silver(client: Any, tables: set[str], silver_days: int) -> bool:
    """Gold's events equal silver's over the hours silver still holds whole: those whose
    first event (gold.hours_ingested) arrived inside silver's retention less a day, and
    hours silver never had (wiki_dbt/macros/retention.sql silver_holds_hour). Models built
    before hours_ingested existed: every hour, silver had no retention then."""
    if "gold.events_per_hour" not in tables:
        return False
    held = ""
    if "gold.hours_ingested" in tables:
        held = (
            "NOT IN (SELECT hour FROM gold.hours_ingested GROUP BY hour HAVING "
            f"min(first_ingested_at) < now64(3) - INTERVAL {silver_days - 1} DAY)"
        )
    hour = "toStartOfHour(toDateTime(event_time, 'UTC'))"
    gold = client.command(
        f"SELECT sum(events) FROM gold.events_per_hour {'WHERE hour ' + held if held else ''}"
    )
    silver = client.command(
        f"SELECT count() FROM silver.wiki {f'WHERE {hour} {held}' if held else ''}"
    )
    return int(gold) == int(silver)


def gold_total(url: str) -> tuple[int, float | None]:
    """(events in gold, seconds since the newest event) or (-1, None) if unavailable."""
    try:
        client = clickhouse_client(url, connect_timeout=2, send_receive_timeout=5)
        try:
            row = client.query(
                "SELECT sum(events), dateDiff('millisecond', max(last_event_at), now64(3)) "
                "FROM gold.wiki_totals"
            ).result_rows[0]
        finally:
            client.close()
        return int(row[0]), (row[1] / 1000 if row[0] else None)
    except Exception:  # noqa: BLE001 - progress is best effort
        return -1, None


def gold_exists(url: str) -> bool:
    try:
        client = clickhouse_client(url)
        try:
            return bool(client.command("EXISTS TABLE gold.wiki_totals"))
        finally:
            client.close()
    except Exception:  # noqa: BLE001
        return False


def health(found: marker.Marker | None = None) -> Verdict:
    """Healthy when the dbt marker names the models this image carries (and the dumps'
    when their compose profile is on)."""
    found = found or marker.Marker.from_env()
    return marker.verdict(found.path, PROJECT, found.dumps)
