"""Gold's numbers computed straight from the recorded NDJSON, in plain Python.

The tests compare what ClickHouse's materialized views produced with these: the same
events, counted once per ``meta.id``, canaries and events silver refuses left out,
bucketed by ``meta.dt`` in UTC.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

_TEMPORARY = re.compile(r"~\d{4}-")
NAMED_TYPES = {"edit", "new", "log", "categorize", "external"}
NUMERIC_TYPES = {
    "0": "edit",
    "1": "new",
    "3": "log",
    "5": "external",
    "6": "categorize",
    "142": "flow",
}


def user_kind(user: str, bot: bool) -> str:
    if bot:
        return "bot"
    try:
        ipaddress.ip_address(user)
        return "anonymous"
    except ValueError:
        pass
    return "anonymous" if _TEMPORARY.match(user) else "registered"


def type_name(raw: str) -> str:
    return raw if raw in NAMED_TYPES else NUMERIC_TYPES.get(raw, "other")


def event_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.UTC)


@dataclass
class Expected:
    """Counts keyed the way gold keys them (times as 'YYYY-MM-DD hh:mm:00' strings)."""

    per_minute: Counter[str] = field(default_factory=Counter)
    per_hour: Counter[str] = field(default_factory=Counter)
    per_minute_wiki: Counter[tuple[str, str]] = field(default_factory=Counter)
    per_hour_wiki: Counter[tuple[str, str]] = field(default_factory=Counter)
    per_wiki: Counter[str] = field(default_factory=Counter)
    per_user_kind: Counter[str] = field(default_factory=Counter)
    per_type: Counter[str] = field(default_factory=Counter)
    bytes_added: int = 0
    bytes_removed: int = 0
    new_pages: int = 0
    page_edits: Counter[tuple[str, str]] = field(default_factory=Counter)
    editor_edits: Counter[tuple[str, str]] = field(default_factory=Counter)
    seen: set[str] = field(default_factory=set)

    @property
    def total(self) -> int:
        return sum(self.per_wiki.values())

    def add(self, event: dict) -> None:  # type: ignore[type-arg]
        meta = event.get("meta") or {}
        event_id = meta.get("id")
        if not event_id or event_id in self.seen:
            return
        self.seen.add(event_id)
        if meta.get("domain") == "canary":
            return
        wiki, kind = event.get("wiki") or "", event.get("type")
        raw_type = "" if kind is None else str(kind)
        if not wiki or not raw_type or "namespace" not in event or "title" not in event:
            return
        when = event_time(meta["dt"])
        minute = when.strftime("%Y-%m-%d %H:%M:00")
        hour = when.strftime("%Y-%m-%d %H:00:00")
        self.per_minute[minute] += 1
        self.per_hour[hour] += 1
        self.per_minute_wiki[(minute, wiki)] += 1
        self.per_hour_wiki[(hour, wiki)] += 1
        self.per_wiki[wiki] += 1
        self.per_user_kind[user_kind(event.get("user") or "", bool(event.get("bot")))] += 1
        name = type_name(raw_type)
        self.per_type[name] += 1
        length = event.get("length") or {}
        delta = (length.get("new") or 0) - (length.get("old") or 0)
        self.bytes_added += max(delta, 0)
        self.bytes_removed += max(-delta, 0)
        self.new_pages += name == "new"
        if name in ("edit", "new"):
            self.page_edits[(wiki, event["title"])] += 1
        if name in ("edit", "new"):  # an editor's edits: edits and page creations
            self.editor_edits[(wiki, event.get("user") or "")] += 1


def expected_from(paths: Iterable[Path], into: Expected | None = None) -> Expected:
    result = into or Expected()
    for path in paths:
        with open(path, "rb") as lines:
            for line in lines:
                if line.strip():
                    result.add(json.loads(line))
    return result


def gold_numbers(query) -> Expected:  # type: ignore[no-untyped-def]
    """The same numbers read back from gold, merging sums with GROUP BY as analysts do.

    ``query(sql)`` returns rows as tuples of strings (TSV).
    """
    got = Expected()

    def fmt(value: str) -> str:
        return value[:19]

    for minute, n in query("SELECT minute, sum(events) FROM gold.events_per_minute GROUP BY 1"):
        got.per_minute[fmt(minute)] = int(n)
    for hour, n in query("SELECT hour, sum(events) FROM gold.events_per_hour GROUP BY 1"):
        got.per_hour[fmt(hour)] = int(n)
    for minute, wiki, n in query(
        "SELECT minute, wiki, sum(events) FROM gold.events_per_minute_wiki GROUP BY 1, 2"
    ):
        got.per_minute_wiki[(fmt(minute), wiki)] = int(n)
    for hour, wiki, n in query(
        "SELECT hour, wiki, sum(events) FROM gold.events_per_hour_wiki GROUP BY 1, 2"
    ):
        got.per_hour_wiki[(fmt(hour), wiki)] = int(n)
    for wiki, n in query("SELECT wiki, sum(events) FROM gold.wiki_totals GROUP BY 1"):
        got.per_wiki[wiki] = int(n)
    for kind, n in query("SELECT user_kind, sum(events) FROM gold.events_per_hour GROUP BY 1"):
        got.per_user_kind[kind] = int(n)
    for name, n in query("SELECT type, sum(events) FROM gold.events_per_hour_wiki GROUP BY 1"):
        got.per_type[name] = int(n)
    ((added, removed, new),) = query(
        "SELECT sum(bytes_added), sum(bytes_removed), sum(new_pages) FROM gold.events_per_hour_wiki"
    )
    got.bytes_added, got.bytes_removed, got.new_pages = int(added), int(removed), int(new)
    for wiki, title, n in query(
        "SELECT wiki, title, sum(edits) FROM gold.page_edits_per_hour GROUP BY 1, 2"
    ):
        got.page_edits[(wiki, title)] = int(n)
    for wiki, user, n in query(
        "SELECT wiki, user, sum(edits) FROM gold.editor_edits_per_hour GROUP BY 1, 2"
    ):
        got.editor_edits[(wiki, user)] = int(n)
    return got


def assert_gold_equals(got: Expected, want: Expected) -> None:
    for name in (
        "per_minute",
        "per_hour",
        "per_minute_wiki",
        "per_hour_wiki",
        "per_wiki",
        "per_user_kind",
        "per_type",
        "bytes_added",
        "bytes_removed",
        "new_pages",
        "page_edits",
        "editor_edits",
    ):
        assert getattr(got, name) == getattr(want, name), name


def shifted(path: Path, delta: dt.timedelta, salt: str, wikis: set[str] | None = None) -> bytes:
    """The recording's events moved in time by ``delta``, with fresh ``meta.id``s (so the
    same real events can stand for another week), optionally only some wikis."""
    import uuid

    out = []
    with open(path, "rb") as lines:
        for line in lines:
            event = json.loads(line)
            if wikis is not None and event.get("wiki") not in wikis:
                continue
            meta = event["meta"]
            meta["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{salt}:{meta['id']}"))
            when = event_time(meta["dt"]) + delta
            meta["dt"] = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
            out.append(json.dumps(event))
    return ("\n".join(out) + "\n").encode()
