"""The whole pipeline, end to end, on the recorded real events.

emulator → reader → RabbitMQ (real) → loader → embedded ClickHouse → dbt materialized
views, checked against numbers computed from the NDJSON in Python (canaries dropped,
duplicates counted once). First through ``wiki-events up`` (with ``status``, ``sql``
and a resumed second run), then as separate processes with faults injected while the
events flow: SSE cuts, ``kill -9`` of the reader and the loader, a RabbitMQ restart, an
embedded ClickHouse restart.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loader import bronze
from transform.project import run_dbt
from wiki_core.config import clickhouse_client
from wiki_events.accounts import role_urls
from wiki_events.up import stop_process

from .helpers.clickhouse import ClickHouseProcess
from .helpers.expected import Expected, assert_gold_equals, expected_from, gold_numbers
from .helpers.paths import ROOT, SHARED_DATA
from .helpers.ports import free_port
from .helpers.rabbitmq import rabbitmqctl
from .helpers.warehouse import rows

pytestmark = pytest.mark.slow  # each test runs the whole pipeline (30-80 s)

RECORDINGS = sorted((SHARED_DATA / "recentchange").glob("*.ndjson"))


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Expected]:
    """Every current-format recording in one file: 3,989 lines, 42 duplicate copies, a
    canary, a "142", events from 2016 and out of order."""
    path = tmp_path_factory.mktemp("recording") / "all.ndjson"
    path.write_bytes(b"".join(p.read_bytes() for p in RECORDINGS))
    want = expected_from([path])
    assert want.total == 3946
    return path, want


def wiki_events(*args: str, env: dict[str, str], **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "wiki_events", *args], cwd=ROOT, env=env, text=True, **kwargs
    )  # type: ignore[call-overload]


def gold_total(base_url: str) -> int:
    try:
        return int(rows(base_url, "SELECT sum(events) FROM gold.wiki_totals")[0][0])
    except (httpx.HTTPError, AssertionError, IndexError, ValueError):
        return -1


def wait_for_gold(base_url: str, total: int, timeout: float, alive: list) -> None:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in alive:
            assert proc.poll() is None, f"{proc.args} exited {proc.returncode}"
        if gold_total(base_url) == total:
            return
        time.sleep(0.5)
    raise AssertionError(f"gold holds {gold_total(base_url)} events, not {total}")


def wait_for_exact_gold(base_url: str, want: Expected, timeout: float, alive: list) -> None:  # type: ignore[type-arg]
    """Wait for every gold number to equal ``want``; fail with the first that differs.

    An insert pushes its blocks through the views one after another, so a query can see
    ``wiki_totals`` complete while another view still waits for the last block: once the
    total is reached, give the views a moment to agree before comparing them all.
    """
    wait_for_gold(base_url, want.total, timeout, alive)
    deadline = time.monotonic() + 30
    while True:
        got = gold_numbers(lambda sql: rows(base_url, sql))
        try:
            assert_gold_equals(got, want)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.5)


class Up:
    """``wiki-events up`` as a child process, its stderr read as it comes."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.proc = wiki_events("up", *args, env=env, stderr=subprocess.PIPE)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for_line(self, needle: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.text:
                return
            assert self.proc.poll() is None, self.text[-3000:]
            time.sleep(0.2)
        raise AssertionError(f"no {needle!r} in: {self.text[-3000:]}")

    def interrupt(self, timeout: float = 60) -> str:
        """Ctrl-C, as a user stops it; it must exit 0."""
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout)
        self._reader.join(10)
        assert self.proc.returncode == 0, self.text[-3000:]
        return self.text


# -- wiki-events up ----------------------------------------------------------------------


@pytest.fixture
def up_env(tmp_path: Path, amqp_url: str) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLICKHOUSE_", "DBT_"))}
    env.update(
        WIKI_EVENTS_DATA=str(tmp_path / "var"),
        CLICKHOUSE_URL=f"http://default:@127.0.0.1:{free_port()}/default",
        AMQP_URL=amqp_url,
        WIKI_EVENTS_CONTACT="wiki-events tests <ci@example.org>",
    )
    yield env


