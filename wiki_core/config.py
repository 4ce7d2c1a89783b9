"""Configuration from the environment (and a ``.env`` file when present).

The connections and settings every stage shares are read here, once, with the embedded
defaults filled in, so nothing is hard-coded twice; the README's table lists them. A
setting only one part uses is read by that part, through ``environment()`` and the same
checked parsers (``number``, ``whole_number``): the reader's and the loader's staleness
limits (``reader/status.py``, ``loader/status.py``), the dbt marker and the compose
profiles (``transform/marker.py``), the watchdog's and the alerts' settings
(``wiki_events/watchdog.py``). (``WIKI_DBT_PROJECT`` and the ``DBT_CLICKHOUSE_*``
variables belong to dbt's runner, ``transform/project.py``; the embedded server's users
file to ``local_clickhouse``.)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dotenv import load_dotenv

DEFAULT_CLICKHOUSE_URL = "http://default:@127.0.0.1:8123/default"
DEFAULT_STREAM_URL = "https://stream.wikimedia.org/v2/stream/recentchange"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
DEFAULT_RETENTION_DAYS = 90  # bronze's, counted from ingestion
DEFAULT_SILVER_RETENTION_DAYS = 90  # silver's, counted from ingestion; never below bronze's
# a retention ClickHouse can hold: ingested_at + this many days stays below DateTime's end
# (2106); past it the TTL's date wraps around and would drop every row at once
MAX_RETENTION_DAYS = 50 * 365
DEFAULT_DUMPS_URL = "https://dumps.wikimedia.org/other/"


class SettingError(ValueError):
    """A variable of the environment (or ``.env``) that cannot be used, named."""


def environment() -> dict[str, str]:
    """The environment, with a ``.env`` file's values for what it does not set."""
    load_dotenv(override=False)
    return dict(os.environ)


def whole_number(env: dict[str, str], name: str, default: int) -> int:
    """``env[name]`` as a whole number (``default`` when unset or empty)."""
    text = env.get(name) or str(default)
    try:
        return int(text)
    except ValueError:
        raise SettingError(f"{name}={text!r} is not a whole number") from None


def number(env: dict[str, str], name: str, default: float) -> float:
    """``env[name]`` as a number (``default`` when unset or empty)."""
    text = env.get(name) or str(default)
    try:
        return float(text)
    except ValueError:
        raise SettingError(f"{name}={text!r} is not a number") from None


def _days(env: dict[str, str], name: str, default: int, least: int = 1) -> int:
    """``env[name]`` as a retention in days, ``least`` to ``MAX_RETENTION_DAYS``."""
    days = whole_number(env, name, default)
    if not least <= days <= MAX_RETENTION_DAYS:
        raise SettingError(
            f"{name}={days} is not a number of days from {least} to {MAX_RETENTION_DAYS}"
        )
    return days


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _thresholds(env: dict[str, str], name: str, default: str) -> tuple[float, float]:
    """``env[name]`` as two ages, amber then red: ``5m,30m`` (units s, m, h, d; a bare
    number is seconds), the second after the first."""
    text = env.get(name) or default
    try:
        ages = [
            float(a[:-1]) * _UNITS[a[-1]] if a[-1] in _UNITS else float(a)
            for a in (part.strip() for part in text.split(","))
        ]
    except (ValueError, IndexError):
        ages = []
    if len(ages) != 2 or not 0 < ages[0] < ages[1]:
        raise SettingError(
            f"{name}={text!r} is not two ages, amber then red, such as {default!r} "
            "(units s, m, h, d)"
        )
    return ages[0], ages[1]


def retentions(env: dict[str, str]) -> tuple[int, int]:
    """Bronze's and silver's retention in days (``BRONZE_RETENTION_DAYS``,
    ``SILVER_RETENTION_DAYS``). Silver keeps at least as long as bronze: every bronze row
    is then in silver or silver.wiki_invalid (the reconciliation over bronze's window),
    and the raw layer, three times silver's bytes per event, is the one to shorten when
    disk is short. At least 2 days: the reconciliations compare the days before the last."""
    bronze = _days(env, "BRONZE_RETENTION_DAYS", DEFAULT_RETENTION_DAYS)
    silver = _days(env, "SILVER_RETENTION_DAYS", DEFAULT_SILVER_RETENTION_DAYS, least=2)
    if silver < bronze:
        raise SettingError(
            f"SILVER_RETENTION_DAYS={silver} is shorter than BRONZE_RETENTION_DAYS={bronze}: "
            "silver keeps at least as long as bronze (raise it, or shorten bronze's)"
        )
    return bronze, silver


def _url(env: dict[str, str], name: str, default: str, schemes: tuple[str, ...]) -> str:
    """``env[name]`` as a URL of one of ``schemes`` with a host (``default`` when unset)."""
    from urllib.parse import urlsplit

    text = env.get(name) or default
    parts = urlsplit(text)
    if parts.scheme not in schemes or not parts.hostname:
        from .unreachable import without_password

        raise SettingError(
            f"{name}={without_password(text)!r} is not a URL of {' or '.join(schemes)} "
            f"with a host (the default: {without_password(default)})"
        )
    return text


