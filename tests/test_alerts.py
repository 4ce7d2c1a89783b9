"""Alerts that survive a transient failure, and the heartbeat (issue 21, items 7 and 8).

Real parts: a webhook on 127.0.0.1 (down: a port nothing listens on; then started there),
the CLI as the backup and dbt services run it, pending alerts as files on a folder laid
out as the data volume is. The webhook's and the heartbeat's URLs hold a secret that no
log line may show.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from wiki_events.alerts import Courier, Heartbeat, Outbox, Webhook, deliver, retry_waits
from wiki_events.watchdog import Watchdog, spools

from .helpers.cli import wiki_events
from .helpers.docker_engine import FakeDocker
from .helpers.webhook import SECRET, Receiver


@pytest.fixture
def secret_kept(caplog: pytest.LogCaptureFixture):  # type: ignore[no-untyped-def]
    """Every log line of the test, at every level: none may hold the URLs' secret."""
    caplog.set_level(logging.DEBUG)
    yield caplog
    leaked = [r.getMessage() for r in caplog.records if SECRET in r.getMessage()]
    assert leaked == []


def volume(tmp_path: Path) -> Path:
    """A data volume as prepare-volume lays it out (the folders the alerts use)."""
    root = tmp_path / "volume"
    for sub in ("clickhouse", "backup", "dbt", "watchdog"):
        (root / sub).mkdir(parents=True)
    (root / "clickhouse" / ".wiki-events-volume").touch()
    return root


def test_a_transient_failure_is_retried_with_backoff_a_refusal_is_not(secret_kept) -> None:  # type: ignore[no-untyped-def]
    hook = Receiver().start()
    try:
        waited: list[float] = []
        hook.answers = [503, 429]  # the service is busy, then rate-limits, then takes it
        assert deliver(Webhook(hook.url()), "one", (1, 2, 4), waited.append) is None
        assert hook.bodies() == ["one"] * 3 and waited == [1, 2]
        hook.answers = [404]  # a wrong URL: no use trying again
        failed = deliver(Webhook(hook.url()), "two", (1, 2, 4), waited.append)
        assert failed is not None and failed.why == "HTTP 404" and not failed.transient
        assert hook.bodies()[-1] == "two" and len(hook.bodies()) == 4 and waited == [1, 2]
    finally:
        hook.stop()
    # nothing listens: transient, tried after every wait
    down = deliver(Webhook(hook.url()), "three", (0.01, 0.01), waited.append)
    assert down is not None and down.transient
    assert down.why == "ConnectError: connection refused: nothing listens there"
    assert retry_waits(90) == (1, 2, 4, 8, 16, 30, 29) and retry_waits(0) == ()


def test_slack_gets_json(secret_kept) -> None:  # type: ignore[no-untyped-def]
    hook = Receiver().start()
    try:
        assert deliver(Webhook(hook.url(), "json"), "disk full", ()) is None
    finally:
        hook.stop()
    assert json.loads(hook.got[0].body) == {"text": "disk full"}
    assert hook.got[0].content_type == "application/json"


def test_an_alert_the_webhook_did_not_take_waits_on_the_volume_for_the_watchdog(
    tmp_path: Path,
    secret_kept,  # type: ignore[no-untyped-def]
) -> None:
    """Item 8: the backup service alerts a failed backup while the webhook does not answer
    (a fresh start, a network or DNS not there yet, the receiver down). The alert is
    tried again with backoff, then kept in the backup's folder on the volume; the
    watchdog delivers it once the webhook answers, saying when it was raised."""
    root = volume(tmp_path)
    hook = Receiver()  # its port, nothing listening yet
    env = {
        "ALERT_WEBHOOK_URL": hook.url(),
        "ALERT_SPOOL_DIR": str(root / "backup" / "alerts-pending"),
    }
    started = time.monotonic()
    done = wiki_events(
        "health", "alert", "--retry-for", "0.3", "wiki-events: backup X failed", env=env
    )
    assert done.returncode == 1 and time.monotonic() - started >= 0.3
    kept = sorted((root / "backup" / "alerts-pending").iterdir())
    assert [p.read_text() for p in kept] == ["wiki-events: backup X failed"]
    # the dbt service's, kept an hour ago in its own folder (alerts.spool_folder: /dbt)
    Outbox(root / "dbt" / "alerts-pending").put("wiki-events: dbt test failed", time.time() - 3600)
    # the watchdog's own, kept in its folder; all three go out oldest first
    own = Outbox(root / "watchdog" / "alerts-pending")
    courier = Courier(Webhook(hook.url()), own, spools(root, own.folder))
    courier.send("wiki-events: data volume 91% full")
    assert courier.flush() == 0 and courier.pending() == 3  # still down: kept, backoff
    assert courier.next_try > time.time() - 1
    hook.start()
    try:
        courier.next_try = 0  # the backoff is over
        assert courier.flush() == 3
    finally:
        hook.stop()
    said = hook.bodies()
    assert said[0].startswith("wiki-events: dbt test failed (raised ")
    assert said[0].endswith(" UTC, delivered late)")
    assert said[1:] == ["wiki-events: backup X failed", "wiki-events: data volume 91% full"]
    assert courier.pending() == 0 and list(root.glob("*/alerts-pending/*")) == []


