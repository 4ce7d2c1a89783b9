"""The watchdog's Docker side (issue 21, items 3 and 4): OOM kills, restart loops, the
dumps followers, through its own Engine API client.

The real daemon cannot be made to kill for memory or loop a container here without a
stack (tests/test_stack.py runs the watchdog against it); these tests speak HTTP over a
unix socket to a stand-in Engine API (tests/helpers/docker_engine.py) that answers as
dockerd does: container lists and inspects, restarts, and a streamed ``/events`` that
replays its buffer from ``since``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wiki_events.alerts import Outbox
from wiki_events.watchdog import (
    ALERT_UNHEALTHY,
    AUTOHEAL,
    DockerAPI,
    KillWatch,
    Watchdog,
    health_now,
)

from .helpers.docker_engine import Engine, container, event, oom_event
from .helpers.paths import ROOT
from .helpers.ports import free_port
from .helpers.webhook import SECRET, Receiver


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    server = Engine(tmp_path / "docker.sock").start()
    yield server
    server.stop()


def watchdog(engine: Engine, root: Path, sent: list[str], **kwargs: object) -> Watchdog:
    root.mkdir(exist_ok=True)
    return Watchdog(
        DockerAPI(str(engine.socket_path)),
        "p",
        root,
        disk_percent=101,
        backup_expected=False,
        notify=sent.append,
        **kwargs,  # type: ignore[arg-type]
    )


def wait_for(kills: KillWatch, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while kills.kills.qsize() < count:
        assert time.monotonic() < deadline, f"{kills.kills.qsize()} kill(s) seen, not {count}"
        time.sleep(0.02)


def test_an_oom_kill_is_alerted_once_per_kill_none_missed_across_a_dropped_stream_or_a_restart(
    engine: Engine, tmp_path: Path
) -> None:
    loader = container("c-loader", "loader", labels={AUTOHEAL: "true"})
    dash = container("c-dash", "dash", labels={AUTOHEAL: "true"})
    stranger = container("c-other", "loader", project="other")
    engine.put(loader, dash, stranger)
    cursor = tmp_path / "docker-events-since"
    kills = KillWatch(DockerAPI(str(engine.socket_path)), "p", cursor, idle=0.3)
    sent: list[str] = []
    dog = watchdog(engine, tmp_path / "volume", sent, kills=kills)
    kills.start()
    engine.wait_for_streams(1)
    engine.emit(oom_event(loader))
    engine.emit(oom_event(stranger))  # another compose project: not ours
    wait_for(kills, 1)
    dog.check()
    assert sent == [
        "wiki-events: loader ran out of memory: the kernel's OOM killer killed a process in "
        "p-loader-1 (Docker restarts the container if that was its main process); see "
        "`docker compose logs --tail 100 loader` and `docker stats`, and give the server "
        "more memory (deploy.md, section 7)"
    ]
    dog.check()
    assert len(sent) == 1  # said once
    # the stream is cut (a daemon restart, a dropped socket); a kill comes meanwhile: the
    # watch comes back from where it was, and Docker's buffer holds that kill
    engine.drop_streams()
    engine.emit(oom_event(dash))
    wait_for(kills, 1)
    engine.emit(oom_event(dash))  # a second kill in the same container
    wait_for(kills, 2)
    dog.check()
    assert len(sent) == 2 and "wiki-events: dash ran out of memory" in sent[1]
    assert "p-dash-1 2 times" in sent[1]
    # the watchdog stops (stack upgrade pauses it) with a kill received but not judged
    # yet, and another comes while it is away: the new watchdog hears of both, from where
    # the old one had judged (its position on the volume), and of none it told
    engine.emit(oom_event(dash))
    wait_for(kills, 1)
    kills.stop()
    engine.wait_for_streams(0)
    engine.emit(oom_event(loader))
    again = KillWatch(DockerAPI(str(engine.socket_path)), "p", cursor, idle=0.3)
    dog = watchdog(engine, tmp_path / "volume", sent, kills=again)
    again.start()
    wait_for(again, 2)
    time.sleep(0.5)  # nothing more comes
    dog.check()
    assert len(sent) == 4
    assert "wiki-events: dash ran out of memory" in sent[2] and " times" not in sent[2]
    assert "wiki-events: loader ran out of memory" in sent[3]
    # a pass that fails after taking the events (Docker does not answer the list) leaves
    # them to the next one
    engine.emit(oom_event(loader))
    wait_for(again, 1)
    answers = dog.docker.containers

    def no_answer(project: str) -> list[dict[str, object]]:
        raise ConnectionRefusedError("the Docker daemon does not answer")

    dog.docker.containers = no_answer  # type: ignore[method-assign]
    with pytest.raises(ConnectionRefusedError):
        dog.check()
    dog.docker.containers = answers  # type: ignore[method-assign]
    dog.check()
    assert len(sent) == 5 and "wiki-events: loader ran out of memory" in sent[4]
    again.stop()


def test_a_kill_whose_event_was_missed_is_alerted_from_the_containers_state_once(
    engine: Engine, tmp_path: Path
) -> None:
    """Docker keeps only its last 256 events (and none across its own restart): a kill
    older than that still shows as State.OOMKilled until the container starts again."""
    before = time.time_ns()
    engine.put(container("c-ch", "clickhouse", oom=True))
    sent: list[str] = []
    kills = KillWatch(DockerAPI(str(engine.socket_path)), "p", idle=0.3)
    dog = watchdog(engine, tmp_path / "volume", sent, kills=kills)
    dog.check()
    assert len(sent) == 1 and sent[0].startswith("wiki-events: clickhouse ran out of memory")
    dog.check()
    assert len(sent) == 1
    # the kill's event, late (it happened before the backstop said it): not said again;
    # but a second kill from before then, replayed late too, is one more
    kills.kills.put(oom_event(engine.containers["c-ch"], before))
    dog.check()
    assert len(sent) == 1
    kills.kills.put(oom_event(engine.containers["c-ch"], before + 1))
    dog.check()
    assert len(sent) == 2
    # a new kill in the same run of the container: said
    kills.kills.put(oom_event(engine.containers["c-ch"]))
    dog.check()
    assert len(sent) == 3
    # an event that comes late (replayed after a dropped stream), from before the last
    # kill said by its event: a kill of its own, said
    kills.kills.put(oom_event(engine.containers["c-ch"], before + 2))
    dog.check()
    assert len(sent) == 4
    # the container started again (Docker resets OOMKilled), then is killed again
    engine.put(container("c-ch", "clickhouse", oom=True, started="2026-12-07T01:00:00Z"))
    dog.check()
    assert len(sent) == 5


def test_a_restart_loop_is_alerted_once_and_its_end(engine: Engine, tmp_path: Path) -> None:
    now = [0.0]
    sent: list[str] = []
    dog = watchdog(engine, tmp_path / "volume", sent, clock=lambda: now[0])
    for minute, count in enumerate([0, 0, 1, 2, 3, 4]):
        now[0] = 60.0 * minute
        state = {"running": count % 2 == 0, "exit_code": 0 if count % 2 == 0 else 3}
        engine.put(container("c-reader", "reader", restarts=count, **state))  # type: ignore[arg-type]
        dog.check()
    assert sent == [
        "wiki-events: reader is restarting in a loop (3 restarts in 10 min, last exit code "
        "3): see `docker compose logs --tail 100 reader`"
    ]
    engine.put(container("c-reader", "reader", restarts=4))
    now[0] = 60.0 * 12  # running, the last restart 7 minutes ago: not over yet
    dog.check()
    assert len(sent) == 1
    now[0] = 60.0 * 16  # ten minutes without one
    dog.check()
    assert sent[1:] == ["wiki-events: reader runs again, no restart for 10 min"]
    dog.check()
    assert len(sent) == 2


def test_only_a_verdict_on_the_current_run_of_a_running_container_counts(
    engine: Engine, tmp_path: Path
) -> None:
    """Docker marks a stopped container unhealthy, and a started one keeps that verdict
    until its first check: compose's `stop` then `up` must not be fought (a restart of a
    container compose has just started broke `stack restore` in CI)."""
    sent: list[str] = []
    dog = watchdog(engine, tmp_path / "volume", sent)
    heal = {AUTOHEAL: "true"}
    follower = {ALERT_UNHEALTHY: "true"}
    started = "2026-12-07T00:00:00.5Z"
    engine.put(
        container("c-stopped", "reader", health="unhealthy", labels=heal, running=False),
        container("c-pv", "dumps-pageviews", health="unhealthy", labels=follower, running=False),
        # its last check began 1 µs before this start (the check's time in UTC+1)
        container(
            "c-started",
            "loader",
            health="unhealthy",
            labels=heal,
            started=started,
            checked="2026-12-07T01:00:00.499999+01:00",
        ),
    )
    dog.check()
    assert engine.restarted == [] and sent == []
    engine.put(
        container(
            "c-started",
            "loader",
            health="unhealthy",
            said="stuck",
            labels=heal,
            started=started,
            checked="2026-12-07T00:00:00.500001Z",
        )
    )
    dog.check()
    assert engine.restarted == ["c-started"]
    assert sent == [
        "wiki-events: p-loader-1 was unhealthy and has been restarted (its check said: "
        "stuck); if it comes back, see `docker compose logs --tail 100 loader`"
    ]


def test_a_time_docker_could_not_have_written_leaves_the_verdict_as_it_is() -> None:
    for started, checked in [("2026-13-45T00:00:00Z", "2026-12-07T00:00:00Z"), ("", "x" * 10**6)]:
        inspected = container("c", "loader", health="unhealthy", started=started, checked=checked)
        assert health_now(inspected) == "unhealthy"


def test_an_unhealthy_follower_is_alerted_not_restarted_and_a_gone_one_too(
    engine: Engine, tmp_path: Path
) -> None:
    now = [0.0]
    sent: list[str] = []
    dog = watchdog(
        engine,
        tmp_path / "volume",
        sent,
        clock=lambda: now[0],
        expected=("dumps-pageviews", "dumps-mediacounts"),
        absent_grace=300,
    )
    lagging = "pageviews: views up to 2026-12-07 01:00 UTC, 13.0 h behind, more than ..."
    follower = {ALERT_UNHEALTHY: "true"}
    engine.put(
        container("c-pv", "dumps-pageviews", health="unhealthy", said=lagging, labels=follower),
        container(
            "c-loader", "loader", health="unhealthy", said="stuck", labels={AUTOHEAL: "true"}
        ),
    )
    dog.check()
    assert engine.restarted == ["c-loader"]  # the loader is restarted, the follower not
    assert len(sent) == 2 and "p-loader-1 was unhealthy and has been restarted" in sent[1]
    assert sent[0] == (
        f"wiki-events: dumps-pageviews is unhealthy: {lagging} (not restarted by the "
        "watchdog; see `docker compose logs --tail 100 dumps-pageviews`, and `docker "
        "compose restart dumps-pageviews` if it hangs)"
    )
    engine.put(container("c-loader", "loader", health="healthy", labels={AUTOHEAL: "true"}))
    now[0] = 100
    dog.check()
    assert len(sent) == 2  # still unhealthy: said once; mediacounts gone, within the grace
    now[0] = 301
    dog.check()
    assert sent[2:] == [
        "wiki-events: dumps-mediacounts is not running (no container), though "
        "COMPOSE_PROFILES in .env asks for it: see `docker compose logs --tail 100 "
        "dumps-mediacounts`, then `docker compose up -d dumps-mediacounts`"
    ]
    engine.put(
        container("c-pv", "dumps-pageviews", health="healthy", labels=follower),
        container("c-mc", "dumps-mediacounts", running=False, exit_code=1, labels=follower),
    )
    now[0] = 400
    dog.check()
    assert sent[3:] == ["wiki-events: dumps-pageviews is healthy again"]
    engine.put(container("c-mc", "dumps-mediacounts", labels=follower))
    dog.check()
    assert sent[4:] == ["wiki-events: dumps-mediacounts runs again"]


def test_a_sigkill_docker_did_not_send_is_alerted_as_the_oom_killers_work(
    engine: Engine, tmp_path: Path
) -> None:
    """Where Docker reports no OOM (this machine's daemon: a container over its memory
    limit dies with exit code 137, no ``oom`` event, OOMKilled false), a main process
    SIGKILLed without Docker's own ``kill`` before it is the OOM killer's work (or a
    kill -9 on the host): alerted once. Docker's own kills (stop, restart) and a die its
    oom event already told are not."""
    second = 10**9
    loader = container("c-loader", "loader")
    engine.put(loader)
    sent: list[str] = []
    kills = KillWatch(DockerAPI(str(engine.socket_path)), "p", idle=0.3)
    dog = watchdog(engine, tmp_path / "volume", sent, kills=kills)
    long_ago = time.time_ns() - 60 * second
    # the kernel's kill: die 137, nothing before it
    kills.kills.put(event(loader, "die", long_ago, exitCode="137"))
    # docker compose stop / the watchdog's restart: kill (SIGTERM, then SIGKILL), die 137
    kills.kills.put(event(loader, "kill", long_ago + 10 * second, signal="15"))
    kills.kills.put(event(loader, "kill", long_ago + 40 * second, signal="9"))
    kills.kills.put(event(loader, "die", long_ago + 40 * second, exitCode="137"))
    kills.kills.put(event(loader, "die", long_ago + 45 * second, exitCode="0"))  # a clean exit
    dog.check()
    assert sent == [
        "wiki-events: loader's main process in p-loader-1 was killed (SIGKILL, exit code 137) "
        "by something outside Docker, most likely the kernel's OOM killer (the server ran "
        "out of memory; Docker reported no OOM event); Docker restarts it. See `journalctl "
        "-k | grep -i oom`, `docker compose logs --tail 100 loader` and `docker stats`, and "
        "give the server more memory (deploy.md, section 7)"
    ]
    # where Docker does report it: the oom event is said, its die is not said again,
    # even when the die comes first and the oom event a moment later
    now = time.time_ns()
    kills.kills.put(event(loader, "die", now, exitCode="137"))
    dog.check()  # the die is too fresh to judge: it waits for its oom event
    assert len(sent) == 1
    kills.kills.put(oom_event(loader, now + second // 10))
    dog.check()
    assert len(sent) == 2 and "loader ran out of memory" in sent[1]
    dog.dies = [(c, w - 10 * second, s, n) for c, w, s, n in dog.dies]  # judged later
    dog.check()
    assert len(sent) == 2 and dog.dies == []


def test_the_watchdog_command_restarts_alerts_delivers_and_pings(
    engine: Engine, tmp_path: Path
) -> None:
    """``wiki-events health watchdog`` as compose runs it (DOCKER_HOST names the stand-in's
    socket): it restarts an unhealthy container, says an OOM kill, delivers the alert the
    backup service left on the volume, pings the heartbeat, and logs neither URL."""
    volume = tmp_path / "volume"
    for sub in ("clickhouse", "backup", "dbt"):
        (volume / sub).mkdir(parents=True)
    (volume / "clickhouse" / ".wiki-events-volume").touch()
    Outbox(volume / "backup" / "alerts-pending").put("wiki-events: backup X failed")
    loader = container(
        "c-loader", "loader", health="unhealthy", said="stuck", labels={AUTOHEAL: "true"}
    )
    engine.put(loader)
    hook, ping = Receiver().start(), Receiver().start()
    closed = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CLICKHOUSE_", "AMQP_"))},
        "DOCKER_HOST": f"unix://{engine.socket_path}",
        "ALERT_WEBHOOK_URL": hook.url(),
        "HEARTBEAT_URL": ping.url("ping"),
        "HEARTBEAT_EVERY": "1",
        "COMPOSE_PROJECT_NAME": "p",
        "DISK_ALERT_PERCENT": "101",
        "AMQP_URL": f"amqp://127.0.0.1:{closed}/",
        "CLICKHOUSE_URL": f"http://127.0.0.1:{closed}/",
    }
    log = tmp_path / "watchdog.log"
    with open(log, "wb") as out:
        watchdog = subprocess.Popen(
            [sys.executable, "-m", "wiki_events", "health", "watchdog"]
            + ["--interval", "0.5", "--volume", str(volume)],
            cwd=ROOT,  # this checkout's code
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while len(hook.bodies()) < 2:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        engine.put(container("c-loader", "loader", health="healthy", labels={AUTOHEAL: "true"}))
        engine.wait_for_streams(1)
        engine.emit(oom_event(loader))
        while len(hook.bodies()) < 3 or len(ping.got) < 2:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    finally:
        watchdog.terminate()
        watchdog.wait(30)
        hook.stop()
        ping.stop()
    said = hook.bodies()
    assert sorted(said[:2]) == [
        "wiki-events: backup X failed",
        "wiki-events: p-loader-1 was unhealthy and has been restarted (its check said: "
        "stuck); if it comes back, see `docker compose logs --tail 100 loader`",
    ]
    assert said[2].startswith("wiki-events: loader ran out of memory")
    assert engine.restarted == ["c-loader"]
    assert list(volume.glob("*/alerts-pending/*")) == []  # delivered, removed
    assert int((volume / "watchdog" / "docker-events-since").read_text()) > 0
    assert SECRET not in log.read_text()
