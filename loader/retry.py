"""An insert into ClickHouse retried until it lands: the consumer's and the direct
hand-off's writes to bronze."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from wiki_core.backoff import backoff

T = TypeVar("T")


def retry(
    action: Callable[[], T],
    *,
    what: Callable[[], str],
    log: logging.Logger,
    max_backoff: float,
    stop: Callable[[], bool],
    wait: Callable[[float], None] = time.sleep,
    on_failure: Callable[[Exception], None] = lambda exc: None,
    base: float = 1.0,
    reraise: tuple[type[Exception], ...] = (),
) -> T:
    """``action()`` until it succeeds, with backoff between attempts; once ``stop()`` is
    true, three more failures re-raise (so a stopping process does not hang forever on a
    ClickHouse that is gone). ``wait`` sleeps (the loader's keeps heartbeats flowing);
    the ``reraise`` exceptions are not retried here (the loader's lost broker connection,
    which its caller handles by reconnecting)."""
    attempt = 0
    while True:
        try:
            return action()
        except reraise:
            raise
        except Exception as exc:  # noqa: BLE001 - ClickHouse down or refusing: retry
            attempt += 1
            on_failure(exc)
            delay = backoff(attempt, max_backoff, base=base)
            reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            log.warning("%s failed (%s); retrying in %.1fs", what(), reason, delay)
            if stop() and attempt > 3:
                raise
            wait(delay)
