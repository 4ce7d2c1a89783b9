"""Settings read once from the environment: a value that cannot be used is refused at
once, naming its variable, and never shows a password."""

from __future__ import annotations

import pytest

from loader import status as loader_status
from reader import status as reader_status
from transform.marker import Marker
from wiki_core.config import SettingError, Settings
from wiki_events.watchdog import Operations

from .helpers.cli import wiki_events


def test_the_defaults_are_the_embedded_setup() -> None:
    settings = Settings.from_env({})
    assert settings.clickhouse_url == "http://default:@127.0.0.1:8123/default"
    assert settings.amqp_url.startswith("amqp://") and settings.metrics_port == 0
    assert reader_status.stale_seconds({}) == 300
    assert (settings.retention_days, settings.silver_retention_days) == (90, 90)


def test_silver_keeps_at_least_as_long_as_bronze() -> None:
    both = Settings.from_env({"BRONZE_RETENTION_DAYS": "30", "SILVER_RETENTION_DAYS": "30"})
    assert (both.retention_days, both.silver_retention_days) == (30, 30)
    longer = Settings.from_env({"BRONZE_RETENTION_DAYS": "120", "SILVER_RETENTION_DAYS": "400"})
    assert longer.silver_retention_days == 400


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"CLICKHOUSE_URL": "localhost:8123"}, "CLICKHOUSE_URL='localhost:8123' is not a URL"),
        ({"DASH_CLICKHOUSE_URL": "file:///etc/passwd"}, "DASH_CLICKHOUSE_URL="),
        ({"AMQP_URL": "http://rabbit/"}, "AMQP_URL='http://rabbit/' is not a URL of amqp"),
        ({"STREAM_URL": "ftp://x/"}, "STREAM_URL='ftp://x/' is not a URL of http or https"),
        ({"DUMPS_URL": "not a url"}, "DUMPS_URL='not a url'"),
        ({"METRICS_PORT": "80a"}, "METRICS_PORT='80a' is not a whole number"),
        ({"BRONZE_RETENTION_DAYS": "ninety"}, "BRONZE_RETENTION_DAYS='ninety'"),
        ({"SILVER_RETENTION_DAYS": "1"}, "SILVER_RETENTION_DAYS=1 is not a number of days from 2"),
        ({"BRONZE_RETENTION_DAYS": "0"}, "BRONZE_RETENTION_DAYS=0 is not a number of days from 1"),
        ({"SILVER_RETENTION_DAYS": "40000"}, "SILVER_RETENTION_DAYS=40000 is not a number of days"),
        (
            {"BRONZE_RETENTION_DAYS": "120"},
            "SILVER_RETENTION_DAYS=90 is shorter than BRONZE_RETENTION_DAYS=120",
        ),
    ],
)
def test_a_setting_that_cannot_be_used_names_itself(env: dict[str, str], said: str) -> None:
    with pytest.raises(SettingError, match="^" + said.replace("(", r"\(").replace("?", r"\?")):
        Settings.from_env(env)


@pytest.mark.parametrize(
    "env",
    [{"LOADER_STALE_SECONDS": "soon"}, {"WATCHDOG_RESTART_TIMEOUT": "1.5"}],
)
def test_the_deployments_numbers_are_checked_too(env: dict[str, str]) -> None:
    """Read by the parts that use them (the loader's health, the watchdog), as strictly."""
    with pytest.raises(SettingError, match=next(iter(env))):
        for read in (
            reader_status.stale_seconds,
            loader_status.stale_seconds,
            Marker.from_env,
            Operations.from_env,
        ):
            read(env)


def test_a_refused_url_shows_no_password() -> None:
    with pytest.raises(SettingError) as refused:
        Settings.from_env({"AMQP_URL": "amqp://loader:s3cret@"})
    assert "s3cret" not in str(refused.value) and "loader:***@" in str(refused.value)


def test_the_command_says_it_in_one_line() -> None:
    done = wiki_events("status", env={"CLICKHOUSE_URL": "localhost:8123"})
    assert done.returncode == 1 and isinstance(done.exception, SystemExit)  # no traceback
    assert done.stderr.startswith("Error: CLICKHOUSE_URL='localhost:8123' is not a URL")
