"""The reader's position: the last ``Last-Event-ID`` whose events RabbitMQ confirmed.

Written atomically (a temporary file, fsync, rename, fsync of the folder), so a crash
leaves either the old position or the new one, never a torn file. The reader saves it
after every batch the broker (or bronze) took, so its age is the age of the newest
delivery. This module is the file's one reader and writer: ``status`` and ``health``
ask it too.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

FILE = "reader.checkpoint.json"  # in the data folder ($WIKI_EVENTS_DATA)


def path_in(data_dir: Path) -> Path:
    """Where the reader keeps its checkpoint in the data folder."""
    return data_dir / FILE


class Checkpoint:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def age(self, now: float | None = None) -> float | None:
        """Seconds since the checkpoint was last saved; None when there is none yet."""
        try:
            saved = self.path.stat().st_mtime
        except FileNotFoundError:
            return None
        return (time.time() if now is None else now) - saved

    def load(self) -> str | None:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise ValueError(f"checkpoint {self.path} is not valid JSON: {exc}") from None
        value = data.get("last_event_id")
        return str(value) if value else None

    def save(self, last_event_id: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        body = json.dumps({"last_event_id": last_event_id})
        with open(tmp, "w") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
