"""``wiki-events`` run in this process with click's runner, for the commands that need
no process of their own (they answer and exit); the answer has a CompletedProcess's
fields."""

from __future__ import annotations

from dataclasses import dataclass

from click.testing import CliRunner

from wiki_events.cli import main


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str
    exception: BaseException | None


def wiki_events(*args: str, env: dict[str, str] | None = None) -> Ran:
    """``wiki-events ARGS`` with ``env`` over this process's environment (restored after)."""
    result = CliRunner().invoke(main, list(args), env=env)
    return Ran(result.exit_code, result.stdout, result.stderr, result.exception)
