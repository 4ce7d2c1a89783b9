"""Publishing to RabbitMQ with pika: persistent batches, publisher confirms, reconnects.

The message format and the topology are the broker contract, ``wiki_core.topology``;
here a reader's ``Batch`` becomes messages: one per wiki (its events, with their keys),
and one per reject on the quarantine exchange.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

import pika
import pika.exceptions

from wiki_core.backoff import backoff
from wiki_core.config import DEFAULT_AMQP_URL
from wiki_core.topology import (
    EXCHANGE,
    LOADER_QUEUE,
    QUARANTINE,
    Batch,
    Message,
    declare_topology,
    encode_batch,
    supports_quorum,
)
from wiki_core.unreachable import cause

log = logging.getLogger("reader.publisher")


def messages(batch: Batch) -> list[Message]:
    """A batch as AMQP messages: each wiki's events as one message routed by the wiki;
    each reject on the quarantine, routed ``reader.<reason>``, with its reason."""
    out = [
        Message(EXCHANGE, key, encode_batch(events), events=len(events))
        for key, events in batch.events.items()
    ]
    out += [
        Message(
            QUARANTINE,
            f"{r.source}.{r.reason}",
            r.raw,
            events=1,
            headers={"x-reason": r.text[:500], "x-source": r.source},
        )
        for r in batch.rejects
    ]
    return out


class Stopped(Exception):
    """Asked to stop (``stop``) while RabbitMQ could not be reached: what was not
    confirmed is not checkpointed, so it is read again at the next start."""


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
                    "RabbitMQ at %s:%s unreachable (%s); retrying in %.1fs",
                    self.params.host,
                    self.params.port,
                    cause(exc),
                    delay,
                )
                self._wait(delay, f"RabbitMQ at {self.params.host} unreachable")

    def publish(self, batch: Batch) -> None:
        """Publish ``batch`` and wait for the broker's confirms of all its messages."""
        self.send(messages(batch))

    def send(self, messages: list[Message]) -> None:
        """Publish ``messages`` and wait for the broker's confirms of all of them."""
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
                            content_type=message.content_type,
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
                self._drop()
                delay = backoff(attempt, self.max_backoff)
                log.warning(
                    "publish failed (%s); %d message(s) to republish in %.1fs",
                    type(exc).__name__,
                    len(pending),
                    delay,
                )
                self._wait(delay, f"{len(pending)} message(s) not confirmed by RabbitMQ")

    def _wait(self, seconds: float, why: str) -> None:
        """Sleep ``seconds`` unless asked to stop (checked every 0.1 s): then ``Stopped``,
        so a stop (SIGTERM) is never held up by a broker that is down."""
        deadline = time.monotonic() + seconds
        while True:
            if self._stop():
                raise Stopped(f"stopped while {why}; nothing unconfirmed was checkpointed")
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(0.1, left))

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
