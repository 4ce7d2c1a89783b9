"""The event judge: the one function that decides what a line from the stream is.

``judge(raw)`` parses an event's bytes once and returns a verdict:

- ``Valid``: the line, with the keys bronze stores beside it (``meta.id``, ``meta.dt``
  in milliseconds, ``wiki``, ``type``);
- ``CANARY``: Wikimedia's monitoring event (``meta.domain == "canary"``), counted and
  dropped;
- ``Reject``: not JSON, no ``meta`` / ``meta.id`` / ``meta.dt``, a ``meta.dt`` that is
  not a time every layer can hold (1970-2105) or is more than ``FUTURE_TOLERANCE_MS``
  ahead of this machine's clock, or a ``wiki`` that is no wiki's database name — with
  the reason.

Where it runs, once per event. The reader judges each event as it arrives (it needs the
wiki for the routing key and its filters anyway) and hands its sink batches of verdicts,
not bytes to re-read:

- without a broker, the direct hand-off (``loader.direct``) writes the ``Valid`` rows and
  the rejects to bronze as they are;
- with RabbitMQ, the publisher writes the keys into the message beside the lines
  (``wiki_core.topology.encode_batch``), and the loader reads them back
  (``decode_batch``) instead of parsing every event a second time.

Only a message without keys (from another publisher, or sent before this format) is
judged line by line in the loader, by this same function. Silver's SQL then decides only
what needs ClickHouse's types (``wiki_dbt/macros/recentchange.sql``); the wiki's shape
is checked both here and there (``WIKI_PATTERN``), for rows that reached bronze before.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import re
import time
from dataclasses import dataclass
from typing import Final

import orjson

from .timefmt import parse_iso

# meta.dt's second as EventStreams writes it (then "Z", or milliseconds and "Z")
_SECOND = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
# the years every layer can hold: silver and gold bucket meta.dt into DateTime (minutes,
# hours: 1970 to 2106-02-07), and outside it ClickHouse wraps (1950 became 2086 in gold)
YEARS = range(1970, 2106)
# how far ahead of this machine's clock meta.dt may be (clock skew) before the event is
# quarantined: a future-dated event would also make every freshness figure read "0 s old"
FUTURE_TOLERANCE_MS = 10 * 60 * 1000
# a wiki's database name (enwiki, wikidatawiki, zh_min_nanwiki): the longest in the
# recordings has 14 characters; 64 leaves room and keeps junk out of a LowCardinality key.
# Silver's invalid view uses the same rule (macros/recentchange.sql: invalid_reason).
WIKI_PATTERN = r"^[a-z0-9_]{1,64}$"
_WIKI = re.compile(WIKI_PATTERN)
# the milliseconds of YEARS: what a judged meta.dt can be
MILLIS = range(0, calendar.timegm((YEARS.stop, 1, 1, 0, 0, 0)) * 1000)


def keys_hold(event_id: object, millis: object, wiki: object, kind: object) -> bool:
    """Whether keys that came from elsewhere (a message's keys line) are ones ``judge``
    could have given: a message from another publisher cannot carry a time bronze would
    wrap or a wiki silver would refuse past the judge."""
    return (
        type(event_id) is str
        and bool(event_id)
        and type(millis) is int
        and millis in MILLIS
        and type(wiki) is str
        and (not wiki or _WIKI.match(wiki) is not None)
        and type(kind) is str
    )


@dataclass(slots=True)
class Valid:
    """An event bronze can store: its line as received and the keys stored beside it."""

    event_id: str
    millis: int  # meta.dt, milliseconds since the epoch (UTC)
    wiki: str  # "" when the event has none (silver leaves it out, with the reason)
    type: str
    raw: bytes  # the event's line: never decoded, inserted as it is


@dataclass(slots=True)
class Reject:
    reason: str  # a short kebab-case word: malformed-json, missing-key, bad-meta-dt...
    detail: str
    raw: bytes
    source: str = "loader"  # the stage that rejected it: reader, loader

    @property
    def text(self) -> str:
        """``reason: detail``, as logs and the quarantine's ``x-reason`` header show it."""
        return f"{self.reason}: {self.detail}" if self.detail else self.reason


class _Canary:
    def __repr__(self) -> str:
        return "CANARY"


CANARY: Final = _Canary()

Verdict = Valid | Reject | _Canary


def judge(raw: bytes, now_ms: int | None = None) -> Verdict:
    """What ``raw`` (one event's JSON bytes) is: valid with its keys, a canary, or a
    reject with its reason. ``now_ms``: this machine's time (default: now), for the
    future check."""
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Reject("malformed-json", str(exc), raw)
    meta = event.get("meta") if isinstance(event, dict) else None
    if not isinstance(meta, dict):
        return Reject("missing-key", "meta", raw)
    event_id = meta.get("id")
    if not isinstance(event_id, str) or not event_id:
        return Reject("missing-key", "meta.id", raw)
    when = meta.get("dt")
    if when is None or when == "":
        return Reject("missing-key", "meta.dt", raw)
    try:
        millis = clickhouse_millis(when)
    except ValueError as exc:
        return Reject("bad-meta-dt", str(exc), raw)
    ahead = millis - (time.time_ns() // 1_000_000 if now_ms is None else now_ms)
    if ahead > FUTURE_TOLERANCE_MS:
        detail = f"meta.dt {when!r} is {ahead / 1000:.0f} s ahead of this machine's clock"
        return Reject("future-meta-dt", detail, raw)
    if meta.get("domain") == "canary":
        return CANARY
    wiki = event.get("wiki")
    if wiki is None:
        wiki = ""
    elif not isinstance(wiki, str) or (wiki and not _WIKI.match(wiki)):
        return Reject("bad-wiki", f"wiki {str(wiki)[:100]!r} is not a wiki's database name", raw)
    kind = event.get("type")
    if b"\n" in raw:  # JSON allows no raw newline inside strings: keep one event a line
        raw = orjson.dumps(event)
    return Valid(event_id, millis, wiki, "" if kind is None else str(kind), raw)


@functools.lru_cache(maxsize=4096)
def _second_epoch(text: str) -> int | None:
    """'YYYY-MM-DDThh:mm:ss' as seconds since the epoch; None when it is not that shape,
    not a real time, or outside ``YEARS``. Cached: events arrive in time order, so most
    share their second with the one before."""
    if not _SECOND.fullmatch(text) or int(text[:4]) not in YEARS:
        return None
    try:
        when = dt.datetime(
            int(text[:4]),
            int(text[5:7]),
            int(text[8:10]),
            int(text[11:13]),
            int(text[14:16]),
            int(text[17:19]),
        )
    except ValueError:
        return None
    return calendar.timegm(when.timetuple())


def clickhouse_millis(value: object) -> int:
    """``meta.dt`` as milliseconds since the epoch (UTC), within the years bronze holds.

    EventStreams' shapes (whole seconds to 2024, milliseconds since, with ``Z``) are
    sliced, their second cached (datetime parsing was a quarter of the loader's parsing
    time); anything else goes through ``timefmt.parse_iso``. ValueError when it is not a
    time or outside 1970-2105.
    """
    if type(value) is str and value[-1:] == "Z" and len(value) in (20, 24):
        seconds = _second_epoch(value[:19])
        if seconds is not None:
            if len(value) == 20:
                return seconds * 1000
            ms = value[20:23]
            if value[19] == "." and ms.isascii() and ms.isdigit():
                return seconds * 1000 + int(ms)
    if not isinstance(value, str):
        raise ValueError("meta.dt is not a string")
    when = parse_iso(value)
    if when.year not in YEARS:
        raise ValueError(f"meta.dt {value!r} is outside 1970-2105")
    return calendar.timegm(when.timetuple()) * 1000 + when.microsecond // 1000
