"""One WebSocket connection, from handshake to close: the ASGI I/O (SPEC §1, §3).

Theory of operation
-------------------
:func:`handle_websocket` is called once per ``websocket`` scope.

1. It waits for ``websocket.connect`` and decides, before accepting, whether
   the handshake is allowed: the route (404, or 400 for a bad room or count),
   the ``Origin`` (403) and the connection cap (503).  A refusal is sent with
   the ``websocket.http.response`` extension where the server advertises it,
   and as ``websocket.close`` before accept otherwise, which the server turns
   into a 403.
2. It accepts, and a :class:`Session` runs the connection inside one anyio
   cancel scope:

   - the **receive loop**, which reads every event, applies the size and rate
     policies, and answers as the endpoint says (:mod:`asgi_ws.messages`).  On
     the echo endpoints (``/ws``, ``/echo``, ``/ws_json``) it is all there is:
     one task, the one the server called the app in;
   - the **sender**, on ``/ws_broadcast`` and chat only, a second task in a
     task group, which drains the connection's
     :class:`~asgi_ws.outbox.Outbox` of broadcasts;
   - one **push** per ``/stream`` request, also in the task group, run one
     after another in order.

   On every endpoint exactly one of these sends data frames: the receive loop
   on the echo endpoints, the sender on the fan-out endpoints, the push on
   ``/stream``.  So no two tasks ever call ``send`` at once.  The idle timeout
   is the cancel scope's deadline, moved on as messages pass
   (:meth:`Session._active`): an idle connection costs a timer, not a task.
3. Whatever ends the connection (a policy, the idle deadline, a full outbox
   seen by another connection's broadcast, a failed send, the client's
   disconnect) records *why* in one place and cancels the scope.  The only
   ``websocket.close`` is sent after everything in it has stopped, unless the
   client is already gone.  A slow consumer's close may wait longer than the
   others for the server to take it, since it queues behind the backlog the
   client stopped reading (``SLOW_CONSUMER_CLOSE_TIMEOUT``).  The connection
   then stops counting against the cap, and the app reads on until the server
   reports the disconnect, briefly.

Portability (SPEC §3, last bullet): ``text`` and ``bytes`` are read with
``.get(...) is not None``; ``receive()`` is never called after
``websocket.disconnect``; every ``send()`` may raise once the client is gone,
and how it raises differs by server, so any exception from ``send()`` means
"gone"; ``websocket.close`` is always sent before returning after accept;
nothing required travels in accept headers.

anyio rather than asyncio, so that the same code runs under hypercorn's trio
worker.  The cost of that choice is measured in ``docs/concurrency.md``.
"""

from __future__ import annotations

import logging
import math
from time import monotonic
from typing import TYPE_CHECKING

import anyio
import anyio.abc
import anyio.lowlevel

from . import close_codes
from .close_codes import Close
from .hub import BROADCAST, Hub, Topic, chat_room
from .logs import log_event
from .messages import broadcast_text, json_reply, stream_payloads, ws_reply
from .outbox import Outbox
from .policy import TokenBucket, check_message, header, message_size, origin_allowed
from .routing import Endpoint, Route, endpoint_label, resolve

if TYPE_CHECKING:
    from asgiref.typing import (
        ASGIReceiveCallable,
        ASGISendCallable,
        ASGISendEvent,
        WebSocketCloseEvent,
        WebSocketScope,
        WebSocketSendEvent,
    )

    from .close_codes import Rejection
    from .metrics import ConnectionMetrics, Metrics
    from .settings import Settings

__all__ = ["Session", "handle_websocket"]

logger = logging.getLogger(__name__)

# How long the app waits on either side of its close: for the server to take the
# close frame, and for the server to report the disconnect after it.  Then the
# server is left to drop the socket.
CLOSE_TIMEOUT = 5.0

