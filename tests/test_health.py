"""``wiki-events health``: liveness judged from outside the reader and the loader.

Real parts: the broker (a vhost of its own), the embedded ClickHouse with the bronze
migrations (and production's users for the dumps followers' check), a local HTTP receiver
for alerts, the CLI as Docker runs it. The watchdog's Docker calls run against the real
daemon in tests/test_stack.py and against a stand-in Engine API on a unix socket in
tests/test_watchdog.py; alert delivery and the heartbeat in tests/test_alerts.py.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pika
import pytest

from dumps import schema as dumps_schema
from loader.bronze import RAW_TABLE, migrate
from loader.status import last_insert_age, queue_depth
from loader.status import verdict as loader_verdict
from reader.checkpoint import Checkpoint
from reader.status import verdict as reader_verdict
from transform.marker import dumps_wanted, marker_text, models_digest
from transform.marker import verdict as dbt_verdict
from wiki_core.config import clickhouse_client
from wiki_core.health import clickhouse_answers, rabbitmq_answers
from wiki_core.topology import LOADER_QUEUE, topology
from wiki_events.watchdog import Watchdog, alert, backup_problem, dependencies

from .helpers.cli import Ran, wiki_events
from .helpers.clickhouse import ClickHouseProcess
from .helpers.docker_engine import FakeDocker, container
from .helpers.paths import ROOT, USERS_D
from .helpers.ports import free_port


def health(*args: str, env: dict[str, str]) -> Ran:
    """``wiki-events health ARGS`` as Docker runs it, in this process."""
    return wiki_events("health", *args, env=env)


def health_process(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The same in a process of its own: WIKI_DBT_PROJECT is read when dbt's runner is
    imported."""
    return subprocess.run(
        [sys.executable, "-m", "wiki_events", "health", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


# -- reader ------------------------------------------------------------------------------


def saved_ago(checkpoint: Checkpoint, seconds: float) -> None:
    """As if the reader had last saved ``checkpoint`` ``seconds`` ago."""
    then = time.time() - seconds
    os.utime(checkpoint.path, (then, then))


def test_reader_is_healthy_while_its_checkpoint_moves(tmp_path: Path) -> None:
    checkpoint = Checkpoint(tmp_path / "reader.checkpoint.json")
    assert not reader_verdict(checkpoint.path, 300).healthy  # nothing delivered yet
    checkpoint.save("[]")
    saved_ago(checkpoint, 10)
    assert reader_verdict(checkpoint.path, 300).healthy
    saved_ago(checkpoint, 400)
    verdict = reader_verdict(checkpoint.path, 300)
    assert not verdict.healthy and "stuck" in verdict.reason
    # the command, as the healthcheck runs it: exit codes for Docker
    env = {"WIKI_EVENTS_DATA": str(tmp_path), "READER_STALE_SECONDS": "300"}
    stale = health("reader", env=env)
    assert stale.returncode == 1 and "stuck" in stale.stderr
    # stale because RabbitMQ is down: the reader waits for it, a restart would not help
    closed = free_port()
    waits = health("reader", env={**env, "AMQP_URL": f"amqp://r:pw@127.0.0.1:{closed}/v"})
    assert waits.returncode == 0, waits
    assert "stuck, but RabbitMQ is not answering at amqp://r:***@" in waits.stdout
    assert "the reader waits for it" in waits.stdout
    checkpoint.save("[]")
    assert health("reader", env=env).returncode == 0


# -- loader ------------------------------------------------------------------------------


def test_loader_verdict_stuck_only_with_a_backlog_and_an_old_insert() -> None:
    assert loader_verdict(0, None, 300).healthy  # idle stream, empty bronze
    assert loader_verdict(0, 5000, 300).healthy  # idle stream, old insert: not stuck
    assert loader_verdict(12, 20, 300).healthy  # working through a backlog
    assert not loader_verdict(12, 400, 300).healthy
    assert not loader_verdict(3, None, 300).healthy  # messages waiting, nothing ever loaded


@pytest.mark.slow
def test_loader_health_reads_the_queue_and_bronze(
    amqp_url: str, clickhouse: ClickHouseProcess, tmp_path: Path
) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    spec = topology(quorum=False)
    for exchange in spec["exchanges"]:
        channel.exchange_declare(exchange["name"], exchange["type"], durable=True)
    for queue in spec["queues"]:
        channel.queue_declare(queue["name"], durable=True, arguments=queue["arguments"])
    for binding in spec["bindings"]:
        channel.queue_bind(binding["destination"], binding["source"], binding["routing_key"])
    for _ in range(3):
        channel.basic_publish("", LOADER_QUEUE, b"{}")
    connection.close()
    deadline = time.monotonic() + 10
    while queue_depth(amqp_url, LOADER_QUEUE) != 3:
        assert time.monotonic() < deadline
        time.sleep(0.2)

    client = clickhouse_client(clickhouse.url)
    migrate(client, 90)
    client.command(f"TRUNCATE TABLE {RAW_TABLE}")
    assert last_insert_age(clickhouse.url, RAW_TABLE) is None
    env = {"AMQP_URL": amqp_url, "CLICKHOUSE_URL": clickhouse.url, "LOADER_STALE_SECONDS": "60"}
    empty = health("loader", env=env)
    assert empty.returncode == 1 and "bronze is empty" in empty.stderr
    # a row ingested 10 minutes ago: a backlog and an old insert is a stuck loader
    client.command(f"INSERT INTO {RAW_TABLE} (ingested_at) VALUES (now64(3) - INTERVAL 600 SECOND)")
    age = last_insert_age(clickhouse.url, RAW_TABLE)
    assert age is not None and 590 < age < 700
    stuck = health("loader", env=env)
    assert stuck.returncode == 1 and "stuck" in stuck.stderr
    # held at its gate while dbt builds another version's models: waiting, not stuck
    gate = tmp_path / "dbt"
    gate.mkdir()
    (gate / "dbt-built").write_text("another version\n")
    waiting = health("loader", env={**env, "DBT_MARKER": str(gate / "dbt-built")})
    assert waiting.returncode == 0 and "waiting for dbt" in waiting.stdout
    (gate / "dbt-built").write_text(health("models-digest", env={}).stdout)
    assert health("loader", env={**env, "DBT_MARKER": str(gate / "dbt-built")}).returncode == 1
    client.command(f"INSERT INTO {RAW_TABLE} (ingested_at) VALUES (now64(3))")
    assert health("loader", env=env).returncode == 0
    client.command(f"TRUNCATE TABLE {RAW_TABLE}")
    # a dependency down is not the loader's failure (a restart cannot help): healthy, and
    # the line says what is down, without the password; the watchdog alerts on it
    closed = free_port()
    gone = health("loader", env={**env, "AMQP_URL": f"amqp://guest:guest@127.0.0.1:{closed}/%2F"})
    assert gone.returncode == 0, gone
    assert gone.stdout.startswith(
        f"RabbitMQ is not answering at amqp://guest:***@127.0.0.1:{closed}/%2F "
        "(connection refused: nothing listens there): the loader waits for it"
    )
    # the backlog is there, ClickHouse is not
    no_ch = health("loader", env={**env, "CLICKHOUSE_URL": f"http://loader:pw@127.0.0.1:{closed}"})
    assert no_ch.returncode == 0, no_ch
    assert no_ch.stdout.startswith(
        f"ClickHouse is not answering at http://loader:***@127.0.0.1:{closed} (connection refused"
    )
    # ClickHouse answers but the query fails: that is no outage, and the check cannot judge
    client.command(f"RENAME TABLE {RAW_TABLE} TO {RAW_TABLE}_away")
    try:
        broken = health("loader", env=env)
    finally:
        client.command(f"RENAME TABLE {RAW_TABLE}_away TO {RAW_TABLE}")
    assert broken.returncode == 1 and "cannot judge" in broken.stderr


# -- dbt ---------------------------------------------------------------------------------


def test_the_dbt_marker_means_these_models_are_built(tmp_path: Path) -> None:
    project = tmp_path / "wiki_dbt"
    (project / "models" / "marts").mkdir(parents=True)
    (project / "dbt_project.yml").write_text("name: x\n")
    model = project / "models" / "marts" / "gold.sql"
    model.write_text("select 1")
    marker = tmp_path / "dbt-built"
    assert not dbt_verdict(marker, project).healthy
    marker.write_text(models_digest(project) + "\n")
    assert dbt_verdict(marker, project).healthy
    model.write_text("select 2")  # a new version's gold model: the old marker no longer counts
    verdict = dbt_verdict(marker, project)
    assert not verdict.healthy and "this image has" in verdict.reason
    # the real project's digest is stable and is what the image's dbt service writes
    real = ROOT / "wiki_dbt"
    assert models_digest(real) == models_digest(real)
    env = {"WIKI_DBT_PROJECT": str(project), "DBT_MARKER": str(marker)}
    assert health_process("dbt", env=env).returncode == 1
    marker.write_text(health_process("models-digest", env=env).stdout)
    assert health_process("dbt", env=env).returncode == 0
    assert health_process("wait-dbt", env=env).returncode == 0


def test_the_marker_says_whether_the_dumps_models_are_built_and_dbt_service_builds_them(
    tmp_path: Path,
) -> None:
    """The compose profile ``dumps``: the dbt service builds with --vars '{dumps: true}' and
    says so in the marker; the followers wait for that, the loader and dash do not."""
    project = tmp_path / "wiki_dbt"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text("name: x\n")
    marker = tmp_path / "dbt-built"
    assert dumps_wanted({"WIKI_EVENTS_PROFILES": "tools,dumps"})
    assert not dumps_wanted({"WIKI_EVENTS_PROFILES": ""}) and not dumps_wanted({})
    assert not dumps_wanted({"WIKI_EVENTS_PROFILES": "nodumps"})
    marker.write_text(marker_text(project, dumps=False) + "\n")
    assert dbt_verdict(marker, project).healthy
    without = dbt_verdict(marker, project, dumps=True)
    assert not without.healthy and "COMPOSE_PROFILES" in without.reason
    marker.write_text(marker_text(project, dumps=True) + "\n")
    assert dbt_verdict(marker, project, dumps=True).healthy
    assert dbt_verdict(marker, project).healthy  # the edits' models are built too
    # deploy/bin/dbt-service with a stand-in dbt: the vars follow WIKI_EVENTS_PROFILES, a
    # change of profile rebuilds, the same one does not
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "dbt-calls"
    target, docs = tmp_path / "target", tmp_path / "docs"
    # `dbt docs generate` writes the docs' three files into the target folder
    (bin_dir / "dbt").write_text(
        f'#!/bin/sh\necho "$*" >> {calls}\n'
        f'if [ "$1 $2" = "docs generate" ]; then mkdir -p {target} && '
        f'for f in index.html manifest.json catalog.json; do echo "$f" > {target}/$f; done; fi\n'
    )
    (bin_dir / "dbt").chmod(0o755)
    marker.unlink()

    def service(profiles: str) -> list[str]:
        calls.write_text("")
        env = {
            **os.environ,
            "WIKI_DBT_PROJECT": str(project),
            "DBT_MARKER": str(marker),
            "WIKI_EVENTS_PROFILES": profiles,
            "DBT_CHECK_EVERY": "not-a-number",
            "DBT_TARGET_PATH": str(target),
            "DBT_DOCS_DIR": str(docs),
            "PATH": f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}",
        }
        done = subprocess.run(
            [str(ROOT / "deploy" / "bin" / "dbt-service")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert "building models" in done.stdout or "already built" in done.stdout, done
        return calls.read_text().splitlines()

    retention = f"run-operation apply_silver_retention --project-dir {project}"
    # a build, then its docs (for the analysts: deploy.md), written into the docs folder
    built = [f"build --project-dir {project}", f"docs generate --project-dir {project}"]
    assert service("") == built
    assert marker.read_text().split() == [models_digest(project)]
    assert sorted(p.name for p in docs.iterdir()) == ["catalog.json", "index.html", "manifest.json"]
    assert service("") == [retention]  # built: nothing replaced, silver's TTL checked
    (docs / "index.html").unlink()  # built, but no docs (a volume from before them)
    assert service("") == [retention, f"docs generate --project-dir {project}"]
    assert (docs / "index.html").read_text() == "index.html\n"
    dumps = " --vars {dumps: true}"
    assert service("dumps") == [line + dumps for line in built]
    assert marker.read_text().split() == [models_digest(project), "dumps"]
    assert service("dumps") == [retention + dumps]


# -- alerts, backups, the watchdog -------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[bytes]]]:
    got: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            got.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200 if b"fail-me" not in got[-1] else 500)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts", got
    server.shutdown()


def test_alerts_reach_the_webhook_and_a_failure_is_reported(
    receiver: tuple[str, list[bytes]], tmp_path: Path
) -> None:
    url, got = receiver
    assert alert("disk full", url=url)
    assert got == [b"disk full"]
    spool = {"ALERT_SPOOL_DIR": str(tmp_path / "pending")}
    assert not alert("fail-me", url=url, waits=(0.05,), env=spool)  # 500: tried twice
    assert got[1:] == [b"fail-me", b"fail-me"]
    assert [p.read_text() for p in (tmp_path / "pending").iterdir()] == ["fail-me"]
    assert not alert("nowhere", url="")  # no webhook: logged only
    done = health(
        "alert", "dbt test failed", env={"ALERT_WEBHOOK_URL": url, "ALERT_WEBHOOK_FORMAT": "json"}
    )
    assert done.returncode == 0 and json.loads(got[-1]) == {"text": "dbt test failed"}


def test_backup_status_files_are_judged(tmp_path: Path) -> None:
    assert backup_problem(tmp_path, 3600) == "no backup has succeeded yet"
    ok = tmp_path / "last-ok"
    ok.write_text("20261201T000000Z BACKUP_CREATED")
    assert backup_problem(tmp_path, 3600) is None
    os.utime(ok, (time.time() - 7200, time.time() - 7200))
    assert "2 h old" in str(backup_problem(tmp_path, 3600))
    (tmp_path / "last-failed").write_text("20261201T010000Z Code: 499 S3 error")
    assert "failed" in str(backup_problem(tmp_path, 3600))


AUTOHEAL = {"wiki-events.autoheal": "true"}


def test_watchdog_restarts_unhealthy_containers_and_alerts_once_an_hour(tmp_path: Path) -> None:
    docker = FakeDocker(
        [
            container(
                "abc", "loader", health="unhealthy", said="stuck: 40 waiting", labels=AUTOHEAL
            ),
            container("zzz", "loader", project="other", health="unhealthy", labels=AUTOHEAL),
            container("dbt", "dbt", health="unhealthy"),  # no label: dbt alerts itself
        ]
    )
    sent: list[str] = []
    dog = Watchdog(
        docker,  # type: ignore[arg-type]
        "p",
        tmp_path,
        disk_percent=0,
        backup_expected=True,
        backup_max_age=3600,
        notify=sent.append,
        volume_on_host="/mnt/wiki-events",
    )
    dog.started -= 7200  # running for two hours: a missing backup is now overdue
    dog.check()
    assert docker.restarted == ["abc"]
    assert sent[0] == (
        "wiki-events: p-loader-1 was unhealthy and has been restarted (its check said: "
        "stuck: 40 waiting); if it comes back, see `docker compose logs --tail 100 loader`"
    )
    assert re.fullmatch(
        r"wiki-events: data volume /mnt/wiki-events \d+% full \(alert at 0%\): grow the "
        r"volume or shorten retention \(deploy.md, section 7\)",
        sent[1],
    )
    assert sent[2] == (
        "wiki-events: no backup has succeeded yet; see `docker compose logs --tail 100 "
        "backup`, then `deploy/bin/stack backup` (deploy.md, section 4)"
    )
    sent.clear()
    docker.listed = []
    dog.check()  # the same disk and backup problems within the hour: not sent again
    assert sent == []
    # both over: each says so once
    dog.disk_percent = 101
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "last-ok").write_text("20261201T000000Z BACKUP_CREATED")
    dog.check()
    assert len(sent) == 2 and "data volume /mnt/wiki-events back to" in sent[0]
    assert sent[1] == "wiki-events: backups succeed again"
    dog.check()
    assert len(sent) == 2


def test_watchdog_alerts_a_dependencys_outage_once_and_its_return(
    tmp_path: Path, clickhouse: ClickHouseProcess
) -> None:
    """The real broker and the embedded ClickHouse answer; a closed port does not, until a
    ClickHouse starts there. No alert within the grace, one per outage, one on return."""
    rabbitmq_answers("amqp://guest:guest@127.0.0.1:5672/%2F")  # the real ones answer
    clickhouse_answers(clickhouse.url)
    closed, no_broker = free_port(), free_port()  # nothing listens on either
    while no_broker == closed:
        no_broker = free_port()
    with pytest.raises(ConnectionRefusedError):
        rabbitmq_answers(f"amqp://127.0.0.1:{no_broker}/")
    now = [0.0]
    sent: list[str] = []
    dog = Watchdog(
        FakeDocker([]),  # type: ignore[arg-type]
        "p",
        tmp_path,
        disk_percent=100,
        backup_expected=False,
        notify=sent.append,
        dependencies=[
            *dependencies("amqp://guest:guest@127.0.0.1:5672/%2F", clickhouse.url),
            *dependencies(f"amqp://127.0.0.1:{no_broker}/", f"http://dbt:pw@127.0.0.1:{closed}"),
        ],
        outage_grace=60,
        clock=lambda: now[0],
    )
    assert dog.check() == [] and sent == []  # down, but within the grace
    now[0] = 61
    dog.check()
    assert sent == [
        f"wiki-events: RabbitMQ is not answering at amqp://127.0.0.1:{no_broker}/ (connection "
        "refused: nothing listens there): down for 61s; see `docker compose ps` and its logs",
        f"wiki-events: ClickHouse is not answering at http://dbt:***@127.0.0.1:{closed} "
        "(connection refused: nothing listens there): down for 61s; see `docker compose ps` "
        "and its logs",
    ]
    for minute in range(2, 6):  # the outage goes on: said once, not every pass
        now[0] = 60.0 * minute
        dog.check()
    assert len(sent) == 2
    sent.clear()
    server = ClickHouseProcess(tmp_path / "back", port=closed).start()
    try:
        now[0] = 400
        dog.check()
    finally:
        server.stop()
    assert sent == [
        f"wiki-events: ClickHouse answers again at http://dbt:***@127.0.0.1:{closed} (down 400s)"
    ]
    now[0] = 500  # down again (the server stopped): a new outage, alerted again after the grace
    dog.check()
    assert len(sent) == 1
    now[0] = 561
    dog.check()
    assert len(sent) == 2 and "ClickHouse is not answering" in sent[-1]


# -- the dumps followers -------------------------------------------------------------------


@pytest.fixture(scope="module")
def production_users(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseProcess]:
    """The embedded ClickHouse with production's users.d as it is: the follower's check
    runs as the dumps user, held to its grants by ClickHouse's own access control."""
    names = ("loader", "dbt", "dashboard", "backup", "dumps")
    env = {f"CLICKHOUSE_{name.upper()}_PASSWORD": f"{name}-pw" for name in names}
    folder = tmp_path_factory.mktemp("users")
    server = ClickHouseProcess(folder / "data", users_d=USERS_D, env=env).start()
    yield server
    server.stop()


def ledger_row(dataset: str, period: dt.datetime, state: str = "done", n: int = 0) -> list[Any]:
    stamp = period.strftime("%Y%m%d-%H%M%S")
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return [dataset, f"{dataset}-{stamp}.gz", n, period.replace(tzinfo=None), state, now, now]


@pytest.mark.slow
def test_a_dumps_follower_is_unhealthy_once_it_stopped_loading(
    production_users: ClickHouseProcess, tmp_path: Path
) -> None:
    """``wiki-events health dumps FOLLOWER`` as the followers' healthcheck runs it, as the
    dumps user: healthy while its newest file is within the publication delay (8 h for
    page views) plus DUMPS_STALE_SECONDS; unhealthy past it, or with nothing loaded."""
    url = production_users.url
    as_dumps = url.replace("http://", "http://dumps:dumps-pw@") + "/default"
    env = {"CLICKHOUSE_URL": as_dumps, "DUMPS_STALE_SECONDS": "3600"}
    gone = health("dumps", "pageviews", env=env)
    assert gone.returncode == 1 and "bronze.dumps_files: the dumps' tables were" in gone.stderr
    admin = clickhouse_client(url)
    dumps_schema.migrate(admin)
    nothing = health("dumps", "pageviews", env=env)
    assert nothing.returncode == 1 and "pageviews: no file loaded yet" in nothing.stderr
    hour = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    columns = ["dataset", "name", "load_id", "period", "state", "started_at", "finished_at"]

    def loaded(*rows: list[Any]) -> None:
        admin.insert(dumps_schema.LEDGER, list(rows), column_names=columns)

    # page views of 3 hours ago (within the 8 h the site may take), project views too
    loaded(ledger_row("pageviews", hour - dt.timedelta(hours=3), n=1))
    loaded(ledger_row("projectviews", hour - dt.timedelta(hours=3), n=2))
    fine = health("dumps", "pageviews", env=env)
    assert fine.returncode == 0, fine
    assert fine.stdout.startswith("pageviews: views up to ") and "projectviews" in fine.stdout
    # the media counts follower judges its own dataset only
    assert health("dumps", "mediacounts", env=env).returncode == 1
    # 10 h behind and more: past the 8 h the site may take plus DUMPS_STALE_SECONDS (1 h)
    admin.command(f"TRUNCATE TABLE {dumps_schema.LEDGER}")
    old = hour - dt.timedelta(hours=10)
    loaded(ledger_row("pageviews", old, n=3), ledger_row("projectviews", old, n=4))
    late = health("dumps", "pageviews", env=env)
    assert late.returncode == 1
    assert "pageviews: views up to" in late.stderr and "more than the 8.0 h the dumps'" in (
        late.stderr
    )
    assert "DUMPS_STALE_SECONDS (60 min)" in late.stderr and "stopped loading" in late.stderr
    # a larger allowance (the option, or DUMPS_STALE_SECONDS) says it is still fine
    assert health("dumps", "pageviews", "--beyond", "14400", env=env).returncode == 0
    # a failed file is named where nothing was loaded
    admin.command(f"TRUNCATE TABLE {dumps_schema.LEDGER}")
    loaded(ledger_row("mediacounts", hour - dt.timedelta(days=1), state="failed", n=5))
    failed = health("dumps", "mediacounts", env=env)
    assert failed.returncode == 1
    assert "mediacounts: no file loaded yet (1 failed: mediacounts-" in failed.stderr
    # ClickHouse down is not the follower's failure (the watchdog alerts on ClickHouse)
    closed = free_port()
    down = health(
        "dumps", "pageviews", env={**env, "CLICKHOUSE_URL": f"http://dumps:pw@127.0.0.1:{closed}"}
    )
    assert down.returncode == 0 and "the dumps follower waits for it" in down.stdout
    # held at its gate while dbt builds the dumps' models: waiting, not stopped
    gate = tmp_path / "dbt"
    gate.mkdir()
    (gate / "dbt-built").write_text("another version\n")
    waiting = health("dumps", "pageviews", env={**env, "DBT_MARKER": str(gate / "dbt-built")})
    assert waiting.returncode == 0 and "waiting for dbt" in waiting.stdout
