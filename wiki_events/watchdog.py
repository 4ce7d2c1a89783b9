"""The watchdog and the alerts (``wiki-events health watchdog`` / ``alert``).

Every pass (30 s) the watchdog looks at the compose project's containers through the
Docker socket and at the data volume, probes RabbitMQ and ClickHouse, and alerts:

- a container Docker marks unhealthy: restarted when it carries the label
  ``wiki-events.autoheal=true`` (the reader, the loader, ...); alerted, not restarted,
  when it carries ``wiki-events.alert-unhealthy=true`` (the dumps followers: a restart
  cannot make Wikimedia publish), once, and again when it is healthy;
- a container restarting in a loop (Docker's ``RestartCount`` up by ``LOOP_RESTARTS``
  within ``LOOP_WINDOW``), and a service that should run but does not (the dumps
  followers when ``COMPOSE_PROFILES`` holds dumps);
- a process killed by the kernel's OOM killer, once per kill: Docker's ``oom`` events,
  streamed as they happen and caught up (``since``) after a reconnect or a restart of the
  watchdog; a main process SIGKILLed by something outside Docker (Docker misses some OOM
  kills: no ``oom`` event, only ``die`` with exit code 137 and no ``kill`` of its own);
  and ``State.OOMKilled`` as a backstop for a kill whose event was missed;
- the data volume above ``DISK_ALERT_PERCENT``, a failed or missing backup, RabbitMQ or
  ClickHouse not answering (once per outage, and when it is back).

Alerts go through ``alerts.Courier``: kept on the data volume until the webhook took them,
with the other containers' pending alerts. After each pass that worked the heartbeat is
pinged (``HEARTBEAT_URL``).

Each stage's own liveness is its healthcheck (``wiki-events health reader`` / ``loader`` /
``dbt`` / ``dumps``), which Docker runs and the watchdog reads back.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import logging
import queue
import re
import shutil
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wiki_core.backoff import backoff
from wiki_core.config import environment, number, whole_number
from wiki_core.health import clickhouse_answers, rabbitmq_answers
from wiki_core.unreachable import sentence, without_password

from .alerts import (
    CLI_WAITS,
    PENDING,
    Courier,
    Heartbeat,
    Outbox,
    Webhook,
    deliver,
    spool_folder,
)

log = logging.getLogger("health")

AUTOHEAL = "wiki-events.autoheal"  # "true": restarted when unhealthy
ALERT_UNHEALTHY = "wiki-events.alert-unhealthy"  # "true": alerted when unhealthy, not restarted
SERVICE = "com.docker.compose.service"
LOOP_RESTARTS = 3  # restarts by Docker within LOOP_WINDOW: a loop
LOOP_WINDOW = 600.0
# a main process that died of SIGKILL (exit code 137) that Docker did not send (no "kill"
# event in the KILLED_BY_DOCKER seconds before: docker stop / restart / compose send one)
# and with no "oom" event within OOM_NEAR of it was killed from outside: the OOM killer
# where Docker misses it (cgroup v1, some kernels; tests/test_watchdog.py), or a kill -9
KILLED_BY_DOCKER = 180 * 10**9
OOM_NEAR = 30 * 10**9
SETTLE = 5 * 10**9  # a die is judged once this old: its oom event may come just after it
SENTINEL = Path("clickhouse") / ".wiki-events-volume"  # deploy/bin/prepare-volume's
# services that run when COMPOSE_PROFILES holds a profile (compose.yaml's opt-in ones)
PROFILE_SERVICES = {"dumps": ("dumps-pageviews", "dumps-mediacounts")}


@dataclass(frozen=True)
class Operations:
    """The watchdog's and the alerts' settings (compose.yaml sets them), read once."""

    alert_webhook_url: str = ""
    alert_webhook_format: str = "text"  # or "json" ({"text": ...}, as Slack wants)
    compose_project: str = "wiki-events"
    disk_alert_percent: float = 80.0
    backup_expected: bool = False
    watchdog_restart_timeout: int = 30
    heartbeat_url: str = ""
    heartbeat_every: float = 300.0
    profiles: tuple[str, ...] = ()  # COMPOSE_PROFILES (WIKI_EVENTS_PROFILES in compose)
    data_dir: str = ""  # the volume's mount point on the host, for the alerts' words

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Operations:
        env = environment() if env is None else env
        profiles = env.get("WIKI_EVENTS_PROFILES", "")
        return cls(
            alert_webhook_url=env.get("ALERT_WEBHOOK_URL", ""),
            alert_webhook_format=env.get("ALERT_WEBHOOK_FORMAT") or "text",
            compose_project=env.get("COMPOSE_PROJECT_NAME") or "wiki-events",
            disk_alert_percent=number(env, "DISK_ALERT_PERCENT", 80),
            backup_expected=bool(env.get("BACKUP_EXPECTED")),
            watchdog_restart_timeout=whole_number(env, "WATCHDOG_RESTART_TIMEOUT", 30),
            heartbeat_url=env.get("HEARTBEAT_URL", ""),
            heartbeat_every=number(env, "HEARTBEAT_EVERY", 300),
            profiles=tuple(p.strip() for p in profiles.split(",") if p.strip()),
            data_dir=env.get("DATA_DIR", ""),
        )

    def webhook(self) -> Webhook | None:
        if not self.alert_webhook_url:
            return None
        return Webhook(self.alert_webhook_url, self.alert_webhook_format)

    def expected(self) -> tuple[str, ...]:
        return tuple(s for p in self.profiles for s in PROFILE_SERVICES.get(p, ()))


def alert(
    text: str,
    url: str | None = None,
    waits: tuple[float, ...] = CLI_WAITS,
    env: dict[str, str] | None = None,
) -> bool:
    """``wiki-events health alert``: POST ``text`` to ALERT_WEBHOOK_URL, retried with
    backoff while the failure is transient; one that still was not delivered is kept in
    this container's ``alerts-pending/`` on the data volume, which the watchdog delivers
    (``alerts.spool_folder``). Logged either way; True when delivered now."""
    env = environment() if env is None else env
    ops = Operations.from_env(env)
    url = ops.alert_webhook_url if url is None else url
    log.warning("ALERT %s", text)
    if not url:
        return False
    failed = deliver(Webhook(url, ops.alert_webhook_format), text, waits)
    if failed is None:
        return True
    # not the exception's text: it names the URL, and a webhook's URL is its secret
    folder = spool_folder(env)
    if folder is None:
        log.error("alert to the webhook failed: %s; LOST (no folder to keep it in)", failed.why)
        return False
    try:
        Outbox(folder).put(text)
    except OSError as exc:
        log.error(
            "alert to the webhook failed: %s; LOST (%s cannot hold it: %s)", failed.why, folder, exc
        )
        return False
    log.error(
        "alert to the webhook failed: %s; kept in %s, the watchdog delivers it", failed.why, folder
    )
    return False


class DockerAPI:
    """The few Engine API calls the watchdog needs, over the daemon's unix socket."""

    def __init__(self, socket_path: str = "/var/run/docker.sock") -> None:
        self.socket_path = socket_path

    @classmethod
    def from_env(cls, env: dict[str, str]) -> DockerAPI:
        """``DOCKER_HOST=unix:///path`` as the docker CLI reads it; else the usual socket."""
        host = env.get("DOCKER_HOST", "")
        return cls(host.removeprefix("unix://")) if host.startswith("unix://") else cls()

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(self.socket_path)
        conn = http.client.HTTPConnection("docker")
        conn.sock = sock
        return conn

    def request(self, method: str, path: str) -> Any:
        conn = self._connect(60)
        try:
            conn.request(method, path)
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        if response.status >= 400:
            raise RuntimeError(f"docker {method} {path}: {response.status} {body[:200]!r}")
        return json.loads(body) if body else None

    def containers(self, project: str) -> list[dict[str, Any]]:
        """Every container of the compose project (running or not, one-off runs left
        out), as ``docker inspect`` shows it."""
        filters = {"label": [f"com.docker.compose.project={project}"]}
        query = urllib.parse.urlencode({"all": "1", "filters": json.dumps(filters)})
        found = []
        for summary in self.request("GET", f"/containers/json?{query}") or []:
            if (summary.get("Labels") or {}).get("com.docker.compose.oneoff") == "True":
                continue
            try:
                found.append(self.request("GET", f"/containers/{summary['Id']}/json"))
            except RuntimeError:
                continue  # removed since it was listed
        return found

    def restart(self, container_id: str, timeout: int = 30) -> None:
        self.request("POST", f"/containers/{container_id}/restart?t={timeout}")

    def events(
        self, since_ns: int, filters: dict[str, list[str]], idle: float = 600.0
    ) -> Iterator[dict[str, Any]]:
        """Docker's events from ``since_ns`` (its buffer of recent ones, then live), as they
        come; ends quietly after ``idle`` seconds without one (reconnect to go on)."""
        since = f"{since_ns // 10**9}.{since_ns % 10**9:09d}"
        query = urllib.parse.urlencode({"since": since, "filters": json.dumps(filters)})
        conn = self._connect(idle)
        try:
            conn.request("GET", f"/events?{query}")
            response = conn.getresponse()
            if response.status >= 400:
                raise RuntimeError(f"docker GET /events: {response.status} {response.read(200)!r}")
            while True:
                try:
                    line = response.readline()
                except TimeoutError:
                    return
                if not line:
                    return
                if line.strip():
                    yield json.loads(line)
        finally:
            conn.close()


