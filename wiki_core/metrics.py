"""A stage's Prometheus endpoint (``METRICS_PORT``), read from its counters when scraped.

The reader and the loader already count what they do (their ``Stats``); the endpoint
reads those counters at scrape time, so the hot path pays nothing per event. Each stage
says what its counters mean by a ``metrics()`` method returning metric families; this
module serves them with the process's own CPU, memory and file descriptors.

The endpoint has no authentication, so it listens where the operator says
(``METRICS_HOST`` / ``--metrics-host``: 127.0.0.1 unless set; compose sets 0.0.0.0 for
its network), and no client can hold it: at most ``SLOTS`` connections at once (one
more is closed at once), each cut after ``DEADLINE`` seconds however slowly it sends,
and no read waits longer than ``READ_TIMEOUT``.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import click
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

SLOTS = 8  # connections served at once (Prometheus needs one)
READ_TIMEOUT = 5.0  # seconds a read of the request may wait for the next bytes
DEADLINE = 10.0  # seconds a connection may last in all


class _Callback(Collector):
    def __init__(self, collect: Callable[[], Iterable[Metric]]) -> None:
        self._collect = collect

    def collect(self) -> Iterable[Metric]:
        return list(self._collect())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # the listen backlog: a burst waits to be refused, not dropped

    def __init__(
        self,
        address: tuple[str, int],
        registry: CollectorRegistry,
        read_timeout: float,
        deadline: float,
    ) -> None:
        self.registry = registry
        self.slots = threading.BoundedSemaphore(SLOTS)
        self.read_timeout, self.deadline = read_timeout, deadline
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):  # full: this one is closed, not queued
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client gone mid-answer, or cut at its deadline: not worth a traceback."""
        logging.getLogger("wiki_events").debug("metrics: a connection ended early", exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.read_timeout)  # a longer wait ends it
        self._cut = threading.Timer(self.server.deadline, self._hang_up)
        self._cut.daemon = True
        self._cut.start()

    def _hang_up(self) -> None:
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self._cut.cancel()

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.split("?")[0] not in ("/", "/metrics"):
            self.send_error(404)
            return
        body = generate_latest(self.server.registry)
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass  # a scrape every 15 s is not news


def serve(
    port: int,
    collect: Callable[[], Iterable[Metric]],
    host: str = "127.0.0.1",
    read_timeout: float = READ_TIMEOUT,
    deadline: float = DEADLINE,
) -> Any:
    """Serve ``collect()``'s families and the process's own on ``host:port`` /metrics, in
    a daemon thread; returns the server (``shutdown()`` stops it)."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    registry.register(_Callback(collect))
    server = _Server((host, port), registry, read_timeout, deadline)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


def counter(
    name: str, documentation: str, value: float | Mapping[str, float], label: str = "reason"
) -> CounterMetricFamily:
    """A counter (``name`` without ``_total``), or one per value of ``label``."""
    if isinstance(value, Mapping):
        family = CounterMetricFamily(name, documentation, labels=[label])
        for key, count in sorted(value.items()):
            family.add_metric([key], count)
        return family
    return CounterMetricFamily(name, documentation, value=value)


def gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


# the reader's and the loader's commands: where to serve their counters
port_option = click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve Prometheus metrics on this port [default: $METRICS_PORT; 0: none].",
)
host_option = click.option(
    "--metrics-host",
    default=None,
    help="The address the metrics listen on [default: $METRICS_HOST, else 127.0.0.1; "
    "0.0.0.0: every interface, no authentication].",
)


def serve_for(
    port: int | None,
    host: str | None,
    defaults: tuple[int, str],
    collect: Callable[[], Iterable[Metric]],
) -> None:
    """A stage command's endpoint, when a port is given (``--metrics-port``, else
    ``METRICS_PORT``), on ``--metrics-host`` (else ``METRICS_HOST``): ``defaults`` are
    the settings' (port, host). A port or address that cannot be is one line."""
    port = defaults[0] if port is None else port
    host = host or defaults[1]
    if not 0 <= port <= 65535:
        raise click.UsageError(f"METRICS_PORT={port} is not a port (0-65535; 0: none)")
    if port:
        try:
            serve(port, collect, host)
        except OSError as exc:
            raise click.ClickException(
                f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}"
            ) from exc
        logging.getLogger("wiki_events").info("Prometheus metrics on %s:%d/metrics", host, port)
