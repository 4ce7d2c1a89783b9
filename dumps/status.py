"""``wiki-events status`` lines for the dumps: per dataset, the newest period loaded, how
late it is, and the files whose last load failed.

Returns ``(stage, state, text)`` tuples in the shape of ``wiki_events/status.py``'s
lines; nothing when the dumps were never set up here (no ledger table), one line saying
what to run when the ledger is empty.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from wiki_core.timefmt import age_text

from . import schema

# how far behind a dataset may be before it warns: the site publishes hours late (Oozie's
# SLA was 6 h), and a day's mediacounts some hours after midnight
LATE = {"pageviews": 8 * 3600, "projectviews": 8 * 3600, "mediacounts": 2 * 86400}
STEP = {"pageviews": 3600, "projectviews": 3600, "mediacounts": 86400}


def checks(client: Any, now: dt.datetime | None = None) -> list[tuple[str, str, str]]:
    exists = client.command(
        "SELECT count() FROM system.tables WHERE database = {db:String} AND name = 'dumps_files'",
        parameters={"db": schema.DATABASE},
    )
    if not int(exists):
        return []
    now = now or dt.datetime.now(dt.UTC)
    rows = client.query(
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
    if not rows:
        return [
            (
                "dumps",
                "info",
                "no file loaded yet: `wiki-events pageviews --from YYYY-MM-DDTHH` "
                "(or `mediacounts --from YYYY-MM-DD`), or `--follow`",
            )
        ]
    lines = []
    for dataset, loaded, newest, failed, failed_count in rows:
        if not loaded:
            lines.append((dataset, "warn", f"no file loaded yet; {failed_count} failed"))
            continue
        newest = newest.replace(tzinfo=dt.UTC)
        if dataset == "mediacounts":
            covered_until = newest + dt.timedelta(seconds=STEP[dataset])
            shown = f"newest day {newest:%Y-%m-%d}"
        else:  # the file's hour is the end of the hour its views happened in
            covered_until = newest
            shown = f"views up to {newest:%Y-%m-%d %H:%M} UTC"
        behind = (now - covered_until).total_seconds()
        state = "warn" if behind > LATE[dataset] or failed_count else "ok"
        text = f"{shown}, {age_text(behind)} behind; {loaded:,} file(s) loaded"
        if failed_count:
            text += f"; {failed_count} failed: {', '.join(failed)}"
        lines.append((dataset, state, text))
    return lines
