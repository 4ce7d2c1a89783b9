"""``wiki-events status`` lines for the dumps: per dataset, the newest period loaded, how
late it is, and the files whose last load failed.

Returns ``status`` lines (``wiki_core.health.Line``); nothing when the dumps were never
set up here (no ledger table), one line saying what to run when the ledger is empty.

``health`` is a follower's liveness (``wiki-events health dumps pageviews``, the
followers' Docker healthcheck): unhealthy when its newest loaded file is later than the
dumps' publication delay explains (``LATE``) by more than ``DUMPS_STALE_SECONDS``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from wiki_core.config import Settings, clickhouse_client, environment, number
from wiki_core.health import Line, Verdict, unreachable, waiting_for
from wiki_core.timefmt import age_text

from . import schema

# how far behind a dataset may be before it warns: the site publishes hours late (Oozie's
# SLA was 6 h), and a day's mediacounts some hours after midnight
LATE = {"pageviews": 8 * 3600, "projectviews": 8 * 3600, "mediacounts": 2 * 86400}
STEP = {"pageviews": 3600, "projectviews": 3600, "mediacounts": 86400}
# what each follower loads (its command's name first)
FOLLOWED = {"pageviews": ("pageviews", "projectviews"), "mediacounts": ("mediacounts",)}
STALE_DEFAULT = 4 * 3600  # DUMPS_STALE_SECONDS: late beyond LATE by this = stopped loading


def _ledger_exists(client: Any) -> bool:
    exists = client.command(
        "SELECT count() FROM system.tables WHERE database = {db:String} AND name = 'dumps_files'",
        parameters={"db": schema.DATABASE},
    )
    return bool(int(exists))


def checks(client: Any, now: dt.datetime | None = None) -> list[Line]:
    if not _ledger_exists(client):
        return []
    now = now or dt.datetime.now(dt.UTC)
    rows = _datasets(client)
    if not rows:
        return [
            Line(
                "dumps",
                "info",
                "no file loaded yet: `wiki-events pageviews --from YYYY-MM-DDTHH` "
                "(or `mediacounts --from YYYY-MM-DD`), or `--follow`",
            )
        ]
    lines = []
    for dataset, loaded, newest, failed, failed_count in rows:
        if not loaded:
            lines.append(Line(dataset, "warn", f"no file loaded yet; {failed_count} failed"))
            continue
        shown, behind = _behind(dataset, newest, now)
        state = "warn" if behind > LATE[dataset] or failed_count else "ok"
        text = f"{shown}, {age_text(behind)} behind; {loaded:,} file(s) loaded"
        if failed_count:
            text += f"; {failed_count} failed: {', '.join(failed)}"
        lines.append(Line(dataset, state, text))
    return lines


def _datasets(client: Any) -> list[Any]:
    """Per dataset: files loaded, the newest period loaded, failed files (10) and their count."""
    return list(
        client.query(
            f"""
        SELECT dataset,
               countIf(has_done) AS loaded,
               maxIf(period, has_done) AS newest,
               groupArrayIf(10)(name, last_state = 'failed') AS failed,
               countIf(last_state = 'failed') AS failed_count
        FROM (
            SELECT dataset, name, argMax(state, started_at) AS last_state,
                   countIf(state = 'done') > 0 AS has_done, any(period) AS period
            FROM {schema.LEDGER} FINAL
            GROUP BY dataset, name
        )
        GROUP BY dataset ORDER BY dataset
        """
        ).result_rows
    )


def _behind(dataset: str, newest: dt.datetime, now: dt.datetime) -> tuple[str, float]:
    """What the newest file covers, in words, and how many seconds ``now`` is past it."""
    newest = newest.replace(tzinfo=dt.UTC)
    if dataset == "mediacounts":
        covered_until = newest + dt.timedelta(seconds=STEP[dataset])
        shown = f"newest day {newest:%Y-%m-%d}"
    else:  # the file's hour is the end of the hour its views happened in
        covered_until = newest
        shown = f"views up to {newest:%Y-%m-%d %H:%M} UTC"
    return shown, (now - covered_until).total_seconds()


def verdict(rows: list[Any], follower: str, beyond: float, now: dt.datetime) -> Verdict:
    """The follower ``follower`` (pageviews, mediacounts) from ``_datasets``' rows:
    unhealthy when one of its datasets has nothing loaded, or its newest file is later
    than ``LATE`` explains by more than ``beyond`` seconds."""
    by_dataset = {row[0]: row for row in rows}
    said = []
    for dataset in FOLLOWED[follower]:
        row = by_dataset.get(dataset)
        if row is None or not row[1]:
            failed = f" ({row[4]} failed: {', '.join(row[3])})" if row and row[4] else ""
            return Verdict(False, f"{dataset}: no file loaded yet{failed}")
        shown, behind = _behind(dataset, row[2], now)
        limit = LATE[dataset] + beyond
        if behind > limit:
            return Verdict(
                False,
                f"{dataset}: {shown}, {age_text(behind)} behind, more than the "
                f"{age_text(LATE[dataset])} the dumps' publication delay explains plus "
                f"DUMPS_STALE_SECONDS ({age_text(beyond)}): the follower stopped loading, or "
                "the dumps site stopped publishing",
            )
        said.append(f"{dataset}: {shown}, {age_text(behind)} behind")
    return Verdict(True, "; ".join(said))


def stale_seconds(env: dict[str, str] | None = None) -> float:
    return number(environment() if env is None else env, "DUMPS_STALE_SECONDS", STALE_DEFAULT)


def health(
    settings: Settings, follower: str, beyond: float, now: dt.datetime | None = None
) -> Verdict:
    """A follower's liveness, asked of ClickHouse as the follower itself (the dumps user)."""
    url = settings.dumps_clickhouse_url or settings.clickhouse_url
    try:
        client = clickhouse_client(url)
        try:
            rows = _datasets(client) if _ledger_exists(client) else None
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001 - any failure to look is said once
        if unreachable(exc):  # ClickHouse down: not the follower's failure
            return waiting_for("ClickHouse", url, exc, "the dumps follower")
        return Verdict(False, f"cannot judge: {str(exc).splitlines()[0] if str(exc) else exc!r}")
    if rows is None:
        return Verdict(False, f"no {schema.LEDGER}: the dumps' tables were never made here")
    return verdict(rows, follower, beyond, now or dt.datetime.now(dt.UTC))
