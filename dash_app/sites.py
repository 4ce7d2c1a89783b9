"""Where a wiki, a page, a diff, a user or a media file lives on Wikimedia's sites, and
titles as the wikis show them.

The dashboard links every name it shows to the wiki itself. A wiki's host follows from
its database name (``enwiki`` → en.wikipedia.org, ``dewiktionary`` → de.wiktionary.org,
``commonswiki`` → commons.wikimedia.org); the stream's ``meta.domain`` cannot be used for
it (log events of account creation carry the login wiki's, auth.wikimedia.org). A test
checks this against every (wiki, server_name) pair of the recorded events.

Titles: the live stream writes them as the wiki shows them (``Main Page``), the dumps
with underscores and, for a request that was encoded twice, with percent escapes left
(``Caf%C3%A9``): ``display_title`` gives the wiki's form of both.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

# sister projects: the dbname's suffix → the host's domain (lang.<domain>)
FAMILIES = {
    "wiktionary": "wiktionary.org",
    "wikibooks": "wikibooks.org",
    "wikinews": "wikinews.org",
    "wikiquote": "wikiquote.org",
    "wikisource": "wikisource.org",
    "wikiversity": "wikiversity.org",
    "wikivoyage": "wikivoyage.org",
    "wikimedia": "wikimedia.org",  # chapters: dewikimedia → de.wikimedia.org
    "wiki": "wikipedia.org",
}
# wikis whose host does not follow the rule
HOSTS = {
    "commonswiki": "commons.wikimedia.org",
    "metawiki": "meta.wikimedia.org",
    "specieswiki": "species.wikimedia.org",
    "incubatorwiki": "incubator.wikimedia.org",
    "outreachwiki": "outreach.wikimedia.org",
    "foundationwiki": "foundation.wikimedia.org",
    "wikimaniawiki": "wikimania.wikimedia.org",
    "strategywiki": "strategy.wikimedia.org",
    "loginwiki": "login.wikimedia.org",
    "labswiki": "wikitech.wikimedia.org",
    "wikidatawiki": "www.wikidata.org",
    "testwikidatawiki": "test.wikidata.org",
    "mediawikiwiki": "www.mediawiki.org",
    "sourceswiki": "wikisource.org",
    "wikifunctionswiki": "www.wikifunctions.org",
    "be_x_oldwiki": "be-tarask.wikipedia.org",
}
# The main pages of the busiest wikis, as the dumps write titles (`_` for spaces), and
# `-` (the dumps' stand-in for titles they could not keep): top pages leave them out by
# default, as the Pageviews tool's Topviews does. One list for every wiki: a wiki's page
# named like another's main page is left out too (none of these is an article title).
MAIN_PAGES_DUMPS = [
    "-",
    "Main_Page",
    "Wikipedia:Hauptseite",
    "Wikipédia:Accueil_principal",
    "Wikipedia:Portada",
    "Pagina_principale",
    "メインページ",
    "Заглавная_страница",
    "Wikipédia:Página_principal",
    "Wikipedia:首页",
    "Wikipedia:Strona_główna",
    "Hoofdpagina",
    "Portal:Huvudsida",
    "الصفحة_الرئيسية",
    "صفحهٔ_اصلی",
    "Головна_сторінка",
    "Trang_Chính",
    "Halaman_Utama",
    "Anasayfa",
    "위키백과:대문",
    "עמוד_ראשי",
    "Hlavní_strana",
    "Kezdőlap",
    "Wikipedia:Etusivu",
    "Forside",
    "Wikidata:Main_Page",
    "Wiktionary:Main_Page",
]
# the Special: namespace, in the busiest wikis' languages (a regular expression, re2)
SPECIAL_PATTERN = (
    "^(Special|Spezial|Spécial|Especial|Speciale|Specjalna|Speciaal|Служебная|Спеціальна|"
    "特別|特殊|Istimewa|Özel|특수|מיוחד|Speciální|Speciális|Toiminnot|Spesial|Đặc_biệt|"
    "خاص|ویژه):"
)
_ESCAPE = re.compile(r"(%[0-9A-Fa-f]{2})+")
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~])")


def host(wiki: str) -> str:
    """The wiki's host name, or "" for a name that follows no known rule."""
    if wiki in HOSTS:
        return HOSTS[wiki]
    for suffix, domain in FAMILIES.items():
        if wiki.endswith(suffix) and len(wiki) > len(suffix):
            return f"{wiki[: -len(suffix)].replace('_', '-')}.{domain}"
    return ""


def wiki_url(wiki: str) -> str:
    return f"https://{host(wiki)}/" if host(wiki) else ""


def page_url(wiki: str, title: str) -> str:
    """The page on its wiki (``title`` in either form: spaces or underscores)."""
    name = host(wiki)
    if not name or not title:
        return ""
    return f"https://{name}/wiki/{quote(display_title(title).replace(' ', '_'), safe=':/')}"


def diff_url(wiki: str, old: int | None, new: int | None) -> str:
    """The diff an edit made (a page creation: its first revision)."""
    name = host(wiki)
    if not name or not new:
        return ""
    if not old:
        return f"https://{name}/w/index.php?oldid={new}"
    return f"https://{name}/w/index.php?diff={new}&oldid={old}"


def user_url(wiki: str, user: str) -> str:
    """A user's contributions on the wiki (IP addresses and temporary accounts have no
    user page worth opening; their contributions always exist)."""
    name = host(wiki)
    if not name or not user:
        return ""
    return f"https://{name}/wiki/Special:Contributions/{quote(user.replace(' ', '_'), safe='')}"


def media_url(base_name: str) -> str:
    """A media file's page on its hosting wiki, from the mediacounts path
    (``/wikipedia/commons/a/a9/Example.jpg`` → commons.wikimedia.org/wiki/File:Example.jpg);
    "" for paths that are no file page (math renderings, timelines, the favicon)."""
    parts = base_name.split("/")
    if len(parts) != 6 or parts[3] in ("archive", "temp", "timeline"):
        return ""
    family, code, name = parts[1], parts[2], parts[5]
    wiki = f"{code}wiki" if family == "wikipedia" and code != "commons" else f"{code}{family}"
    site = host("commonswiki" if code == "commons" else wiki)
    return f"https://{site}/wiki/File:{quote(unquote(name), safe='')}" if site else ""


def media_name(base_name: str) -> str:
    """A media file's name as its page shows it (``K%C3%B6ln_Dom.jpg`` → ``Köln Dom.jpg``);
    paths that are no file keep their path."""
    if not media_url(base_name):
        return base_name
    return unquote(base_name.rsplit("/", 1)[-1]).replace("_", " ")


def display_title(title: str) -> str:
    """A title as the wiki shows it: spaces, not underscores, and percent escapes left by
    a request encoded twice decoded when they spell UTF-8 (``100%_Pure`` stays)."""

    def decode(match: re.Match[str]) -> str:
        try:
            return bytes.fromhex(match.group(0).replace("%", "")).decode("utf-8")
        except UnicodeDecodeError:
            return match.group(0)

    return _ESCAPE.sub(decode, title).replace("_", " ")


def markdown_link(text: str, url: str) -> str:
    """``text`` as a Markdown link to ``url`` (the text escaped: a title is never markup)."""
    shown = _MARKDOWN.sub(r"\\\1", text)
    return f"[{shown}]({url})" if url else shown
