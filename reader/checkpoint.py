"""The reader's position: the last ``Last-Event-ID`` whose events RabbitMQ confirmed.

Written atomically (a temporary file, fsync, rename, fsync of the folder), so a crash
leaves either the old position or the new one, never a torn file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


class Checkpoint:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

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
