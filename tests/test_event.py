"""The event judge, the batch codec and the time parsers: fast unit tests, one behaviour
each, no services."""

from __future__ import annotations

import datetime as dt
import json

import orjson
import pytest

from wiki_core.event import CANARY, WIKI_PATTERN, Reject, Valid, clickhouse_millis, judge
from wiki_core.timefmt import iso_ms, ms_text, parse_iso
from wiki_core.topology import (
    BATCH_CONTENT_TYPE,
    NDJSON_CONTENT_TYPE,
    decode_batch,
    encode_batch,
)

from .helpers.paths import RAW, ROOT, SHARED_DATA

FIRST = RAW.read_bytes().splitlines()[0]


def event(**changes: object) -> bytes:
    """The first recorded event, with top-level keys or ``meta.<key>`` changed (None
    removes the key)."""
    doc = json.loads(FIRST)
    for key, value in changes.items():
        target, name = (doc["meta"], key[5:]) if key.startswith("meta_") else (doc, key)
        if value is None:
            target.pop(name, None)
        else:
            target[name] = value
    return json.dumps(doc).encode()


# -- judge: valid ----------------------------------------------------------------------


def test_a_recorded_event_is_valid_with_its_keys() -> None:
    doc = json.loads(FIRST)
    verdict = judge(FIRST)
    assert isinstance(verdict, Valid)
    assert verdict.event_id == doc["meta"]["id"]
    assert verdict.wiki == doc["wiki"] and verdict.type == doc["type"]
    assert verdict.millis == iso_ms(doc["meta"]["dt"])
    assert verdict.raw is FIRST  # the bytes as received, not a copy


def test_every_recorded_current_event_is_valid_or_a_canary() -> None:
    for path in sorted((SHARED_DATA / "recentchange").glob("*.ndjson")):
        for line in path.read_bytes().splitlines():
            if line.strip():
                verdict = judge(line)
                assert isinstance(verdict, Valid) or verdict is CANARY, (path.name, verdict)


def test_a_canary_is_a_canary() -> None:
    assert judge(event(meta_domain="canary", wiki=None)) is CANARY


@pytest.mark.parametrize(
    ("when", "millis"),
    [
        ("2024-08-22T04:03:29Z", 1724299409000),  # whole seconds (to 2024)
        ("2025-12-15T12:02:00.123Z", 1765800120123),  # milliseconds
        ("2024-08-22T07:32:33.123456+02:00", 1724304753123),  # an offset: via parse_iso
        ("2024-08-22T04:03:29", 1724299409000),  # no zone: UTC
        ("1970-01-01T00:00:00Z", 0),  # the first second every layer holds
        ("2105-12-31T23:59:59.999Z", 4291747199999),  # the last year
    ],
)
def test_meta_dt_shapes_become_utc_milliseconds(when: str, millis: int) -> None:
    verdict = judge(event(meta_dt=when), now_ms=millis)
    assert isinstance(verdict, Valid) and verdict.millis == millis


def test_an_event_without_wiki_is_valid_with_an_empty_wiki() -> None:
    verdict = judge(event(wiki=None))
    assert isinstance(verdict, Valid) and verdict.wiki == ""


def test_a_numeric_type_is_kept_as_text() -> None:
    verdict = judge(event(type=142))
    assert isinstance(verdict, Valid) and verdict.type == "142"


def test_a_multi_line_event_becomes_one_compact_line() -> None:
    pretty = json.dumps(json.loads(FIRST), indent=1).encode()
    verdict = judge(pretty)
    assert isinstance(verdict, Valid)
    assert b"\n" not in verdict.raw and orjson.loads(verdict.raw) == json.loads(FIRST)


