"""Long-running commands stop on SIGTERM within seconds while what they wait for is down
(issue 24): the dashboard with ClickHouse down, the watchdog with Docker's socket gone.
(The reader, the loader and the dumps followers: tests/test_reader.py, test_loader.py,
test_dumps_bounds.py.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .helpers.ports import free_port
from .helpers.signals import sigterm_when


@pytest.mark.parametrize(
    ("args", "waiting"),
    [
        (["dash", "--port", "{port}"], "Running on http://127.0.0.1:{port}"),
        (["health", "watchdog", "--volume", "{tmp}/volume"], "docker events stream failed"),
    ],
)
def test_a_command_stops_on_sigterm_while_its_dependency_is_down(
    tmp_path: Path, args: list[str], waiting: str
) -> None:
    port = str(free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLICKHOUSE_", "DOCKER_"))}
    env |= {
        "CLICKHOUSE_URL": f"http://default:@127.0.0.1:{free_port()}/default",
        "AMQP_URL": f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F",
        "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock",
        "WIKI_EVENTS_DATA": str(tmp_path / "var"),
    }
    ended = sigterm_when(
        [a.format(port=port, tmp=tmp_path) for a in args],
        env,
        tmp_path / "log",
        waiting.format(port=port),
    )
    # stopped by the signal itself (-15) or by its handler (0): at once either way
    assert ended.returncode in (0, -15) and ended.seconds < 3, ended
    assert "Traceback" not in ended.log, ended.log
