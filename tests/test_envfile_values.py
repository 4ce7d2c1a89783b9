"""The settings file cannot be bent (issue 24, item 5): every value ``deploy/envfile.py``
writes comes back from Compose v2's own ``config`` byte for byte, and the neighbours'
values with it; every value that would not is refused with the variable's name; a file
holding such a value from before still parses, is fixed with ``set`` and then rotates."""

from __future__ import annotations

import json
import os
import string
import subprocess
from pathlib import Path

import pytest

from .helpers.envfile import ENVFILE, run_envfile

# every printable ASCII character but the refused two, and the non-ASCII a value may hold
ACCEPTED = {
    "printable": "".join(c for c in string.printable if c not in "'\\" + string.whitespace),
    "spaces": "  a b  ",
    "interpolation": "$2a$14$abc${DOMAIN}$(id)`id`",
    "quotes_and_comment": '"x" # not a comment;&|<>',
    "latin_and_cjk": "é€ß漢字",
    "emoji_and_astral": "😀𝄞",
    "zero_width": "a\u200bb\ufeffc",  # format characters: no line ends at them
}
# (value, what the refusal says)
REFUSED = {
    "trailing_backslash": ("300\\", "a backslash"),
    "backslash": ("a\\nb", "a backslash"),
    "single_quote": ("it's", "a single quote"),
    "newline": ("a\nSTREAM_URL=x", "a line break"),
    "carriage_return": ("a\rb", "a line break"),
    "nul": ("a\x00b", "a control character"),
    "tab": ("a\tb", "a control character"),
    "vertical_tab": ("a\x0bb", "a control character"),
    "form_feed": ("a\x0cb", "a control character"),
    "file_separator": ("a\x1cb", "a control character"),
    "group_separator": ("a\x1db", "a control character"),
    "record_separator": ("a\x1eb", "a control character"),
    "escape": ("a\x1b[31mb", "a control character"),
    "delete": ("a\x7fb", "a control character"),
    "next_line": ("a\x85b", "a control character"),
    "line_separator": ("a\u2028b", "a line or paragraph separator"),
    "paragraph_separator": ("a\u2029b", "a line or paragraph separator"),
}
COMPOSE = """services:
  probe:
    image: busybox
    environment:
{lines}
"""


def compose_reads(env_file: Path, names: list[str]) -> dict[str, str]:
    """The values Compose v2 takes from ``env_file`` for ``names`` (its own parser)."""
    compose = env_file.parent / "compose.yaml"
    compose.write_text(COMPOSE.format(lines="\n".join(f"      {n}: ${{{n}}}" for n in names)))
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    done = subprocess.run(
        ["docker", "compose", "-f", str(compose), "--env-file", str(env_file)]
        + ["config", "--format", "json"],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    environment = json.loads(done.stdout)["services"]["probe"]["environment"]
    # `config` prints a literal $ as $$ (ready to be read again)
    return {n: environment[n].replace("$$", "$") for n in names}


def test_every_accepted_value_comes_back_from_compose_byte_for_byte(tmp_path: Path) -> None:
    """Each value sits between two settings (as READER_STALE_SECONDS sits before
    LOADER_STALE_SECONDS), so a value that swallowed its neighbour would show."""
    values = {name: "x" for name in ENVFILE.SETTINGS}
    names = list(ENVFILE.SETTINGS)
    for i, value in enumerate(ACCEPTED.values()):
        values[names[2 * i + 1]] = value
    env_file = tmp_path / ".env"
    env_file.write_text(ENVFILE.render(values))
    assert compose_reads(env_file, names) == {n: values[n] for n in names}
    assert {n: ENVFILE.parse(env_file.read_text())[n] for n in names} == {
        n: values[n] for n in names
    }


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_value_compose_would_not_read_back_is_refused_by_name(case: str) -> None:
    value, said = REFUSED[case]
    with pytest.raises(ENVFILE.EnvError) as refused:
        ENVFILE.render({"READER_STALE_SECONDS": value})
    message = str(refused.value)
    assert message.startswith("READER_STALE_SECONDS: a value may not hold " + said), message
    assert "envfile.py set .env READER_STALE_SECONDS=" in message


def test_init_refuses_a_backslash_ended_contact_and_writes_nothing(tmp_path: Path) -> None:
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"WIKI_EVENTS_CONTACT": "ops\\", "DOMAIN": "w.example.org"}))
    env_file = tmp_path / ".env"
    done = run_envfile("init", str(settings), str(env_file))
    assert done.returncode == 1
    assert "WIKI_EVENTS_CONTACT: a value may not hold a backslash" in done.stderr
    assert not env_file.exists()


def test_a_file_with_a_hostile_value_still_parses_is_fixed_and_rotates(tmp_path: Path) -> None:
    """Written by an older envfile.py (or by hand): U+2028 and \\x0b inside a value no
    longer split the file; rotation names the value to fix; ``set`` fixes it; then
    rotation works, and every other value is kept."""
    secrets = {name: "s" * 32 for name in ENVFILE.SECRETS}
    good = ENVFILE.render({**secrets, "DASH_PASSWORD_HASH": "$2a$14$hash"})
    env_file = tmp_path / ".env"
    hostile = "local\u2028v\x0b1"
    env_file.write_text(
        good.replace("WIKI_EVENTS_VERSION='local'", f"WIKI_EVENTS_VERSION='{hostile}'")
    )
    assert ENVFILE.parse(env_file.read_text())["WIKI_EVENTS_VERSION"] == hostile
    blocked = run_envfile("rotate", str(env_file), "CLICKHOUSE_LOADER_PASSWORD")
    assert blocked.returncode == 1
    assert "WIKI_EVENTS_VERSION: a value may not hold a line or paragraph" in blocked.stderr
    assert run_envfile("set", str(env_file), "WIKI_EVENTS_VERSION=abc123").returncode == 0
    assert run_envfile("rotate", str(env_file), "CLICKHOUSE_LOADER_PASSWORD").returncode == 0
    after = ENVFILE.parse(env_file.read_text())
    assert after["WIKI_EVENTS_VERSION"] == "abc123"
    assert after["CLICKHOUSE_LOADER_PASSWORD"] != secrets["CLICKHOUSE_LOADER_PASSWORD"]
    assert after["CLICKHOUSE_DBT_PASSWORD"] == secrets["CLICKHOUSE_DBT_PASSWORD"]