def service_of(container: dict[str, Any]) -> str:
    labels = (container.get("Config") or {}).get("Labels") or {}
    return str(labels.get(SERVICE) or container.get("Name", "?").lstrip("/"))


def name_of(container: dict[str, Any]) -> str:
    return str(container.get("Name") or "?").lstrip("/")


def labelled(container: dict[str, Any], label: str) -> bool:
    return ((container.get("Config") or {}).get("Labels") or {}).get(label) == "true"


def _instant(text: str) -> dt.datetime | None:
    """Docker's RFC 3339 time (nanoseconds, ``Z`` or an offset: the health log keeps the
    daemon's local zone) to microseconds; None when it is not one."""
    got = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text)
    if got is None:
        return None
    whole, fraction, zone = got.groups()
    try:  # the shape of a time, not one (month 13)
        at = dt.datetime.fromisoformat(whole + ("+00:00" if zone == "Z" else zone))
    except ValueError:
        return None
    return at + dt.timedelta(microseconds=int((fraction or "0")[:6].ljust(6, "0")))


def health_now(container: dict[str, Any]) -> str | None:
    """The verdict of the container's healthcheck on its current run: None when it is
    not running. Docker marks a stopped container unhealthy and keeps that until its next
    check after a start; a verdict from before ``StartedAt`` is that run's, not this one's
    (the watchdog restarted a reader compose had just started again: its SIGTERM came
    before the reader could take it, and the SIGKILL 30 s later broke compose's wait)."""
    state = container.get("State") or {}
    health = state.get("Health") or {}
    if not state.get("Running") or state.get("Restarting") or state.get("Paused"):
        return None
    status = health.get("Status")
    runs = health.get("Log") or []
    checked = _instant(str(runs[-1].get("Start") or "")) if runs else None
    started = _instant(str(state.get("StartedAt") or ""))
    if status == "unhealthy" and checked and started and checked < started:
        return "starting"
    return str(status) if status else None


