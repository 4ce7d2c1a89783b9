"""Events from the recordings, as many as a test or a benchmark needs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reader.emulator import Log, load

from .paths import RAW


def looped_events(count: int) -> list[str]:
    """The recorded real events, looped with fresh ids and shifted times."""
    log = Log(load(RAW), loop=True)
    return [log.get(offset).data.decode() for offset in range(count)]  # type: ignore[union-attr]


def events_of(path: Path) -> list[dict[str, Any]]:
    """The events of an NDJSON recording, parsed."""
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
