"""An embedded ClickHouse with bronze migrated, filled the way the loader fills it, and
the dbt project run against it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from loader import bronze
from loader.bronze import Bronze
from wiki_core.config import clickhouse_client
from wiki_core.topology import decode_batch
from wiki_events.dbt import run_dbt

from ..conftest import ClickHouseProcess
from .expected import Expected, expected_from


def rows(base_url: str, sql: str) -> list[tuple[str, ...]]:
    """Rows as tuples of strings (JSON underneath: titles hold quotes and tabs)."""
    reply = httpx.post(
        base_url, content=sql, params={"default_format": "JSONCompactEachRow"}, timeout=60
    )
    assert reply.status_code == 200, reply.text
    return [tuple(map(str, json.loads(line))) for line in reply.text.splitlines()]


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
        client = clickhouse_client(self.clickhouse_url)
        try:
            writer = Bronze(client)
            for batch in batches:
                rows, rejects, _ = decode_batch(batch, None)
                writer.write(rows, rejects)
        finally:
            client.close()

    def expected(self) -> Expected:
        return expected_from(self.loaded)
