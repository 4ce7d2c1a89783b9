"""Issue 21: the backups (deploy/bin/backup) and the restore (deploy/bin/stack restore),
run as the server runs them against the real ClickHouse engine with production's users
and an S3 stand-in (moto's server): a weekly full and incrementals on it, a schedule read
from the status files (so a recreated container keeps it), a restore that proves the
backup restorable before it drops anything and stops every writer first, and the S3
secret on no command line."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loader import bronze
from transform.project import run_dbt
from wiki_core.config import clickhouse_client

from .helpers.backup import S3_KEY_ID, S3_SECRET, MotoS3, Scripts, start_clickhouse
from .helpers.clickhouse import ClickHouseProcess
from .helpers.expected import assert_gold_equals, expected_from, gold_numbers, shifted
from .helpers.paths import RAW, ROOT
from .helpers.warehouse import rows

DAY = 86400
WRITERS = "reader loader dash dbt backup dumps-pageviews dumps-mediacounts"


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ClickHouseProcess, MotoS3]]:
    folder = tmp_path_factory.mktemp("backup")
    s3 = MotoS3(folder).start()
    server = start_clickhouse(folder)
    yield server, s3
    server.stop()
    s3.stop()


@pytest.fixture
def scripts(parts: tuple[ClickHouseProcess, MotoS3], tmp_path: Path) -> Scripts:
    server, s3 = parts
    # a prefix of its own per test: the bucket is shared by the module
    return Scripts(tmp_path, server, s3, prefix=f"t-{tmp_path.name[-20:]}")


@pytest.fixture
def schedule(tmp_path: Path) -> Scripts:
    """deploy/bin/backup for its schedule alone (`backup due`): no server needed."""
    return Scripts(tmp_path, None, None)


def admin(server: ClickHouseProcess, sql: str) -> str:
    reply = httpx.post(server.url, content=sql, timeout=600)
    assert reply.status_code == 200, reply.text
    return reply.text


def small_databases(server: ClickHouseProcess) -> None:
    """bronze, silver and gold as small as can be, with a view across databases."""
    for db in ("gold", "silver", "bronze"):
        admin(server, f"DROP DATABASE IF EXISTS {db} SYNC")
    for db in ("bronze", "silver", "gold"):
        admin(server, f"CREATE DATABASE {db}")
    admin(server, "CREATE TABLE bronze.raw (a UInt32) ENGINE = MergeTree ORDER BY a")
    admin(server, "CREATE TABLE silver.wiki (a UInt32) ENGINE = MergeTree ORDER BY a")
    admin(
        server, "CREATE MATERIALIZED VIEW silver.wiki_mv TO silver.wiki AS SELECT a FROM bronze.raw"
    )
    admin(server, "CREATE TABLE gold.n (k UInt8, n UInt64) ENGINE = SummingMergeTree ORDER BY k")
    admin(
        server,
        "CREATE MATERIALIZED VIEW gold.n_mv TO gold.n "
        "AS SELECT 0 AS k, count() AS n FROM silver.wiki",
    )
    admin(server, "INSERT INTO bronze.raw SELECT number FROM numbers(1000)")


def first_full(scripts: Scripts, server: ClickHouseProcess) -> str:
    """Small databases and their first backup, a full one, made by deploy/bin/backup."""
    small_databases(server)
    done = scripts.backup("once")
    assert done.returncode == 0, done.stdout + done.stderr
    name = scripts.last("ok")["name"]
    assert name.startswith("full-") and scripts.last("ok")["kind"] == "full"
    return name


def plan(scripts: Scripts) -> tuple[str, str, dt.datetime]:
    """(kind, base, due time) as `backup due` says it."""
    done = scripts.backup("due")
    assert done.returncode == 0, done.stderr
    words = done.stdout.split()
    base = words[2] if words[1] == "on" else ""
    return words[0], base, dt.datetime.fromisoformat(words[-1].replace("Z", "+00:00"))


def near(when: dt.datetime, epoch: float, slack: float = 5) -> bool:
    return abs(when.timestamp() - epoch) <= slack


# -- the schedule: from the status files, not from the container's start ---------------------


def test_the_next_backup_is_due_from_the_last_good_one_and_a_full_one_a_week(
    schedule: Scripts,
) -> None:
    scripts = schedule
    now = time.time()
    # none yet (a new server, or a status folder from before): a full one, now
    kind, base, due = plan(scripts)
    assert (kind, base) == ("full", "") and near(due, now)
    scripts.write_status("ok", "20261201T030000Z BACKUP_CREATED")  # an older version's file
    kind, _, due = plan(scripts)
    assert kind == "full" and near(due, now)
    # an incremental a day after the last good one, on the full it stands on
    full_time = int(now - 3 * DAY)
    ok_time = int(now - 3600)
    fields = {"kind": "incr", "time": ok_time, "full": "full-A", "full_time": full_time}
    scripts.write_status("ok", "incr-B", mtime=ok_time, name="incr-B", **fields)
    kind, base, due = plan(scripts)
    assert (kind, base) == ("incr", "full-A") and near(due, ok_time + DAY)
    # a full one when its full would be a week old by then
    fields["full_time"] = int(now - 6 * DAY - 3600 * 2)
    scripts.write_status("ok", "incr-B", name="incr-B", **fields)
    assert plan(scripts)[0] == "full"
    # a container recreated after two days down: due at once (a day ago), and a full one:
    # the real start counts, not when it was due (6.5 days after the full), or an
    # incremental would stand on a full 7.5 days older, which the lifecycle may expire first
    fields.update(time=int(now - 2 * DAY), full_time=int(now - 7.5 * DAY))
    scripts.write_status("ok", "incr-B", name="incr-B", **fields)
    kind, _, due = plan(scripts)
    assert kind == "full" and due.timestamp() < now


def test_after_a_failure_it_tries_again_an_hour_later_and_a_failed_incremental_as_a_full(
    schedule: Scripts,
) -> None:
    scripts = schedule
    now = time.time()
    ok = {"name": "incr-B", "kind": "incr", "time": int(now - DAY - 600), "full": "full-A"}
    scripts.write_status("ok", "incr-B", **ok, full_time=int(now - 2 * DAY))
    failed_time = int(now - 600)
    scripts.write_status(
        "failed", "incr-C failed: Code: 499", name="incr-C", kind="incr", time=failed_time
    )
    kind, _, due = plan(scripts)
    assert kind == "full" and near(due, failed_time + 3600)
    # a failed full: a full again; an older failure (before the last good one) changes nothing
    scripts.write_status("failed", "full-C failed", name="full-C", kind="full", time=failed_time)
    assert plan(scripts)[0] == "incr"
    scripts.write_status(
        "failed", "incr-C failed", name="incr-C", kind="incr", time=int(now - 3 * DAY)
    )
    kind, base, due = plan(scripts)
    assert (kind, base) == ("incr", "full-A") and near(due, now - 600)
    # a failure in the second the good one started (whole seconds): the one it followed
    # tells, not its time; and one that followed an older good one is not since this one
    same = {"name": "incr-C", "kind": "incr", "time": ok["time"]}
    scripts.write_status("failed", "incr-C failed", **same, after="incr-B")
    kind, _, due = plan(scripts)
    assert kind == "full" and near(due, ok["time"] + DAY)
    scripts.write_status("failed", "incr-C failed", **{**same, "time": int(now)}, after="incr-A")
    assert plan(scripts)[0] == "incr"


def run_loop(scripts: Scripts, seconds: float, until: str | None = None) -> str:
    """`backup loop` as the service runs it, for a while (or until its output holds
    ``until``), then stopped: it and its `sleep` (its own process group)."""
    log = scripts.folder / "loop.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            ["/bin/sh", str(ROOT / "deploy" / "bin" / "backup"), "loop"],
            env=scripts.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            if until and until in log.read_text():
                break
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    return log.read_text()


@pytest.mark.slow
def test_a_recreated_container_keeps_the_schedule(
    scripts: Scripts, parts: tuple[ClickHouseProcess, MotoS3]
) -> None:
    server, s3 = parts
    full = first_full(scripts, server)
    made = set(s3.objects(scripts.prefix))
    scripts.argv_log.unlink()
    now = time.time()
    # the last good one an hour ago: a new container waits for its day, backs up nothing
    fields = {"kind": "full", "time": int(now - 3600), "base": "-", "full_time": int(now - 3600)}
    scripts.write_status("ok", full, mtime=now - 3600, name=full, full=full, **fields)
    out = run_loop(scripts, 5, until="next:")
    assert f"next: incr on {full} at" in out, out
    time.sleep(1)
    assert set(s3.objects(scripts.prefix)) == made
    assert "wiki-events" not in (scripts.argv_log.read_text() if scripts.argv_log.exists() else "")
    # 25 hours ago, the container down meanwhile: it backs up at once, not a day after its start
    fields.update(time=int(now - 25 * 3600), full_time=int(now - 25 * 3600))
    scripts.write_status("ok", full, mtime=now - 25 * 3600, name=full, full=full, **fields)
    out = run_loop(scripts, 60, until="done in")
    assert "done in" in out, out
    last = scripts.last("ok")
    assert last["kind"] == "incr" and last["base"] == full and last["full"] == full
    assert abs(int(last["time"]) - now) < 60
    assert (scripts.status / "last-ok").read_text().split()[0] == last["name"]


# -- one backup, for real -----------------------------------------------------------------------


class AlertSink(http.server.BaseHTTPRequestHandler):
    received: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers.get("Content-Length", 0))
        AlertSink.received.append(self.rfile.read(length).decode())
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.slow
def test_a_failed_backup_is_recorded_alerted_and_leaves_the_last_good_one(
    scripts: Scripts, parts: tuple[ClickHouseProcess, MotoS3]
) -> None:
    server, s3 = parts
    first_full(scripts, server)
    good = (scripts.status / "last-ok").read_text()
    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), AlertSink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    try:
        AlertSink.received.clear()
        failed = scripts.backup(
            "once",
            BACKUP_S3_URL=f"{s3.endpoint}/no-such-bucket/x",
            ALERT_WEBHOOK_URL=f"http://127.0.0.1:{sink.server_port}/",
        )
    finally:
        sink.shutdown()
    assert failed.returncode == 1
    assert (scripts.status / "last-ok").read_text() == good
    last = scripts.last("failed")
    assert last["kind"] == "incr" and last["name"].startswith("incr-")
    first = (scripts.status / "last-failed").read_text().splitlines()[0]
    assert first.startswith(f"{last['name']} failed: ") and "Code:" in first, first
    assert len(AlertSink.received) == 1 and last["name"] in AlertSink.received[0]
    assert S3_SECRET not in AlertSink.received[0] + first
    # the next one a day after the good one (a failure an hour after it is not retried
    # sooner than that), and a full one: the incremental's full may be what is missing
    kind, _, due = plan(scripts)
    assert kind == "full" and near(due, int(scripts.last("ok")["time"]) + DAY)


@pytest.mark.slow
def test_backup_and_restore_keep_the_s3_secret_off_every_command_line(
    scripts: Scripts, parts: tuple[ClickHouseProcess, MotoS3]
) -> None:
    server, _ = parts
    name = first_full(scripts, server)
    restored = scripts.stack("restore", name)
    assert restored.returncode == 0, restored.stderr
    argvs = scripts.argv_log.read_text()
    assert '"sql", "-"' in argvs or "sql\t-" in argvs
    assert "clickhouse-client" in argvs and S3_SECRET not in argvs
    # the queries that hold it went on stdin: wiki-events sql's and clickhouse-client's
    queries = scripts.queries()
    assert any(S3_SECRET in q and q.startswith("RESTORE DATABASE bronze,") for q in queries)
    assert S3_SECRET not in (scripts.status / "last-ok").read_text()
    assert S3_SECRET not in restored.stdout + restored.stderr
    # the lifecycle rules for this schedule: S3 takes them as they are
    rules = scripts.backup("lifecycle", BACKUP_KEEP_DAYS="14")
    assert rules.returncode == 0, rules.stderr
    config = json.loads(rules.stdout)
    days = {r["Filter"]["Prefix"]: r["Expiration"]["Days"] for r in config["Rules"]}
    assert days == {f"{scripts.prefix}/incr-": 14, f"{scripts.prefix}/full-": 22}
    xml = "".join(
        f"<Rule><ID>{r['ID']}</ID><Filter><Prefix>{r['Filter']['Prefix']}</Prefix></Filter>"
        f"<Status>Enabled</Status><Expiration><Days>{r['Expiration']['Days']}</Days></Expiration></Rule>"
        for r in config["Rules"]
    )
    _, s3 = parts
    put = httpx.put(
        f"{s3.endpoint}/{s3.bucket}?lifecycle",
        content=f"<LifecycleConfiguration>{xml}</LifecycleConfiguration>",
    )
    assert put.status_code == 200, put.text
    assert S3_KEY_ID not in argvs


# -- restore: proven before anything is dropped; every writer stopped -----------------------


@pytest.mark.slow
def test_a_wrong_name_drops_nothing_stops_nothing_and_says_why(
    scripts: Scripts, parts: tuple[ClickHouseProcess, MotoS3]
) -> None:
    server, s3 = parts
    small_databases(server)
    wrong = scripts.stack("restore", "full-20261201T030000Z")
    assert wrong.returncode == 1
    url = f"{s3.endpoint}/{s3.bucket}/{scripts.prefix}/full-20261201T030000Z"
    assert f"cannot be restored from {url}" in wrong.stderr, wrong.stderr
    assert "BACKUP_NOT_FOUND" in wrong.stderr and "nothing was stopped or dropped" in wrong.stderr
    assert scripts.compose_calls() == []  # no service stopped, the watchdog not paused
    assert not any(q.startswith("DROP DATABASE IF EXISTS bronze") for q in scripts.queries())
    assert admin(server, "SELECT sum(n) FROM gold.n") == "1000\n"
    assert "restore_check" not in admin(server, "SHOW DATABASES")
    # no BACKUP_S3_URL: refused before anything else
    empty = scripts.stack("restore", "x", BACKUP_S3_URL="")
    assert empty.returncode == 1 and "no BACKUP_S3_URL" in empty.stderr
    assert scripts.compose_calls() == []


@pytest.mark.slow
def test_a_backup_that_does_not_fit_on_the_disk_is_refused_before_anything_is_dropped(
    scripts: Scripts, parts: tuple[ClickHouseProcess, MotoS3]
) -> None:
    server, _ = parts
    name = first_full(scripts, server)
    # the disk as ClickHouse reports it, nearly full (the stand-in's clickhouse-client
    # answers the free-space query from this file instead)
    small = scripts.folder / "disks.tsv"
    small.write_text("10\n")
    docker = scripts.bin / "docker"
    text = docker.read_text()
    docker.write_text(
        text.replace(
            '    with open(os.environ["QUERY_LOG"]',
            "    if 'FROM system.disks' in query:\n"
            f"        sys.stdout.write(open({str(small)!r}).read()); sys.exit(0)\n"
            '    with open(os.environ["QUERY_LOG"]',
        )
    )
    admin(server, "DROP DATABASE gold SYNC")  # the accident: bronze and silver still hold data
    refused = scripts.stack("restore", name)
    assert refused.returncode == 1
    assert (
        "it does not fit" in refused.stderr and "Nothing was stopped or dropped" in refused.stderr
    )
    assert scripts.compose_calls() == []
    assert admin(server, "SELECT count() FROM silver.wiki") == "1000\n"


# -- the whole round trip on real data: dbt's bronze, silver and gold --------------------------


def warehouse(server: ClickHouseProcess, work: Path) -> str:
    """bronze migrated and dbt's silver and gold built, as `wiki-events up` builds them."""
    url = f"http://default:@127.0.0.1:{server.port}/default"
    for db in ("gold", "silver", "bronze"):
        admin(server, f"DROP DATABASE IF EXISTS {db} SYNC")
    client = clickhouse_client(url)
    bronze.migrate(client)
    client.close()
    done = run_dbt(["build", "--exclude", "test_type:singular"], url, work_dir=work, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    return url


def load(url: str, batch: bytes) -> None:
    from loader.bronze import Bronze
    from wiki_core.topology import decode_batch

    client = clickhouse_client(url)
    try:
        events, rejects, _ = decode_batch(batch, None)
        Bronze(client).write(events, rejects)
    finally:
        client.close()


def counts(server: ClickHouseProcess) -> dict[str, int]:
    """Rows of every table in bronze, silver and gold; FINAL where merges fold rows
    (summing, aggregating, replacing), so parts merged or not count the same."""
    found = rows(
        server.url,
        "SELECT database || '.' || name, engine FROM system.tables WHERE database IN "
        "('bronze', 'silver', 'gold') AND engine LIKE '%MergeTree%' ORDER BY 1",
    )
    return {
        table: int(
            rows(
                server.url,
                f"SELECT count() FROM {table}{'' if engine == 'MergeTree' else ' FINAL'}",
            )[0][0]
        )
        for table, engine in found
    }


@pytest.mark.slow
def test_a_restore_from_an_incremental_chain_brings_bronze_silver_and_gold_back_exact(
    scripts: Scripts, parts: tuple[ClickHouseProcess, MotoS3], tmp_path: Path
) -> None:
    server, s3 = parts
    url = warehouse(server, tmp_path / "dbt")
    batches = [RAW.read_bytes()] + [
        shifted(RAW, dt.timedelta(days=day), f"day-{day}") for day in (1, 2, 3)
    ]
    files = []
    timings = []
    for day, batch in enumerate(batches):
        load(url, batch)
        files.append(tmp_path / f"day-{day}.ndjson")
        files[-1].write_bytes(batch)
        started = time.monotonic()
        done = scripts.backup("once")
        timings.append(time.monotonic() - started)
        assert done.returncode == 0, done.stdout + done.stderr
        last = scripts.last("ok")
        assert last["kind"] == ("full" if day == 0 else "incr"), last
        if day == 0:
            full = last["name"]
        assert last["full"] == full and last["base"] == ("-" if day == 0 else full)
        time.sleep(1)  # names are to the second
    newest = scripts.last("ok")["name"]
    sizes = {
        name: sum(s3.objects(f"{scripts.prefix}/{name}/").values())
        for name in {key.split("/")[1] for key in s3.objects(scripts.prefix)}
    }
    # an incremental uploads only what its full lacks: less than all it restores
    logical = {
        row[0].split("/")[-1].split("'")[0]: int(row[1])
        for row in rows(
            server.url,
            "SELECT name, total_size FROM system.backups WHERE status = 'BACKUP_CREATED'",
        )
    }
    print(f"backups: {timings=}\nuploaded {sizes=}\nrestorable {logical=}")
    assert all(sizes[name] < logical[name] for name in sizes if name.startswith("incr-"))
    # what gold holds, and what it must hold
    before_gold = gold_numbers(lambda sql: rows(server.url, sql))
    assert_gold_equals(before_gold, expected_from(files))
    before = counts(server)
    assert before["bronze.wiki_raw"] > 0 and len(before) > 10
    admin(server, "DROP DATABASE gold SYNC")  # the accident
    admin(server, "TRUNCATE TABLE silver.wiki")
    started = time.monotonic()
    restored = scripts.stack("restore", newest)
    took = time.monotonic() - started
    print(f"restore of {newest} (on {full}): {took:.1f} s\n{restored.stdout}")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert counts(server) == before
    assert_gold_equals(gold_numbers(lambda sql: rows(server.url, sql)), before_gold)
    # every writer stopped after the proof and before the drop, the watchdog first; then up
    calls = scripts.compose_calls()
    assert calls == [
        "compose stop watchdog",
        f"compose --profile dumps stop {WRITERS}",
        "compose up -d --wait --remove-orphans",
    ], calls
    queries = scripts.queries()
    proof = next(i for i, q in enumerate(queries) if "structure_only = 1" in q)
    drop = queries.index("DROP DATABASE IF EXISTS bronze SYNC")
    real = next(i for i, q in enumerate(queries) if q.startswith("RESTORE DATABASE bronze, "))
    assert proof < drop < real
    argv = scripts.argv_log.read_text().splitlines()
    stop = next(i for i, line in enumerate(argv) if "--profile" in line)
    first_drop = next(i for i, line in enumerate(argv) if "clickhouse-client" in line and i > stop)
    assert stop < first_drop
    # the loader writes into the restored tables: gold follows
    load(url, shifted(RAW, dt.timedelta(days=4), "day-4"))
    files.append(tmp_path / "day-4.ndjson")
    files[-1].write_bytes(shifted(RAW, dt.timedelta(days=4), "day-4"))
    assert_gold_equals(gold_numbers(lambda sql: rows(server.url, sql)), expected_from(files))
    # the full the incrementals stand on is gone (a lifecycle set wrong): the proof fails,
    # nothing is dropped, and ClickHouse's answer names the missing base
    assert s3.remove(f"{scripts.prefix}/{full}/") > 0
    scripts.clear()
    now = counts(server)
    broken = scripts.stack("restore", newest)
    assert broken.returncode == 1
    assert full in broken.stderr and "BACKUP_NOT_FOUND" in broken.stderr, broken.stderr
    assert scripts.compose_calls() == []
    assert counts(server) == now
