"""Publishing to RabbitMQ with pika: topology, persistent batches, publisher confirms.

Message format. The loader is the only reader of the queue, so a message carries a
*batch*: the original JSON of up to a thousand events of one wiki, one per line
(``application/x-ndjson``), with the wiki as the routing key. Measured here through
pika's BlockingConnection, one message per event ran about 1.4k messages/s, while a
hundred events per message ran about 100k events/s: a confirm costs a round trip, and
batching pays it once per batch. Keeping one wiki per message keeps the routing key
meaningful, so a user can bind an extra queue to the wikis they care about. Event JSON
is passed through byte for byte (ELT: the loader stores it unchanged).

Topology (declared idempotently at every connect):

- ``wiki.recentchange``: topic exchange, routing key = wiki (``enwiki``, ``wikidatawiki``);
- ``wiki.recentchange.loader``: the loader's durable queue, bound with ``#``; a quorum
  queue where the broker supports it, with a delivery limit, dead-lettering into...
- ``wiki.quarantine``: topic exchange and queue of the same name for what could not be
  used, each message with its reason in the ``x-reason`` header.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pika
import pika.exceptions

log = logging.getLogger("reader.publisher")

EXCHANGE = "wiki.recentchange"
LOADER_QUEUE = "wiki.recentchange.loader"
QUARANTINE = "wiki.quarantine"
DELIVERY_LIMIT = 5
BATCH_CONTENT_TYPE = "application/x-ndjson"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


@dataclass
class Message:
    exchange: str
    routing_key: str
    body: bytes
    headers: dict[str, object] = field(default_factory=dict)
    events: int = 0


def supports_quorum(server_properties: dict[str, object]) -> bool:
    version = server_properties.get("version", b"0")
    text = version.decode() if isinstance(version, bytes) else str(version)
    try:
        major, minor = (int(p) for p in text.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (3, 8)


def topology(quorum: bool = True) -> dict[str, list[dict[str, Any]]]:
    """The exchanges, queues and bindings, shaped as RabbitMQ's definitions file has them.

    The reader and the loader declare exactly this at start (declaring is idempotent);
    production loads the same through ``deploy/rabbitmq/render_definitions.py``, so the
    two never disagree (a mismatch would be PRECONDITION_FAILED).
    """
    quarantine_args: dict[str, Any] = {"x-queue-type": "quorum"} if quorum else {}
    loader_args: dict[str, Any] = {
        "x-dead-letter-exchange": QUARANTINE,
        "x-dead-letter-routing-key": "loader.delivery-limit",
    }
    if quorum:
        loader_args.update({"x-queue-type": "quorum", "x-delivery-limit": DELIVERY_LIMIT})
    return {
        "exchanges": [
            {"name": EXCHANGE, "type": "topic", "durable": True, "auto_delete": False,
             "internal": False, "arguments": {}},
            {"name": QUARANTINE, "type": "topic", "durable": True, "auto_delete": False,
             "internal": False, "arguments": {}},
        ],
        "queues": [
            {"name": QUARANTINE, "durable": True, "auto_delete": False,
             "arguments": quarantine_args},
            {"name": LOADER_QUEUE, "durable": True, "auto_delete": False,
             "arguments": loader_args},
        ],
        "bindings": [
            {"source": QUARANTINE, "destination": QUARANTINE, "destination_type": "queue",
             "routing_key": "#", "arguments": {}},
            {"source": EXCHANGE, "destination": LOADER_QUEUE, "destination_type": "queue",
             "routing_key": "#", "arguments": {}},
        ],
    }  # fmt: skip


def declare_topology(
    channel: pika.adapters.blocking_connection.BlockingChannel, quorum: bool
) -> None:
    spec = topology(quorum)
    for exchange in spec["exchanges"]:
        channel.exchange_declare(exchange["name"], exchange_type=exchange["type"], durable=True)
    for queue in spec["queues"]:
        channel.queue_declare(queue["name"], durable=True, arguments=queue["arguments"])
    for binding in spec["bindings"]:
        channel.queue_bind(binding["destination"], binding["source"],
                           routing_key=binding["routing_key"])  # fmt: skip


class Sink(Protocol):
    """Where the reader hands its batches: RabbitMQ (``Publisher``), or, when no broker
    is reachable, the loader's writer in the same process (``wiki_events.pipeline``).
    ``publish`` returns only once the messages are safe; then the reader checkpoints."""

    def connect(self) -> None: ...
    def publish(self, messages: list[Message]) -> None: ...
    def tick(self) -> None: ...
    def close(self) -> None: ...


class Publisher:
    """A confirmed publisher that survives broker restarts.

    ``publish`` returns only when the broker has confirmed every message handed to it;
    on a lost connection it reconnects with backoff and republishes the messages not
    yet confirmed (the loader drops the duplicates this can make, by ``meta.id``).
    """

    def __init__(
        self,
        url: str = DEFAULT_AMQP_URL,
        heartbeat: int = 30,
        max_backoff: float = 30.0,
        stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.params = pika.URLParameters(url)
        self.params.heartbeat = heartbeat
        self.params.blocked_connection_timeout = 300
        self.max_backoff = max_backoff
        self._stop = stop
        self._conn: pika.BlockingConnection | None = None
        self._channel: pika.adapters.blocking_connection.BlockingChannel | None = None
        self.reconnects = 0

    def connect(self) -> None:
        attempt = 0
        while True:
            try:
                self._conn = pika.BlockingConnection(self.params)
                channel = self._conn.channel()
                quorum = supports_quorum(self._conn._impl.server_properties)  # noqa: SLF001
                declare_topology(channel, quorum)
                channel.confirm_delivery()
                self._channel = channel
                return
            except pika.exceptions.ChannelClosedByBroker as exc:
                # A topology conflict (a queue declared before with other arguments)
                # will not fix itself by retrying.
                raise RuntimeError(
                    f"RabbitMQ refused the topology: {exc.reply_text}. Delete the conflicting "
                    f"queue or exchange ({LOADER_QUEUE}, {QUARANTINE}) or use another vhost."
                ) from None
            except pika.exceptions.AMQPConnectionError as exc:
                attempt += 1
                delay = backoff(attempt, self.max_backoff)
                log.warning(
                    "RabbitMQ at %s unreachable (%s); retrying in %.1fs",
                    self.params.host,
                    type(exc).__name__,
                    delay,
                )
                if self._stop():
                    raise
                time.sleep(delay)

    def publish(self, messages: list[Message]) -> None:
        """Publish and wait for the broker's confirms of all ``messages``."""
        pending = list(messages)
        attempt = 0
        while pending:
            if self._channel is None or self._conn is None or not self._conn.is_open:
                self.connect()
            assert self._channel is not None
            try:
                while pending:
                    message = pending[0]
                    self._channel.basic_publish(
                        message.exchange,
                        message.routing_key,
                        message.body,
                        pika.BasicProperties(
                            delivery_mode=pika.DeliveryMode.Persistent,
                            content_type=BATCH_CONTENT_TYPE,
                            message_id=str(uuid.uuid4()),
                            timestamp=int(time.time()),
                            headers={**message.headers, "events": message.events},
                        ),
                        mandatory=True,
                    )
                    pending.pop(0)  # confirmed
                    attempt = 0
            except pika.exceptions.UnroutableError:
                raise RuntimeError(
                    f"RabbitMQ could not route a message to {pending[0].exchange}: "
                    "is the topology deleted?"
                ) from None
            except (pika.exceptions.AMQPError, OSError) as exc:
                # Lost connection, or a nack: reconnect and republish what is unconfirmed.
                attempt += 1
                self.reconnects += 1
                self._drop()
                delay = backoff(attempt, self.max_backoff)
                log.warning(
                    "publish failed (%s); %d message(s) to republish in %.1fs",
                    type(exc).__name__,
                    len(pending),
                    delay,
                )
                time.sleep(delay)

    def tick(self) -> None:
        """Service heartbeats between publishes."""
        if self._conn is not None and self._conn.is_open:
            try:
                self._conn.process_data_events(0)
            except (pika.exceptions.AMQPError, OSError) as exc:
                log.warning(
                    "RabbitMQ connection lost (%s); reconnecting at the next publish",
                    type(exc).__name__,
                )
                self.reconnects += 1
                self._drop()

    def _drop(self) -> None:
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - it is already broken
                pass

    def close(self) -> None:
        self._drop()


def backoff(attempt: int, cap: float, base: float = 0.5) -> float:
    """Exponential backoff with full jitter, capped."""
    return random.uniform(0, min(cap, base * 2 ** min(attempt, 16)))
