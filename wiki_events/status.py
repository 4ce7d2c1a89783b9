"""``wiki-events status``: the pipeline's health on one screen.

Each stage reports its own lines (its ``status.py``): the reader its checkpoint, the
loader RabbitMQ's queues, bronze and the rejects, the dbt side silver, gold and
freshness, the dumps their datasets. ClickHouse is asked once here, for all of them. A
stage that cannot be reached says so; the others still report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dumps import status as dumps_status
from loader import status as loader_status
from reader import status as reader_status
from transform import status as transform_status
from wiki_core import build
from wiki_core.config import Settings, clickhouse_client
from wiki_core.health import Line
from wiki_core.unreachable import quiet_clients, sentence


@dataclass
class Report:
    lines: list[Line] = field(default_factory=list)

    @property
    def worst(self) -> str:
        states = {line.state for line in self.lines}
        return "error" if "error" in states else "warn" if "warn" in states else "ok"

    def render(self) -> str:
        marks = {"ok": "ok  ", "warn": "WARN", "error": "FAIL", "info": "    "}
        return "\n".join(f"{marks[ln.state]} {ln.stage:<11} {ln.text}" for ln in self.lines)


def clickhouse_lines(settings: Settings) -> list[Line]:
    """The lines of the stages that keep their data in ClickHouse, or one line saying
    ClickHouse does not answer."""
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
        return [
            Line(
                "clickhouse", "error", sentence("ClickHouse", settings.clickhouse_url, exc, remedy)
            )
        ]
    try:
        tables = {
            f"{db}.{name}"
            for db, name in client.query(
                "SELECT database, name FROM system.tables "
                "WHERE database IN ('bronze', 'silver', 'gold')"
            ).result_rows
        }
        return [
            *loader_status.bronze_lines(client, tables, settings),
            *transform_status.lines(client, tables, settings),
            *dumps_status.checks(client),
        ]
    finally:
        client.close()


def gather(settings: Settings) -> Report:
    quiet_clients()
    return Report(
        [
            Line("version", "info", f"wiki-events {build()}"),
            *reader_status.lines(settings),
            *loader_status.queue_lines(settings),
            *clickhouse_lines(settings),
        ]
    )