def test_the_watchdogs_alerts_outlive_a_restart_of_the_watchdog(
    tmp_path: Path,
    secret_kept,  # type: ignore[no-untyped-def]
) -> None:
    root = volume(tmp_path)
    hook = Receiver()
    own = Outbox(root / "watchdog" / "alerts-pending")
    first = Courier(Webhook(hook.url()), own, spools(root, own.folder))
    first.send("wiki-events: loader was unhealthy and has been restarted")
    assert first.flush() == 0
    # the watchdog is recreated (stack upgrade): the new one finds the alert and sends it
    hook.start()
    try:
        second = Courier(Webhook(hook.url()), own, spools(root, own.folder))
        assert second.flush() == 1
    finally:
        hook.stop()
    assert hook.bodies() == ["wiki-events: loader was unhealthy and has been restarted"]


def test_the_backoff_between_the_watchdogs_tries_grows_and_resets(tmp_path: Path) -> None:
    now = [1000.0]
    hook = Receiver()
    courier = Courier(
        Webhook(hook.url()), Outbox(tmp_path / "pending"), clock=lambda: now[0], max_wait=300
    )
    courier.send("wiki-events: x")
    waits = []
    for _ in range(8):
        courier.flush()
        waits.append(courier.next_try - now[0])
        assert courier.flush() == 0  # before next_try: not even tried
        now[0] = courier.next_try
    assert all(0 <= w <= 300 for w in waits) and courier.failures == 8
    hook.start()
    try:
        assert courier.flush() == 1 and courier.failures == 0
    finally:
        hook.stop()


def test_the_heartbeat_pings_after_passes_that_worked_only(
    tmp_path: Path,
    secret_kept,  # type: ignore[no-untyped-def]
) -> None:
    """A pass that worked pings when the last ping is HEARTBEAT_EVERY old; a pass that
    failed (Docker does not answer) pings nothing; a ping that fails is logged without its
    URL and made again at the next pass, and the loop goes on."""
    root = volume(tmp_path)
    now = [0.0]
    ping = Receiver().start()
    beat = Heartbeat(ping.url("ping"), every=300, clock=lambda: now[0])
    docker = FakeDocker([])
    dog = Watchdog(docker, "p", root, disk_percent=101, backup_expected=False)  # type: ignore[arg-type]
    try:
        assert dog.one_pass(heartbeat=beat)
        assert [r.method for r in ping.got] == ["GET"] and SECRET in ping.got[0].path
        now[0] = 200
        dog.one_pass(heartbeat=beat)  # not due yet
        assert len(ping.got) == 1
        now[0] = 301
        dog.one_pass(heartbeat=beat)
        assert len(ping.got) == 2

        def no_docker(project: str) -> list[object]:
            raise ConnectionRefusedError("the Docker daemon does not answer")

        docker.containers = no_docker  # type: ignore[method-assign]
        now[0] = 700
        assert not dog.one_pass(heartbeat=beat)  # the pass failed: no ping
        assert len(ping.got) == 2
        docker.containers = lambda project: []  # type: ignore[method-assign]
        ping.answers = [503]
        assert dog.one_pass(heartbeat=beat)  # the pass worked, the ping did not
        assert len(ping.got) == 3 and beat.last == 301
        assert any(
            "heartbeat ping failed: HTTP 503; again at the next pass" in r.getMessage()
            for r in secret_kept.records
        )
        now[0] = 730
        dog.one_pass(heartbeat=beat)  # retried at the next pass, not 300 s later
        assert len(ping.got) == 4 and beat.last == 730
    finally:
        ping.stop()
    now[0] = 1100
    assert dog.one_pass(heartbeat=beat)  # nothing listens: logged, the loop goes on
    assert any("ConnectError" in r.getMessage() for r in secret_kept.records)
