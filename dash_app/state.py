"""The dashboard's view state and its URL form, so a view can be shared.

Everything from the URL is untrusted: values are checked against what they may be, and
anything else falls back to the default. Nothing from here is pasted into SQL; the
queries bind these values as server-side parameters.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qs, urlencode

from wiki_core.event import WIKI_PATTERN

RANGES = {
    "1h": dt.timedelta(hours=1),
    "6h": dt.timedelta(hours=6),
    "24h": dt.timedelta(hours=24),
    "7d": dt.timedelta(days=7),
}
USER_FILTERS = {
    "all": ("bot", "anonymous", "registered"),
    "humans": ("anonymous", "registered"),
    "bots": ("bot",),
}
REFRESH = {"off": 0, "10s": 10, "60s": 60}
MAX_WIKIS = 20
# a wiki's database name, by the judge's rule (wiki_core.event.WIKI_PATTERN): the view
# keeps only such names, and the wiki picker lists only them (bound into WIKI_OPTIONS)
_WIKI = re.compile(WIKI_PATTERN)
# The longest window a view may ask for: a longer custom range is clipped to its last
# MAX_RANGE (up to now), and the page says so.
MAX_RANGE = dt.timedelta(days=31)
# Buckets by window length: minutes up to a day (<= 1,440 points), hours up to a week
# (<= 168), days beyond (<= 31): no panel asks for more buckets than that.
MINUTE_UP_TO = dt.timedelta(hours=24)
HOUR_UP_TO = dt.timedelta(days=7)


# the lookup page: at most this many titles, each at most TITLE_CHARS characters (a
# title is at most 255 bytes); typed as the Pageviews tool takes them, `|` between
MAX_TITLES = 10
TITLE_CHARS = 255


@dataclass(frozen=True)
class ViewState:
    wikis: tuple[str, ...] = field(default_factory=tuple)
    range: str = "6h"
    users: str = "all"
    refresh: str = "off"
    start: str = ""  # custom range, ISO dates or date-times (UTC)
    end: str = ""
    special: bool = False  # top pages keep the main page and Special: pages
    titles: tuple[str, ...] = field(default_factory=tuple)  # the lookup page's pages
    log: bool = False  # the lookup page's log scale

    @property
    def kinds(self) -> list[str]:
        return list(USER_FILTERS[self.users])

    def to_search(self) -> str:
        query: dict[str, str] = {}
        if self.wikis:
            query["wikis"] = ",".join(self.wikis)
        for key, default in (("range", "6h"), ("users", "all"), ("refresh", "off")):
            if getattr(self, key) != default:
                query[key] = getattr(self, key)
        if self.range == "custom":
            query["start"], query["end"] = self.start, self.end
        if self.special:
            query["special"] = "1"
        if self.titles:
            query["titles"] = "|".join(self.titles)
        if self.log:
            query["log"] = "1"
        return "?" + urlencode(query) if query else ""

    @classmethod
    def from_search(cls, search: str | None) -> ViewState:
        params = parse_qs((search or "").lstrip("?")[:8192])

        def one(key: str, limit: int = 100) -> str:
            values = params.get(key) or [""]
            return values[0][:limit]

        return cls.build(
            wikis=",".join(params.get("wikis") or [])[:2000].split(","),
            range=one("range"),
            users=one("users"),
            refresh=one("refresh"),
            start=one("start"),
            end=one("end"),
            special=one("special") == "1",
            titles=one("titles", MAX_TITLES * (TITLE_CHARS + 1)),
            log=one("log") == "1",
        )

    @classmethod
    def build(
        cls,
        wikis: object = (),
        range: object = "6h",
        users: object = "all",
        refresh: object = "off",
        start: object = "",
        end: object = "",
        special: object = False,
        titles: object = "",
        log: object = False,
    ) -> ViewState:
        """A valid state from whatever the controls or the URL hold."""
        names = wikis if isinstance(wikis, list | tuple) else []
        clean = tuple(dict.fromkeys(w for w in names if isinstance(w, str) and _WIKI.fullmatch(w)))
        state = cls(
            wikis=clean[:MAX_WIKIS],
            special=_flag(special),
            titles=parse_titles(titles),
            log=_flag(log),
        )
        if range in RANGES or range == "custom":
            state = replace(state, range=str(range))
        if users in USER_FILTERS:
            state = replace(state, users=str(users))
        if refresh in REFRESH:
            state = replace(state, refresh=str(refresh))
        if state.range == "custom":
            first, last = parse_time(start), parse_time(end)
            if first and last and first < last:
                state = replace(state, start=_iso(first), end=_iso(last))
            else:
                state = replace(state, range="6h")
        return state

    def window(self, newest: dt.datetime | None) -> tuple[dt.datetime, dt.datetime]:
        """[start, end) in UTC. Relative ranges end at the newest event, or now if none:
        a stopped pipeline or an old recording still shows its last hours of data."""
        return self.bounded_window(newest)[:2]

    def bounded_window(self, newest: dt.datetime | None) -> tuple[dt.datetime, dt.datetime, str]:
        """[start, end) in UTC, and a note for the page when a custom range was cut: it
        ends at the latest now, and spans at most MAX_RANGE (its last part)."""
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        if self.range != "custom":
            end = _next_minute(min(newest, now) if newest else now)
            return end - RANGES[self.range], end, ""
        first, last = parse_time(self.start), parse_time(self.end)
        assert first and last
        note = f"The custom range {_show(first)} – {_show(last)} UTC is "
        if first >= _next_minute(now):  # nothing there yet: shown as asked, at most MAX_RANGE
            return first, min(last, first + MAX_RANGE), note + "in the future: no events yet."
        end = min(last, _next_minute(now))
        start = max(first, end - MAX_RANGE)
        if (start, end) == (first, last):
            return start, end, ""
        if start > first:
            note += f"longer than {MAX_RANGE.days} days: showing its last {MAX_RANGE.days} days" + (
                " up to now." if end < last else "."
            )
        else:
            note += "partly in the future: showing it up to now."
        return start, end, note


def parse_titles(value: object) -> tuple[str, ...]:
    """Page titles typed as the Pageviews tool takes them (``Cat|Dog``; underscores or
    spaces), in the wiki's form (spaces, first letter as typed), at most MAX_TITLES."""
    if not isinstance(value, str):
        return ()
    titles = (" ".join(t.replace("_", " ").split()) for t in value.split("|"))
    kept = (t for t in titles if t and len(t) <= TITLE_CHARS and t.isprintable())
    return tuple(dict.fromkeys(kept))[:MAX_TITLES]


def _flag(value: object) -> bool:
    """A checkbox's value (a list of the checked options), or a flag."""
    if isinstance(value, list):
        return bool(value)
    return value is True


def parse_time(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or not value or len(value) > 40:
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    if not dt.datetime(2000, 1, 1) <= when <= dt.datetime(2100, 1, 1):
        return None
    return when


def resolution(length: dt.timedelta) -> str:
    """The bucket for a series over a window of this length: minute, hour or day."""
    if length <= MINUTE_UP_TO:
        return "minute"
    return "hour" if length <= HOUR_UP_TO else "day"


def _next_minute(when: dt.datetime) -> dt.datetime:
    return when.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)


def _show(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M")


def _iso(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M")
