"""``wiki-events status``: the pipeline's health on one screen.

Each stage is asked directly: the reader's checkpoint file, RabbitMQ's queues, ClickHouse's
bronze, silver and gold tables and rejects, and freshness against the thresholds of the
dbt source (``wiki_dbt/models/staging/_staging__sources.yml``). A stage that cannot be
reached says so; the others still report.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import pika
import pika.exceptions

from wiki_core.config import Settings, clickhouse_client
from wiki_core.timefmt import age_text, naive_utc
from wiki_core.topology import LOADER_QUEUE, QUARANTINE
from wiki_core.unreachable import quiet_clients, sentence

from .dbt import PROJECT

PERIOD_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass
class Line:
    stage: str
    state: str  # ok, warn, error, info
    text: str


@dataclass
class Report:
    lines: list[Line] = field(default_factory=list)

    def add(self, stage: str, state: str, text: str) -> None:
        self.lines.append(Line(stage, state, text))

    @property
    def worst(self) -> str:
        states = {line.state for line in self.lines}
        return "error" if "error" in states else "warn" if "warn" in states else "ok"

    def render(self) -> str:
        marks = {"ok": "ok  ", "warn": "WARN", "error": "FAIL", "info": "    "}
        return "\n".join(f"{marks[ln.state]} {ln.stage:<11} {ln.text}" for ln in self.lines)


def freshness_thresholds() -> tuple[float, float]:
    """(warn, error) seconds, read from the dbt source so they live in one place."""
    import yaml  # type: ignore[import-untyped]

    doc = yaml.safe_load((PROJECT / "models/staging/_staging__sources.yml").read_text())
    table = next(t for s in doc["sources"] for t in s["tables"] if t["name"] == "wiki_raw")
    config = table["config"]["freshness"]

    def seconds(rule: dict[str, Any]) -> float:
        return float(rule["count"]) * PERIOD_SECONDS[rule["period"]]

    return seconds(config["warn_after"]), seconds(config["error_after"])


def check_reader(report: Report, settings: Settings) -> None:
    path = settings.checkpoint_path
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        report.add("reader", "info", f"no checkpoint yet ({path}): the reader has not run here")
        return
    except ValueError:
        report.add("reader", "error", f"checkpoint {path} is not valid JSON")
        return
    saved = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    age = (dt.datetime.now(dt.UTC) - saved).total_seconds()
    last = str(data.get("last_event_id", ""))
    report.add(
        "reader",
        "ok" if age < 60 else "warn",
        f"checkpoint saved {age_text(age)} ago; resumes after {last[:90]}",
    )


def check_queues(report: Report, settings: Settings) -> None:
    params = pika.URLParameters(settings.amqp_url)
    params.socket_timeout = 3
    params.connection_attempts = 1
    try:
        conn = pika.BlockingConnection(params)
    except (pika.exceptions.AMQPError, OSError) as exc:
        remedy = (
            "start it (`rabbitmq-server -detached`) or set AMQP_URL; without a broker, "
            "`wiki-events up` hands events straight to the loader"
        )
        report.add("queue", "warn", sentence("RabbitMQ", settings.amqp_url, exc, remedy))
        return
    try:
        for name in (LOADER_QUEUE, QUARANTINE):
            channel = conn.channel()
            try:
                q = channel.queue_declare(name, passive=True).method
            except pika.exceptions.ChannelClosedByBroker:
                report.add("queue", "info", f"{name}: not declared yet")
                continue
            state = "ok"
            if name == LOADER_QUEUE and q.message_count > 100 and q.consumer_count == 0:
                state = "warn"
            if name == QUARANTINE and q.message_count:
                state = "warn"
            report.add(
                "queue",
                state,
                f"{name}: {q.message_count:,} message(s) waiting, {q.consumer_count} consumer(s)",
            )
    finally:
        conn.close()


def check_clickhouse(report: Report, settings: Settings) -> None:
    try:
        client = clickhouse_client(
            settings.clickhouse_url, connect_timeout=3, send_receive_timeout=30
        )
        client.command("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - report, do not raise
        remedy = (
            "start the embedded one with `wiki-events clickhouse` (or everything with "
            "`wiki-events up`), or set CLICKHOUSE_URL to a running server"
        )
        report.add(
            "clickhouse", "error", sentence("ClickHouse", settings.clickhouse_url, exc, remedy)
        )
        return
    try:
        tables = {
            f"{db}.{name}"
            for db, name in client.query(
                "SELECT database, name FROM system.tables "
                "WHERE database IN ('bronze', 'silver', 'gold')"
            ).result_rows
        }
        if "bronze.wiki_raw" in tables:
            check_edit_layers(report, client, tables, settings)
        else:
            report.add("bronze", "info", "no bronze.wiki_raw yet: the loader creates it at start")
        from dumps.status import checks as dumps_checks  # the dumps (issue 14), if loaded

        for stage, state, text in dumps_checks(client):
            report.add(stage, state, text)
    finally:
        client.close()


def check_edit_layers(report: Report, client: Any, tables: set[str], settings: Settings) -> None:
    """The live edits' bronze, rejects, silver, gold and freshness. Silver is compared with
    bronze over the rows bronze still holds, gold with silver over the hours silver still
    holds whole (their retentions; as wiki_dbt's reconciliations do)."""
    # rows ingested inside bronze's retention less a day: silver keeps them too
    held = f"ingested_at >= now64(3) - INTERVAL {settings.retention_days - 1} DAY"
    ((count, held_count, newest, last_insert),) = client.query(
        # freshness from events not dated in the future (the judge lets through up to
        # its tolerance; rows from before it may be further ahead)
        f"SELECT count(), countIf({held}), maxIf(event_time, event_time <= now64(3)), "
        "max(ingested_at) FROM bronze.wiki_raw"
    ).result_rows
    report.add("bronze", "ok", f"{count:,} events")
    rejects = client.query(
        "SELECT reason, count() FROM bronze.wiki_rejects GROUP BY reason ORDER BY 2 DESC"
    ).result_rows
    total_rejects = sum(n for _, n in rejects)
    report.add(
        "rejects",
        "warn" if total_rejects else "ok",
        f"{total_rejects:,}"
        + (": " + ", ".join(f"{r} {n:,}" for r, n in rejects) if rejects else ""),
    )
    if "silver.wiki" in tables:
        ((silver, silver_held),) = client.query(
            f"SELECT count(), countIf({held}) FROM silver.wiki"
        ).result_rows
        ((invalid, invalid_held),) = client.query(
            f"SELECT count(), countIf({held}) FROM silver.wiki_invalid"
        ).result_rows
        state = "ok" if silver_held + invalid_held == held_count else "warn"
        report.add(
            "silver",
            state,
            f"{silver:,} events, {invalid:,} left out (silver.wiki_invalid); kept "
            f"{settings.silver_retention_days} days",
        )
    else:
        report.add("silver", "warn", "silver.wiki missing: run `dbt build` in wiki_dbt/")
    if "gold.wiki_totals" in tables:
        gold = client.command("SELECT sum(events) FROM gold.wiki_totals")
        wikis = client.command("SELECT uniqExact(wiki) FROM gold.wiki_totals")
        models = sum(1 for t in tables if t.startswith("gold.") and not t.endswith("_mv"))
        agrees = "silver.wiki" not in tables or gold_agrees_with_silver(
            client, tables, settings.silver_retention_days
        )
        report.add(
            "gold",
            "ok" if agrees else "warn",
            f"{int(gold):,} events in {int(wikis):,} wikis; {models} gold tables and views",
        )
    else:
        report.add("gold", "warn", "gold missing: run `dbt build` in wiki_dbt/")
    if count:
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        event_age = (now - naive_utc(newest)).total_seconds()
        lag = (naive_utc(last_insert) - naive_utc(newest)).total_seconds()
        warn, error = freshness_thresholds()
        state = "error" if event_age > error else "warn" if event_age > warn else "ok"
        report.add(
            "freshness",
            state,
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


def gather(settings: Settings) -> Report:
    quiet_clients()
    report = Report()
    check_reader(report, settings)
    check_queues(report, settings)
    check_clickhouse(report, settings)
    return report


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
