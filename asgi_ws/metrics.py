"""``GET /metrics``: what the process is doing, in the Prometheus text format (contract §2).

Every metric is made with ``prometheus_client`` in a registry of the app's own,
so two apps in one process (tests, embedders) never share numbers.  The names:

========================================  =======  ==========================  =======================================
metric                                    type     labels                      what it counts
========================================  =======  ==========================  =======================================
``asgi_ws_connections``                   gauge    endpoint                    open WebSocket connections
``asgi_ws_messages_received_total``       counter  endpoint                    messages from clients
``asgi_ws_messages_sent_total``           counter  endpoint                    messages to clients
``asgi_ws_received_bytes_total``          counter  endpoint                    payload bytes from clients (UTF-8 text)
``asgi_ws_sent_bytes_total``              counter  endpoint                    payload bytes to clients (UTF-8 text)
``asgi_ws_closes_total``                  counter  endpoint, code, by, reason  ended connections: code, app or client
``asgi_ws_rejections_total``              counter  endpoint, reason            handshakes refused before accept
``asgi_ws_slow_consumer_drops_total``     counter  endpoint                    clients closed 4503 for a full outbox
``asgi_ws_broker_connected``              gauge    kind                        1 while the broker reaches the others
``asgi_ws_broker_reconnects_total``       counter  kind                        broker reconnects after an outage
``asgi_ws_broker_dropped_total``          counter  kind                        messages for other processes lost
``asgi_ws_event_loop_tasks``              gauge                                all live tasks of the event loop
``asgi_ws_app_tasks``                     gauge                                live tasks the app started (leak check)
``asgi_ws_pushes_waiting``                gauge                                /stream requests queued behind a push
``asgi_ws_feed_replays_total``            counter                              feed resumes served (recovered: true)
``asgi_ws_feed_replayed_total``           counter                              messages sent by those resumes
``asgi_ws_feed_recoveries_failed_total``  counter  reason                      resumes refused: epoch, trimmed, ...
``asgi_ws_feed_gaps_filled_total``        counter                              feed messages fetched to fill a gap
``asgi_ws_feed_duplicates_total``         counter                              publishes with an id seen before: acked
``asgi_ws_presence_members``              gauge                                room members here, once per subject
``process_*``                             various                              prometheus_client's: RSS, open fds, CPU
``python_gc_*``                           counter  generation                  prometheus_client's: garbage collections
========================================  =======  ==========================  =======================================

``endpoint`` is the endpoint's name (``ws``, ``echo``, ``ws_json``,
``ws_broadcast``, ``chat``, ``stream``), or ``unknown`` for a refused path:
never the raw path, whose room names and query strings would make the label
set grow without bound.  For the same reason a close's ``reason`` label is the
app's own reason, as a name (``rate_limited``, ``too_many_requests``,
``normal`` for 1000), and ``none`` when the client closed: the client's reason
is free text.  A close's ``code`` is the code for those RFC 6455 defines and the
app's own, and ``3xxx``, ``4xxx`` or ``other`` for any other code a client sends
(:func:`asgi_ws.close_codes.code_label`), so that no client can add a series per code.

The four traffic counters (messages and bytes, each way) cost the hot path one
integer addition each: every connection counts in plain attributes of its
:class:`ConnectionMetrics`, and the totals are summed when the page is scraped,
from the connections still open plus what ended connections left behind.  A
``prometheus_client`` ``Counter.inc`` takes a lock and checks its labels on
every call, which was a third of the app's own cost per echoed message
(``bench/RESULTS.md``, P2).  The broker's figures are read from the broker at
scrape time too.

Several worker processes: each process has its own numbers, and a scrape is
answered by whichever worker the kernel hands the connection to.  Scrape each
worker on a port of its own (``asgi-ws serve`` once per port) to see them all;
``asgi_ws_broker_*`` carries no process label, so sum per instance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, GCCollector, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .close_codes import code_label
from .runtime import app_task_count, task_count

__all__ = ["CONTENT_TYPE", "ConnectionMetrics", "Metrics"]

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"  # the Prometheus text format


class Metrics:
    """The app's metrics, in a registry of its own."""

    def __init__(
        self, broker_state: Callable[[], dict[str, Any]], presence_members: Callable[[], int] = lambda: 0
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        per_endpoint = ["endpoint"]
        self.connections = Gauge(
            "asgi_ws_connections", "Open WebSocket connections.", per_endpoint, registry=self.registry
        )
        self.traffic = _TrafficCollector()
        self.registry.register(self.traffic)
        self.closes = Counter(
            "asgi_ws_closes",
            "Connections ended, by close code, by who closed (app, or client: code from its disconnect), "
            "and by the app's close reason (none when the client closed).",
            ["endpoint", "code", "by", "reason"],
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
        self.feed_replays = Counter(
            "asgi_ws_feed_replays",
            "Feed resumes served: the client got everything after its offset.",
            registry=self.registry,
        )
        self.feed_replayed = Counter(
            "asgi_ws_feed_replayed", "Feed messages sent by resumes, before the live ones.", registry=self.registry
        )
        self.feed_failed = Counter(
            "asgi_ws_feed_recoveries_failed",
            "Feed resumes answered recovered false: another epoch, messages trimmed, or history unavailable.",
            ["reason"],
            registry=self.registry,
        )
        self.feed_filled = 0  # feed messages a session fetched from the history (the broker counts its own)
        self.registry.register(_BrokerCollector(broker_state, self))
        Gauge(
            "asgi_ws_event_loop_tasks", "Live tasks of the event loop serving the app.", registry=self.registry
        ).set_function(task_count)
        Gauge(
            "asgi_ws_app_tasks", "Live tasks the app started (0 when idle, memory broker).", registry=self.registry
        ).set_function(app_task_count)
        Gauge(
            "asgi_ws_presence_members",
            "Members of the chat and feed rooms of this process: a subject in two rooms counts twice.",
            registry=self.registry,
        ).set_function(presence_members)
        ProcessCollector(registry=self.registry)  # process_resident_memory_bytes, process_open_fds, ...
        GCCollector(registry=self.registry)  # python_gc_collections_total{generation}, ...

    def connection(self, endpoint: str) -> ConnectionMetrics:
        """The counters of one accepted connection."""
        return ConnectionMetrics(self, endpoint)

    def rejected(self, endpoint: str, reason: str) -> None:
        self.rejections.labels(endpoint, reason).inc()

    def render(self) -> bytes:
        """The scrape page."""
        return generate_latest(self.registry)


class ConnectionMetrics:
    """One connection's counters.  The hot path adds to the four public attributes, nothing more."""

    __slots__ = ("_metrics", "bytes_in", "bytes_out", "endpoint", "messages_in", "messages_out", "pushes_waiting")

    def __init__(self, metrics: Metrics, endpoint: str) -> None:
        self._metrics = metrics
        self.endpoint = endpoint  # the label value
        self.messages_in = 0  # messages from the client
        self.messages_out = 0  # messages to the client
        self.bytes_in = 0  # their payload bytes (text as UTF-8)
        self.bytes_out = 0
        self.pushes_waiting = 0  # /stream requests queued behind the running push, now

    def opened(self) -> None:
        self._metrics.connections.labels(self.endpoint).inc()
        self._metrics.traffic.open.add(self)

    def closed(self, code: int | None, by: str, reason: str) -> None:
        """The connection ended with ``code`` (None: the client vanished without one) and ``reason`` (a label)."""
        self._metrics.connections.labels(self.endpoint).dec()
        self._metrics.closes.labels(self.endpoint, code_label(code), by, reason).inc()
        self._metrics.traffic.retire(self)

    def slow_consumer(self) -> None:
        self._metrics.slow_consumer_drops.labels(self.endpoint).inc()

    def resumed(self, failure: str | None, replayed: int) -> None:
        """A feed resume: served with ``replayed`` messages, or refused for ``failure``."""
        if failure is None:
            self._metrics.feed_replays.inc()
            self._metrics.feed_replayed.inc(replayed)
        else:
            self._metrics.feed_failed.labels(failure).inc()

    def filled(self, count: int) -> None:
        """``count`` feed messages fetched from the history to close a gap before a live one."""
        self._metrics.feed_filled += count


# (metric name, help, ConnectionMetrics attribute)
_TRAFFIC = (
    ("asgi_ws_messages_received", "Messages received from clients.", "messages_in"),
    ("asgi_ws_messages_sent", "Messages sent to clients.", "messages_out"),
    ("asgi_ws_received_bytes", "Payload bytes received (text as UTF-8).", "bytes_in"),
    ("asgi_ws_sent_bytes", "Payload bytes sent (text as UTF-8).", "bytes_out"),
)


class _TrafficCollector(Collector):
    """The traffic counters, summed per endpoint at scrape time, and the pushes waiting now."""

    def __init__(self) -> None:
        self.open: set[ConnectionMetrics] = set()  # connections whose counts are still moving
        self._ended: dict[str, list[int]] = {}  # endpoint -> totals of ended connections, in _TRAFFIC order

    def retire(self, connection: ConnectionMetrics) -> None:
        """Fold an ended connection's counts into the totals and stop tracking it."""
        self.open.discard(connection)
        _add_counts(self._ended, connection)

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        # Only open connections have pushes waiting: an ended one leaves none behind.
        waiting = GaugeMetricFamily("asgi_ws_pushes_waiting", "/stream requests queued behind a running push.")
        waiting.add_metric([], float(sum(connection.pushes_waiting for connection in list(self.open))))
        yield waiting
        totals = {endpoint: list(values) for endpoint, values in self._ended.items()}
        for connection in list(self.open):
            _add_counts(totals, connection)
        for index, (name, documentation, _) in enumerate(_TRAFFIC):
            family = CounterMetricFamily(name, documentation, labels=["endpoint"])
            for endpoint, row in sorted(totals.items()):
                family.add_metric([endpoint], float(row[index]))
            yield family


def _add_counts(totals: dict[str, list[int]], connection: ConnectionMetrics) -> None:
    """Add ``connection``'s four counts to its endpoint's row of ``totals``, in _TRAFFIC order."""
    row = totals.setdefault(connection.endpoint, [0] * len(_TRAFFIC))
    for index, (_, _, attribute) in enumerate(_TRAFFIC):
        row[index] += getattr(connection, attribute)


class _BrokerCollector(Collector):
    """The broker's own counters, read at scrape time rather than mirrored on every change."""

    def __init__(self, broker_state: Callable[[], dict[str, Any]], metrics: Metrics) -> None:
        self._broker_state = broker_state
        self._metrics = metrics

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
        filled = CounterMetricFamily(
            "asgi_ws_feed_gaps_filled",
            "Feed messages fetched from the history to fill a gap before a later message was delivered.",
        )
        filled.add_metric([], float(state.get("feed_filled", 0) + self._metrics.feed_filled))
        duplicates = CounterMetricFamily(
            "asgi_ws_feed_duplicates",
            "Feed publishes whose id was seen within the dedupe window: acked again, not numbered again.",
        )
        duplicates.add_metric([], float(state.get("feed_duplicates", 0)))
        yield from (connected, reconnects, dropped, filled, duplicates)
