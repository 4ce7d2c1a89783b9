"""Runs the loader and kills it with SIGKILL right after its Nth insert, before the ack."""

import os
import signal
import sys

from loader.bronze import migrate
from loader.consumer import Loader, Options
from wiki_core.config import clickhouse_client

clickhouse_url, amqp_url, crash_after = sys.argv[1], sys.argv[2], int(sys.argv[3])
migrate(clickhouse_client(clickhouse_url))
loader = Loader(
    lambda: clickhouse_client(clickhouse_url),
    Options(amqp_url=amqp_url, prefetch=5, batch_events=5000, linger=0.3),
)
inserts = 0


def maybe_crash() -> None:
    global inserts
    inserts += 1
    if inserts == crash_after:
        os.kill(os.getpid(), signal.SIGKILL)


loader.after_insert = maybe_crash
loader.run()
