"""Alerts that leave the box, and the heartbeat that says the box is alive.

- ``Webhook``: one POST of an alert to ``ALERT_WEBHOOK_URL`` (plain text, or
  ``{"text": ...}`` for Slack when ``ALERT_WEBHOOK_FORMAT=json``).
- ``deliver``: that POST retried with backoff while the failure is transient (no
  connection, a timeout, HTTP 408/425/429/5xx); a refusal (another 4xx) is not retried.
- ``Outbox``: alerts not delivered yet, one file each, in a folder on the data volume. A
  container that alerts (``wiki-events health alert``: the backup and dbt services) keeps
  an alert it could not deliver in its own ``alerts-pending/`` folder there; the watchdog
  delivers every ``alerts-pending/`` folder on the volume, its own included, oldest first,
  and removes each file once the webhook took it. So an alert outlives a webhook or a
  network that is down for minutes, a restart of the watchdog, a reboot.
- ``Heartbeat``: a dead-man's switch: ``HEARTBEAT_URL`` (a healthchecks-style ping URL)
  called every ``HEARTBEAT_EVERY`` seconds by the watchdog after a pass that worked;
  when the host, Docker, the network or the watchdog dies, the pings stop and the service
  behind the URL alerts from outside.

Both URLs are secrets (whoever holds them can post or ping): nothing here logs them, and
httpx, which logs every request's URL at INFO, is held at WARNING.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from wiki_core.backoff import backoff
from wiki_core.unreachable import cause

log = logging.getLogger("health")

RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def retry_waits(budget: float, first: float = 1.0, cap: float = 30.0) -> tuple[float, ...]:
    """Waits between attempts, doubling from ``first`` up to ``cap``, ``budget`` in all
    (the last one shortened to fit)."""
    waits: list[float] = []
    wait = first
    while sum(waits) < budget:
        waits.append(min(wait, cap, budget - sum(waits)))
        wait *= 2
    return tuple(waits)


# the waits of `wiki-events health alert`: 1, 2, 4, 8, 16, 30, 29 s (a minute and a half):
# a webhook, a DNS or a network that is back within it loses nothing and delays little
CLI_WAITS = retry_waits(90.0)
PENDING = "alerts-pending"  # the folder name, in each writer's own folder on the volume
KEEP_PENDING = 7 * 86400  # an alert not delivered within a week is dropped (and logged)


def _quiet_httpx() -> None:
    """httpx logs each request with its URL at INFO: the webhook's and the heartbeat's
    URLs are secrets."""
    logger = logging.getLogger("httpx")
    if logger.getEffectiveLevel() < logging.WARNING:
        logger.setLevel(logging.WARNING)


def failure(exc: BaseException) -> str:
    """Why a request failed, in words, never with its URL (an exception's text may hold
    it): the exception's type, and its cause when it is a known one."""
    said = cause(exc)
    kind = type(exc).__name__
    return kind if said.startswith(kind) else f"{kind}: {said}"


@dataclass(frozen=True)
class Failed:
    """One attempt that did not deliver: why (no URL in it), and whether to try again."""

    why: str
    transient: bool


@dataclass(frozen=True)
class Webhook:
    url: str
    format: str = "text"  # or "json"
    timeout: float = 10.0

    def post(self, text: str) -> Failed | None:
        """One attempt; None when the webhook took it."""
        import httpx

        _quiet_httpx()
        if self.format == "json":
            body, kind = json.dumps({"text": text}).encode(), "application/json"
        else:
            body, kind = text.encode(), "text/plain; charset=utf-8"
        try:
            reply = httpx.post(
                self.url, content=body, headers={"Content-Type": kind}, timeout=self.timeout
            )
        except httpx.TransportError as exc:  # no connection, a timeout: try again
            return Failed(failure(exc), transient=True)
        except httpx.HTTPError as exc:  # e.g. a URL httpx cannot use: no use trying again
            return Failed(failure(exc), transient=False)
        if reply.is_success:
            return None
        return Failed(f"HTTP {reply.status_code}", reply.status_code in RETRY_STATUS)


def deliver(
    webhook: Webhook,
    text: str,
    waits: Iterable[float] = CLI_WAITS,
    sleep: Callable[[float], object] = time.sleep,
) -> Failed | None:
    """``webhook.post(text)``, again after each of ``waits`` while the failure is
    transient; None when delivered, else the last failure."""
    failed = webhook.post(text)
    for wait in waits:
        if failed is None or not failed.transient:
            break
        log.warning("alert to the webhook failed: %s; again in %.0f s", failed.why, wait)
        sleep(wait)
        failed = webhook.post(text)
    return failed


@dataclass(frozen=True)
class Pending:
    path: Path
    raised: float  # when the alert was raised (seconds since the epoch)

    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")


@dataclass(frozen=True)
class Outbox:
    """A folder of alerts not delivered yet: one file each, named by the time it was
    raised, written whole (a temporary name, then a rename) so a reader never sees half."""

    folder: Path

    def put(self, text: str, raised: float | None = None) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = int((time.time() if raised is None else raised) * 1e9)
        name = f"{stamp:020d}-{os.getpid()}-{secrets.token_hex(3)}.alert"
        tmp = self.folder / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(self.folder / name)
        return self.folder / name

    def items(self) -> list[Pending]:
        if not self.folder.is_dir():
            return []
        found = []
        for path in self.folder.glob("*.alert"):
            try:
                found.append(Pending(path, int(path.name.split("-", 1)[0]) / 1e9))
            except ValueError:
                continue  # not one of ours
        return sorted(found, key=lambda p: (p.raised, p.path.name))