# -- judge: rejects --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason", "detail"),
    [
        (b"{not json", "malformed-json", "line 1 column 2"),
        (FIRST.replace(b'"meta"', b'"\xff": 1, "meta"', 1), "malformed-json", "not valid UTF-8"),
        (b"[1, 2]", "missing-key", "meta"),
        (event(meta=None), "missing-key", "meta"),
        (event(meta="x"), "missing-key", "meta"),
        (event(meta_id=None), "missing-key", "meta.id"),
        (event(meta_id=""), "missing-key", "meta.id"),
        (event(meta_id=7), "missing-key", "meta.id"),
        (event(meta_dt=None), "missing-key", "meta.dt"),
        (event(meta_dt=""), "missing-key", "meta.dt"),
        (event(meta_dt="yesterday"), "bad-meta-dt", "Invalid isoformat string: 'yesterday'"),
        (event(meta_dt=1724299409), "bad-meta-dt", "not a string"),
        (event(meta_dt="2106-01-01T00:00:00Z"), "bad-meta-dt", "outside 1970-2105"),
        (event(meta_dt="2200-01-01T00:00:00Z"), "bad-meta-dt", "outside 1970-2105"),
        (event(meta_dt="1969-12-31T23:59:59.999Z"), "bad-meta-dt", "outside 1970-2105"),
        (event(meta_dt="1950-06-01T00:00:00+02:00"), "bad-meta-dt", "outside 1970-2105"),
        (event(meta_dt="2024-13-01T00:00:00Z"), "bad-meta-dt", "month must be in 1..12"),
        # past what UTC can hold once the offset is applied (astimezone overflows)
        (event(meta_dt="0001-01-01T00:00:00+01:00"), "bad-meta-dt", "outside the years"),
        (event(meta_dt="9999-12-31T23:59:59-01:00"), "bad-meta-dt", "outside the years"),
        (event(meta_dt="2024-02-30T00:00:00.000Z"), "bad-meta-dt", "day is out of range"),
        (event(wiki="x" * 65), "bad-wiki", "not a wiki's database name"),
        (event(wiki="En Wiki"), "bad-wiki", "not a wiki's database name"),
        (event(wiki=["enwiki"]), "bad-wiki", "not a wiki's database name"),
    ],
)
def test_bad_input_is_rejected_with_its_reason(raw: bytes, reason: str, detail: str) -> None:
    verdict = judge(raw)
    assert isinstance(verdict, Reject)
    assert verdict.reason == reason and detail in verdict.detail
    assert verdict.raw == raw  # kept as received, for bronze.wiki_rejects


NOW_MS = 1_765_800_000_000  # 2025-12-15T12:00:00Z


@pytest.mark.parametrize("ahead_s", [0, 1, 599, 600])
def test_an_event_up_to_ten_minutes_ahead_of_this_clock_is_valid(ahead_s: int) -> None:
    when = ms_text(NOW_MS + ahead_s * 1000)
    assert isinstance(judge(event(meta_dt=when), NOW_MS), Valid)


@pytest.mark.parametrize("ahead_s", [601, 86_400, 10 * 365 * 86_400])
def test_an_event_further_in_the_future_is_quarantined(ahead_s: int) -> None:
    verdict = judge(event(meta_dt=ms_text(NOW_MS + ahead_s * 1000)), NOW_MS)
    assert isinstance(verdict, Reject) and verdict.reason == "future-meta-dt"
    assert f"{ahead_s} s ahead of this machine's clock" in verdict.detail


def test_the_future_check_uses_the_real_clock_by_default() -> None:
    assert isinstance(judge(event(meta_dt="2099-01-01T00:00:00Z")), Reject)
    assert isinstance(judge(event(meta_dt="2024-08-22T04:03:29Z")), Valid)


def test_a_canary_with_a_bad_meta_dt_is_a_reject_not_a_canary() -> None:
    verdict = judge(event(meta_domain="canary", meta_dt="soon"))
    assert isinstance(verdict, Reject) and verdict.reason == "bad-meta-dt"


def test_a_wiki_of_64_characters_is_still_a_wiki() -> None:
    verdict = judge(event(wiki="a" * 64))
    assert isinstance(verdict, Valid) and verdict.wiki == "a" * 64


def test_the_wiki_rule_is_the_one_silver_uses() -> None:
    # silver's invalid view applies it to rows that reached bronze before the judge did
    # (its dbt unit test: wiki_invalid_says_why_each_row_is_left_out)
    sql = (ROOT / "wiki_dbt" / "macros" / "recentchange.sql").read_text()
    assert f"not match({{{{ wiki }}}}, '{WIKI_PATTERN}'), 'bad wiki'" in sql


def test_the_dashboard_uses_the_judges_wiki_rule() -> None:
    """The view keeps, and the wiki picker lists, only names the judge's rule allows:
    the rule itself, bound into the picker's query whole, not a copy of it."""
    from dash_app.controls import wiki_options
    from dash_app.queries import WIKI_OPTIONS, Table
    from dash_app.state import ViewState

    names = ["enwiki", "zh_min_nanwiki", "a" * 64, "a" * 65, "EnWiki", "en wiki", "x'--", ""]
    assert ViewState.build(names).wikis == ("enwiki", "zh_min_nanwiki", "a" * 64)

    class Asked:
        params: dict[str, object] = {}

        def run(self, sql: str, params: dict[str, object], ttl: float) -> Table:
            assert sql == WIKI_OPTIONS
            Asked.params = params
            return Table(["wiki", "weight"], [("dewiki", 3)])

    assert wiki_options(Asked(), "?wikis=enwiki") == [  # type: ignore[arg-type]
        {"label": "enwiki", "value": "enwiki"},
        {"label": "dewiki", "value": "dewiki"},
    ]
    assert Asked.params == {"pattern": WIKI_PATTERN}
    assert "match(wiki, {pattern:String})" in WIKI_OPTIONS


