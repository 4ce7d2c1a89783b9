"""The ``domain_code`` forms of the pageviews dumps and what each one means.

This is data, not the decoder: the decoder is SQL (``wiki_dbt/macros/dumps.sql``,
used by silver). The table below lists every code form the fact sheet
(``shared/data/dumps-format.md`` §1) names, with the wiki (EventStreams dbname), the
project family and the access it stands for. The generator draws its codes from it, the
tests compute their expected numbers with it, and the dbt unit tests check the SQL
decoder against the same rows.

Where the fact sheet says "unconfirmed", the row carries the answer chosen here
(``""`` -> wikifunctionswiki, ``www.s`` -> sourceswiki, ``wikitech.m`` -> labswiki,
``be-tarask`` -> be_x_oldwiki); the inferred collision ``de.m`` (German Wikipedia on
mobile, or desktop de.wikimedia.org) is read as German Wikipedia, the far larger one.
"""

from __future__ import annotations

from typing import NamedTuple


class Code(NamedTuple):
    code: str
    wiki: str
    family: str
    access: str  # desktop, mobile, unknown (the empty code: the host is not recorded)
    weight: float  # share of a generated hour's lines


CODES: tuple[Code, ...] = (
    Code("", "wikifunctionswiki", "wikifunctions", "unknown", 0.002),
    Code("be-tarask", "be_x_oldwiki", "wikipedia", "desktop", 0.004),
    Code("commons.m", "commonswiki", "commons", "desktop", 0.03),
    Code("commons.m.m", "commonswiki", "commons", "mobile", 0.01),
    Code("de", "dewiki", "wikipedia", "desktop", 0.08),
    Code("de.d", "dewiktionary", "wiktionary", "desktop", 0.01),
    Code("de.m", "dewiki", "wikipedia", "mobile", 0.09),
    Code("en", "enwiki", "wikipedia", "desktop", 0.22),
    Code("en.b", "enwikibooks", "wikibooks", "desktop", 0.005),
    Code("en.d", "enwiktionary", "wiktionary", "desktop", 0.02),
    Code("en.m", "enwiki", "wikipedia", "mobile", 0.25),
    Code("en.m.d", "enwiktionary", "wiktionary", "mobile", 0.015),
    Code("en.n", "enwikinews", "wikinews", "desktop", 0.002),
    Code("en.q", "enwikiquote", "wikiquote", "desktop", 0.004),
    Code("en.s", "enwikisource", "wikisource", "desktop", 0.006),
    Code("en.v", "enwikiversity", "wikiversity", "desktop", 0.003),
    Code("fr", "frwiki", "wikipedia", "desktop", 0.05),
    Code("fr.m", "frwiki", "wikipedia", "mobile", 0.05),
    Code("fr.m.voy", "frwikivoyage", "wikivoyage", "mobile", 0.002),
    Code("fr.voy", "frwikivoyage", "wikivoyage", "desktop", 0.002),
    Code("ja", "jawiki", "wikipedia", "desktop", 0.04),
    Code("ja.m", "jawiki", "wikipedia", "mobile", 0.04),
    Code("m.w", "mediawikiwiki", "mediawiki", "mobile", 0.001),
    Code("m.wd", "wikidatawiki", "wikidata", "mobile", 0.002),
    Code("meta.m", "metawiki", "meta", "desktop", 0.004),
    Code("meta.m.m", "metawiki", "meta", "mobile", 0.001),
    Code("simple", "simplewiki", "wikipedia", "desktop", 0.005),
    Code("simple.m", "simplewiki", "wikipedia", "mobile", 0.005),
    Code("species.m", "specieswiki", "species", "desktop", 0.002),
    Code("uk.q", "ukwikiquote", "wikiquote", "desktop", 0.001),
    Code("wikitech.m", "labswiki", "wikitech", "desktop", 0.001),
    Code("www.f", "foundationwiki", "foundation", "desktop", 0.001),
    Code("www.s", "sourceswiki", "wikisource", "desktop", 0.001),
    Code("www.w", "mediawikiwiki", "mediawiki", "desktop", 0.003),
    Code("www.wd", "wikidatawiki", "wikidata", "desktop", 0.03),
    Code("zh-min-nan", "zh_min_nanwiki", "wikipedia", "desktop", 0.002),
    Code("zh-min-nan.m", "zh_min_nanwiki", "wikipedia", "mobile", 0.002),
)

# Hive-era files (before May 2019) also carry Wikipedia Zero codes: mobile Wikipedia.
HIVE_ERA_CODES: tuple[Code, ...] = (Code("en.zero", "enwiki", "wikipedia", "mobile", 0.002),)

BY_CODE = {c.code: c for c in CODES + HIVE_ERA_CODES}

# mediacounts: the hosting wiki from a base_name's first two path segments.
MEDIA_FAMILIES = (
    "wikipedia",
    "wikibooks",
    "wikinews",
    "wikimedia",
    "wikiquote",
    "wikisource",
    "wikiversity",
    "wikivoyage",
    "wiktionary",
)


def media_wiki(base_name: str) -> str:
    """The hosting wiki of a mediacounts ``base_name`` ('' for /math, /score, /favicon.ico):
    ``/wikipedia/commons/...`` -> commonswiki, ``/wiktionary/fr/...`` -> frwiktionary."""
    parts = base_name.split("/")
    if len(parts) < 4 or parts[1] not in MEDIA_FAMILIES:
        return ""
    family, code = parts[1], parts[2].replace("-", "_")
    if family in ("wikipedia", "wikimedia"):
        return f"{code}wiki"
    return f"{code}{family}"


FAMILY_SUFFIX = {
    "wiktionary": "d",
    "wikibooks": "b",
    "wikinews": "n",
    "wikiquote": "q",
    "wikisource": "s",
    "wikiversity": "v",
    "wikivoyage": "voy",
}
WIKIMEDIA_NAMES = ("commons", "meta", "species", "incubator", "outreach", "wikimania", "strategy")
BARE_HOSTS = {"wikidatawiki": "wd", "mediawikiwiki": "w", "sourceswiki": "s", "foundationwiki": "f"}


def codes_for_wiki(wiki: str) -> list[str]:
    """The domain codes whose views belong to ``wiki`` (a dbname): the loader's --wiki."""
    known = sorted({c.code for c in CODES + HIVE_ERA_CODES if c.wiki == wiki})
    if wiki in BARE_HOSTS:
        return sorted({*known, f"www.{BARE_HOSTS[wiki]}", f"m.{BARE_HOSTS[wiki]}"})
    for family, suffix in FAMILY_SUFFIX.items():
        if wiki.endswith(family):
            lang = wiki.removesuffix(family).replace("_", "-")
            return sorted({*known, f"{lang}.{suffix}", f"{lang}.m.{suffix}"})
    if wiki.endswith("wiki"):
        name = wiki.removesuffix("wiki")
        if name in WIKIMEDIA_NAMES:
            return sorted({*known, f"{name}.m", f"{name}.m.m"})
        lang = name.replace("_", "-")
        return sorted({*known, lang, f"{lang}.m", f"{lang}.zero"})
    return known
