"""A stage's Prometheus endpoint (``METRICS_PORT``), read from its counters when scraped.

The reader and the loader already count what they do (their ``Stats``); the endpoint
reads those counters at scrape time, so the hot path pays nothing per event. Each stage
says what its counters mean by a ``metrics()`` method returning metric families; this
module serves them with the process's own CPU, memory and file descriptors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class _Callback(Collector):
    def __init__(self, collect: Callable[[], Iterable[Metric]]) -> None:
        self._collect = collect

    def collect(self) -> Iterable[Metric]:
        return list(self._collect())


def serve(port: int, collect: Callable[[], Iterable[Metric]], host: str = "0.0.0.0") -> Any:
    """Serve ``collect()``'s families and the process's own on ``host:port`` /metrics, in
    a daemon thread; returns the server (``shutdown()`` stops it)."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    registry.register(_Callback(collect))
    server, _thread = start_http_server(port, addr=host, registry=registry)
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
