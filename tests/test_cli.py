"""The one CLI gathers every stage's commands (each stage keeps them in its ``cli.py``),
in this process with click's runner."""

from __future__ import annotations

from .helpers.cli import wiki_events


def commands(help_text: str) -> list[str]:
    """The command names a ``--help`` page lists."""
    listed = help_text.split("Commands:\n", 1)[1].splitlines()
    return [line.split()[0] for line in listed if line.startswith("  ") and line.strip()]


def test_every_stage_brings_its_commands() -> None:
    top = wiki_events("--help")
    assert top.returncode == 0
    assert commands(top.stdout) == [
        "clickhouse",
        "dash",  # dash_app
        "health",
        "load",  # loader
        "mediacounts",  # dumps
        "pageviews",  # dumps
        "replay",  # reader
        "sql",
        "status",
        "stream",  # reader
        "up",
    ]


def test_every_stage_brings_its_healthcheck() -> None:
    health = wiki_events("health", "--help")
    assert health.returncode == 0
    assert commands(health.stdout) == [
        "alert",
        "dbt",  # transform
        "dumps",  # dumps: a follower's lag, behind the dbt gate
        "loader",  # loader, behind the dbt gate
        "models-digest",  # transform
        "reader",  # reader
        "wait-dbt",  # transform
        "watchdog",
    ]


def test_a_stage_command_keeps_its_options() -> None:
    """Registered as the stage wrote it: its options and their defaults."""
    stream = wiki_events("stream", "--help")
    assert (
        "--checkpoint FILE" in stream.stdout
        and "$WIKI_EVENTS_DATA/reader.checkpoint.json" in stream.stdout
    )
    loader = wiki_events("health", "loader", "--help")
    assert "--max-age FLOAT" in loader.stdout and "$LOADER_STALE_SECONDS or 300" in loader.stdout
