"""Liveness judged from outside the processes, for Docker healthchecks and the watchdog.

    wiki-events health reader    # exit 0: the reader's checkpoint moved recently
    wiki-events health loader    # exit 0: no backlog, or bronze got an insert recently
    wiki-events health dbt       # exit 0: the dbt marker names this image's models
                                 # (and the dumps' when WIKI_EVENTS_PROFILES holds dumps)
    wiki-events health wait-dbt  # block until it does (the loader's and dash's gate)
    wiki-events health models-digest
    wiki-events health alert TEXT
    wiki-events health watchdog  # restart unhealthy containers, alert; disk, backups,
                                 # outages of RabbitMQ and ClickHouse (once, and when back)

Exit codes follow Docker's healthcheck contract: 0 healthy, 1 unhealthy. Each check
prints one line saying why, which ``docker inspect`` shows in the container's health log.

The reader saves its checkpoint after every batch RabbitMQ confirmed, so the file's age is
the age of the newest event it delivered. The loader is stuck when RabbitMQ holds
messages for it and bronze has had no insert for a while; an empty queue with no insert is
an idle stream, not a stuck loader.

A dependency that does not answer (RabbitMQ, ClickHouse) is not the reader's or the
loader's own failure: restarting them cannot help, so their check says what is down and
exits 0. The watchdog probes the dependencies itself and alerts once per outage, and
again when the dependency is back.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import shutil
import socket
import sys
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import click

from wiki_core.config import ClickHouseURL, Operations
from wiki_core.unreachable import sentence, without_password

log = logging.getLogger("health")


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    reason: str

    @property
    def code(self) -> int:
        return 0 if self.healthy else 1


# -- the reader --------------------------------------------------------------------------


def reader_verdict(checkpoint: Path, max_age: float, now: float | None = None) -> Verdict:
    now = time.time() if now is None else now
    try:
        saved = checkpoint.stat().st_mtime
    except FileNotFoundError:
        return Verdict(False, f"no checkpoint at {checkpoint} yet: nothing delivered")
    try:
        saved = float(json.loads(checkpoint.read_text()).get("saved_at") or saved)
    except (ValueError, OSError, AttributeError):
        pass  # a torn or foreign file: its mtime still says when it was written
    age = now - saved
    if age > max_age:
        return Verdict(False, f"checkpoint is {age:.0f}s old (limit {max_age:.0f}s): stuck")
    return Verdict(True, f"checkpoint {age:.0f}s old")


# -- the loader --------------------------------------------------------------------------


def queue_depth(amqp_url: str, queue: str) -> int:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        result = channel.queue_declare(queue=queue, passive=True)
        return int(result.method.message_count)
    finally:
        connection.close()


def last_insert_age(clickhouse_url: str, table: str) -> float | None:
    """Seconds since the newest row of ``table`` was ingested; None when it is empty."""
    from wiki_core.config import clickhouse_client

    client = clickhouse_client(clickhouse_url)
    try:
        value = client.command(
            f"SELECT if(count() = 0, -1, dateDiff('millisecond', max(ingested_at), now64(3)))"
            f" FROM {table}"
        )
    finally:
        client.close()
    millis = float(value)
    return None if millis < 0 else millis / 1000


def rabbitmq_answers(url: str, timeout: float = 5.0) -> None:
    """Return when RabbitMQ's AMQP port at ``url``'s host accepts a connection (what
    ``rabbitmq-diagnostics check_port_connectivity`` checks; RabbitMQ opens it once it is
    up); raise otherwise. No credentials, so the watchdog holds none; and no protocol
    header, which RabbitMQ would log as a warning at every probe."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (5671 if parts.scheme == "amqps" else 5672)
    socket.create_connection((parts.hostname or "127.0.0.1", port), timeout).close()