@dataclass(frozen=True)
class Settings:
    clickhouse_url: str
    dash_clickhouse_url: str  # the dashboard's (DASH_CLICKHOUSE_URL, else CLICKHOUSE_URL)
    amqp_url: str
    stream_url: str
    data_dir: Path
    contact: str
    retention_days: int = DEFAULT_RETENTION_DAYS  # bronze's
    silver_retention_days: int = DEFAULT_SILVER_RETENTION_DAYS
    dash_basic_auth: str = ""  # "user:password": the dashboard behind HTTP basic auth
    dumps_url: str = DEFAULT_DUMPS_URL
    metrics_port: int = 0  # the reader's / loader's Prometheus endpoint; 0: none
    metrics_host: str = "127.0.0.1"  # where it listens (compose: 0.0.0.0, its network)
    cluster: str = ""  # a ClickHouse cluster's name: bronze's and dbt's DDL run ON CLUSTER
    dumps_clickhouse_url: str = ""  # the dumps loaders' (DUMPS_CLICKHOUSE_URL, else ours)
    # the dashboard's freshness pills turn amber, then red, past these ages (seconds)
    dash_freshness_edits: tuple[float, float] = (300.0, 1800.0)
    dash_freshness_views: tuple[float, float] = (4 * 3600.0, 12 * 3600.0)
    dash_freshness_media: tuple[float, float] = (2 * 86400.0, 4 * 86400.0)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        if env is None:
            env = environment()
        http = ("http", "https")
        clickhouse_url = _url(env, "CLICKHOUSE_URL", DEFAULT_CLICKHOUSE_URL, http)
        bronze_days, silver_days = retentions(env)
        return cls(
            clickhouse_url=clickhouse_url,
            dash_clickhouse_url=_url(env, "DASH_CLICKHOUSE_URL", clickhouse_url, http),
            amqp_url=_url(env, "AMQP_URL", DEFAULT_AMQP_URL, ("amqp", "amqps")),
            stream_url=_url(env, "STREAM_URL", DEFAULT_STREAM_URL, http),
            data_dir=Path(env.get("WIKI_EVENTS_DATA") or "var"),
            contact=env.get("WIKI_EVENTS_CONTACT", ""),
            retention_days=bronze_days,
            silver_retention_days=silver_days,
            dash_basic_auth=env.get("DASH_BASIC_AUTH", ""),
            dumps_url=_url(env, "DUMPS_URL", DEFAULT_DUMPS_URL, http),
            metrics_port=whole_number(env, "METRICS_PORT", 0),
            metrics_host=env.get("METRICS_HOST") or "127.0.0.1",
            cluster=env.get("CLICKHOUSE_CLUSTER", ""),
            dumps_clickhouse_url=_url(env, "DUMPS_CLICKHOUSE_URL", clickhouse_url, http),
            dash_freshness_edits=_thresholds(env, "DASH_FRESHNESS_EDITS", "5m,30m"),
            dash_freshness_views=_thresholds(env, "DASH_FRESHNESS_VIEWS", "4h,12h"),
            dash_freshness_media=_thresholds(env, "DASH_FRESHNESS_MEDIA", "2d,4d"),
        )


def user_agent(contact: str, role: str = "") -> str:
    """Wikimedia's User-Agent policy, for every request to Wikimedia (the stream, the
    dumps): the tool and its version, ``role`` (which part asks), a way to reach the
    operator (``WIKI_EVENTS_CONTACT``), the HTTP library."""
    import httpx

    from . import __version__

    who = contact or "set WIKI_EVENTS_CONTACT to an email or URL"
    return (
        f"wiki-events/{__version__} ({role + '; ' if role else ''}{who}) httpx/{httpx.__version__}"
    )


@dataclass(frozen=True)
class ClickHouseURL:
    """``CLICKHOUSE_URL`` (``http[s]://user:pass@host:port/db``) taken apart, with
    ClickHouse's defaults: port 8123 (8443 for https), user ``default``, database
    ``default``. Every client of the URL (clickhouse-connect, dbt, the SQL console,
    ``up``) reads it through here."""

    secure: bool
    host: str
    port: int
    user: str
    password: str
    database: str

    @classmethod
    def parse(cls, url: str) -> ClickHouseURL:
        from urllib.parse import unquote, urlsplit

        parts = urlsplit(url)
        secure = parts.scheme == "https"
        return cls(
            secure=secure,
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (8443 if secure else 8123),
            user=unquote(parts.username or "default"),
            password=unquote(parts.password or ""),
            database=parts.path.strip("/") or "default",
        )

    @property
    def base(self) -> str:
        """The HTTP interface's root, without credentials: ``http://host:port/``."""
        return f"{'https' if self.secure else 'http'}://{self.host}:{self.port}/"


def clickhouse_client(url: str | None = None, **kwargs: Any) -> Any:
    """A clickhouse-connect client for ``CLICKHOUSE_URL``.

    No automatic session: every request stands alone, as the pipeline's queries do.
    """
    import clickhouse_connect

    target = ClickHouseURL.parse(url or Settings.from_env().clickhouse_url)
    return clickhouse_connect.get_client(
        host=target.host,
        port=target.port,
        username=target.user,
        password=target.password,
        database=target.database,
        secure=target.secure,
        autogenerate_session_id=False,
        **kwargs,
    )
