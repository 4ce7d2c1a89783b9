"""Production's runbook run as written, on a stand-in server.

A stand-in VM (tests/helpers/vm.py: systemd and its own Docker in a container, a loop
device as the Hetzner volume) boots from terraform's rendered user-data with cloud-init's
own stages; its Docker holds the stand-in images under production's names
(clickhouse/clickhouse-server is the embedded ClickHouse with production's users.d and
config.d, enforced by ClickHouse's access control); the app image is built on the server
from the commit it cloned, as in production. What stands for the Internet runs on this
machine's address on the VMs' network (tests/helpers/internet.py): the repository (git
daemon), EventStreams (the recorded events replayed), the alert webhook and the
dead-man's switch, object storage (moto's S3 server), and a wheelhouse for PyPI.

The operator's steps are deploy.md's command blocks themselves (those marked
``<!-- stack-test: NAME -->``, taken from the file, so the guide and the test cannot
drift), in the order an operator meets them: the first boot (without the volume nothing
after the guard runs; with it the stack comes up), terraform's settings push, silver's
retention raised by hand, backups set up, an upgrade to a newer commit of the repository
(its gold model changed), a restore with a wrong name and a right one, secret rotation,
and the replacement of the server (a new VM, the same volume). Gold must equal the
numbers computed from the replayed events after every step.

The scenario is long (builds, boots) and mostly waits on Docker, so it runs in a thread
from the start of the session, beside the rest of the suite (tests/conftest.py starts it
when a test of this module is selected); each test waits for its step and asserts on it.
It fails, never skips, without Docker: .ci/run installs and starts it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from .helpers.backup import MotoS3
from .helpers.browser import chromium_options
from .helpers.cloud_init import render_user_data
from .helpers.expected import Expected, assert_gold_equals, expected_from, gold_numbers, shifted
from .helpers.internet import Emulator, Files, GitServer, Recorder
from .helpers.paths import ROOT
from .helpers.terraform import settings_push_script
from .helpers.vm import VM, Volume, network

pytestmark = pytest.mark.slow  # the whole stack in Docker: minutes

RECORDING = ROOT / ".." / "shared" / "data" / "recentchange"
FILE = RECORDING / "2024-09-01_harshachelva-stream-wikimedia.ndjson"
DOMAIN = "wiki-events.localhost"
BUILD = ROOT / "tests" / "stack" / "build_images.sh"
CHECKOUT = "/opt/wiki-events"
DATA = "/mnt/wiki-events"
# the new version the upgrade checks out: a gold model changed (a new models digest)
CHANGED_MODEL = "wiki_dbt/models/marts/events_per_minute.sql"
LONG_RUNNING = ("clickhouse", "rabbitmq", "reader", "loader", "dbt", "dash", "caddy")
S3_KEY_ID, S3_SECRET = "KEYID-stack", "stack-SECRET-0123456789abcdef"


def deploy_block(name: str, replace: dict[str, str] | None = None) -> str:
    """deploy.md's command block marked ``<!-- stack-test: NAME -->``, dedented, with
    each placeholder of ``replace`` swapped (each must be in the block: the guide and the
    test move together)."""
    lines = (ROOT / "deploy.md").read_text().splitlines()
    (start,) = [i for i, line in enumerate(lines) if line.strip() == f"<!-- stack-test: {name} -->"]
    assert lines[start + 1].strip() == "```sh", lines[start + 1]
    end = next(i for i in range(start + 2, len(lines)) if lines[i].strip() == "```")
    indent = len(lines[start + 1]) - len(lines[start + 1].lstrip())
    block = "\n".join(line[indent:] for line in lines[start + 2 : end]) + "\n"
    for placeholder, value in (replace or {}).items():
        assert placeholder in block, f"deploy.md's {name} block no longer holds {placeholder!r}"
        block = block.replace(placeholder, value)
    return block


def production_images() -> dict[str, list[str]]:
    """The stand-in images under the names compose.yaml pulls in production."""
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    return {
        "wiki-events-test/clickhouse:test": [services["clickhouse"]["image"]],
        "wiki-events-test/rabbitmq:3": [services["rabbitmq"]["image"]],
        "wiki-events-test/caddy:2": [services["caddy"]["image"]],
        # the official python image's stand-in, for the server's own build (BASE_IMAGE)
        "wiki-events-test/base:bookworm": [],
    }


def halves(path: Path) -> tuple[bytes, bytes]:
    lines = path.read_bytes().splitlines(keepends=True)
    return b"".join(lines[: len(lines) // 2]), b"".join(lines[len(lines) // 2 :])


def later_events() -> bytes:
    """A third part: some of the file again, a day later, with fresh ids."""
    third = shifted(FILE, dt.timedelta(days=1), "rotated")[:20000]
    return third[: third.rfind(b"\n") + 1]


def expected(folder: Path, *parts: bytes) -> Expected:
    path = folder / f"expected-{time.monotonic_ns()}.ndjson"
    path.write_bytes(b"".join(parts))
    return expected_from([path])


@dataclass
class Server:
    """A booted stand-in VM and the operator's view of it (a root shell, as over SSH)."""

    vm: VM
    boot: subprocess.CompletedProcess[str] | None = None

    def sh(self, script: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.vm.sh(script, **kw)

    def run(self, script: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        """``script`` in the checkout, as the operator runs deploy.md's commands."""
        return self.vm.sh(script, cwd=CHECKOUT, **kw)

    def env(self) -> dict[str, str]:
        text = self.sh(f"cat {DATA}/.env", check=True).stdout
        return {m.group(1): m.group(2) for m in re.finditer(r"^([A-Z_0-9]+)='(.*)'$", text, re.M)}

    def rows(self, sql: str) -> list[tuple[str, ...]]:
        """As the dbt user (reads bronze, silver and gold), over ClickHouse's HTTP port on
        the compose network (production publishes no ClickHouse port)."""
        script = (
            f"cd {CHECKOUT} && "
            "ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "
            "$(docker compose ps -q clickhouse) | cut -d' ' -f1) && "
            f"pw=$(sed -n \"s/^CLICKHOUSE_DBT_PASSWORD='\\(.*\\)'$/\\1/p\" {DATA}/.env) && "
            'curl -sS --fail-with-body -u "dbt:$pw" '
            '"http://$ip:8123/?default_format=JSONCompactEachRow" --data-binary @-'
        )
        done = self.sh(script, stdin=sql, timeout=120)
        assert done.returncode == 0, f"{sql}: {done.stdout[-500:]} {done.stderr[-500:]}"
        return [tuple(map(str, json.loads(line))) for line in done.stdout.splitlines()]

    def scalar(self, sql: str) -> int:
        try:
            return int(self.rows(sql)[0][0])
        except (AssertionError, IndexError, ValueError):
            return -1

    def bronze(self) -> int:
        return self.scalar("SELECT count() FROM bronze.wiki_raw")

    def wait_for_gold(self, want: Expected, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while (got := self.scalar("SELECT sum(events) FROM gold.wiki_totals")) != want.total:
            assert time.monotonic() < deadline, (
                f"gold holds {got} events, not {want.total}\n{self.logs()}"
            )
            time.sleep(2)
        settle = time.monotonic() + 60
        while True:
            try:
                assert_gold_equals(gold_numbers(self.rows), want)
                return
            except AssertionError:
                if time.monotonic() > settle:
                    raise
            time.sleep(2)

    def health(self, service: str) -> str:
        state = "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}"
        done = self.run(f"docker inspect --format '{state}' $(docker compose ps -q {service})")
        return done.stdout.strip() or "absent"

    def why(self) -> str:
        """What an operator reads after a failed first boot (deploy.md, section 1)."""
        return "\n".join(
            self.sh(command).stdout[-4000:]
            for command in (
                "cloud-init status --long",
                "tail -n 25 /var/log/cloud-init-output.log",
                "journalctl --no-pager -u wiki-events.service -n 60",
            )
        )

    def state(self, service: str) -> str:
        done = self.run(
            f"docker inspect --format '{{{{.State.Status}}}}' $(docker compose ps -aq {service})"
        )
        return done.stdout.strip() or "absent"

    def queued(self) -> int:
        """Messages waiting in the loader's queue."""
        done = self.run(
            "docker compose exec -T rabbitmq "
            "rabbitmqctl -q list_queues -p wiki-events name messages"
        )
        for line in done.stdout.splitlines():
            name, _, count = line.partition("\t")
            if name == "wiki.recentchange.loader" and count.strip().isdigit():
                return int(count)
        return -1

    def logs(self) -> str:
        return self.run("docker compose logs --no-color --tail 40").stdout[-6000:]

    def ca(self) -> str:
        """Caddy's internal root certificate (production's is a public CA's)."""
        return self.run(
            "docker compose exec -T caddy cat /data/caddy/pki/authorities/local/root.crt",
            check=True,
        ).stdout

    def https(
        self, path: str, user: str | None, password: str = "", port: int = 443
    ) -> tuple[int, str]:
        """The dashboard (or, on 8443, ClickHouse for the analysts) through Caddy on the
        server's address, as a browser reaches it (the name resolved to the server;
        Caddy's internal CA trusted)."""
        with tempfile.NamedTemporaryFile("w", suffix=".crt") as crt:
            crt.write(self.ca())
            crt.flush()
            login = ["-u", f"{user}:{password}"] if user is not None else []
            done = subprocess.run(
                ["curl", "-sS", "--resolve", f"{DOMAIN}:{port}:{self.vm.address}"]
                + ["--cacert", crt.name, *login, "-w", "\n%{http_code}"]
                + [f"https://{DOMAIN}:{port}{path}"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        body, _, code = done.stdout.rpartition("\n")
        assert code.isdigit(), done.stderr
        return int(code), body


@dataclass
class Scenario:
    """The operator's steps in order, in a thread; ``result(step)`` waits for one."""

    steps: list[tuple[str, Callable[[], Any]]] = field(default_factory=list)
    independent: set[str] = field(default_factory=set)  # run even after a failed step
    results: dict[str, tuple[bool, Any]] = field(default_factory=dict)
    done: threading.Condition = field(default_factory=threading.Condition)
    started: float = 0.0
    cleanups: list[Callable[[], Any]] = field(default_factory=list)
    thread: threading.Thread | None = None

    def start(self) -> None:
        if self.thread is None:
            self.started = time.monotonic()
            self.thread = threading.Thread(target=self._run, name="stack-scenario", daemon=True)
            self.thread.start()

    def _record(self, name: str, ok: bool, value: Any) -> None:
        with self.done:
            self.results[name] = (ok, value)
            self.done.notify_all()

    def _run(self) -> None:
        failed = ""
        for name, step in self.steps:
            if failed and name not in self.independent:
                self._record(name, False, f"not run: the step {failed!r} before it failed")
                continue
            began = time.monotonic()
            try:
                value = step()
            except BaseException:  # noqa: BLE001 (reported by the step's test)
                failed = name
                self._record(name, False, traceback.format_exc())
            else:
                print(f"stack scenario: {name} in {time.monotonic() - began:.0f}s", flush=True)
                self._record(name, True, value)

    def result(self, name: str, timeout: float = 3600) -> Any:
        self.start()
        with self.done:
            assert self.done.wait_for(lambda: name in self.results, timeout), f"{name}: timeout"
            ok, value = self.results[name]
        assert ok, f"stack scenario, step {name}:\n{value}"
        return value

    def close(self) -> None:
        if os.environ.get("WIKI_EVENTS_KEEP_VMS") == "1":  # to look at them after a failure
            print(f"stack scenario: kept {len(self.cleanups)} things (WIKI_EVENTS_KEEP_VMS)")
            return
        for cleanup in reversed(self.cleanups):
            try:
                cleanup()
            except Exception:  # noqa: BLE001 (cleanup goes on)
                traceback.print_exc()


class Runbook:
    """What the scenario's steps share: the stand-ins for the Internet, the volume, the
    servers, and the events sent so far."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.kept_analyst = ""  # the password of the analyst who stays (step analysts)
        self.first, self.second = halves(FILE)
        self.sent: list[bytes] = []
        self.server: Server | None = None

    # -- the world around the server --

    def setup(self) -> None:
        missing = [tool for tool in ("docker", "curl", "git", "losetup") if not shutil.which(tool)]
        assert not missing, f"{missing} missing: run ./setup (CI: .ci/run)"
        subprocess.run([str(BUILD)], cwd=ROOT, check=True, timeout=2400)
        self.work = Path(tempfile.mkdtemp(prefix="wiki-events-stack-", dir="/var/tmp"))
        self.scenario.cleanups.append(lambda: shutil.rmtree(self.work, ignore_errors=True))
        _, self.gateway = network()
        wheels = subprocess.run(
            [str(BUILD), "wheelhouse"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        self.wheelhouse = Files(self.gateway, Path(wheels))
        self.alerts = Recorder(self.gateway)
        self.git = GitServer(self.gateway, self.work)
        self.scenario.cleanups.append(self.git.stop)
        self.emulator = Emulator(self.gateway, self.work)
        self.scenario.cleanups.append(self.emulator.stop)
        self.s3 = MotoS3(self.work, host=self.gateway).start()
        self.scenario.cleanups.append(self.s3.stop)
        self.release = self.git.publish("refs/heads/main")
        self.upgrade_to = self.git.publish(
            "refs/tags/v-next",
            {
                CHANGED_MODEL: (ROOT / CHANGED_MODEL).read_text()
                + "\n-- the next release: a new models digest\n"
            },
            parent=self.release,
        )
        self.volume = Volume(self.work / "volume.img").create()
        self.scenario.cleanups.append(self.volume.destroy)

    def settings(self) -> dict[str, str]:
        """terraform's ``local.settings`` (terraform/main.tf) for this server, plus the
        stream's address: the one setting the stand-in Internet needs."""
        return {
            "WIKI_EVENTS_CONTACT": "ops@example.org",
            "DOMAIN": DOMAIN,
            "ACME_EMAIL": "ops@example.org",
            "DASH_USER": "wiki",
            "DATA_DIR": DATA,
            "BRONZE_RETENTION_DAYS": "90",
            "SILVER_RETENTION_DAYS": "90",
            "BACKUP_S3_URL": "",
            "BACKUP_KEEP_DAYS": "14",
            "STREAM_URL": self.emulator.url,
        }

    def new_vm(self, volume: Volume | None) -> VM:
        environment = {
            # the stand-ins for the official python image and for PyPI (Dockerfile's args)
            "BASE_IMAGE": "wiki-events-test/base:bookworm",
            "WHEELHOUSE": self.wheelhouse.url,
            "COMPOSE_FILE": "compose.yaml:/etc/wiki-events-stand-in/compose.yaml",
        }
        files = {
            "etc/wiki-events-stand-in/compose.yaml": (
                ROOT / "tests" / "stack" / "compose.stand-in.yaml"
            ).read_text()
        }
        vm = VM(self.work, volume, environment, files)
        self.scenario.cleanups.append(vm.remove)
        vm.start()
        vm.load_images(production_images())
        return vm

    def first_boot(self, volume: Volume | None, instance: str, git_ref: str = "main") -> Server:
        """A new server's first boot from terraform's user-data."""
        vm = self.new_vm(volume)
        settings = json.dumps(self.settings()).encode()
        device = volume.linux_device if volume else "/dev/disk/by-id/scsi-0HC_Volume_404"
        vm.seed(
            cloud_config(
                render_user_data(
                    {
                        "settings_b64": base64.b64encode(settings).decode(),
                        "volume_device": device,
                        "repo_url": self.git.url,
                        "git_ref": git_ref,
                    }
                )
            ),
            instance,
        )
        return Server(vm, vm.first_boot())

    def push_settings(self, server: Server) -> subprocess.CompletedProcess[str]:
        """terraform_data.server_settings: its two files uploaded into /root, then its
        remote-exec script (terraform/main.tf, as terraform builds it)."""
        server.sh("cat > /root/wiki-events-settings.json", stdin=json.dumps(self.settings()))
        secrets = f"{self.alerts.url}alert\n{self.alerts.url}heartbeat\n"
        server.sh("cat > /root/wiki-events-secret-settings", stdin=secrets)
        return server.sh(settings_push_script(), env={"HOME": "/root"}, timeout=1800)

    def serve(self, *parts: bytes) -> Expected:
        self.sent = list(parts)
        self.emulator.serve(b"".join(parts))
        return self.want()

    def want(self) -> Expected:
        return expected(self.work, *self.sent)

    # -- the steps --

    def guard(self) -> dict[str, str]:
        """A server booted without its volume (it never appeared): runs beside the rest."""
        server = self.first_boot(None, "i-no-volume")
        facts = {
            "status": server.boot.stdout if server.boot else "",
            "log": server.sh("tail -n 30 /var/log/cloud-init-output.log").stdout,
            "checkout": server.sh(f"ls -A {CHECKOUT} 2>&1").stdout,
            "data": server.sh(f"ls -A {DATA}").stdout,
            "containers": server.sh("docker ps -aq 2>/dev/null").stdout,
            "unit": server.sh("systemctl is-enabled wiki-events.service 2>&1").stdout,
        }
        server.vm.remove()
        return facts

    def boot(self) -> dict[str, Any]:
        self.serve(self.first)
        server = self.server = self.first_boot(self.volume, "i-first")
        assert server.boot and server.boot.returncode == 0, server.why()
        pushed = self.push_settings(server)
        assert pushed.returncode == 0, pushed.stdout[-3000:] + pushed.stderr[-3000:]
        server.wait_for_gold(self.want())
        env = server.env()
        return {
            "ps": server.run("docker compose ps --format '{{.Service}} {{.Health}}'").stdout,
            "status": server.run("docker compose run --rm -T status", timeout=300),
            "version": server.run("deploy/bin/stack version").stdout,
            "ok": server.https("/", "wiki", env["DASH_PASSWORD"]),
            "layout": server.https("/_dash-layout", "wiki", env["DASH_PASSWORD"]),
            "wrong": server.https("/", "wiki", env["DASH_PASSWORD"] + "x")[0],
            "env": env,
            "bronze": server.bronze(),
            "total": self.want().total,  # the events sent so far (later steps send more)
        }

    def analysts(self) -> dict[str, Any]:
        """deploy.md's Analysts: one added on the server; from this machine (the
        analyst's laptop) over HTTPS on 8443 with Caddy's CA: dbt builds into their own
        database, clickhouse-connect reads gold and is refused what the role forbids,
        the console runs a query in Chromium, the docs list the gold models; then removed."""
        server = self.current()
        added = server.run(deploy_block("analyst-add", {"<name>": "ana"}), timeout=300)
        assert added.returncode == 0, added.stdout[-3000:] + added.stderr[-3000:]
        (password,) = re.findall(r"^  password: (\S+)$", added.stdout, re.M)
        ca = self.work / "caddy-root.crt"
        ca.write_text(server.ca())
        facts: dict[str, Any] = {"added": added.stdout, "total": self.want().total}
        # the laptop resolves the domain to the server (the stand-in has no DNS)
        resolver = self.work / "resolve"
        resolver.mkdir(exist_ok=True)
        (resolver / "sitecustomize.py").write_text(
            RESOLVE.format(name=DOMAIN, address=server.vm.address)
        )
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DBT_")},
            "PYTHONPATH": str(resolver),
            "SSL_CERT_FILE": str(ca),
            "DBT_CLICKHOUSE_HOST": DOMAIN,
            "DBT_CLICKHOUSE_USER": "ana",
            "DBT_CLICKHOUSE_PASSWORD": password,
            "DBT_TARGET_PATH": str(self.work / "ana-dbt" / "target"),
            "DBT_LOG_PATH": str(self.work / "ana-dbt" / "logs"),
            "DBT_PROFILES_DIR": str(ROOT / "wiki_dbt"),
        }
        dbt = subprocess.run(
            [str(Path(sys.executable).with_name("dbt")), "build", "--target", "prod_dev"],
            cwd=ROOT / "wiki_dbt",
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        facts["dbt"] = (dbt.returncode, dbt.stdout[-4000:] + dbt.stderr[-2000:])
        notebook = subprocess.run(
            [sys.executable, "-c", NOTEBOOK, DOMAIN, "ana", password],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert notebook.returncode == 0, notebook.stderr[-3000:]
        facts["notebook"] = json.loads(notebook.stdout)
        facts["play"] = play_in_chromium(DOMAIN, server.vm.address, "ana", password)
        facts["docs"] = server.https("/docs/", "ana", password, port=8443)
        facts["manifest"] = server.https("/docs/manifest.json", "ana", password, port=8443)
        facts["docs_anonymous"] = server.https("/docs/", None, port=8443)[0]
        facts["default"] = server.https("/?query=SELECT+1", None, port=8443)
        removed = server.run(deploy_block("analyst-remove", {"<name>": "ana"}), timeout=300)
        assert removed.returncode == 0, removed.stdout[-3000:] + removed.stderr[-3000:]
        facts["after_removal"] = server.https("/?query=SELECT+1", "ana", password, port=8443)
        facts["list"] = server.run("deploy/bin/stack analyst list").stdout
        # one who stays: the restore and the replaced server (section 6) must keep them
        kept = server.run(deploy_block("analyst-add", {"<name>": "bo"}), timeout=300)
        assert kept.returncode == 0, kept.stdout[-3000:] + kept.stderr[-3000:]
        (self.kept_analyst,) = re.findall(r"^  password: (\S+)$", kept.stdout, re.M)
        return facts

    def retention(self) -> dict[str, Any]:
        server = self.current()
        done = server.run(deploy_block("retention"), timeout=1200)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return {"ttl": self.silver_ttl(server)}

    def silver_ttl(self, server: Server) -> str:
        (create,) = server.rows("SHOW CREATE TABLE silver.wiki")[0]
        return create

    def backups(self) -> dict[str, Any]:
        server = self.current()
        bucket = f"{self.s3.endpoint}/{self.s3.bucket}"
        block = deploy_block(
            "backups",
            {
                "https://fsn1.your-objectstorage.com/BUCKET": bucket,
                "BACKUP_S3_ACCESS_KEY_ID=...": f"BACKUP_S3_ACCESS_KEY_ID={S3_KEY_ID}",
            },
        )
        done = server.run(block, stdin=S3_SECRET + "\n", timeout=1200)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return {"last_ok": server.sh(f"cat {DATA}/backup/last-ok").stdout, "s3": self.s3.objects()}

    def upgrade(self) -> dict[str, Any]:
        server = self.current()
        seen: list[tuple[str, int, int]] = []  # (dbt's health, bronze's count, queued)
        held: list[int] = []  # bronze's count when the upgrade had stopped the loader
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                if not held and server.state("loader") == "exited":
                    # the upgrade stopped the loader: events come in now, while the new
                    # version's dbt builds; the reader queues them in RabbitMQ
                    held.append(server.bronze())
                    self.serve(self.first, self.second)
                if held:
                    seen.append((server.health("dbt"), server.bronze(), server.queued()))
                # the loader's stop is caught within 0.5 s; then a look every 3 s: each
                # runs rabbitmqctl and a ClickHouse client, a second of CPU beside the suite
                time.sleep(3 if held else 0.5)

        block = deploy_block("upgrade", {"<new tag>": "v-next"})
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            done = server.run(block, timeout=1800)
        finally:
            stop.set()
            watcher.join(60)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        server.wait_for_gold(self.want())
        return {
            "held": held,
            "seen": seen,
            "total": self.want().total,
            "output": done.stdout + done.stderr,
            "version": server.run("deploy/bin/stack version").stdout,
            "status": server.run("docker compose run --rm -T status", timeout=300).stdout,
            "env": server.env(),
            "ttl": self.silver_ttl(server),
            "marker": server.sh(f"cat {DATA}/dbt/dbt-built").stdout.strip(),
            "digest": server.run(
                "docker compose exec -T dbt wiki-events health models-digest"
            ).stdout.strip(),
        }

    def restore(self) -> dict[str, Any]:
        server = self.current()
        backup = server.run("deploy/bin/stack backup", timeout=600)
        assert backup.returncode == 0, backup.stdout + backup.stderr
        name = server.sh(f"head -n 1 {DATA}/backup/last-ok").stdout.split()[0]
        bronze = server.bronze()
        wrong = server.run(
            deploy_block("restore", {"incr-20261202T030000Z": name + "-typo"}), timeout=600
        )
        after_wrong = server.bronze()
        right = server.run(deploy_block("restore", {"incr-20261202T030000Z": name}), timeout=1800)
        assert right.returncode == 0, right.stdout[-3000:] + right.stderr[-3000:]
        server.wait_for_gold(self.want())
        return {
            "name": name,
            "bronze": bronze,
            "wrong": wrong,
            "after_wrong": after_wrong,
            "right": right.stdout + right.stderr,
            "restored": server.bronze(),
        }

    def reboot(self) -> dict[str, Any]:
        server = self.current()
        bronze = server.bronze()
        server.vm.reboot()
        # Docker restarts the containers by their policy; the unit then runs `stack up`
        deadline = time.monotonic() + 900
        while (unit := server.sh("systemctl is-active wiki-events.service").stdout.strip()) != (
            "active"
        ):
            assert unit != "failed" and time.monotonic() < deadline, server.why()
            time.sleep(3)
        server.wait_for_gold(self.want())
        return {
            "bronze": bronze,
            "now": server.bronze(),
            "ps": server.run("docker compose ps --format '{{.Service}} {{.Health}}'").stdout,
        }

    def rotate(self) -> dict[str, Any]:
        server = self.current()
        before = server.env()
        done = server.run(deploy_block("rotate"), timeout=1800)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        after = server.env()
        # the pipeline flows on with the new secrets: a third part of events reaches gold
        self.serve(self.first, self.second, later_events())
        server.wait_for_gold(self.want())
        return {
            "before": before,
            "after": after,
            "new": server.https("/", "wiki", after["DASH_PASSWORD"])[0],
            "old": server.https("/", "wiki", before["DASH_PASSWORD"])[0],
        }

    def replace(self) -> dict[str, Any]:
        old = self.current()
        bronze, gold = old.bronze(), gold_numbers(old.rows)
        secrets = old.env()
        stopped = old.run(deploy_block("replace"), timeout=600)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        old.vm.remove()  # terraform replaces the server: the old one is gone
        # terraform.tfvars' git_ref set to the version the old server ran (deploy.md, 6)
        server = self.server = self.first_boot(self.volume, "i-replacement", "v-next")
        assert server.boot and server.boot.returncode == 0, server.why()
        pushed = self.push_settings(server)
        assert pushed.returncode == 0, pushed.stdout[-3000:] + pushed.stderr[-3000:]
        server.wait_for_gold(self.want())
        return {
            "bronze": bronze,
            "gold": gold,
            "now_bronze": server.bronze(),
            "now_gold": gold_numbers(server.rows),
            "secrets": secrets,
            "now_secrets": server.env(),
            "heartbeats": self.alerts.bodies("/heartbeat"),
            "total": self.want().total,
            # the analyst added on the first server, on the new one with the same volume
            "analysts": server.run("deploy/bin/stack analyst list").stdout,
            "analyst": server.https(
                "/?query=SELECT+count()+FROM+gold.wiki_totals", "bo", self.kept_analyst, port=8443
            ),
        }

    def current(self) -> Server:
        assert self.server is not None
        return self.server


# the analyst's laptop, in the stack test: the server's domain resolves to its address
RESOLVE = """import socket
_real = socket.getaddrinfo
def _getaddrinfo(host, *args, **kwargs):
    return _real("{address}" if host == "{name}" else host, *args, **kwargs)
socket.getaddrinfo = _getaddrinfo
"""

# the analyst's notebook: clickhouse-connect over HTTPS on 8443 as deploy.md says
NOTEBOOK = """import json, sys
import clickhouse_connect
from clickhouse_connect.driver.exceptions import DatabaseError
host, user, password = sys.argv[1:]
client = clickhouse_connect.get_client(
    host=host, port=8443, username=user, password=password, secure=True
)
facts = {"gold": client.query("SELECT sum(events) FROM gold.wiki_totals").result_rows[0][0]}
facts["dev"] = client.query(
    "SELECT name, engine FROM system.tables WHERE database = 'dev_' || {user:String} "
    "ORDER BY name", parameters={"user": user}).result_rows
for name, sql in {
    "insert_gold": "INSERT INTO gold.wiki_totals SELECT * FROM gold.wiki_totals LIMIT 1",
    "drop_silver": "DROP TABLE silver.wiki",
    "users": "SELECT name FROM system.users",
    "limit": "SELECT number FROM numbers(2000000)",
}.items():
    try:
        client.query(sql)
        facts[name] = "not refused"
    except DatabaseError as exc:
        facts[name] = str(exc)
print(json.dumps(facts, default=str))
"""


def play_in_chromium(domain: str, address: str, user: str, password: str) -> dict[str, Any]:
    """ClickHouse's /play through Caddy in headless Chromium: the analyst's login in the
    page, a query's rows, a refusal's message."""
    from selenium import webdriver
    from selenium.webdriver.common.by import By

    options = chromium_options(f"--host-resolver-rules=MAP {domain} {address}")
    options.accept_insecure_certs = True  # Caddy's internal CA; curl and Python verify it
    driver = webdriver.Chrome(options=options)
    try:
        driver.get(f"https://{domain}:8443/play?user={user}")
        driver.find_element(By.ID, "password").send_keys(password)
        found: dict[str, Any] = {}
        for key, sql, selector in (
            ("rows", "SELECT sum(events) AS events FROM gold.wiki_totals", "#data-table td"),
            ("error", "SELECT name FROM system.users", "#error"),
        ):
            query = driver.find_element(By.ID, "query")
            query.clear()
            query.send_keys(sql)
            driver.find_element(By.ID, "run").click()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                texts = [e.text for e in driver.find_elements(By.CSS_SELECTOR, selector) if e.text]
                if texts:
                    found[key] = texts
                    break
                time.sleep(0.5)
        return found
    finally:
        driver.quit()


def cloud_config(user_data: str) -> str:
    """The user-data as the stand-in boots it: Ubuntu's packages (docker.io,
    docker-compose-v2, git, python3) are in the stand-in's image already, and Debian's
    mirror would not know docker-compose-v2; everything else is terraform's as rendered."""
    config = yaml.safe_load(user_data)
    for key in ("package_update", "package_upgrade", "packages"):
        config.pop(key)
    return "#cloud-config\n" + yaml.safe_dump(config, sort_keys=False)


def build_scenario() -> Scenario:
    scenario = Scenario()
    book = Runbook(scenario)
    guard: dict[str, Any] = {}

    def setup() -> None:
        book.setup()

        def boot_without_volume() -> None:
            try:
                guard["facts"] = book.guard()
            except BaseException:  # noqa: BLE001 (reported by its test)
                guard["error"] = traceback.format_exc()

        guard["thread"] = threading.Thread(target=boot_without_volume, daemon=True)
        guard["thread"].start()

    def guard_result() -> dict[str, str]:
        guard["thread"].join(1800)
        assert "error" not in guard, guard.get("error")
        return guard["facts"]  # type: ignore[no-any-return]

    scenario.steps = [
        ("setup", setup),
        ("boot", book.boot),
        ("analysts", book.analysts),
        ("retention", book.retention),
        ("backups", book.backups),
        ("upgrade", book.upgrade),
        ("restore", book.restore),
        ("reboot", book.reboot),
        ("rotate", book.rotate),
        ("replace", book.replace),
        ("guard", guard_result),
    ]
    scenario.independent = {"guard"}
    scenario.book = book  # type: ignore[attr-defined]
    return scenario


SCENARIO = build_scenario()


def start_in_background() -> None:
    """tests/conftest.py calls this once the session knows it runs a test of this module."""
    SCENARIO.start()


def close_in_background() -> None:
    SCENARIO.close()


def book() -> Runbook:
    return SCENARIO.book  # type: ignore[attr-defined, no-any-return]


# -- the tests: one per operator step, in the order the operator meets them --


def test_the_first_boot_brings_the_stack_up_and_gold_is_exact() -> None:
    got = SCENARIO.result("boot")
    services = dict(line.split(" ", 1) for line in got["ps"].splitlines() if " " in line)
    assert all(services.get(s) == "healthy" for s in LONG_RUNNING), got["ps"]
    code, body = got["ok"]
    assert code == 200 and "_dash-" in body, body[:300]
    assert got["layout"][0] == 200 and json.loads(got["layout"][1])
    assert got["wrong"] == 401
    # the operator's status: the build's commit first, the counts, the old events' age
    status = got["status"]
    release = book().release[:12]
    assert release in status.stdout.splitlines()[0], status.stdout
    assert f"{got['total']:,} events in" in status.stdout, status.stdout + status.stderr
    assert f"running:     {release}" in got["version"], got["version"]
    # secrets were made on the server; the hash survived Compose (single quotes)
    env = got["env"]
    assert env["DASH_PASSWORD_HASH"].startswith("$2a$")
    assert env["ALERT_WEBHOOK_URL"].endswith("/alert") and env["HEARTBEAT_URL"]
    assert got["bronze"] == got["total"]


def test_an_analyst_added_by_the_operator_works_from_a_laptop_and_is_refused_once_removed() -> None:
    got = SCENARIO.result("analysts")
    code, out = got["dbt"]
    assert code == 0 and " ERROR=0 " in out, out
    notebook = got["notebook"]
    assert notebook["gold"] == got["total"]
    assert ("wiki_totals", "View") in [tuple(row) for row in notebook["dev"]], notebook["dev"]
    for refusal in ("insert_gold", "drop_silver", "users"):
        assert "Code: 497" in notebook[refusal], (refusal, notebook[refusal])
    assert "Code: 396" in notebook["limit"], notebook["limit"]
    assert got["play"]["rows"] == [str(got["total"])], got["play"]
    assert "Code: 497" in got["play"]["error"][0], got["play"]
    assert got["docs"][0] == 200 and "dbt" in got["docs"][1].lower()
    manifest = json.loads(got["manifest"][1])
    gold = {n["name"] for n in manifest["nodes"].values() if n.get("schema") == "gold"}
    assert {"wiki_totals", "events_per_minute"} <= gold, sorted(gold)
    assert got["docs_anonymous"] == 401
    assert got["default"][0] == 403 and "not allowed to connect" in got["default"][1]
    assert (
        got["after_removal"][0] == 403 and "ana: Authentication failed" in got["after_removal"][1]
    )
    assert got["list"].strip() == ""


def test_silver_retention_set_by_hand_is_in_force() -> None:
    assert "toIntervalDay(180)" in SCENARIO.result("retention")["ttl"]


def test_backups_set_up_as_deploy_md_says_write_a_full_one_to_object_storage() -> None:
    got = SCENARIO.result("backups")
    # `stack up` started the backup service, which made the full that was due; `stack
    # backup` then made the kind due next, an incremental on it
    status = dict(line.split("=", 1) for line in got["last_ok"].splitlines() if "=" in line)
    assert status["full"].startswith("full-"), got["last_ok"]
    for name in {status["full"], status["name"]}:
        assert any(key.startswith(f"wiki-events/{name}/") for key in got["s3"]), name


def test_an_upgrade_runs_the_new_commit_keeps_what_the_operator_set_and_holds_the_loader() -> None:
    got = SCENARIO.result("upgrade")
    new = book().upgrade_to[:12]
    assert f"running:     {new}" in got["version"], got["version"]
    assert new in got["status"].splitlines()[0], got["status"]
    # what the operator set by hand survived `envfile init`
    assert got["env"]["BACKUP_S3_URL"].endswith("/wiki-events")
    assert got["env"]["SILVER_RETENTION_DAYS"] == "180"
    assert "toIntervalDay(180)" in got["ttl"]
    # the loader wrote nothing while dbt built the changed models; what came in meanwhile
    # waited in RabbitMQ, and reached bronze once dbt had built
    (held,) = got["held"]
    building = [(count, queued) for state, count, queued in got["seen"] if state != "healthy"]
    assert building, f"dbt was never seen building: {got['seen'][:20]}"
    assert all(count == held for count, _ in building), building
    assert any(queued > 0 for _, queued in building), building
    assert held < got["total"], (held, got["total"])
    assert got["marker"] == got["digest"], (got["marker"], got["digest"])


def test_a_restore_with_a_wrong_name_drops_nothing_and_a_right_one_brings_gold_back() -> None:
    got = SCENARIO.result("restore")
    wrong = got["wrong"]
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    assert "nothing was stopped or dropped" in wrong.stderr, wrong.stderr
    assert got["after_wrong"] == got["bronze"]
    assert f"{got['name']} is restorable" in got["right"], got["right"]
    assert got["restored"] == got["bronze"]


def test_a_reboot_brings_every_service_back_and_loses_nothing() -> None:
    got = SCENARIO.result("reboot")
    services = dict(line.split(" ", 1) for line in got["ps"].splitlines() if " " in line)
    assert all(services.get(s) == "healthy" for s in LONG_RUNNING), got["ps"]
    assert got["now"] == got["bronze"]


def test_rotation_changes_every_secret_and_the_pipeline_flows_on() -> None:
    got = SCENARIO.result("rotate")
    generated = [k for k in got["before"] if k.endswith("_PASSWORD") or k == "DASH_PASSWORD_HASH"]
    assert generated and all(got["before"][k] != got["after"][k] for k in generated), generated
    assert (got["new"], got["old"]) == (200, 401)


def test_replacing_the_server_keeps_every_event_and_every_secret() -> None:
    got = SCENARIO.result("replace", timeout=5400)
    assert got["now_bronze"] == got["bronze"] == got["total"]
    assert_gold_equals(got["now_gold"], got["gold"])
    assert got["now_secrets"] == got["secrets"]
    assert got["heartbeats"], "the dead-man's switch was never called"
    assert got["analysts"].split() == ["bo"], got["analysts"]
    assert got["analyst"][0] == 200, got["analyst"]


def test_without_the_volume_nothing_after_the_guard_runs() -> None:
    got = SCENARIO.result("guard")
    assert "status: error" in got["status"], got["status"]
    assert "wiki-events: data volume not mounted" in got["log"], got["log"]
    assert "No such file or directory" in got["checkout"], got["checkout"]
    assert got["data"].strip() == "", got["data"]  # nothing laid out on the root disk
    assert got["containers"].strip() == "", got["containers"]
    assert got["unit"].strip() != "enabled", got["unit"]