# How long a slow consumer's close frame may take to be handed to the server.
# That frame queues behind everything the server has already taken for the
# client: megabytes, since the kernel's send buffer grows to 4 MiB on Linux
# (net.ipv4.tcp_wmem).  Some servers take the frame only once the client has
# read a good part of that: uvicorn 0.54.0's WebSocketsSansIOProtocol.send
# (websockets_sansio_impl.py) and WSProtocol.send (wsproto_impl.py) await
# ``writable``, set by the transport's resume_writing, before writing anything,
# the close frame included (flow control added by Kludex/uvicorn#3048, merged).
# Measured with a client that read again 7 s after it was closed: under the 5 s
# of CLOSE_TIMEOUT the app gave up and returned, and under uvicorn the client
# read 2.9 MB and then the end of TCP with no close frame; hypercorn 0.18.0's
# asyncio workers and granian 2.8.9 ended it without the frame too (observed).
# With 30 s every server that applies backpressure delivered it (scenario
# ``slow-consumer-late-reader``).  30 s lets a client
# read a full 4 MiB at about 1 Mbit/s.  A client that never reads again is
# still let go, 30 s after its close, and meanwhile holds no more than before:
# it has left its topic, and its outbox is bounded.
SLOW_CONSUMER_CLOSE_TIMEOUT = 30.0

# A /stream push yields to the event loop this often.  A server's send() may
# complete without suspending while the socket buffer has room, and a push of a
# million messages that never yields would freeze every other connection.  256
# messages are about 1.5 ms of sending under uvicorn on one core; yielding more
# often costs throughput, because every yield lets the server flush a smaller
# batch to the socket (bench/RESULTS.md, P3: 64 gave 0.81x the raw floor).
STREAM_YIELD_EVERY = 256

# Endpoints that answer binary frames; all others close with 4400 (SPEC §1).
BINARY_ENDPOINTS = frozenset({Endpoint.WS, Endpoint.ECHO})

# Endpoints whose connections join a topic and are sent broadcasts (SPEC §4).
FAN_OUT_ENDPOINTS = frozenset({Endpoint.WS_BROADCAST, Endpoint.CHAT})

# How late the idle close may come, as a fraction of idle_timeout: 1/16 (see Session._active).
IDLE_SLACK = 16


def text_event(text: str) -> WebSocketSendEvent:
    return {"type": "websocket.send", "bytes": None, "text": text}


def bytes_event(data: bytes) -> WebSocketSendEvent:
    return {"type": "websocket.send", "bytes": data, "text": None}


async def handle_websocket(
    scope: WebSocketScope,
    receive: ASGIReceiveCallable,
    send: ASGISendCallable,
    settings: Settings,
    hub: Hub,
    metrics: Metrics,
) -> None:
    """Run one ``websocket`` scope to its end.  Never raises."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return  # the client left before the handshake reached the app
    try:
        decision = check_handshake(scope, settings)
    except Exception:
        logger.exception("error while routing %r", scope.get("path"))
        decision = close_codes.REJECTED_INTERNAL_ERROR
    if isinstance(decision, Route) and not hub.admit():
        decision = close_codes.TOO_MANY_CONNECTIONS
    client = _client(scope)
    if not isinstance(decision, Route):
        label = endpoint_label(scope["path"])
        metrics.rejected(label, decision.reason)
        log_event(
            logger,
            logging.INFO,
            "rejected",
            endpoint=label,
            status=decision.status,
            reason=decision.reason,
            client=client,
        )
        await refuse(scope, send, decision)
        return
    session = Session(decision, settings, hub, send, metrics.connection(decision.endpoint.label))
    log_event(logger, logging.DEBUG, "connected", endpoint=decision.endpoint.label, client=client)
    started = monotonic()
    try:
        await session.run(receive)
    finally:
        hub.release()
    code, by = session.ended_with()
    log_event(
        logger,
        logging.DEBUG,
        "disconnected",
        endpoint=decision.endpoint.label,
        client=client,
        code=code,
        by=by,
        seconds=round(monotonic() - started, 3),
        received=session.received,
        sent=session.sent,
    )
    if session.close_sent:
        await drain_until_disconnect(receive)


def _close_timeout(close: Close) -> float:
    """How long the app's ``websocket.close`` may wait for the server to take it."""
    return SLOW_CONSUMER_CLOSE_TIMEOUT if close is close_codes.SLOW_CONSUMER else CLOSE_TIMEOUT


def _client(scope: WebSocketScope) -> str:
    """``host:port`` of the client, as the server reports it, for the logs."""
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "unknown"


def check_handshake(scope: WebSocketScope, settings: Settings) -> Route | Rejection:
    """The checks that need no shared state: route, then origin."""
    route = resolve(scope["path"], scope.get("query_string", b""))
    if not isinstance(route, Route):
        return route
    headers = scope.get("headers", ())
    if not origin_allowed(header(headers, b"origin"), header(headers, b"host"), settings.allowed_origins):
        return close_codes.BAD_ORIGIN
    return route


