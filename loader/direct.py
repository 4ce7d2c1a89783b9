"""The direct hand-off: the reader's sink when there is no broker.

Each batch the reader flushes is written to bronze with the loader's own writer
(duplicates dropped, rejects kept in ``bronze.wiki_rejects``, as the loader keeps them
with RabbitMQ) before ``publish`` returns, so the reader's checkpoint still trails what
ClickHouse holds. The batch arrives judged (``wiki_core.event``): nothing is encoded
for a broker or parsed again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from wiki_core.topology import Batch

from .bronze import Bronze, Progress
from .retry import retry

log = logging.getLogger("loader.direct")


class DirectSink:
    def __init__(
        self,
        client_factory: Callable[[], Any],
        stop: Callable[[], bool],
        max_backoff: float = 30.0,
        wait: Callable[[float], None] = time.sleep,
    ) -> None:
        self._factory = client_factory
        self._stop = stop
        self._bronze: Bronze | None = None
        self._wait = wait
        self.max_backoff = max_backoff
        self.inserted = 0  # events new to bronze, for up's progress line

    def connect(self) -> None:
        pass

    def publish(self, batch: Batch) -> None:
        rows = [event for events in batch.events.values() for event in events]
        progress = Progress()  # a retry counts what an earlier attempt inserted once

        def write() -> tuple[int, int]:
            if self._bronze is None:
                self._bronze = Bronze(self._factory())
            return self._bronze.write(rows, batch.rejects, progress)

        def failed(exc: Exception) -> None:
            self._bronze = None  # ClickHouse down: a new client at the next attempt

        inserted, _ = retry(
            write,
            what=lambda: f"insert of {len(rows)} events",
            log=log,
            max_backoff=self.max_backoff,
            stop=self._stop,
            wait=self._wait,
            on_failure=failed,
        )
        self.inserted += inserted

    def tick(self) -> None:
        pass

    def close(self) -> None:
        pass
