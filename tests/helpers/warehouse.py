"""An embedded ClickHouse with bronze migrated, filled the way the loader fills it, and
the dbt project run against it; the dashboard's warehouse built that way."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from loader import bronze
from loader.bronze import Bronze
from transform.project import run_dbt
from wiki_core.config import clickhouse_client
from wiki_core.topology import decode_batch

from .clickhouse import ClickHouseProcess
from .expected import Expected, event_time, expected_from, shifted
from .paths import RAW
from .recorded import events_of

# the busiest "wiki" in the dashboard's gold: a name no wiki has, as bad data could put there
LONG_NAME = "x" * 10_000


def rows(base_url: str, sql: str, auth: tuple[str, str] | None = None) -> list[tuple[str, ...]]:
    """Rows as tuples of strings (JSON underneath: titles hold quotes and tabs)."""
    reply = httpx.post(
        base_url,
        content=sql,
        params={"default_format": "JSONCompactEachRow"},
        auth=auth,
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    return [tuple(map(str, json.loads(line))) for line in reply.text.splitlines()]


def write_bronze(clickhouse_url: str, batches: list[bytes]) -> None:
    """Each batch of NDJSON lines into bronze as the loader writes it (as
    ``clickhouse_url``'s user): judged, duplicates dropped, rejects kept."""
    client = clickhouse_client(clickhouse_url)
    try:
        writer = Bronze(client)
        for batch in batches:
            rows, rejects, _ = decode_batch(batch, None)
            writer.write(rows, rejects)
    finally:
        client.close()


@dataclass
class Warehouse:
    server: ClickHouseProcess
    work: Path
    loaded: list[Path] = field(default_factory=list)

    @classmethod
    def start(cls, base: Path) -> Warehouse:
        house = cls(ClickHouseProcess(base / "data").start(), base)
        client = clickhouse_client(house.clickhouse_url)
        bronze.migrate(client)
        client.close()
        return house

    @property
    def clickhouse_url(self) -> str:
        return f"http://default:@127.0.0.1:{self.server.port}/default"

    def dbt(self, *args: str, ok: bool = True) -> str:
        done = run_dbt(list(args), self.clickhouse_url, work_dir=self.work, timeout=600)
        out = done.stdout + done.stderr
        assert (done.returncode == 0) is ok, out
        return out

    def query(self, sql: str) -> list[tuple[str, ...]]:
        return rows(self.server.url, sql)

    def scalar(self, sql: str) -> str:
        return self.query(sql)[0][0]

    def load(self, paths: list[Path]) -> None:
        """Into bronze exactly as the loader writes: one batch per file, duplicates dropped."""
        self.load_bytes([path.read_bytes() for path in paths])
        self.loaded += paths

    def load_bytes(self, batches: list[bytes]) -> None:
        write_bronze(self.clickhouse_url, batches)

    def expected(self) -> Expected:
        return expected_from(self.loaded)


def bronze_counts(server: ClickHouseProcess) -> tuple[int, int]:
    """(rows, distinct event ids) in bronze."""
    count, distinct = (
        clickhouse_client(server.url)
        .query(f"SELECT count(), uniqExact(event_id) FROM {bronze.RAW_TABLE}")
        .result_rows[0]
    )
    return int(count), int(distinct)


def dashboard_warehouse(base: Path) -> Warehouse:
    """The dashboard tests' gold: the recording replayed as three weeks ending a minute
    ago, frwiki four times more in the current hour (a spike against its own baseline),
    and a month ago the busiest "wiki" of all, named ``LONG_NAME``."""
    house = Warehouse.start(base)
    house.dbt("build", "--exclude", "test_type:singular")
    newest = max(event_time(e["meta"]["dt"]) for e in events_of(RAW))
    anchor = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(minutes=1)
    if anchor.minute < 3:  # keep the 2-minute recording inside one hour
        anchor = anchor.replace(minute=0) - dt.timedelta(minutes=1)
    to_now = anchor - newest
    house.load_bytes(
        [shifted(RAW, to_now - dt.timedelta(weeks=w), f"week-{w}") for w in (2, 1, 0)]
        + [shifted(RAW, to_now, f"spike-{i}", wikis={"frwiki"}) for i in range(4)]
    )
    house.query(
        f"INSERT INTO gold.wiki_totals SELECT repeat('x', {len(LONG_NAME)}), 10000000, t, t, t, "
        "uniqState(''), uniqState('') FROM (SELECT now() - INTERVAL 30 DAY AS t) GROUP BY t"
    )
    return house