async def refuse(scope: WebSocketScope, send: ASGISendCallable, rejection: Rejection) -> None:
    """Refuse the handshake with ``rejection`` (SPEC §3 "rejected before accept")."""
    extensions = scope.get("extensions") or {}
    try:
        if "websocket.http.response" in extensions:
            body = rejection.body.encode()
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": rejection.status,
                    "headers": [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "websocket.http.response.body", "body": body, "more_body": False})
        else:
            # ASGI spec: close before accept makes the server answer 403.  The
            # code is ignored; 1000 because daphne raises on 1008 and 1011.
            await send({"type": "websocket.close", "code": 1000, "reason": ""})
    except Exception as exc:  # the client may already be gone; nothing else to do
        logger.debug("refusal not delivered: %r", exc)


async def drain_until_disconnect(receive: ASGIReceiveCallable) -> None:
    """After the app's close, read and drop events until the server reports the disconnect.

    The close handshake is the server's job, but some servers cannot finish it
    while received messages sit unread: hypercorn 0.18 holds at most
    ``max_app_queue_size`` (10) events per connection and stops reading the
    socket while that queue is full, so after closing a client that flooded
    (4429) it never reads the client's close reply and the socket stays open.
    Draining frees the queue.  Bounded, because not every server reports a
    disconnect after an app's close, and any error just means it is over.
    """
    with anyio.move_on_after(CLOSE_TIMEOUT):
        try:
            while (await receive())["type"] != "websocket.disconnect":
                pass
        except Exception as exc:
            logger.debug("receive after close failed: %r", exc)


