"""The real broker: its admin tool, and publishing straight into the loader's queue."""

from __future__ import annotations

import subprocess

import pika

from wiki_core.topology import EXCHANGE, declare_topology


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=120)


def publish(amqp_url: str, lines: list[str], per_message: int = 1000) -> None:
    """``lines`` as plain NDJSON messages of ``per_message`` lines each, confirmed."""
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = conn.channel()
    declare_topology(channel, quorum=True)
    channel.confirm_delivery()
    for start in range(0, len(lines), per_message):
        body = ("\n".join(lines[start : start + per_message]) + "\n").encode()
        channel.basic_publish(
            EXCHANGE, "enwiki", body, pika.BasicProperties(delivery_mode=2, headers={"events": 0})
        )
    conn.close()
