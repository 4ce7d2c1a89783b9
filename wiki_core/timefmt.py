"""Times: the one ISO-8601 parser, and times as the status screen and the dashboard show
them."""

from __future__ import annotations

import datetime as dt
from typing import Any


def parse_iso(value: str) -> dt.datetime:
    """An ISO-8601 time (``Z`` or an offset; none means UTC) as an aware UTC datetime.

    Raises ValueError for text that is not one, or one that UTC cannot hold (year 1 an
    hour east of UTC, year 9999 an hour west: ``astimezone`` overflows)."""
    when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if when.tzinfo is None:
        return when.replace(tzinfo=dt.UTC)
    try:
        return when.astimezone(dt.UTC)
    except OverflowError as exc:
        raise ValueError(f"{value!r} is outside the years a UTC time can hold") from exc


def iso_ms(value: str) -> int:
    """An ISO-8601 time as milliseconds since the epoch."""
    when = parse_iso(value)
    return (int(when.replace(microsecond=0).timestamp()) * 1000) + when.microsecond // 1000


def ms_text(millis: int) -> str:
    """Milliseconds since the epoch as ``YYYY-MM-DDThh:mm:ss.mmmZ``."""
    seconds, ms = divmod(millis, 1000)
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ms:03d}Z"


def age_text(seconds: float) -> str:
    """A duration for people: ``42 s``, ``7 min``, ``3.5 h``, ``12 days``."""
    seconds = max(seconds, 0)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def naive_utc(value: Any) -> Any:
    """An aware datetime as naive UTC (how ClickHouse's DateTime columns come back);
    anything else unchanged."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value