class Session:
    """An accepted connection: its tasks, its policies, and why it ended."""

    __slots__ = (
        "_asgi_send",
        "_bucket",
        "_hub",
        "_idle_after",
        "_idle_refresh_at",
        "_max_size",
        "_outbox",
        "_push_lock",
        "_scope",
        "_stats",
        "_task_group",
        "client_close_code",
        "close",
        "close_sent",
        "peer_gone",
        "route",
    )

    def __init__(
        self, route: Route, settings: Settings, hub: Hub, send: ASGISendCallable, stats: ConnectionMetrics
    ) -> None:
        now = monotonic()
        self.route = route  # the endpoint and its parameters
        self._stats = stats  # this connection's counters in /metrics
        self._hub = hub  # the process's rooms and connection count
        self._asgi_send = send  # the server's send callable
        self._max_size = settings.max_message_size  # SPEC §3 size limit, in bytes
        self._bucket = TokenBucket(settings.rate_limit, settings.rate_burst, now)  # the rate limit
        # Broadcasts waiting to be sent; only the fan-out endpoints receive any.
        self._outbox: Outbox[WebSocketSendEvent] | None = (
            Outbox(settings.outbox_size) if route.endpoint in FAN_OUT_ENDPOINTS else None
        )
        self._idle_after = settings.idle_timeout  # seconds; 0 is off
        self._idle_refresh_at = math.inf  # when to move the idle deadline next; set by _active()
        self._scope = anyio.CancelScope()  # cancelling it stops every task of this session
        self._push_lock: anyio.Lock | None = None  # /stream pushes run one at a time; made on first use
        self._task_group: anyio.abc.TaskGroup | None = None  # set while helper tasks may be started
        self.close: Close | None = None  # why the session ends; the first reason wins
        self.peer_gone = False  # the client disconnected or a send failed: no close to send
        self.close_sent = False  # the app's websocket.close went out
        self.client_close_code: int | None = None  # the code in the client's websocket.disconnect

    @property
    def received(self) -> int:
        """Messages from the client."""
        return self._stats.messages_in

    @property
    def sent(self) -> int:
        """Messages to the client."""
        return self._stats.messages_out

    # Lifecycle

    async def run(self, receive: ASGIReceiveCallable) -> None:
        """Accept, serve until something ends the connection, then close it."""
        if not await self._send_control({"type": "websocket.accept", "subprotocol": None, "headers": []}):
            return
        self._stats.opened()
        try:
            await self._serve(receive)
            if not self.peer_gone:
                close = self.close or close_codes.NORMAL
                with anyio.move_on_after(_close_timeout(close)):
                    event: WebSocketCloseEvent = {"type": "websocket.close", "code": close.code, "reason": close.reason}
                    self.close_sent = await self._send_control(event)
        finally:
            self._stats.closed(*self.ended_with())

    def ended_with(self) -> tuple[int | None, str]:
        """How the connection ended: the close code, and who closed ("app" or "client").

        The client's code is the one in its ``websocket.disconnect``; None if it
        vanished without a disconnect (a send failed first).
        """
        if self.peer_gone:
            return self.client_close_code, "client"
        return (self.close or close_codes.NORMAL).code, "app"

    async def _serve(self, receive: ASGIReceiveCallable) -> None:
        """Run the receive loop (and the helper tasks, where the endpoint has any) until the scope ends.

        Never raises: an unexpected error becomes close 1011.
        """
        topic = self._topic()
        try:
            with self._scope:
                if self._idle_after > 0:
                    self._active(monotonic())  # starts the idle deadline
                if topic is None and self.route.endpoint is not Endpoint.STREAM:
                    # Echo endpoints: the receive loop is the only task.
                    await self._receive_loop(receive)
                else:
                    async with anyio.create_task_group() as task_group:
                        self._task_group = task_group
                        if topic is not None:
                            self._hub.join(topic, self)
                            task_group.start_soon(self._drain_outbox)
                        await self._receive_loop(receive)
                        # The receive loop has returned: stop the helper tasks too.
                        self._scope.cancel()
            if self._scope.cancelled_caught and self.close is None and not self.peer_gone:
                # Nothing else cancelled the scope, so its deadline passed: idle (see _active).
                self.close = close_codes.IDLE_TIMEOUT
        except Exception:
            logger.exception("error in %s", self.route.endpoint.value)
            self.close = close_codes.INTERNAL_ERROR
        finally:
            if topic is not None:
                self._hub.leave(topic, self)

    def kick(self, close: Close) -> None:
        """End this session with ``close`` as soon as its tasks next yield.  Never waits.

        Called from the session's own tasks, and from other connections' tasks
        when a broadcast finds this session's outbox full.
        """
        if self.close is None:
            self.close = close
            if close is close_codes.SLOW_CONSUMER:
                self._stats.slow_consumer()
        self._scope.cancel()

    def _topic(self) -> Topic | None:
        if self.route.endpoint is Endpoint.WS_BROADCAST:
            return BROADCAST
        if self.route.endpoint is Endpoint.CHAT:
            return chat_room(self.route.room)
        return None

    # Receiving

    async def _receive_loop(self, receive: ASGIReceiveCallable) -> None:
        """Read, check and answer every message until the client leaves or a policy ends the session.

        The hot loop of the echo endpoints: the reply is sent here, inline, as
        :meth:`_push` and :meth:`_drain_outbox` send theirs.
        """
        send, stats, echo = self._asgi_send, self._stats, self.route.endpoint is Endpoint.ECHO
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                if message["type"] == "websocket.disconnect":
                    # Never receive() again after this (SPEC §3): servers differ on what it does.
                    self.peer_gone = True
                    self.client_close_code = message.get("code")
                    return
                continue
            now = monotonic()
            if now >= self._idle_refresh_at:
                self._active(now)
            text = message.get("text")
            data = message.get("bytes")
            size = message_size(text, data)
            stats.messages_in += 1
            stats.bytes_in += size
            outcome: WebSocketSendEvent | Close | None = check_message(size, self._max_size, self._bucket, now)
            if outcome is None:
                outcome = self._answer(text, data)
            if outcome is None:
                continue
            if isinstance(outcome, Close):
                self.kick(outcome)
                return
            # An echo endpoint's reply; the arrival has just moved the idle deadline.
            try:
                await send(outcome)
            except Exception as exc:
                self._send_failed(exc)
                return
            stats.messages_out += 1
            stats.bytes_out += size if echo else message_size(outcome["text"], outcome["bytes"])

    def _answer(self, text: str | None, data: bytes | None) -> WebSocketSendEvent | Close | None:
        """What the endpoint does with one message (SPEC §1): a reply to send, a Close, or nothing.

        Never waits: the fan-out endpoints hand the message to the hub, and a
        ``/stream`` request starts a push task.
        """
        endpoint = self.route.endpoint
        if text is None:
            if data is None:
                return None  # a receive event with neither key carries nothing to answer
            if endpoint not in BINARY_ENDPOINTS:
                return close_codes.UNSUPPORTED_DATA
            return bytes_event(data)
        if endpoint is Endpoint.ECHO:
            return text_event(text)
        if endpoint is Endpoint.WS:
            return text_event(ws_reply(text))
        if endpoint is Endpoint.WS_JSON:
            return text_event(json_reply(text))
        if endpoint is Endpoint.WS_BROADCAST:
            self._hub.publish(BROADCAST, broadcast_text(text), exclude=self)
        elif endpoint is Endpoint.CHAT:
            self._hub.publish(chat_room(self.route.room), text)
        elif endpoint is Endpoint.STREAM:
            assert self._task_group is not None
            self._task_group.start_soon(self._push, text)
        return None

    # Sending

    async def _send_control(self, event: ASGISendEvent) -> bool:
        """Send accept or close; False if the client is gone."""
        try:
            await self._asgi_send(event)
        except Exception as exc:
            self._send_failed(exc)
            return False
        return True

    def _send_failed(self, exc: Exception) -> None:
        """A send raised: the client is gone, and the session stops."""
        # After a disconnect uvicorn raises ClientDisconnected (an OSError),
        # other servers RuntimeError or their own types, some nothing at all
        # (SPEC §3).  Any failure means the same thing here: stop sending.
        logger.debug("send failed on %s: %r", self.route.endpoint.value, exc)
        self.peer_gone = True
        self._scope.cancel()

    def deliver(self, event: WebSocketSendEvent) -> bool:
        """Queue a broadcast without waiting (the hub calls this).  False if the outbox is full."""
        assert self._outbox is not None, "only fan-out endpoints join topics"
        return self._outbox.offer(event)

    async def _drain_outbox(self) -> None:
        """The sender task: send queued broadcasts, oldest first, until the session ends.

        The hot loop of the fan-out endpoints: it sends inline, and notes
        activity for the idle deadline once per batch, whenever the outbox has
        run dry.
        """
        outbox, send, stats = self._outbox, self._asgi_send, self._stats
        assert outbox is not None
        while True:
            if not outbox:
                self._note_activity()
            event = await outbox.get()
            try:
                await send(event)
            except Exception as exc:
                self._send_failed(exc)
                return
            stats.messages_out += 1
            stats.bytes_out += message_size(event["text"], event["bytes"])

    async def _push(self, request: str) -> None:
        """One ``/stream`` request: send its ``count`` messages in order (SPEC §1).

        The hot loop of ``/stream``: it sends inline, and looks at the clock for
        the idle deadline once per ``STREAM_YIELD_EVERY`` messages instead of
        once per message.
        """
        if self._push_lock is None:
            self._push_lock = anyio.Lock()
        send, stats = self._asgi_send, self._stats
        async with self._push_lock:
            for number, payload in enumerate(stream_payloads(request, self.route.count), start=1):
                try:
                    await send(text_event(payload))
                except Exception as exc:
                    self._send_failed(exc)
                    return
                stats.messages_out += 1
                stats.bytes_out += message_size(payload, None)
                if number % STREAM_YIELD_EVERY == 0:
                    self._note_activity()
                    await anyio.lowlevel.checkpoint()
            self._note_activity()

    # The idle timeout

    def _note_activity(self) -> None:
        """Messages went out (a push, a batch of broadcasts): move the idle deadline if due (see :meth:`_active`)."""
        if self._idle_refresh_at != math.inf:
            now = monotonic()
            if now >= self._idle_refresh_at:
                self._active(now)

    def _active(self, now: float) -> None:
        """A message went one way or the other at ``now``: push the idle deadline back.

        The deadline is the session's cancel scope's own, so an idle connection
        costs one timer and no task.  Moving a deadline reschedules that timer,
        which is too dear to do for every message, so it is moved at most once
        per ``idle_after / IDLE_SLACK`` seconds, and set that much later than
        strictly needed: a connection is closed between ``idle_after`` and
        ``idle_after * (1 + 1/IDLE_SLACK)`` seconds after its last message,
        never before.  The hot path compares ``now`` with ``_idle_refresh_at``.
        """
        slack = self._idle_after / IDLE_SLACK
        # Deadlines are in the event loop's clock, which on trio is not time.monotonic().
        self._scope.deadline = anyio.current_time() + self._idle_after + slack
        self._idle_refresh_at = now + slack