def spool_folder(env: dict[str, str]) -> Path | None:
    """Where ``wiki-events health alert`` keeps an alert it could not deliver: in the
    calling container's own folder on the data volume, which the watchdog reads.
    ``ALERT_SPOOL_DIR`` when set; else the dbt marker's folder (the dbt service's /dbt,
    the volume's dbt/) when it is writable here; else WIKI_EVENTS_DATA (the backup
    service's /data, the volume's backup/) when it is. None: nowhere to keep it."""
    if env.get("ALERT_SPOOL_DIR"):
        return Path(env["ALERT_SPOOL_DIR"])
    marker = Path(env.get("DBT_MARKER") or "/dbt/dbt-built")
    for folder in (marker.parent, Path(env.get("WIKI_EVENTS_DATA") or "/data")):
        if folder.is_dir() and os.access(folder, os.W_OK | os.X_OK):
            return folder / PENDING
    return None


def late_note(raised: float, now: float) -> str:
    """Said after an alert delivered more than a minute after it was raised."""
    if now - raised < 60:
        return ""
    when = dt.datetime.fromtimestamp(raised, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f" (raised {when}, delivered late)"


@dataclass
class Courier:
    """The watchdog's delivery: its own alerts go to ``outbox`` first (or, without one, a
    list in memory), then every pass ``flush`` sends what waits there and in ``spools``
    (the other containers' ``alerts-pending/`` folders), oldest first; at a failure it
    stops and tries again at a later pass, after a backoff that grows to ``max_wait``."""

    webhook: Webhook | None
    outbox: Outbox | None = None
    spools: Callable[[], list[Outbox]] = list
    max_wait: float = 300.0
    clock: Callable[[], float] = time.time
    memory: list[tuple[float, str]] = field(default_factory=list)
    failures: int = 0
    next_try: float = 0.0

    def send(self, text: str) -> None:
        """Raise an alert: logged now, delivered by the next ``flush``."""
        log.warning("ALERT %s", text)
        if self.webhook is None:
            return
        if self.outbox is not None:
            try:
                self.outbox.put(text)
                return
            except OSError as exc:
                log.error("cannot keep the alert in %s (%s): kept in memory", self.outbox, exc)
        self.memory.append((self.clock(), text))

    def pending(self) -> int:
        boxes = [self.outbox, *self.spools()] if self.outbox else self.spools()
        return len(self.memory) + sum(len(box.items()) for box in boxes)

    def flush(self) -> int:
        """Deliver what waits, oldest first; returns how many were delivered. Never raises."""
        if self.webhook is None or self.clock() < self.next_try:
            return 0
        sent = 0
        try:
            for raised, text, done in self._waiting():
                now = self.clock()
                if now - raised > KEEP_PENDING:
                    log.error("alert dropped, undelivered for a week: %s", text)
                    done()
                    continue
                late = late_note(raised, now)
                failed = self.webhook.post(text + late)
                if failed is not None:
                    self.failures += 1
                    wait = backoff(self.failures, self.max_wait, base=5.0)
                    self.next_try = now + wait
                    log.error(
                        "alert to the webhook failed: %s; %d alert(s) kept, next try in %.0f s",
                        failed.why,
                        self.pending(),
                        wait,
                    )
                    return sent
                done()
                sent += 1
                if late:
                    log.info("alert delivered%s: %s", late, text)
        except OSError as exc:  # a spool that cannot be read or emptied: said, tried again
            log.error("pending alerts could not be read or removed: %s", exc)
        self.failures = 0
        return sent

    def _waiting(self) -> list[tuple[float, str, Callable[[], None]]]:
        """Every alert waiting, oldest first: (raised, text, what removes it)."""
        found = [(raised, text, self._forget(raised, text)) for raised, text in self.memory]
        boxes = ([self.outbox] if self.outbox else []) + self.spools()
        for box in boxes:
            for pending in box.items():
                try:
                    text = pending.text()
                except FileNotFoundError:
                    continue  # delivered meanwhile
                found.append((pending.raised, text, self._remove(pending.path)))
        return sorted(found, key=lambda f: f[0])

    def _forget(self, raised: float, text: str) -> Callable[[], None]:
        return lambda: self.memory.remove((raised, text))

    @staticmethod
    def _remove(path: Path) -> Callable[[], None]:
        return lambda: path.unlink(missing_ok=True)


@dataclass
class Heartbeat:
    """``url`` called every ``every`` seconds, only after a watchdog pass that worked. A
    ping that fails is logged (without the URL) and made again at the next pass."""

    url: str
    every: float = 300.0
    timeout: float = 10.0
    clock: Callable[[], float] = time.monotonic
    last: float | None = None  # the last ping the service took

    def beat(self) -> bool:
        """Ping when due; True when a ping was taken now."""
        now = self.clock()
        if self.last is not None and now - self.last < self.every:
            return False
        import httpx

        _quiet_httpx()
        try:
            reply = httpx.get(self.url, timeout=self.timeout)
            why = None if reply.is_success else f"HTTP {reply.status_code}"
        except httpx.HTTPError as exc:
            why = failure(exc)
        if why is not None:
            log.error("heartbeat ping failed: %s; again at the next pass", why)
            return False
        if self.last is None:
            log.info("heartbeat: the first ping was taken; every %.0f s from now", self.every)
        self.last = now
        return True
