"""``GET /metrics``: what the process is doing, in the Prometheus text format (SPEC §2).

Every metric is made with ``prometheus_client`` in a registry of the app's own,
so two apps in one process (tests, embedders) never share numbers.  The names:

=====================================  =======  ==========================  ============================================
metric                                 type     labels                      what it counts
=====================================  =======  ==========================  ============================================
``asgi_ws_connections``                gauge    endpoint                    open WebSocket connections
``asgi_ws_messages_received_total``    counter  endpoint                    messages from clients
``asgi_ws_messages_sent_total``        counter  endpoint                    messages to clients
``asgi_ws_received_bytes_total``       counter  endpoint                    payload bytes from clients (text as UTF-8)
``asgi_ws_sent_bytes_total``           counter  endpoint                    payload bytes to clients (text as UTF-8)
``asgi_ws_closes_total``               counter  endpoint, code, by          ended connections: close code, app or client
``asgi_ws_rejections_total``           counter  endpoint, reason            handshakes refused before accept
``asgi_ws_slow_consumer_drops_total``  counter  endpoint                    clients closed 4503 for a full outbox
``asgi_ws_broker_connected``           gauge    kind                        1 while the broker reaches other processes
``asgi_ws_broker_reconnects_total``    counter  kind                        broker reconnects after an outage
``asgi_ws_broker_dropped_total``       counter  kind                        messages for other processes lost
``asgi_ws_event_loop_tasks``           gauge                                all live tasks of the event loop
``asgi_ws_app_tasks``                  gauge                                live tasks running asgi_ws code (leak check)
``process_*``                          various                              prometheus_client's: RSS, open fds, CPU
=====================================  =======  ==========================  ============================================

``endpoint`` is the endpoint's name (``ws``, ``echo``, ``ws_json``,
``ws_broadcast``, ``chat``, ``stream``), or ``unknown`` for a refused path:
never the raw path, whose room names and query strings would make the label
set grow without bound.

The hot path pays for labels once per connection: :meth:`Metrics.connection`
resolves a connection's label children when it is accepted.  The broker's
figures are read from the broker when the page is scraped.

Several worker processes: each process has its own numbers, and a scrape is
answered by whichever worker the kernel hands the connection to.  Scrape each
worker on a port of its own (``asgi-ws serve`` once per port) to see them all;
``asgi_ws_broker_*`` carries no process label, so sum per instance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .runtime import app_task_count, task_count

__all__ = ["CONTENT_TYPE", "ConnectionMetrics", "Metrics"]

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"  # the Prometheus text format


class Metrics:
    """The app's metrics, in a registry of its own."""

    def __init__(self, broker_state: Callable[[], dict[str, Any]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        per_endpoint = ["endpoint"]
        self.connections = Gauge(
            "asgi_ws_connections", "Open WebSocket connections.", per_endpoint, registry=self.registry
        )
        self.messages_received = Counter(
            "asgi_ws_messages_received", "Messages received from clients.", per_endpoint, registry=self.registry
        )
        self.messages_sent = Counter(
            "asgi_ws_messages_sent", "Messages sent to clients.", per_endpoint, registry=self.registry
        )
        self.bytes_received = Counter(
            "asgi_ws_received_bytes", "Payload bytes received (text as UTF-8).", per_endpoint, registry=self.registry
        )
        self.bytes_sent = Counter(
            "asgi_ws_sent_bytes", "Payload bytes sent (text as UTF-8).", per_endpoint, registry=self.registry
        )
        self.closes = Counter(
            "asgi_ws_closes",
            "Connections ended, by close code and by who closed: app, or client (code from its disconnect).",
            ["endpoint", "code", "by"],
            registry=self.registry,
        )
        self.rejections = Counter(
            "asgi_ws_rejections",
            "WebSocket handshakes refused before accept, by reason.",
            ["endpoint", "reason"],
            registry=self.registry,
        )
        self.slow_consumer_drops = Counter(
            "asgi_ws_slow_consumer_drops",
            "Clients closed with 4503 because their outbox was full.",
            per_endpoint,
            registry=self.registry,
        )
        self.registry.register(_BrokerCollector(broker_state))
        Gauge(
            "asgi_ws_event_loop_tasks", "Live tasks of the event loop serving the app.", registry=self.registry
        ).set_function(task_count)
        Gauge(
            "asgi_ws_app_tasks", "Live tasks running asgi_ws code (0 when idle, memory broker).", registry=self.registry
        ).set_function(app_task_count)
        ProcessCollector(registry=self.registry)  # process_resident_memory_bytes, process_open_fds, ...

    def connection(self, endpoint: str) -> ConnectionMetrics:
        """The counters of one accepted connection, labels resolved once."""
        return ConnectionMetrics(self, endpoint)

    def rejected(self, endpoint: str, reason: str) -> None:
        self.rejections.labels(endpoint, reason).inc()

    def render(self) -> bytes:
        """The scrape page."""
        return generate_latest(self.registry)


class ConnectionMetrics:
    """One connection's view of :class:`Metrics`: bound label children, so the hot path is one ``inc``."""

    __slots__ = ("_closes", "_endpoint", "_metrics", "bytes_in", "bytes_out", "messages_in", "messages_out")

    def __init__(self, metrics: Metrics, endpoint: str) -> None:
        self._metrics = metrics
        self._endpoint = endpoint
        self.messages_in = metrics.messages_received.labels(endpoint)
        self.messages_out = metrics.messages_sent.labels(endpoint)
        self.bytes_in = metrics.bytes_received.labels(endpoint)
        self.bytes_out = metrics.bytes_sent.labels(endpoint)
        self._closes = metrics.closes

    def opened(self) -> None:
        self._metrics.connections.labels(self._endpoint).inc()

    def closed(self, code: int | None, by: str) -> None:
        """The connection ended with ``code`` (None: the client vanished without one)."""
        self._metrics.connections.labels(self._endpoint).dec()
        self._closes.labels(self._endpoint, "none" if code is None else str(code), by).inc()

    def slow_consumer(self) -> None:
        self._metrics.slow_consumer_drops.labels(self._endpoint).inc()


class _BrokerCollector(Collector):
    """The broker's own counters, read at scrape time rather than mirrored on every change."""

    def __init__(self, broker_state: Callable[[], dict[str, Any]]) -> None:
        self._broker_state = broker_state

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        state = self._broker_state()
        kind = str(state["kind"])
        connected = GaugeMetricFamily(
            "asgi_ws_broker_connected", "1 while the broker reaches the other processes.", labels=["kind"]
        )
        connected.add_metric([kind], 1.0 if state["connected"] else 0.0)
        reconnects = CounterMetricFamily(
            "asgi_ws_broker_reconnects", "Broker reconnects after losing its backend.", labels=["kind"]
        )
        reconnects.add_metric([kind], float(state.get("reconnects", 0)))
        dropped = CounterMetricFamily(
            "asgi_ws_broker_dropped", "Messages for other processes that were lost.", labels=["kind"]
        )
        dropped.add_metric([kind], float(state.get("dropped", 0)))
        yield from (connected, reconnects, dropped)
