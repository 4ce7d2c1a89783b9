"""The reader's commands: ``wiki-events stream``, ``wiki-events replay`` and its
healthcheck ``wiki-events health reader``.

Registered on the ``wiki-events`` group (and its ``health`` group) in
``wiki_events/cli.py``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from wiki_core import metrics
from wiki_core.config import Settings
from wiki_core.health import Verdict

from . import status
from .checkpoint import FILE, path_in
from .emulator import Options as ReplayOptions
from .stream import Options as StreamOptions

checkpoint_option = click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"Checkpoint file [default: $WIKI_EVENTS_DATA/{FILE}].",
)


@click.command()
@click.option(
    "--since",
    default=None,
    help="Backfill from this time when there is no checkpoint: ISO time, epoch ms, "
    "or a duration such as 2h.",
)
@click.option("--reset", is_flag=True, help="Ignore the checkpoint (use with --since).")
@click.option("--wiki", "wikis", multiple=True, help="Keep only these wikis (repeatable).")
@click.option(
    "--type",
    "types",
    multiple=True,
    help="Keep only these event types: edit, new, log, categorize... (repeatable).",
)
@checkpoint_option
@click.option(
    "--idle-timeout",
    default=StreamOptions.idle_timeout,
    show_default=True,
    help="Seconds without a byte before the connection counts as dead.",
)
@click.option(
    "--max-line",
    default=StreamOptions.max_line,
    show_default=True,
    help="Bytes; a longer SSE line goes to the quarantine.",
)
@click.option(
    "--resume-overlap",
    default=StreamOptions.resume_overlap_ms,
    show_default=True,
    help="Milliseconds to re-read on resume, so events sharing the last event's timestamp "
    "are not skipped (see reader/stream.py: resume_id).",
)
@metrics.port_option
@metrics.host_option
def stream(
    metrics_port: int | None,
    metrics_host: str | None,
    since: str | None,
    reset: bool,
    wikis: tuple[str, ...],
    types: tuple[str, ...],
    checkpoint: Path | None,
    idle_timeout: float,
    max_line: int,
    resume_overlap: int,
) -> None:
    """The reader: EventStreams ($STREAM_URL) → RabbitMQ ($AMQP_URL)."""
    import signal

    from .checkpoint import Checkpoint
    from .publisher import Publisher, Stopped
    from .stream import FatalStreamError, Reader

    settings = Settings.from_env()
    # pika logs each failed connection with its traceback; the publisher says it in a line
    logging.getLogger("pika").setLevel(logging.CRITICAL)
    opts = StreamOptions(
        url=settings.stream_url,
        contact=settings.contact,
        since=since,
        reset=reset,
        wikis=frozenset(wikis),
        types=frozenset(types),
        idle_timeout=idle_timeout,
        max_line=max_line,
        resume_overlap_ms=resume_overlap,
    )
    reader = Reader(
        opts,
        # its retries end when the reader is asked to stop (SIGTERM with RabbitMQ down)
        Publisher(settings.amqp_url, stop=lambda: reader.stop_event.is_set()),
        Checkpoint(checkpoint or path_in(settings.data_dir)),
    )
    metrics.serve_for(
        metrics_port,
        metrics_host,
        (settings.metrics_port, settings.metrics_host),
        reader.stats.metrics,
    )
    signal.signal(signal.SIGTERM, lambda *_: reader.stop())
    signal.signal(signal.SIGINT, lambda *_: reader.stop())
    try:
        reader.run()
    except Stopped as exc:
        click.echo(f"wiki-events stream: {exc}", err=True)
    except (FatalStreamError, ValueError, RuntimeError) as exc:
        click.echo(f"wiki-events stream: {exc}", err=True)
        sys.exit(2)


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True)
@click.option(
    "--speed",
    default=ReplayOptions.speed,
    show_default=True,
    help="1 = real time by meta.dt, N = N times faster, 0 = as fast as possible.",
)
@click.option(
    "--rate", default=ReplayOptions.rate, help="A fixed rate in events/s (overrides --speed)."
)
@click.option(
    "--disconnect-every",
    default=ReplayOptions.disconnect_every,
    help="Close the stream after N events.",
)
@click.option(
    "--disconnect-seconds",
    default=ReplayOptions.disconnect_seconds,
    help="Close the stream after S seconds.",
)
@click.option(
    "--loop",
    is_flag=True,
    help="Replay the file forever, each pass with fresh ids and later times.",
)
def replay(
    file: Path,
    host: str,
    port: int,
    speed: float,
    rate: float,
    disconnect_every: int,
    disconnect_seconds: float,
    loop: bool,
) -> None:
    """The EventStreams emulator: replay a recorded NDJSON or SSE file over HTTP."""
    import uvicorn

    from .emulator import Emulator

    emulator = Emulator(
        file,
        ReplayOptions(
            speed=speed,
            rate=rate,
            disconnect_every=disconnect_every,
            disconnect_seconds=disconnect_seconds,
            loop=loop,
        ),
    )
    click.echo(
        f"replaying {file} ({len(emulator.log)} events) at "
        f"http://{host}:{port}/v2/stream/recentchange",
        err=True,
    )
    if emulator.warning:
        click.echo(f"warning: {emulator.warning}", err=True)
    uvicorn.run(
        emulator.app(), host=host, port=port, log_level="warning", timeout_graceful_shutdown=2
    )


@click.command("reader")
@checkpoint_option
@click.option(
    "--max-age", type=float, default=None, help="Seconds [default: $READER_STALE_SECONDS or 300]."
)
def health(checkpoint: Path | None, max_age: float | None) -> Verdict:
    """Healthy while the reader's checkpoint (its newest delivered event) is recent."""
    return status.health(Settings.from_env(), checkpoint, max_age)