def clickhouse_answers(url: str, timeout: float = 5.0) -> None:
    """Return when ClickHouse's HTTP interface at ``url`` answers ``/ping``; raise otherwise."""
    import httpx

    reply = httpx.get(ClickHouseURL.parse(url).base + "ping", timeout=timeout)
    if reply.status_code != 200 or not reply.text.startswith("Ok."):
        raise ConnectionError(f"/ping answered HTTP {reply.status_code}")


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` means the service could not be reached (not a query's error)."""
    import clickhouse_connect.driver.exceptions
    import pika.exceptions

    kinds = (
        OSError,
        pika.exceptions.AMQPConnectionError,
        clickhouse_connect.driver.exceptions.OperationalError,
    )
    return isinstance(exc, kinds)


def waiting_for(what: str, url: str, exc: BaseException, whose: str) -> Verdict:
    """Healthy, with the reason: ``whose`` waits for ``what``, which is down. A restart of
    ``whose`` cannot help; the watchdog alerts on ``what`` itself."""
    remedy = f"{whose} waits for it (a restart would not help; the watchdog alerts on it)"
    return Verdict(True, sentence(what, url, exc, remedy))


def loader_verdict(backlog: int, age: float | None, max_age: float) -> Verdict:
    if backlog == 0:
        return Verdict(True, "queue empty")
    if age is None:
        if backlog:
            return Verdict(False, f"{backlog} messages waiting and bronze is empty")
    elif age > max_age:
        return Verdict(
            False,
            f"{backlog} messages waiting and the last insert is {age:.0f}s old "
            f"(limit {max_age:.0f}s): stuck",
        )
    return Verdict(True, f"{backlog} messages waiting, last insert {age or 0:.0f}s ago")


# -- dbt ---------------------------------------------------------------------------------


def models_digest(project: Path) -> str:
    """One hash of what ``dbt build`` builds: the project file, models, macros, tests."""
    digest = hashlib.sha256()
    files: list[Path] = [project / "dbt_project.yml"]
    for folder in ("models", "macros", "tests"):
        if (project / folder).is_dir():
            files += [p for p in (project / folder).rglob("*") if p.is_file()]
    for path in sorted(set(files)):
        digest.update(str(path.relative_to(project)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def dumps_wanted(env: dict[str, str] | None = None) -> bool:
    """The dumps' models are part of "built" when the compose profile ``dumps`` is on:
    ``WIKI_EVENTS_PROFILES`` is ``${COMPOSE_PROFILES}`` in the dbt service and ``dumps`` in
    the dumps followers' (compose.yaml)."""
    return "dumps" in Operations.from_env(env).profiles


def marker_text(project: Path, dumps: bool) -> str:
    """What the marker holds once built: the models' digest, `` dumps`` when dbt built
    them with ``--vars '{dumps: true}'`` (deploy/bin/dbt-service reads it back)."""
    return models_digest(project) + (" dumps" if dumps else "")


def dbt_verdict(marker: Path, project: Path, dumps: bool = False) -> Verdict:
    """Built: the marker names these models, and with the dumps' when ``dumps``."""
    want = models_digest(project)
    try:
        built, *flags = marker.read_text().split() or [""]
    except FileNotFoundError:
        return Verdict(False, f"no {marker}: dbt has not built these models yet")
    if built != want:
        return Verdict(False, f"{marker} names models {built[:12]}, this image has {want[:12]}")
    if dumps and "dumps" not in flags:
        return Verdict(
            False,
            f"models {want[:12]} built without the dumps' (dbt builds them when "
            "COMPOSE_PROFILES in .env holds dumps)",
        )
    with_dumps = " with the dumps'" if "dumps" in flags else ""
    return Verdict(True, f"models {want[:12]} built{with_dumps}")


# -- alerts ------------------------------------------------------------------------------


def alert(text: str, url: str | None = None, timeout: float = 10.0) -> bool:
    """POST ``text`` to ALERT_WEBHOOK_URL (plain text; ``{"text": ...}`` JSON when
    ALERT_WEBHOOK_FORMAT=json, as Slack's incoming webhooks want). Logged either way."""
    import httpx

    ops = Operations.from_env()
    url = ops.alert_webhook_url if url is None else url
    log.warning("ALERT %s", text)
    if not url:
        return False
    if ops.alert_webhook_format == "json":
        body, kind = json.dumps({"text": text}).encode(), "application/json"
    else:
        body, kind = text.encode(), "text/plain; charset=utf-8"
    try:
        response = httpx.post(url, content=body, headers={"Content-Type": kind}, timeout=timeout)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        # not the exception's text: it names the URL, and a webhook's URL is its secret
        status = getattr(getattr(exc, "response", None), "status_code", None)
        log.error(
            "alert to the webhook failed: %s%s",
            type(exc).__name__,
            f" (HTTP {status})" if status else "",
        )
        return False
    return True


# -- the watchdog ------------------------------------------------------------------------


class DockerAPI:
    """The few Engine API calls the watchdog needs, over the daemon's unix socket."""

    def __init__(self, socket_path: str = "/var/run/docker.sock") -> None:
        self.socket_path = socket_path

    def request(self, method: str, path: str) -> Any:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(60)
        sock.connect(self.socket_path)
        conn = http.client.HTTPConnection("docker")
        conn.sock = sock
        try:
            conn.request(method, path)
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        if response.status >= 400:
            raise RuntimeError(f"docker {method} {path}: {response.status} {body[:200]!r}")
        return json.loads(body) if body else None

    def unhealthy(self, project: str) -> list[dict[str, Any]]:
        filters = {
            "label": [f"com.docker.compose.project={project}", "wiki-events.autoheal=true"],
            "health": ["unhealthy"],
        }
        query = urllib.parse.urlencode({"filters": json.dumps(filters)})
        return list(self.request("GET", f"/containers/json?{query}") or [])

    def restart(self, container_id: str, timeout: int = 30) -> None:
        self.request("POST", f"/containers/{container_id}/restart?t={timeout}")


@dataclass(frozen=True)
class Dependency:
    """A service the stages need, probed by the watchdog: ``probe(url, timeout)`` returns
    when it answers and raises when not (``rabbitmq_answers``, ``clickhouse_answers``)."""

    name: str
    url: str
    probe: Callable[[str, float], None]


def dependencies(amqp_url: str, clickhouse_url: str) -> list[Dependency]:
    return [
        Dependency("RabbitMQ", amqp_url, rabbitmq_answers),
        Dependency("ClickHouse", clickhouse_url, clickhouse_answers),
    ]


@dataclass
class Watchdog:
    """One pass every ``interval`` seconds. A problem (the disk, the backups, a dependency
    that does not answer) is alerted when it begins, and once it is over a recovery
    message follows; disk and backup alerts repeat at most once an hour while they last,
    a dependency's outage is said once. A dependency counts as down once it has not
    answered for ``outage_grace`` seconds (not at a blip, nor while the stack starts)."""

    docker: DockerAPI
    project: str
    volume: Path
    disk_percent: float
    backup_expected: bool
    backup_max_age: float = 26 * 3600
    notify: Callable[[str], object] = alert
    restart_timeout: int = 30  # seconds a container gets to stop before it is killed
    dependencies: list[Dependency] = field(default_factory=list)
    outage_grace: float = 60.0
    probe_timeout: float = 5.0
    clock: Callable[[], float] = time.monotonic
    last_sent: dict[str, float] = field(default_factory=dict)  # open problems: last alert
    down_since: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.time)

    def _problem(self, key: str, text: str, repeat: float | None = 3600) -> None:
        """Alert ``text`` when the problem ``key`` begins; while it lasts, again every
        ``repeat`` seconds (None: never again)."""
        now = self.clock()
        last = self.last_sent.get(key)
        if last is None or (repeat is not None and now - last >= repeat):
            self.last_sent[key] = now
            self.notify(text)

    def _over(self, key: str, text: str) -> bool:
        """The problem ``key`` is over: say ``text`` once, if the problem was alerted."""
        if key not in self.last_sent:
            return False
        del self.last_sent[key]
        self.notify(text)
        return True

    def check(self) -> list[str]:
        """Heal and alert once; returns what it did, for its log and the tests."""
        done: list[str] = []
        for container in self.docker.unhealthy(self.project):
            name = (container.get("Names") or ["?"])[0].lstrip("/")
            self.docker.restart(container["Id"], self.restart_timeout)
            text = f"wiki-events: {name} was unhealthy and has been restarted"
            self.notify(text)
            done.append(text)
        usage = shutil.disk_usage(self.volume)
        percent = 100 * usage.used / usage.total
        if percent >= self.disk_percent:
            text = (
                f"wiki-events: data volume {percent:.0f}% full (alert at {self.disk_percent:.0f}%)"
            )
            self._problem("disk", text)
            done.append(text)
        elif self._over("disk", f"wiki-events: data volume back to {percent:.0f}% full"):
            done.append("disk use back under the limit")
        if self.backup_expected:
            problem = backup_problem(self.volume / "backup", self.backup_max_age)
            if (
                problem
                and problem.startswith("no backup")
                and (time.time() - self.started < self.backup_max_age)
            ):
                problem = None  # a fresh deploy: the first backup is not due yet
            if problem:
                self._problem("backup", f"wiki-events: {problem}")
                done.append(problem)
            elif self._over("backup", "wiki-events: backups succeed again"):
                done.append("backups succeed again")
        for dependency in self.dependencies:
            done += self._probe(dependency)
        return done

    def _probe(self, dependency: Dependency) -> list[str]:
        """Alert a dependency's outage once, and its return."""
        key, now = f"down:{dependency.name} {dependency.url}", self.clock()
        try:
            dependency.probe(dependency.url, self.probe_timeout)
        except Exception as exc:  # noqa: BLE001 - whatever stops it answering is an outage
            since = self.down_since.setdefault(key, now)
            if now - since < self.outage_grace:
                return []
            text = sentence(
                dependency.name,
                dependency.url,
                exc,
                f"down for {now - since:.0f}s; see `docker compose ps` and its logs",
            )
            self._problem(key, f"wiki-events: {text}", repeat=None)
            return [text]
        since = self.down_since.pop(key, now)
        text = (
            f"wiki-events: {dependency.name} answers again at "
            f"{without_password(dependency.url)} (down {now - since:.0f}s)"
        )
        return [text] if self._over(key, text) else []

    def run(self, interval: float = 30.0) -> None:
        while True:
            try:
                for line in self.check():
                    log.info("%s", line)
            except Exception as exc:  # noqa: BLE001 - the watchdog must outlive a bad pass
                log.error("watchdog pass failed: %s", exc)
            time.sleep(interval)


def backup_problem(folder: Path, max_age: float, now: float | None = None) -> str | None:
    """What is wrong with the backups according to deploy/bin/backup's status files."""
    now = time.time() if now is None else now
    failed = folder / "last-failed"
    ok = folder / "last-ok"
    if failed.exists() and (not ok.exists() or failed.stat().st_mtime > ok.stat().st_mtime):
        return f"the last backup failed: {failed.read_text().strip()[:300]}"
    if not ok.exists():
        return "no backup has succeeded yet"
    age = now - ok.stat().st_mtime
    if age > max_age:
        return f"the last good backup is {age / 3600:.0f} h old"
    return None


def wait_for(check: Callable[[], Verdict], every: float, say: Callable[[str], object]) -> None:
    last = ""
    while True:
        verdict = check()
        if verdict.healthy:
            return
        if verdict.reason != last:
            say(f"waiting: {verdict.reason}")
            last = verdict.reason
        time.sleep(every)


def dbt_project() -> Path:
    from .dbt import PROJECT

    return PROJECT


# -- the command -------------------------------------------------------------------------


def _report(verdict: Verdict) -> NoReturn:
    click.echo(verdict.reason, err=not verdict.healthy)
    sys.exit(verdict.code)


@click.group("health")
def health() -> None:
    """Liveness checks for Docker healthchecks, the dbt gate, alerts, the watchdog."""


@health.command("reader")
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="[default: $WIKI_EVENTS_DATA/reader.checkpoint.json]",
)
@click.option(
    "--max-age", type=float, default=None, help="Seconds [default: $READER_STALE_SECONDS or 300]."
)
def reader_command(checkpoint: Path | None, max_age: float | None) -> None:
    """Healthy while the reader's checkpoint (its newest delivered event) is recent."""
    from wiki_core.config import Settings

    settings = Settings.from_env()
    path = checkpoint or settings.checkpoint_path
    verdict = reader_verdict(path, max_age or Operations.from_env().reader_stale_seconds)
    if not verdict.healthy:
        try:
            rabbitmq_answers(settings.amqp_url)
        except Exception as exc:  # noqa: BLE001 - any failure to reach it is said
            if unreachable(exc):
                down = waiting_for("RabbitMQ", settings.amqp_url, exc, "the reader")
                verdict = Verdict(True, f"{verdict.reason}, but {down.reason}")
    _report(verdict)


@health.command("loader")
@click.option(
    "--max-age", type=float, default=None, help="Seconds [default: $LOADER_STALE_SECONDS or 300]."
)
def loader_command(max_age: float | None) -> None:
    """Healthy unless RabbitMQ holds a backlog and bronze had no insert for MAX_AGE."""
    from loader.bronze import RAW_TABLE
    from wiki_core.config import Settings
    from wiki_core.topology import LOADER_QUEUE

    settings, ops = Settings.from_env(), Operations.from_env()
    if ops.dbt_marker.parent.is_dir() and not dbt_verdict(ops.dbt_marker, dbt_project()).healthy:
        # held at its gate (deploy/bin/after-dbt) while dbt builds: not stuck, and a
        # restart would not help; dbt's own failures are alerted by the dbt service
        _report(Verdict(True, "waiting for dbt to build this version's models"))
    looking = ("RabbitMQ", settings.amqp_url)
    try:
        backlog = queue_depth(settings.amqp_url, LOADER_QUEUE)
        looking = ("ClickHouse", settings.clickhouse_url)
        age = last_insert_age(settings.clickhouse_url, RAW_TABLE) if backlog else None
    except Exception as exc:  # noqa: BLE001 - any failure to look is said once
        if unreachable(exc):  # a dependency is down: not the loader's own failure
            _report(waiting_for(*looking, exc, "the loader"))
        _report(Verdict(False, f"cannot judge: {str(exc).splitlines()[0] if str(exc) else exc!r}"))
    verdict = loader_verdict(backlog, age, max_age or ops.loader_stale_seconds)
    _report(verdict)


@health.command("dbt")
def dbt_command() -> None:
    """Healthy when the dbt marker names the models this image carries."""
    ops = Operations.from_env()
    _report(dbt_verdict(ops.dbt_marker, dbt_project(), "dumps" in ops.profiles))


@health.command("wait-dbt")
@click.option("--every", type=float, default=5.0, show_default=True)
def wait_dbt_command(every: float) -> None:
    """Block until dbt has built this image's models (the loader's and dash's gate)."""
    ops, project = Operations.from_env(), dbt_project()
    wanted = "dumps" in ops.profiles
    wait_for(
        lambda: dbt_verdict(ops.dbt_marker, project, wanted),
        every,
        lambda s: click.echo(s, err=True),
    )
    click.echo("dbt has built these models", err=True)


@health.command("models-digest")
def models_digest_command() -> None:
    """What the dbt marker holds once these models are built (`` dumps``: with theirs)."""
    click.echo(marker_text(dbt_project(), dumps_wanted()))


@health.command("alert")
@click.argument("text")
def alert_command(text: str) -> None:
    """Send TEXT to $ALERT_WEBHOOK_URL (exit 1 when it could not be delivered)."""
    sys.exit(0 if alert(text) or not Operations.from_env().alert_webhook_url else 1)


@health.command("watchdog")
@click.option("--interval", type=float, default=30.0, show_default=True)
@click.option(
    "--volume",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/volume"),
    show_default=True,
)
def watchdog_command(interval: float, volume: Path) -> None:
    """Restart unhealthy containers of this compose project; alert on them, disk, backups,
    and an outage of RabbitMQ (AMQP_URL) or ClickHouse (CLICKHOUSE_URL): once, then when
    it is back (the probes need no credentials)."""
    from wiki_core.config import Settings

    ops, settings = Operations.from_env(), Settings.from_env()
    Watchdog(
        DockerAPI(),
        ops.compose_project,
        volume,
        ops.disk_alert_percent,
        backup_expected=ops.backup_expected,
        restart_timeout=ops.watchdog_restart_timeout,
        dependencies=dependencies(settings.amqp_url, settings.clickhouse_url),
    ).run(interval)