def test_a_reject_text_is_reason_and_detail() -> None:
    assert Reject("missing-key", "meta.id", b"").text == "missing-key: meta.id"
    assert Reject("server-error-event", "", b"").text == "server-error-event"


# -- the batch codec -------------------------------------------------------------------


def lines(n: int) -> list[bytes]:
    return RAW.read_bytes().splitlines()[:n]


def test_a_batch_decodes_to_the_events_it_was_encoded_from() -> None:
    events = [judge(line) for line in lines(5)]
    assert all(isinstance(e, Valid) for e in events)
    decoded, rejects, canaries = decode_batch(encode_batch(events), BATCH_CONTENT_TYPE)  # type: ignore[arg-type]
    assert decoded == events and rejects == [] and canaries == 0


def test_a_batch_body_is_a_keys_line_then_the_events_as_received() -> None:
    events = [judge(line) for line in lines(2)]
    body = encode_batch(events)  # type: ignore[arg-type]
    head, *rest = body.split(b"\n")
    assert rest == [*lines(2), b""]
    assert orjson.loads(head)[0][0] == json.loads(lines(1)[0])["meta"]["id"]


def test_plain_ndjson_is_judged_line_by_line() -> None:
    body = b"\n".join([*lines(3), b"", b"{bad", event(meta_domain="canary"), b""])
    decoded, rejects, canaries = decode_batch(body, NDJSON_CONTENT_TYPE)
    assert [e.raw for e in decoded] == lines(3)
    assert [r.reason for r in rejects] == ["malformed-json"] and canaries == 1


def test_a_body_without_content_type_is_judged_line_by_line() -> None:
    decoded, _, _ = decode_batch(b"\n".join(lines(2)), None)
    assert [e.raw for e in decoded] == lines(2)


@pytest.mark.parametrize(
    "keys",
    [
        b"not json",
        b'[["only-one-key-set", 1, "enwiki", "edit"]]',  # fewer keys than lines
        b'[["id", "1", "enwiki", "edit"], ["id2", 2, "enwiki", "edit"]]',  # millis as text
        b'[["id", 1, "enwiki"], ["id2", 2, "enwiki", "edit"]]',  # a key missing
        # keys the judge could not have given, from another publisher: a time bronze
        # would wrap, a wiki silver refuses, an empty id
        b'[["id", -1, "enwiki", "edit"], ["id2", 2, "enwiki", "edit"]]',
        b'[["id", 4418064000000, "enwiki", "edit"], ["id2", 2, "enwiki", "edit"]]',
        b'[["id", 1, "Not A Wiki", "edit"], ["id2", 2, "enwiki", "edit"]]',
        b'[["", 1, "enwiki", "edit"], ["id2", 2, "enwiki", "edit"]]',
    ],
)
def test_a_batch_whose_keys_do_not_fit_is_judged_line_by_line(keys: bytes) -> None:
    body = b"\n".join([keys, *lines(2), b""])
    decoded, rejects, _ = decode_batch(body, BATCH_CONTENT_TYPE)
    assert decoded == [judge(line) for line in lines(2)] and rejects == []


# -- times -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("2024-08-22T04:03:29Z", dt.datetime(2024, 8, 22, 4, 3, 29, tzinfo=dt.UTC)),
        ("2024-08-22T06:03:29+02:00", dt.datetime(2024, 8, 22, 4, 3, 29, tzinfo=dt.UTC)),
        ("2024-08-22T04:03:29", dt.datetime(2024, 8, 22, 4, 3, 29, tzinfo=dt.UTC)),
        ("2024-08-22", dt.datetime(2024, 8, 22, tzinfo=dt.UTC)),
    ],
)
def test_parse_iso_gives_aware_utc(text: str, want: dt.datetime) -> None:
    assert parse_iso(text) == want and parse_iso(text).tzinfo == dt.UTC


@pytest.mark.parametrize("text", ["yesterday", "", "2024-13-01T00:00:00Z"])
def test_parse_iso_refuses_what_is_not_a_time(text: str) -> None:
    with pytest.raises(ValueError):
        parse_iso(text)


@pytest.mark.parametrize(
    "text", ["2024-08-22T04:03:29.999Z", "2024-08-22T04:03:29.001Z", "1969-12-31T23:59:59.999Z"]
)
def test_iso_ms_is_exact_to_the_millisecond(text: str) -> None:
    assert ms_text(iso_ms(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        "2024-08-22T04:03:29Z",
        "2024-08-22T04:03:29.123Z",
        "2024-02-29T23:59:59.999Z",
        "2105-12-31T23:59:59.999Z",
        "1970-01-01T00:00:00.000Z",
    ],
)
def test_the_fast_meta_dt_path_agrees_with_the_parser(text: str) -> None:
    assert clickhouse_millis(text) == iso_ms(text)
