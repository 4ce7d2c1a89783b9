"""A long-running command stopped by SIGTERM once its log says it is waiting."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .paths import ROOT


@dataclass
class Ended:
    returncode: int
    seconds: float  # from SIGTERM to exit
    log: str


def sigterm_when(
    args: list[str], env: dict[str, str], log: Path, said: str, times: int = 1
) -> Ended:
    """Run ``wiki-events ARGS``; once its output holds ``said`` ``times`` times, send
    SIGTERM and time its exit (killed after 10 s)."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wiki_events", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while log.read_text().count(said) < times:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        returncode = proc.wait(10)
        return Ended(returncode, time.monotonic() - sent, log.read_text())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
