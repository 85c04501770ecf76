"""Counters for /metrics, exported in the Prometheus format by `prometheus_client`.

The hot path bumps plain integer attributes (no locks, no labels per message: the event loop
is single-threaded, and a metrics library's counters would cost more than the work they
measure). A custom collector reads them, and the gauges, only when /metrics is scraped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

COUNTERS: dict[str, str] = {
    "messages_in": "Websocket messages received.",
    "messages_out": "Websocket messages written to peers.",
    "bytes_in": "Websocket bytes received.",
    "bytes_out": "Websocket payload bytes written to peers.",
    "connections_accepted": "Websocket connections accepted.",
    "rejected": "Websocket connections refused (token, room name).",
    "slow_closed": "Connections closed because their send buffer overflowed.",
    "bad_input": "Connections closed for protocol violations (malformed, text or oversized frames).",
    "policy_closed": "Connections closed for crossing a bound (awareness size or ids, request or message rate).",
    "lapsed_closed": "Connections closed because their link was revoked or expired.",
    "rooms_loaded": "Rooms loaded from the store.",
    "rooms_unloaded": "Rooms unloaded after their grace period.",
    "cross_origin_refused": "Browser requests and websocket upgrades refused for their Origin or Host (server.edge).",
    "strokes_encoded": "Strokes validated and encoded for HTTP reads (once per stroke change, never per request: server.encoded).",
    "http_reads_cut": "HTTP answers cut because their client took nothing for --http-write-timeout-s (server.reads).",
    "chat_lines_refused": "Chat lines removed before anybody saw them: past their link's chat rate (server.chat).",
    "chat_lines_trimmed": "Chat lines moved out of rooms' documents into the store, or cleared (server.chat).",
    "widgets_refused": "Widgets removed before anybody saw them: past their room's bound (count, --widget-doc-bytes) or not a plain "
                       "JSON object (server.widgets).",
}

Gauges = Callable[[], dict[str, tuple[float, str]]]
"""Read at scrape time: gauge name -> (value, help)."""


class Metrics:
    """The server's counters: bump them with `metrics.messages_in += 1`."""

    __slots__ = tuple(COUNTERS)
    messages_in: int
    messages_out: int
    bytes_in: int
    bytes_out: int
    connections_accepted: int
    rejected: int
    slow_closed: int
    bad_input: int
    policy_closed: int
    lapsed_closed: int
    rooms_loaded: int
    rooms_unloaded: int
    cross_origin_refused: int
    strokes_encoded: int
    http_reads_cut: int
    chat_lines_refused: int
    chat_lines_trimmed: int
    widgets_refused: int

    def __init__(self) -> None:
        for name in COUNTERS:
            setattr(self, name, 0)


assert set(Metrics.__annotations__) == set(COUNTERS), "every counter is declared (for the type checker) and described"


class _Collector(Collector):
    def __init__(self, metrics: Metrics, gauges: list[Gauges]) -> None:
        self.metrics = metrics
        self.gauges = gauges

    def collect(self) -> Iterator[Metric]:
        for name, help_ in COUNTERS.items():
            yield CounterMetricFamily(f"inhabit_{name}", help_, value=getattr(self.metrics, name))
        for source in self.gauges:
            for name, (value, help_) in source().items():
                if name.endswith("_total"):
                    yield CounterMetricFamily(f"inhabit_{name}", help_, value=value)
                else:
                    yield GaugeMetricFamily(f"inhabit_{name}", help_, value=value)


class Exporter:
    """One registry per app (never the process-global one, so two apps never mix)."""

    def __init__(self, metrics: Metrics, *gauges: Gauges) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(metrics, list(gauges)))

    def render(self) -> bytes:
        return generate_latest(self.registry)
