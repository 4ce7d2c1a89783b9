"""The production stack, run for real: compose.yaml under Docker, with stand-in images.

No container registry is reachable here, so tests/stack/build_images.sh builds the images
(a debootstrapped Debian; the app from the production Dockerfile; RabbitMQ and Caddy from
Debian's packages; ClickHouse as ``wiki-events clickhouse`` in the app image) and
compose.test.yaml names them. Everything else is production's: compose.yaml's services,
volumes, order, healthchecks and commands; the ``.env`` written by deploy/envfile.py
exactly as cloud-init writes it; deploy/bin/prepare-volume's layout; deploy/bin/stack's
upgrade, backup and restore.

A recorded file is replayed through the emulator in two halves: reader → RabbitMQ →
loader → ClickHouse → dbt → the dashboard through Caddy (HTTPS, Caddy's internal CA for a
``.localhost`` domain, the generated password). Gold must equal the numbers computed from
the file after every step: a restart of the stack and of the Docker daemon, an upgrade to
an image whose gold model changed (the loader must not write while dbt builds), a stuck
loader that the watchdog restarts (and the alert receiver hears of), a backup and a
restore.

The test fails, never skips, when Docker is missing: .ci/run installs and starts it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from .conftest import ROOT, free_port
from .helpers.expected import Expected, assert_gold_equals, expected_from, gold_numbers, shifted
from .helpers.warehouse import rows

RECORDING = ROOT / ".." / "shared" / "data" / "recentchange"
FILE = RECORDING / "2024-09-01_harshachelva-stream-wikimedia.ndjson"
DOMAIN = "wiki-events.localhost"
BUILD = ROOT / "tests" / "stack" / "build_images.sh"


def docker_ready() -> None:
    missing = [tool for tool in ("docker", "curl", "caddy") if not shutil.which(tool)]
    assert not missing, f"{missing} missing: run ./setup (CI: .ci/run installs and starts Docker)"
    info = subprocess.run(
        ["docker", "info", "--format", "{{.ServerVersion}}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert info.returncode == 0, (
        f"the Docker daemon does not answer ({info.stderr.strip()}): "
        "start it with tests/stack/dockerd.sh start"
    )
    plugin = subprocess.run(
        ["docker", "compose", "version"], capture_output=True, text=True, timeout=60
    )
    assert plugin.returncode == 0, "the Compose v2 plugin is missing: run ./setup"


@dataclass
class Stack:
    root: Path
    project: str = field(default_factory=lambda: f"wiki-events-test-{uuid.uuid4().hex[:8]}")
    ports: dict[str, int] = field(default_factory=dict)
    tag: str = "test"  # the app image's tag: "upgrade" once the upgrade test ran
    compose_files: str = "compose.yaml:compose.test.yaml"

    def __post_init__(self) -> None:
        self.volume = self.root / "volume"
        self.replay = self.root / "replay"
        self.alerts = self.root / "alerts"
        for folder in (self.volume, self.replay, self.alerts):
            folder.mkdir(parents=True, exist_ok=True)
        self.env_file = self.volume / ".env"
        names = ("TEST_CLICKHOUSE_PORT", "HTTP_PORT", "HTTPS_PORT", "RABBITMQ_UI_PORT")
        self.ports = {name: free_port() for name in names}

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
        env.update(
            {
                "COMPOSE_FILE": self.compose_files,
                "COMPOSE_PROJECT_NAME": self.project,
                "COMPOSE_ENV_FILES": str(self.env_file),
                "TEST_REPLAY_DIR": str(self.replay),
                "TEST_ALERTS_DIR": str(self.alerts),
                "TEST_APP_TAG": self.tag,
                # the replay ends: an idle stream must not look like a stuck reader here
                "READER_STALE_SECONDS": "3600",
                "LOADER_STALE_SECONDS": "10",
            }
        )
        env.update({name: str(port) for name, port in self.ports.items()})
        return env

    def run(
        self, *args: str, timeout: float = 600, check: bool = True, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            list(args),
            cwd=ROOT,
            env={**self.env, **extra},
            text=True,
            capture_output=True,
            timeout=timeout,
        )
        if check and done.returncode:
            raise AssertionError(
                f"{' '.join(args)} exited {done.returncode}:\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return done

    def compose(self, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return self.run("docker", "compose", *args, **kwargs)  # type: ignore[arg-type]

    def stack(self, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return self.run("deploy/bin/stack", *args, **kwargs)  # type: ignore[arg-type]

    def logs(self) -> str:
        return self.compose("logs", "--no-color", "--tail", "60", check=False).stdout

    # -- ClickHouse, straight (the stand-in's port on 127.0.0.1) --

    def rows(self, sql: str) -> list[tuple[str, ...]]:
        return rows(f"http://127.0.0.1:{self.ports['TEST_CLICKHOUSE_PORT']}/", sql)

    def scalar(self, sql: str) -> int:
        try:
            return int(self.rows(sql)[0][0])
        except (httpx.HTTPError, AssertionError, IndexError, ValueError):
            return -1

    def bronze(self) -> int:
        return self.scalar("SELECT count() FROM bronze.wiki_raw")

    def wait_for_gold(self, want: Expected, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while self.scalar("SELECT sum(events) FROM gold.wiki_totals") != want.total:
            if time.monotonic() > deadline:
                got = self.scalar("SELECT sum(events) FROM gold.wiki_totals")
                raise AssertionError(f"gold holds {got} events, not {want.total}\n{self.logs()}")
            time.sleep(1)
        settle = time.monotonic() + 30
        while True:
            try:
                assert_gold_equals(gold_numbers(self.rows), want)
                return
            except AssertionError:
                if time.monotonic() > settle:
                    raise
            time.sleep(1)

    def health(self, service: str) -> str:
        cid = self.compose("ps", "-q", service).stdout.strip()
        if not cid:
            return "absent"
        state = "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}"
        done = self.run("docker", "inspect", "--format", state, cid, check=False)
        return done.stdout.strip() or "absent"

    def queue_depth(self) -> int:
        done = self.compose(
            "exec",
            "-T",
            "rabbitmq",
            "rabbitmqctl",
            "-q",
            "list_queues",
            "-p",
            "wiki-events",
            "name",
            "messages",
            check=False,
        )
        for line in done.stdout.splitlines():
            name, _, count = line.partition("\t")
            if name == "wiki.recentchange.loader":
                return int(count)
        return -1

    def serve(self, *parts: bytes) -> None:
        """What the emulator replays from its next start (a restart keeps the reader's
        Last-Event-ID, so it resumes where it was in the common beginning)."""
        (self.replay / "events.ndjson").write_bytes(b"".join(parts))


def halves(path: Path) -> tuple[bytes, bytes]:
    lines = path.read_bytes().splitlines(keepends=True)
    return b"".join(lines[: len(lines) // 2]), b"".join(lines[len(lines) // 2 :])


def expected(tmp: Path, *parts: bytes) -> Expected:
    path = tmp / f"expected-{uuid.uuid4().hex[:6]}.ndjson"
    path.write_bytes(b"".join(parts))
    return expected_from([path])


def start_stack(root: Path, replay: bytes, extra_files: tuple[str, ...] = ()) -> Stack:
    """Images (built when missing), the volume laid out as cloud-init does, the .env as
    cloud-init writes it, then ``deploy/bin/stack up``. Also used by tests/stack/measure.py."""
    docker_ready()
    subprocess.run([str(BUILD)], cwd=ROOT, check=True, timeout=2400)
    s = Stack(root)
    if extra_files:
        s.compose_files = ":".join(("compose.yaml", "compose.test.yaml", *extra_files))
    # the volume as cloud-init lays it out (the stand-in ClickHouse runs as the app's uid)
    subprocess.run(
        ["deploy/bin/prepare-volume", str(s.volume)],
        cwd=ROOT,
        check=True,
        env={**os.environ, "CLICKHOUSE_UID": "10001"},
    )
    # .env exactly as cloud-init writes it: terraform's settings JSON → envfile.py init
    settings = {
        "WIKI_EVENTS_CONTACT": "ops@example.org",
        "DOMAIN": DOMAIN,
        "STREAM_URL": "http://emulator:8765/v2/stream/recentchange",
        "DATA_DIR": str(s.volume),
        "ALERT_WEBHOOK_URL": "http://alert-sink:8080/",
    }
    (s.root / "settings.json").write_text(json.dumps(settings))
    s.run("python3", "deploy/envfile.py", "init", str(s.root / "settings.json"), str(s.env_file))
    s.serve(replay)
    try:
        s.stack("up", timeout=900)
    except BaseException:
        print(s.logs())
        s.compose("down", "--volumes", "--remove-orphans", "--timeout", "10", check=False)
        raise
    return s


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    started = time.monotonic()
    first, _ = halves(FILE)
    s = start_stack(tmp_path_factory.mktemp("stack"), first)
    print(f"stack: images + up in {time.monotonic() - started:.0f}s")
    try:
        yield s
    finally:
        print(s.logs())
        s.compose("down", "--volumes", "--remove-orphans", "--timeout", "10", check=False)


def env_values(stack: Stack) -> dict[str, str]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("envfile", ROOT / "deploy" / "envfile.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.parse(stack.env_file.read_text()))


def https(stack: Stack, path: str, user: str, password: str) -> tuple[int, str]:
    ca = stack.root / "caddy-root.crt"
    ca.write_text(
        stack.compose(
            "exec", "-T", "caddy", "cat", "/data/caddy/pki/authorities/local/root.crt"
        ).stdout
    )
    port = stack.ports["HTTPS_PORT"]
    done = stack.run(
        "curl",
        "-sS",
        "--resolve",
        f"{DOMAIN}:{port}:127.0.0.1",
        "--cacert",
        str(ca),
        "-u",
        f"{user}:{password}",
        "-w",
        "\n%{http_code}",
        f"https://{DOMAIN}:{port}{path}",
    )
    body, _, code = done.stdout.rpartition("\n")
    return int(code), body


def test_replay_reaches_exact_gold_and_the_dashboard_over_https(
    stack: Stack, tmp_path: Path
) -> None:
    first, _ = halves(FILE)
    want = expected(tmp_path, first)
    stack.wait_for_gold(want)
    # the reader's and the loader's Prometheus endpoints (compose network only)
    read = "import urllib.request as u; print(u.urlopen('http://127.0.0.1:%d/metrics').read().decode())"
    metrics = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for service, port in (("reader", 9101), ("loader", 9102))
        for line in stack.compose(
            "exec", "-T", service, "python", "-c", read % port
        ).stdout.splitlines()
        if line.startswith("wiki_")
    }
    assert metrics["wiki_loader_events_inserted_total"] == stack.bronze()
    assert metrics["wiki_reader_events_published_total"] >= want.total
    assert metrics["wiki_reader_newest_event_timestamp_seconds"] > 0
    password = env_values(stack)["DASH_PASSWORD"]
    code, body = https(stack, "/", "wiki", password)
    assert code == 200 and "_dash-" in body, body[:500]
    code, layout = https(stack, "/_dash-layout", "wiki", password)
    assert code == 200 and json.loads(layout), layout[:300]
    assert https(stack, "/", "wiki", password + "x")[0] == 401
    # deploy.md's operator commands
    status = stack.compose("run", "--rm", "-T", "status", check=False, timeout=300)
    assert f"{want.total:,} events in" in status.stdout, status.stdout + status.stderr
    # the replayed events are from 2024: freshness is an error, and status says so
    assert status.returncode == 2 and "freshness" in status.stdout
    console = stack.compose(
        "exec",
        "-T",
        "clickhouse",
        "clickhouse-client",
        "--query",
        "SELECT count() FROM bronze.wiki_raw",
    )
    assert int(console.stdout.split()[-1]) == stack.bronze()
    tests = stack.compose(
        "run",
        "--rm",
        "-T",
        "--entrypoint",
        "dbt",
        "dbt",
        "test",
        "--project-dir",
        "/app/wiki_dbt",
        timeout=600,
    )
    assert "ERROR=0" in tests.stdout
    # the hash in .env survived Compose: single quotes, no $-interpolation
    assert env_values(stack)["DASH_PASSWORD_HASH"].startswith("$2a$")


def test_clickhouse_refuses_to_start_without_the_volume(stack: Stack, tmp_path: Path) -> None:
    empty = tmp_path / "root-disk"
    empty.mkdir()
    done = stack.compose(
        "run",
        "--rm",
        "--no-deps",
        "-T",
        "-v",
        f"{empty}:/var/lib/clickhouse",
        "clickhouse",
        check=False,
        timeout=120,
    )
    assert done.returncode == 78, done.stdout + done.stderr
    assert "data volume is not mounted" in done.stderr
    assert list(empty.iterdir()) == []  # nothing written on the "root disk"


def test_a_restart_of_the_docker_daemon_and_every_container_loses_nothing(
    stack: Stack, tmp_path: Path
) -> None:
    first, _ = halves(FILE)
    want = expected(tmp_path, first)
    before = stack.bronze()
    # the daemon, as at a reboot: every container stops, then comes back by its restart
    # policy alone, in no particular order (Docker ignores depends_on here); the gates
    # must still make it safe
    subprocess.run(["tests/stack/dockerd.sh", "restart"], cwd=ROOT, check=True, timeout=300)
    deadline = time.monotonic() + 300
    services = ("clickhouse", "rabbitmq", "reader", "loader", "dbt", "dash", "caddy")
    while any(stack.health(s) != "healthy" for s in services):
        assert time.monotonic() < deadline, {s: stack.health(s) for s in services}
        time.sleep(2)
    stack.wait_for_gold(want, timeout=120)
    assert stack.bronze() == before


def test_an_upgrade_with_a_changed_gold_model_holds_the_loader_until_dbt_built(
    stack: Stack, tmp_path: Path
) -> None:
    first, second = halves(FILE)
    # the new version: the same image with a changed gold model (a new models digest)
    stack.run(
        "docker",
        "build",
        "-q",
        "-t",
        "wiki-events-test/app:upgrade",
        "-f",
        "tests/stack/upgrade.Dockerfile",
        "tests/stack",
        DOCKER_BUILDKIT="0",
    )
    stack.compose("stop", "loader", "dash")  # the upgrade's first step, taken early here
    before = stack.bronze()
    # events keep coming while the new version is built: the reader queues them
    stack.serve(first, second)
    stack.compose("restart", "emulator")
    deadline = time.monotonic() + 120
    while stack.queue_depth() <= 0:
        assert time.monotonic() < deadline, "the second half never reached RabbitMQ"
        time.sleep(1)

    seen: list[tuple[str, int, int]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.append((stack.health("dbt"), stack.bronze(), stack.queue_depth()))
            time.sleep(0.5)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    stack.tag = "upgrade"
    try:
        stack.stack("upgrade", timeout=900)
    finally:
        stop.set()
        watcher.join(30)
    building = [(count, depth) for state, count, depth in seen if state != "healthy"]
    assert building, f"dbt was never seen building: {seen[:20]}"
    assert all(count == before for count, _ in building), building
    assert any(depth > 0 for _, depth in building), building
    want = expected(tmp_path, first, second)
    stack.wait_for_gold(want)
    digest = stack.compose("exec", "-T", "dbt", "wiki-events", "health", "models-digest")
    assert (stack.volume / "dbt" / "dbt-built").read_text().strip() == digest.stdout.strip()


def later_events() -> bytes:
    """A third part: some of the file again, a day later, with fresh ids."""
    third = shifted(FILE, dt.timedelta(days=1), "stuck")[:20000]
    return third[: third.rfind(b"\n") + 1]


def test_a_stuck_loader_is_restarted_by_the_watchdog_and_alerted(
    stack: Stack, tmp_path: Path
) -> None:
    first, second = halves(FILE)
    third = later_events()
    stack.compose("kill", "-s", "SIGSTOP", "loader")
    stack.serve(first, second, third)
    stack.compose("restart", "emulator")
    deadline = time.monotonic() + 240
    alerts = stack.alerts / "alerts.log"
    while "loader" not in (alerts.read_text() if alerts.exists() else ""):
        assert time.monotonic() < deadline, f"no alert: {stack.health('loader')}\n{stack.logs()}"
        time.sleep(2)
    assert "was unhealthy and has been restarted" in alerts.read_text()
    stack.wait_for_gold(expected(tmp_path, first, second, third))


def test_a_backup_and_a_restore_round_trip(stack: Stack, tmp_path: Path) -> None:
    first, second = halves(FILE)
    # a backup that fails (a destination the server refuses) is alerted at once
    failed = stack.compose(
        "exec",
        "-T",
        "-e",
        "BACKUP_DESTINATION=File('/elsewhere/{stamp}')",
        "backup",
        "/app/deploy/bin/backup",
        "once",
        check=False,
    )
    assert failed.returncode == 1
    assert (stack.volume / "backup" / "last-failed").exists()
    alerts = stack.alerts / "alerts.log"
    deadline = time.monotonic() + 30
    while not any(
        "backup" in line and "failed" in line
        for line in (alerts.read_text() if alerts.exists() else "").splitlines()
    ):
        assert time.monotonic() < deadline, "the failed backup was not alerted"
        time.sleep(1)
    stack.stack("backup")
    name = (stack.volume / "backup" / "last-ok").read_text().split()[0]
    before = stack.bronze()
    stack.rows("DROP DATABASE gold SYNC")  # the accident
    assert stack.scalar("SELECT count() FROM system.databases WHERE name = 'gold'") == 0
    stack.stack("restore", name, timeout=900)
    assert stack.bronze() == before
    stack.wait_for_gold(expected(tmp_path, first, second, later_events()), timeout=120)


def test_rotation_rotates_every_secret_and_the_pipeline_flows_on(
    stack: Stack, tmp_path: Path
) -> None:
    first, second = halves(FILE)
    before = env_values(stack)
    stack.stack("rotate", timeout=900)
    after = env_values(stack)
    secrets = [name for name in before if name.endswith("PASSWORD")]
    assert len(secrets) >= 8 and all(after[name] != before[name] for name in secrets)
    assert https(stack, "/", "wiki", before["DASH_PASSWORD"])[0] == 401
    assert https(stack, "/", "wiki", after["DASH_PASSWORD"])[0] == 200
    # the reader and the loader reach RabbitMQ and ClickHouse with their new passwords
    fourth = shifted(FILE, dt.timedelta(days=2), "rotated")[:20000]
    fourth = fourth[: fourth.rfind(b"\n") + 1]
    stack.serve(first, second, later_events(), fourth)
    stack.compose("restart", "emulator")
    stack.wait_for_gold(expected(tmp_path, first, second, later_events(), fourth))