def test_up_replays_to_exact_gold_then_status_sql_and_a_resumed_run(
    recording: tuple[Path, Expected], up_env: dict[str, str]
) -> None:
    path, want = recording
    base = up_env["CLICKHOUSE_URL"].replace("default:@", "").rsplit("/", 1)[0]
    dash_port = free_port()
    first = Up("--replay", str(path), "--speed", "0", "--dash-port", str(dash_port), env=up_env)
    try:
        wait_for_exact_gold(base, want, 180, [first.proc])
        assert httpx.get(f"http://127.0.0.1:{dash_port}/", timeout=10).status_code == 200

        status = subprocess.run(
            [sys.executable, "-m", "wiki_events", "status"],
            cwd=ROOT,
            env=up_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        lines = {line[5:16].strip(): line for line in status.stdout.splitlines()}
        assert "3,946 events" in lines["bronze"] and "3,946 events" in lines["gold"]
        assert "3,946 events, 0 left out" in lines["silver"]
        assert "0 message(s) waiting, 1 consumer(s)" in status.stdout
        # the recording is from the past: freshness fails, and so does the exit code
        assert lines["freshness"].startswith("FAIL") and status.returncode == 2

        one_shot = subprocess.run(
            [
                sys.executable,
                "-m",
                "wiki_events",
                "sql",
                "SELECT type, count() AS n FROM silver.wiki GROUP BY type ORDER BY n DESC",
            ],
            cwd=ROOT,
            env=up_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert one_shot.returncode == 0, one_shot.stderr
        table = [line.split("\t") for line in one_shot.stdout.splitlines()]
        assert table[0] == ["type", "n"]
        assert {t: int(n) for t, n in table[1:]} == dict(want.per_type)

        # least privilege: the console is the analyst up made (reads, builds in its own
        # dev database, changes nothing else), --admin the administrator; each part of
        # the pipeline logged in as its own production user, whose rights are its own
        def sql(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "wiki_events", "sql", *args],
                cwd=ROOT,
                env=up_env,
                capture_output=True,
                text=True,
                timeout=60,
            )

        refused = sql("INSERT INTO gold.wiki_totals (wiki) VALUES ('x')")
        assert refused.returncode == 1 and "ACCESS_DENIED" in refused.stderr, refused.stderr
        assert "analyst: Not enough privileges" in refused.stderr
        assert sql("CREATE DATABASE dev_analyst").returncode == 0
        made = sql("CREATE TABLE dev_analyst.t ENGINE = Memory AS SELECT 1 AS a")
        assert made.returncode == 0, made.stderr
        admin = sql("--admin", "--format", "TSV", "SELECT count() FROM dev_analyst.t")
        assert admin.stdout.strip() == "1", admin.stderr
        passwords = Path(up_env["WIKI_EVENTS_DATA"]) / "clickhouse-users.env"
        assert passwords.stat().st_mode & 0o777 == 0o600
        urls = role_urls(up_env["CLICKHOUSE_URL"], Path(up_env["WIKI_EVENTS_DATA"]))
        for role, sql_text in (
            ("loader", "DROP TABLE gold.wiki_totals"),
            ("dbt", "INSERT INTO bronze.wiki_raw (event_id) VALUES ('x')"),
            ("dashboard", "SELECT count() FROM silver.wiki"),
            ("dumps", "DROP TABLE silver.wiki"),
        ):
            reply = httpx.post(urls[role].rsplit("/", 1)[0] + "/", content=sql_text)
            assert reply.status_code == 403 and f"{role}: Not enough" in reply.text, role
        console = subprocess.run(
            [sys.executable, "-m", "wiki_events", "sql", "--format", "TSV"],
            input="SET max_threads = 1;\nSELECT value FROM system.settings\n"
            "WHERE name = 'max_threads';\nSELECT (;\nSELECT 'after the error';\n"
            "USE gold;\nSELECT currentDatabase();\n\\q\n",
            cwd=ROOT,
            env=up_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert console.stdout.split("\n")[:1] == ["1"]  # SET held: one session per console
        assert "Syntax error" in console.stderr and "after the error" in console.stdout
        assert console.stdout.splitlines()[-1] == "gold"  # USE held too
        assert console.returncode == 1  # a statement failed
    finally:
        err = first.interrupt()
    assert "RabbitMQ at amqp://guest:***@" in err and "starting fresh" in err
    assert "dashboard    http://127.0.0.1:" in err

    # a second run: same data, resumes from the checkpoint, counts nothing twice
    second = Up("--replay", str(path), "--speed", "0", "--no-dash", env=up_env)
    try:
        second.wait_for_line("resuming from its checkpoint")
        second.wait_for_line("read ", timeout=30)  # a progress line: it has run a while
        time.sleep(5)  # the resumed reader re-reads its overlap; the loader drops it
        assert gold_total(base) == want.total
        assert_gold_equals(gold_numbers(lambda sql: rows(base, sql)), want)
    finally:
        err = second.interrupt()
    assert "PASS=" in err and "ERROR=0" in err  # dbt build again: changes nothing


def test_up_without_a_broker_says_so_and_still_loads_exactly_and_follows_the_dumps(
    recording: tuple[Path, Expected], up_env: dict[str, str], tmp_path: Path
) -> None:
    """No RabbitMQ: the direct hand-off, exact gold. With ``--dumps``: the dumps' models
    are built and a published hour of page views reaches gold beside the edits."""
    from .helpers.dumps_expected import expected_hours
    from .helpers.dumps_files import write_pageviews_hour
    from .helpers.dumps_site import DumpsSite, Faults, ServerThread

    path, want = recording
    site = tmp_path / "other"
    site.mkdir()
    # the follower starts at the hour two hours before *its* start: near the top of an
    # hour it would start an hour after the file written here, and wait for ever
    now = dt.datetime.now(dt.UTC)
    if now.minute >= 57:
        time.sleep(61 - now.second + (59 - now.minute) * 60)
    hour = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    hour -= dt.timedelta(hours=2)
    views = expected_hours({hour: write_pageviews_hour(site, hour, lines=300, seed=7)})
    with ServerThread(DumpsSite(site, Faults()), free_port()) as server:
        env = {
            **up_env,
            "AMQP_URL": f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F",
            "DUMPS_URL": server.url,
        }
        base = env["CLICKHOUSE_URL"].replace("default:@", "").rsplit("/", 1)[0]
        up = Up("--replay", str(path), "--speed", "0", "--no-dash", "--dumps", env=env)
        try:
            wait_for_exact_gold(base, want, 180, [up.proc])
            deadline = time.monotonic() + 120
            got: dict[tuple[object, ...], int] = {}
            while time.monotonic() < deadline and got != views and up.proc.poll() is None:
                got = {
                    (dt.datetime.fromisoformat(h), w, a): int(v)
                    for h, w, a, v in rows(
                        base, "SELECT hour, wiki, access, views FROM gold.pageviews_hour_wiki"
                    )
                    if int(v)
                }
                time.sleep(0.5)
            assert got == views
        finally:
            err = up.interrupt()
    assert "broker       NONE: RabbitMQ at" in err and "is unreachable" in err
    assert f"dumps        following page views and media counts at {server.url}" in err


# -- faults --------------------------------------------------------------------------------


class Process:
    """A ``wiki-events`` subcommand that the test kills and restarts."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.proc: subprocess.Popen[str] | None = None
        self.kills = 0

    def start(self) -> None:
        with open(self.log, "a") as out:
            self.proc = wiki_events(*self.args, env=self.env, stdout=out, stderr=out)

    def kill9(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, self.log.read_text()[-2000:]
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.kills += 1

    def stop(self) -> None:
        stop_process(self.proc)


def restart_rabbitmq() -> None:
    rabbitmqctl("stop_app")
    time.sleep(1)
    rabbitmqctl("start_app")
    subprocess.run(["rabbitmqctl", "-q", "await_startup"], check=True, timeout=120)


def test_faults_while_events_flow_lose_nothing_and_double_nothing(
    recording: tuple[Path, Expected], tmp_path: Path, amqp_url: str
) -> None:
    path, want = recording
    server = ClickHouseProcess(tmp_path / "clickhouse").start()
    url = f"http://default:@127.0.0.1:{server.port}/default"
    client = clickhouse_client(url)
    bronze.migrate(client)
    client.close()
    built = run_dbt(["build"], url, work_dir=tmp_path / "dbt", timeout=600)
    assert built.returncode == 0, built.stdout[-3000:]

    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLICKHOUSE_", "DBT_"))}
    port = free_port()
    env.update(
        CLICKHOUSE_URL=url,
        AMQP_URL=amqp_url,
        WIKI_EVENTS_DATA=str(tmp_path / "var"),
        STREAM_URL=f"http://127.0.0.1:{port}/v2/stream/recentchange",
        WIKI_EVENTS_CONTACT="wiki-events tests <ci@example.org>",
    )
    # about 25 s of events, the SSE connection cut every 300 of them
    emulator = Process(
        ["replay", str(path), "--port", str(port), "--rate", "160", "--disconnect-every", "300"],
        env,
        tmp_path / "emulator.log",
    )
    reader = Process(["stream"], env, tmp_path / "reader.log")
    loader = Process(["load"], env, tmp_path / "loader.log")
    processes = [emulator, reader, loader]
    try:
        for process in processes:
            process.start()
        faults = [
            (3, reader.kill9, reader.start),
            (6, loader.kill9, loader.start),
            (9, restart_rabbitmq, None),
            (13, server.stop, server.start),
            (17, reader.kill9, reader.start),
            (19, loader.kill9, loader.start),
            (22, reader.kill9, reader.start),
        ]
        began = time.monotonic()
        for at, fault, recover in faults:
            time.sleep(max(0.0, began + at - time.monotonic()))
            fault()
            if recover is not None:
                time.sleep(0.5)
                recover()
        wait_for_exact_gold(
            server.url, want, 240, [p.proc for p in processes if p.proc is not None]
        )
        time.sleep(5)  # anything late (a redelivery) would show now
        assert_gold_equals(gold_numbers(lambda sql: rows(server.url, sql)), want)
        ((count, distinct),) = rows(
            server.url, "SELECT count(), uniqExact(event_id) FROM silver.wiki"
        )
        assert (count, distinct) == (str(want.total), str(want.total))
        assert reader.kills == 3 and loader.kills == 2
        assert "stream closed by the server" in reader.log.read_text()  # the SSE cuts
        tests = run_dbt(
            ["test", "--vars", "{reconcile_lag_minutes: 0}"],
            url,
            work_dir=tmp_path / "dbt",
            timeout=600,
        )
        assert tests.returncode == 0, tests.stdout[-3000:]
    finally:
        for process in processes:
            process.stop()
        server.stop()
