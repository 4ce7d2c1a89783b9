"""Times as the status screen and the dashboard show them."""

from __future__ import annotations

import datetime as dt
from typing import Any


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