def health_said(container: dict[str, Any]) -> str:
    """The container's last healthcheck output, one line (what ``docker inspect`` shows)."""
    runs = ((container.get("State") or {}).get("Health") or {}).get("Log") or []
    said = " ".join(str(runs[-1].get("Output") or "").split()) if runs else ""
    return said[:300] or "no output"


@dataclass
class KillWatch:
    """Docker's ``oom``, ``die`` and ``kill`` events of the project, streamed in a thread
    into ``kills``; after a dropped stream or a restart of the watchdog, the stream starts
    again where it stopped (``since``: Docker replays from its buffer of recent events), so
    no kill goes unseen while the daemon keeps it. The position is kept in ``cursor`` when
    there is one. (``die`` and ``kill``: where Docker reports no ``oom`` event, a main
    process killed by SIGKILL that Docker did not send is the OOM killer's work.)"""

    docker: DockerAPI
    project: str
    cursor: Path | None = None
    kills: queue.SimpleQueue[dict[str, Any]] = field(default_factory=queue.SimpleQueue)
    idle: float = 600.0
    stopping: threading.Event = field(default_factory=threading.Event)

    def filters(self) -> dict[str, list[str]]:
        return {
            "type": ["container"],
            "event": ["oom", "die", "kill"],
            "label": [f"com.docker.compose.project={self.project}"],
        }

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="docker-events", daemon=True)
        thread.start()
        return thread

    def since(self) -> int:
        try:
            return int(self.cursor.read_text()) if self.cursor else time.time_ns()
        except (OSError, ValueError):
            return time.time_ns()

    def keep(self, since_ns: int) -> None:
        if self.cursor is None:
            return
        try:
            tmp = self.cursor.with_name(self.cursor.name + ".tmp")
            tmp.write_text(str(since_ns))
            tmp.replace(self.cursor)
        except OSError as exc:
            log.error("cannot keep the docker events position in %s: %s", self.cursor, exc)

    def run(self) -> None:
        since, attempt = self.since(), 0
        if self.cursor is not None and not self.cursor.exists():
            self.keep(since)  # the first start: from now on, nothing is missed
        while not self.stopping.is_set():
            connected = time.time_ns()
            try:
                for event in self.docker.events(since, self.filters(), self.idle):
                    self.kills.put(event)
                    since = max(since, int(event.get("timeNano") or 0) + 1)
                attempt = 0
                since = max(since, connected)  # idle: nothing came since then
            except Exception as exc:  # noqa: BLE001 - the stream must come back
                wait = backoff(attempt, 60.0, base=1.0)
                attempt += 1
                log.error("docker events stream failed: %s; again in %.0f s", exc, wait)
                self.stopping.wait(wait)

    def stop(self) -> None:
        """Ends ``run`` within ``idle`` seconds (the stream's read timeout)."""
        self.stopping.set()

    def drain(self) -> list[dict[str, Any]]:
        got = []
        while True:
            try:
                got.append(self.kills.get_nowait())
            except queue.Empty:
                return got

    def done_with(self, events: list[dict[str, Any]]) -> None:
        """``events`` were judged: a restart of the watchdog starts after them. (Kept only
        now, not as they arrive: one that arrived but was not judged yet comes again.)"""
        if events:
            self.keep(max(int(e.get("timeNano") or 0) for e in events) + 1)


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
    that does not answer, an unhealthy follower, a restart loop, a service gone) is
    alerted when it begins, and once it is over a recovery message follows; disk and
    backup alerts repeat at most once an hour while they last, the others are said once. A
    dependency counts as down once it has not answered for ``outage_grace`` seconds (not
    at a blip, nor while the stack starts), an expected service once it has not run for
    ``absent_grace``."""

    docker: DockerAPI
    project: str
    volume: Path
    disk_percent: float
    backup_expected: bool
    backup_max_age: float = 26 * 3600
    notify: Callable[[str], object] = log.warning
    restart_timeout: int = 30  # seconds a container gets to stop before it is killed
    dependencies: list[Dependency] = field(default_factory=list)
    outage_grace: float = 60.0
    probe_timeout: float = 5.0
    clock: Callable[[], float] = time.monotonic
    last_sent: dict[str, float] = field(default_factory=dict)  # open problems: last alert
    down_since: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    expected: tuple[str, ...] = ()  # services that must run (the dumps followers)
    absent_grace: float = 300.0
    kills: KillWatch | None = None
    volume_on_host: str = ""  # DATA_DIR, for the alerts' words
    restarts: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)  # Docker's, drained, to judge
    oom_run_said: dict[str, str] = field(default_factory=dict)  # container → StartedAt
    backstop_said: dict[str, int] = field(default_factory=dict)  # container → when (ns)
    oom_seen: dict[str, int] = field(default_factory=dict)  # container → last oom event (ns)
    docker_killed: dict[str, int] = field(default_factory=dict)  # → last kill event (ns)
    dies: list[tuple[str, int, str, str]] = field(default_factory=list)  # SIGKILLed, to judge

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
        if self.kills is not None:  # kept across a pass that fails before judging them
            self.events += self.kills.drain()
        containers = self.docker.containers(self.project)
        done += self._kills(self.events, containers)
        if self.kills is not None:
            self.kills.done_with(self.events)
        self.events = []
        done += self._health(containers)
        done += self._loops(containers)
        done += self._expected(containers)
        done += self._disk()
        done += self._backups()
        for dependency in self.dependencies:
            done += self._probe(dependency)
        return done

    # -- containers ------------------------------------------------------------------

    def _health(self, containers: list[dict[str, Any]]) -> list[str]:
        """Unhealthy: restarted (autoheal) or alerted (alert-unhealthy); the latter's
        return to health said once."""
        done = []
        for container in containers:
            status = health_now(container)
            service, key = service_of(container), f"unhealthy:{service_of(container)}"
            if status == "unhealthy" and labelled(container, AUTOHEAL):
                self.docker.restart(container["Id"], self.restart_timeout)
                text = (
                    f"wiki-events: {name_of(container)} was unhealthy and has been restarted "
                    f"(its check said: {health_said(container)}); if it comes back, see "
                    f"`docker compose logs --tail 100 {service}`"
                )
                self.notify(text)
                done.append(text)
            elif status == "unhealthy" and labelled(container, ALERT_UNHEALTHY):
                text = (
                    f"wiki-events: {service} is unhealthy: {health_said(container)} "
                    f"(not restarted by the watchdog; see `docker compose logs --tail 100 "
                    f"{service}`, and `docker compose restart {service}` if it hangs)"
                )
                self._problem(key, text, repeat=None)
                done.append(text)
            elif status == "healthy" and self._over(
                key, f"wiki-events: {service} is healthy again"
            ):
                done.append(f"{service} is healthy again")
        return done

    def _loops(self, containers: list[dict[str, Any]]) -> list[str]:
        """A container Docker restarted ``LOOP_RESTARTS`` times within ``LOOP_WINDOW``;
        over once it ran that long without one."""
        now, done, seen = self.clock(), [], set()
        for container in containers:
            cid, service = container["Id"], service_of(container)
            seen.add(cid)
            count = int(container.get("RestartCount") or 0)
            history = self.restarts.setdefault(cid, [(now, count)])
            if count != history[-1][1]:
                history.append((now, count))
            while len(history) > 1 and now - history[1][0] > LOOP_WINDOW:
                history.pop(0)  # keep one observation from before the window
            recent = count - history[0][1]
            key = f"loop:{service}"
            state = container.get("State") or {}
            if recent >= LOOP_RESTARTS:
                code = state.get("ExitCode")
                oom = ", killed for lack of memory" if state.get("OOMKilled") else ""
                text = (
                    f"wiki-events: {service} is restarting in a loop ({recent} restarts in "
                    f"{LOOP_WINDOW / 60:.0f} min, last exit code {code}{oom}): see "
                    f"`docker compose logs --tail 100 {service}`"
                )
                self._problem(key, text, repeat=None)
                done.append(text)
            elif (
                recent == 0
                and state.get("Running")
                and not state.get("Restarting")
                and self._over(
                    key,
                    f"wiki-events: {service} runs again, no restart for {LOOP_WINDOW / 60:.0f} min",
                )
            ):
                done.append(f"{service} runs again")
        for gone in set(self.restarts) - seen:
            del self.restarts[gone]
        return done

    def _expected(self, containers: list[dict[str, Any]]) -> list[str]:
        """A service that should run (``expected``) and has not for ``absent_grace``."""
        now, done = self.clock(), []
        for service in self.expected:
            mine = [c for c in containers if service_of(c) == service]
            states = [c.get("State") or {} for c in mine]
            key = f"absent:{service}"
            if any(s.get("Running") or s.get("Restarting") for s in states):
                self.down_since.pop(key, None)
                if self._over(key, f"wiki-events: {service} runs again"):
                    done.append(f"{service} runs again")
                continue
            since = self.down_since.setdefault(key, now)
            if now - since < self.absent_grace:
                continue
            how = (
                ", ".join(f"{s.get('Status')} (exit code {s.get('ExitCode')})" for s in states)
                or "no container"
            )
            text = (
                f"wiki-events: {service} is not running ({how}), though COMPOSE_PROFILES "
                f"in .env asks for it: see `docker compose logs --tail 100 {service}`, then "
                f"`docker compose up -d {service}`"
            )
            self._problem(key, text, repeat=None)
            done.append(text)
        return done

    def _kills(self, events: list[dict[str, Any]], containers: list[dict[str, Any]]) -> list[str]:
        """One alert per OOM kill (per container and pass, with their number), from three
        sources: Docker's ``oom`` events; a main process SIGKILLed by something outside
        Docker (where Docker reports no oom event); and, as a backstop for a kill whose
        event was missed while the watchdog was down, State.OOMKilled. ``oom_run_said``
        keeps the run (StartedAt) of each container a kill was said in, so the backstop
        says a run's flag once; ``backstop_said`` the time the backstop said one, so that
        kill's event, should it come later, is not said again."""
        done: list[str] = []
        now = time.time_ns()
        started = {c["Id"]: str((c.get("State") or {}).get("StartedAt", "")) for c in containers}
        counted: dict[str, tuple[str, str, int]] = {}

        def told_by_backstop(cid: str, when: int) -> bool:
            said = self.backstop_said.get(cid)
            if said is not None and when <= said:
                del self.backstop_said[cid]  # that kill's own event: consumed, once
                return True
            return False

        for event in sorted(events, key=lambda e: int(e.get("timeNano") or 0)):
            actor = event.get("Actor") or {}
            cid, when = str(actor.get("ID") or event.get("id") or "?"), int(event["timeNano"])
            attributes = actor.get("Attributes") or {}
            name = str(attributes.get("name") or cid[:12])
            service = str(attributes.get(SERVICE) or name)
            action = event.get("Action") or event.get("status")
            if action == "kill":
                self.docker_killed[cid] = max(when, self.docker_killed.get(cid, 0))
            elif action == "die" and str(attributes.get("exitCode")) == "137":
                self.dies.append((cid, when, service, name))
            elif action == "oom":
                self.oom_seen[cid] = max(when, self.oom_seen.get(cid, 0))
                if not told_by_backstop(cid, when):
                    counted[cid] = (service, name, counted.get(cid, ("", "", 0))[2] + 1)
        for cid, (service, name, times) in counted.items():
            done.append(self._oom(service, name, times))
            self.oom_run_said[cid] = started.get(cid, "")
        waiting = []
        for cid, when, service, name in self.dies:
            if now - when < SETTLE:
                waiting.append((cid, when, service, name))
            elif abs(self.oom_seen.get(cid, -OOM_NEAR * 2) - when) <= OOM_NEAR:
                continue  # its oom event told it
            elif (
                0 <= when - self.docker_killed.get(cid, -KILLED_BY_DOCKER * 2) <= (KILLED_BY_DOCKER)
            ):
                continue  # Docker killed it (stop, restart, kill)
            elif not told_by_backstop(cid, when):
                done.append(self._sigkill(service, name))
                self.oom_run_said[cid] = started.get(cid, "")
        self.dies = waiting
        for container in containers:
            cid, state = container["Id"], container.get("State") or {}
            if state.get("OOMKilled") and self.oom_run_said.get(cid) != started[cid]:
                done.append(self._oom(service_of(container), name_of(container), 1))
                self.oom_run_said[cid] = started[cid]
                self.backstop_said[cid] = now
        hour = now - 3600 * 10**9
        for kept in (self.oom_seen, self.docker_killed, self.backstop_said):
            for cid in [c for c, t in kept.items() if t < hour]:
                del kept[cid]
        for gone in set(self.oom_run_said) - set(started):
            del self.oom_run_said[gone]
        return done

    def _sigkill(self, service: str, name: str) -> str:
        text = (
            f"wiki-events: {service}'s main process in {name} was killed (SIGKILL, exit "
            "code 137) by something outside Docker, most likely the kernel's OOM killer "
            "(the server ran out of memory; Docker reported no OOM event); Docker restarts "
            f"it. See `journalctl -k | grep -i oom`, `docker compose logs --tail 100 "
            f"{service}` and `docker stats`, and give the server more memory (deploy.md, "
            "section 7)"
        )
        self.notify(text)
        return text

    def _oom(self, service: str, name: str, times: int) -> str:
        count = f" {times} times" if times > 1 else ""
        text = (
            f"wiki-events: {service} ran out of memory: the kernel's OOM killer killed a "
            f"process in {name}{count} (Docker restarts the container if that was its main "
            f"process); see `docker compose logs --tail 100 {service}` and `docker stats`, "
            "and give the server more memory (deploy.md, section 7)"
        )
        self.notify(text)
        return text

    # -- the volume, the backups, the dependencies -------------------------------------

    def _disk(self) -> list[str]:
        usage = shutil.disk_usage(self.volume)
        percent = 100 * usage.used / usage.total
        where = self.volume_on_host or str(self.volume)
        if percent >= self.disk_percent:
            text = (
                f"wiki-events: data volume {where} {percent:.0f}% full (alert at "
                f"{self.disk_percent:.0f}%): grow the volume or shorten retention "
                "(deploy.md, section 7)"
            )
            self._problem("disk", text)
            return [text]
        if self._over("disk", f"wiki-events: data volume {where} back to {percent:.0f}% full"):
            return ["disk use back under the limit"]
        return []

    def _backups(self) -> list[str]:
        if not self.backup_expected:
            return []
        problem = backup_problem(self.volume / "backup", self.backup_max_age)
        if (
            problem
            and problem.startswith("no backup")
            and (time.time() - self.started < self.backup_max_age)
        ):
            problem = None  # a fresh deploy: the first backup is not due yet
        if problem:
            self._problem(
                "backup",
                f"wiki-events: {problem}; see `docker compose logs --tail 100 backup`, then "
                "`deploy/bin/stack backup` (deploy.md, section 4)",
            )
            return [problem]
        if self._over("backup", "wiki-events: backups succeed again"):
            return ["backups succeed again"]
        return []

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

    def one_pass(self, courier: Courier | None = None, heartbeat: Heartbeat | None = None) -> bool:
        """Check, deliver the alerts waiting, and ping the heartbeat after a pass that
        worked (one that failed pings nothing, one that hangs never gets there). True
        when the pass worked."""
        worked = False
        try:
            for line in self.check():
                log.info("%s", line)
            worked = True
        except Exception as exc:  # noqa: BLE001 - the watchdog must outlive a bad pass
            log.error("watchdog pass failed: %s", exc)
        if courier is not None:
            courier.flush()
        if worked and heartbeat is not None:
            heartbeat.beat()
        return worked

    def run(
        self,
        interval: float = 30.0,
        courier: Courier | None = None,
        heartbeat: Heartbeat | None = None,
    ) -> None:
        if self.kills is not None:
            self.kills.start()
        while True:
            self.one_pass(courier, heartbeat)
            time.sleep(interval)


def state_folder(volume: Path) -> Path | None:
    """The watchdog's own folder on the data volume (its pending alerts, the docker
    events' position), made when missing, but only on the volume itself (its sentinel is
    there), never on a root disk where it is not mounted."""
    if not (volume / SENTINEL).exists():
        log.error("no %s: the data volume is not mounted; alerts are kept in memory", SENTINEL)
        return None
    folder = volume / "watchdog"
    try:
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        log.error("cannot make %s (%s): alerts are kept in memory", folder, exc)
        return None
    return folder


def spools(volume: Path, own: Path | None) -> Callable[[], list[Outbox]]:
    """The other containers' pending alerts: every ``*/alerts-pending`` on the volume."""

    def found() -> list[Outbox]:
        return [Outbox(p) for p in sorted(volume.glob(f"*/{PENDING}")) if p != own]

    return found


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
