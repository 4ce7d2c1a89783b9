"""The broker contract: exchanges, queues, the message format, the sink interface.

Message format. The loader is the only reader of its queue, so a message carries a
*batch*: the events of one wiki from one reader flush (up to 5,000), with the wiki as
the routing key. Measured through pika's BlockingConnection, one message per event ran
about 1.4k messages/s, while a hundred events per message ran about 100k events/s: a
confirm costs a round trip, and batching pays it once per batch. Keeping one wiki per
message keeps the routing key meaningful, so a user can bind an extra queue to the
wikis they care about.

The body (``BATCH_CONTENT_TYPE``): a first line holding the judged keys of every event,
as one JSON array of ``[meta.id, meta.dt in ms, wiki, type]``, then the events' JSON,
one per line, byte for byte as received (ELT: the loader stores them unchanged). The
keys line spares the loader a second parse of each event (``wiki_core.event``). A body
of plain NDJSON (``NDJSON_CONTENT_TYPE``, or no content type) is judged line by line.

Topology (declared idempotently at every connect):

- ``wiki.recentchange``: topic exchange, routing key = wiki (``enwiki``, ``wikidatawiki``);
- ``wiki.recentchange.loader``: the loader's durable queue, bound with ``#``; a quorum
  queue where the broker supports it, with a delivery limit, dead-lettering into...
- ``wiki.quarantine``: topic exchange and queue of the same name for what could not be
  used: the reader's rejects (routing key ``reader.<reason>``, the reason and detail in
  the ``x-reason`` header) and messages past the delivery limit. The loader consumes it
  into ``bronze.wiki_rejects``, where the direct hand-off writes rejects too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
import pika
import pika.exceptions

from .event import Reject, Valid, judge, keys_hold

EXCHANGE = "wiki.recentchange"
LOADER_QUEUE = "wiki.recentchange.loader"
QUARANTINE = "wiki.quarantine"
DELIVERY_LIMIT = 5
BATCH_CONTENT_TYPE = "application/vnd.wiki-events.batch"  # a keys line, then NDJSON
NDJSON_CONTENT_TYPE = "application/x-ndjson"


@dataclass
class Message:
    exchange: str
    routing_key: str
    body: bytes
    headers: dict[str, object] = field(default_factory=dict)
    events: int = 0
    content_type: str = BATCH_CONTENT_TYPE


@dataclass
class Batch:
    """What the reader hands its sink at each flush: judged events by routing key (the
    wiki), and what it rejected."""

    events: dict[str, list[Valid]] = field(default_factory=dict)
    rejects: list[Reject] = field(default_factory=list)

    def __len__(self) -> int:
        return sum(len(v) for v in self.events.values()) + len(self.rejects)


class Sink(Protocol):
    """Where the reader hands its batches: RabbitMQ (``reader.publisher.Publisher``), or,
    when no broker is reachable, bronze in the same process (``loader.direct``).
    ``publish`` returns only once the batch is safe; then the reader checkpoints."""

    def connect(self) -> None: ...
    def publish(self, batch: Batch) -> None: ...
    def tick(self) -> None: ...
    def close(self) -> None: ...


def encode_batch(events: list[Valid]) -> bytes:
    """A message body: the keys line, then each event's line (``BATCH_CONTENT_TYPE``)."""
    keys = orjson.dumps([[e.event_id, e.millis, e.wiki, e.type] for e in events])
    return b"\n".join([keys, *(e.raw for e in events), b""])


def _well_formed(key: object) -> bool:
    return type(key) is list and len(key) == 4 and keys_hold(*key)


def decode_batch(
    body: bytes, content_type: str | None, now_ms: int | None = None
) -> tuple[list[Valid], list[Reject], int]:
    """(valid events, rejects, canaries) of a message body. A batch's keys are taken as
    the reader judged them; a plain NDJSON body, or a batch whose keys line does not
    match its lines, is judged line by line."""
    if content_type == BATCH_CONTENT_TYPE:
        head, _, rest = body.partition(b"\n")
        lines = rest.split(b"\n")
        if lines and not lines[-1]:
            lines.pop()
        try:
            keys = orjson.loads(head)
        except orjson.JSONDecodeError:
            keys = None
        if isinstance(keys, list) and len(keys) == len(lines) and all(map(_well_formed, keys)):
            rows = [Valid(k[0], k[1], k[2], k[3], raw) for k, raw in zip(keys, lines, strict=True)]
            return rows, [], 0
        body = rest
    valid: list[Valid] = []
    rejects: list[Reject] = []
    canaries = 0
    for line in body.split(b"\n"):
        if not line.strip():
            continue
        verdict = judge(line, now_ms)
        if isinstance(verdict, Valid):
            valid.append(verdict)
        elif isinstance(verdict, Reject):
            rejects.append(verdict)
        else:
            canaries += 1
    return valid, rejects, canaries


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
            {
                "name": EXCHANGE,
                "type": "topic",
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            },
            {
                "name": QUARANTINE,
                "type": "topic",
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            },
        ],
        "queues": [
            {
                "name": QUARANTINE,
                "durable": True,
                "auto_delete": False,
                "arguments": quarantine_args,
            },
            {"name": LOADER_QUEUE, "durable": True, "auto_delete": False, "arguments": loader_args},
        ],
        "bindings": [
            {
                "source": QUARANTINE,
                "destination": QUARANTINE,
                "destination_type": "queue",
                "routing_key": "#",
                "arguments": {},
            },
            {
                "source": EXCHANGE,
                "destination": LOADER_QUEUE,
                "destination_type": "queue",
                "routing_key": "#",
                "arguments": {},
            },
        ],
    }


def declare_topology(
    channel: pika.adapters.blocking_connection.BlockingChannel, quorum: bool
) -> None:
    spec = topology(quorum)
    for exchange in spec["exchanges"]:
        channel.exchange_declare(exchange["name"], exchange_type=exchange["type"], durable=True)
    for queue in spec["queues"]:
        channel.queue_declare(queue["name"], durable=True, arguments=queue["arguments"])
    for binding in spec["bindings"]:
        channel.queue_bind(
            binding["destination"], binding["source"], routing_key=binding["routing_key"]
        )
