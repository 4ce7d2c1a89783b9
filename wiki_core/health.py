"""What every stage reports, in one shape: its ``status`` lines and its health verdict,
and the probes of the two services every stage needs (RabbitMQ, ClickHouse).

Each stage's ``status.py`` returns ``Line`` s and ``Verdict`` s; ``wiki_events`` only
gathers them (``wiki-events status``, ``wiki-events health``, the watchdog).
"""

from __future__ import annotations

import socket
import urllib.parse
from dataclasses import dataclass
from typing import NamedTuple

from .config import ClickHouseURL
from .unreachable import sentence


class Line(NamedTuple):
    """One line of ``wiki-events status``."""

    stage: str
    state: str  # ok, warn, error, info
    text: str


@dataclass(frozen=True)
class Verdict:
    """A stage's health, judged from outside it (Docker's healthcheck contract)."""

    healthy: bool
    reason: str

    @property
    def code(self) -> int:
        return 0 if self.healthy else 1


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
