"""What gold should hold after loading generated dumps: page views per hour from the
generator's own counts, and the attention spikes as the query-time window defined them
(the reference the stored spikes are tested against, and measured against in
bench/bench_spikes.py)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from dumps.domains import BY_CODE

from .dumps_files import HourStats

H = dt.timedelta(hours=1)


def expected_hours(files: dict[dt.datetime, HourStats]) -> dict[tuple[dt.datetime, str, str], int]:
    """Views per (hour they happened, wiki, access) from the generator's own counts."""
    out: dict[tuple[dt.datetime, str, str], int] = defaultdict(int)
    for file_hour, stats in files.items():
        for code, views in stats.views_by_code.items():
            info = BY_CODE[code]
            out[((file_hour - H).replace(tzinfo=None), info.wiki, info.access)] += views
    return dict(out)


# the view as it was before the spikes were stored (a window over every page row of
# silver at query time), with the dbt vars' defaults: the reference for the stored ones
QUERY_TIME_SPIKES = """
SELECT hour, wiki, title, views, edits, baseline_views, kind FROM (
    SELECT hour, wiki, title, views, edits, baseline_views,
        multiIf(views >= 500 AND views >= 5 * baseline_views AND edits = 0,
                'views_without_edits',
                edits >= 3 AND views < 10, 'edits_without_views', '') AS kind
    FROM (
        SELECT hour, wiki, title, views, edits,
            sum(views) OVER (PARTITION BY wiki, title ORDER BY hour
                             RANGE BETWEEN 86400 PRECEDING AND 1 PRECEDING) / 24
                AS baseline_views
        FROM gold.page_views_edits_hour
        WHERE (hour, wiki) IN (SELECT DISTINCT hour, wiki FROM gold.pageviews_hour_wiki)
    )
)
WHERE kind != ''
"""
