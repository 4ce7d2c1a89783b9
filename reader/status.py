"""The reader's face in ``wiki-events status`` and ``wiki-events health reader``: how old
its checkpoint is (``checkpoint.py`` saves it after every batch the broker took, so its
age is the age of the newest delivery).

A stale checkpoint while RabbitMQ does not answer is not the reader's own failure: a
restart cannot help, so the verdict is healthy and says what is down (the watchdog
alerts on RabbitMQ itself).
"""

from __future__ import annotations

from pathlib import Path

from wiki_core.config import Settings, environment, number
from wiki_core.health import Line, Verdict, rabbitmq_answers, unreachable, waiting_for
from wiki_core.timefmt import age_text

from .checkpoint import Checkpoint, path_in


def stale_seconds(env: dict[str, str] | None = None) -> float:
    """``READER_STALE_SECONDS``: how old the checkpoint may grow before the reader counts
    as stuck (300)."""
    return number(environment() if env is None else env, "READER_STALE_SECONDS", 300)


def lines(settings: Settings) -> list[Line]:
    """The ``reader`` line: the checkpoint's age and where the reader resumes."""
    checkpoint = Checkpoint(path_in(settings.data_dir))
    age = checkpoint.age()
    if age is None:
        text = f"no checkpoint yet ({checkpoint.path}): the reader has not run here"
        return [Line("reader", "info", text)]
    try:
        last = checkpoint.load() or ""
    except ValueError:
        return [Line("reader", "error", f"checkpoint {checkpoint.path} is not valid JSON")]
    return [
        Line(
            "reader",
            "ok" if age < 60 else "warn",
            f"checkpoint saved {age_text(age)} ago; resumes after {last[:90]}",
        )
    ]


def verdict(checkpoint: Path, max_age: float, now: float | None = None) -> Verdict:
    """Healthy while the checkpoint is younger than ``max_age`` seconds."""
    age = Checkpoint(checkpoint).age(now)
    if age is None:
        return Verdict(False, f"no checkpoint at {checkpoint} yet: nothing delivered")
    if age > max_age:
        return Verdict(False, f"checkpoint is {age:.0f}s old (limit {max_age:.0f}s): stuck")
    return Verdict(True, f"checkpoint {age:.0f}s old")


def health(
    settings: Settings, checkpoint: Path | None = None, max_age: float | None = None
) -> Verdict:
    """The reader's verdict (``checkpoint``: its file, else the data folder's); stale
    because RabbitMQ is down counts as healthy, with the reason."""
    found = verdict(checkpoint or path_in(settings.data_dir), max_age or stale_seconds())
    if not found.healthy:
        try:
            rabbitmq_answers(settings.amqp_url)
        except Exception as exc:  # noqa: BLE001 - any failure to reach it is said
            if unreachable(exc):
                down = waiting_for("RabbitMQ", settings.amqp_url, exc, "the reader")
                return Verdict(True, f"{found.reason}, but {down.reason}")
    return found
