"""An accepted connection at work: the receive loop, the sender, the pushes, and why it ends.

Theory of operation
-------------------
:meth:`Session.serve` runs one accepted connection inside one anyio cancel
scope, until something ends it:

- the **receive loop** reads every event, applies the size and rate policies
  (:mod:`asgi_ws.policy`), asks the endpoint what to do
  (:func:`asgi_ws.endpoints.answer`) and does it.  On the echo endpoints
  (``/ws``, ``/echo``, ``/ws_json``) it is all there is: one task, the one the
  server called the app in;
- the **sender**, on ``/ws_broadcast`` and chat only, a second task in a task
  group, drains the connection's :class:`~asgi_ws.outbox.Outbox` of
  broadcasts;
- the **feed sender**, on ``/ws/feed/{room}``, in its place: it serves the
  client's resume first, if it asked for one, then the room's numbered
  messages in order, with no gap and no duplicate (:meth:`Session._drain_feed`);
- the **pusher**, on ``/stream`` only, also in the task group, runs the
  pushes: one at a time, in the order the requests came.  A request that comes
  while a push runs waits in a bounded queue, as its text, not as a task; one
  more than ``max_pending_pushes`` waiting ends the session with 4429
  ``too many requests``.  The pusher starts with the first request and ends
  when the queue is empty, so an idle ``/stream`` connection holds no task: a
  parked task would cost every such connection a task and its frame for its
  whole life, to save one task start per burst of pushes that each send up to
  a million messages.

Nothing a client does within the limits grows the app without bound: its
messages are answered, queued in an outbox bounded in messages and bytes, or
queued as push requests bounded in number; every task the app starts is
counted in ``asgi_ws_app_tasks`` (:func:`asgi_ws.runtime.counted_task`).

On every endpoint exactly one of these sends data: the receive loop on the
echo endpoints, the sender (or the feed sender) on the fan-out endpoints, the pusher on ``/stream``,
so no two tasks ever call ``send`` at once.  Every data message goes out
through one method, :meth:`Session._send`: it checks that the connection is
still accepted, calls the server's own ``send``, and counts the message, or
ends everything if the send failed.

Whatever ends the session records *why* in :attr:`Session.ending`, the first
reason winning, and cancels the scope: a policy (4400, 4413, 4429), another
connection's broadcast finding the outbox full (4503, :meth:`Session.kick`), an
error in the app (4500), or the client leaving, which the connection records
itself.  The idle deadline (4408, :mod:`asgi_ws.idle`) cancels the scope on its
own, and the session asks it afterwards whether it passed.
:meth:`Session.serve` then returns the close to send, or None when the client
is gone.

One ending does not cancel: a refused ``/stream`` request (4429 ``too many
requests``).  The receive loop stops reading, and the pushes already accepted,
the running one and those waiting, are sent to their end before the close, so
the client gets everything it was promised and then the reason it gets no
more.  Meanwhile the idle deadline still applies, and a failed send still ends
everything at once.

The loops read the clock for the idle deadline once per batch, not per
message, and the receive loop calls the server's ``receive`` itself: a
coroutine around it was a third of the app's cost per echo
(``bench/RESULTS.md``, P2).  A data message goes out through
:meth:`Session._send`, one coroutine per message, which costs echo 1.03x in
process, within noise; the stream's loop, :meth:`Session._send_texts`, takes
the same steps inline, since there it cost 1.47x (``docs/concurrency.md``,
"Checking the state before every send").
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Iterable
from time import monotonic
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import anyio.lowlevel

from . import close_codes
from .close_codes import Close
from .endpoints import FAN_OUT_ENDPOINTS, Append, Publish, Push, answer, topic_of
from .feed import FeedCursor, FeedMessage, Gap, Step, control_text
from .idle import IdleDeadline
from .lifecycle import State, after_send
from .messages import stream_payloads, text_event
from .outbox import Outbox
from .policy import TokenBucket, check_message, message_size
from .presence import anonymous_subject
from .publish_ids import Ack
from .routing import Endpoint, Route
from .runtime import counted_task

if TYPE_CHECKING:
    from asgiref.typing import WebSocketSendEvent

    from .connection import Connection
    from .hub import Hub
    from .metrics import ConnectionMetrics
    from .settings import Settings
    from .topics import Topic

__all__ = ["STREAM_YIELD_EVERY", "Session"]

logger = logging.getLogger(__name__)

# A /stream push yields to the event loop this often.  A server's send() may
# complete without suspending while the socket buffer has room, and a push of a
# million messages that never yields would freeze every other connection.  256
# messages are about 1.5 ms of sending under uvicorn on one core; yielding more
# often costs throughput, because every yield lets the server flush a smaller
# batch to the socket (bench/RESULTS.md, P3: 64 gave 0.81x the raw floor).
STREAM_YIELD_EVERY = 256

# The state a data message may be sent in, checked before every send.  Kept here because looking
# an Enum member up on its class costs 66 ns on CPython 3.11 (`python -m timeit`), a tenth of what
# the app spends on a /stream message; a module global costs a few.
ACCEPTED = State.ACCEPTED


def outbox_capacity(route: Route, settings: Settings) -> int:
    """How many messages a connection's outbox holds before the client counts as slow (4503).

    ``outbox_size``, except on the feed, where it is at most half the history:
    a feed client closed as a slow consumer must find what it missed still
    kept when it resumes (contract §8).  With a full ``outbox_size`` (1024) and
    the default history (1000), a client closed by the message bound would
    have missed more than a room keeps, and could never recover.  Half leaves
    the other half of the history for what is published while it reconnects.
    """
    if route.endpoint is Endpoint.FEED:
        return min(settings.outbox_size, max(1, settings.history_size // 2))
    return settings.outbox_size


class Session:
    """One accepted connection: its tasks, its policies, and why it ends."""

    __slots__ = (
        "_hub",
        "_idle",
        "_outbox",
        "_pushes_waiting",
        "_scope",
        "_settings",
        "_task_group",
        "connection",
        "ending",
        "route",
        "stats",
    )

    def __init__(
        self, connection: Connection, route: Route, settings: Settings, hub: Hub, stats: ConnectionMetrics
    ) -> None:
        self.connection = connection  # the ASGI side: state, receive, send
        self.route = route  # the endpoint and its parameters
        self.ending: Close | None = None  # why the session ends; the first reason wins
        self.stats = stats  # this connection's counters in /metrics
        self._hub = hub  # the process's rooms and connection count
        self._settings = settings  # the limits: message size, rate, pushes waiting
        # Broadcasts waiting to be sent; only the fan-out endpoints receive any: websocket.send
        # events, or FeedMessages on the feed.  Any, because the one type each endpoint's
        # sender takes out is the one its topic's publisher put in (Hub.publish).
        self._outbox: Outbox[Any] | None = (
            Outbox(outbox_capacity(route, settings), settings.outbox_bytes, hub.wakeups)
            if route.endpoint in FAN_OUT_ENDPOINTS
            else None
        )
        self._scope = anyio.CancelScope()  # cancelling it stops every task of this session
        self._idle = IdleDeadline(self._scope, settings.idle_timeout)  # the scope's deadline, moved by traffic
        # /stream requests behind the running push, oldest first, while the pusher runs; None when it
        # does not, since an empty deque is 760 bytes, the largest object an idle connection held
        # (bench/RESULTS.md, P6).
        self._pushes_waiting: deque[str] | None = None
        self._task_group: anyio.abc.TaskGroup | None = None  # set while helper tasks may be started

    # Lifecycle

    async def serve(self) -> Close | None:
        """Serve until something ends the connection: the close to send, or None if the client is gone.

        Never raises: an unexpected error, a bug in the app included, is logged and becomes 4500.
        """
        topic = topic_of(self.route)
        try:
            with self._scope:
                self._idle.start(monotonic(), self._token_end())
                if topic is None and self.route.endpoint is not Endpoint.STREAM:
                    await self._receive_loop()  # the echo endpoints: one task
                else:
                    async with anyio.create_task_group() as task_group:
                        self._task_group = task_group
                        if topic is not None:
                            # Before a resume reads the history: no message falls between.
                            self._hub.join(topic, self, self._subject(topic), self.route.presence)
                            if self.route.endpoint is Endpoint.FEED:
                                task_group.start_soon(self._drain_feed, topic)
                            else:
                                task_group.start_soon(self._drain_outbox)
                        await self._receive_loop()
                        self._scope.cancel()  # the receive loop has returned: stop the helper tasks too
            if self.ending is None and self._idle.ended():
                self.ending = close_codes.TOKEN_EXPIRED_CLOSE
            elif self.ending is None and self._idle.expired():
                self.ending = close_codes.IDLE_TIMEOUT
        except Exception:
            logger.exception("error in %s", self.route.endpoint.value)
            self.ending = close_codes.INTERNAL_ERROR
        finally:
            if topic is not None:
                self._hub.leave(topic, self)
        if self.connection.state is not State.ACCEPTED:
            return None  # the client is gone: there is nobody to close
        return self.ending or close_codes.NORMAL

    def _subject(self, topic: Topic) -> str | None:
        """Who this connection is in a room (contract §8.2): its token's subject, or a name of its own."""
        if topic.kind == "broadcast":
            return None
        grant = self.route.grant
        return grant.subject if grant is not None else anonymous_subject()

    def _token_end(self) -> float:
        """When, in the event loop's clock, the connection's access token expires; inf without one."""
        grant = self.route.grant
        if grant is None:
            return math.inf
        return anyio.current_time() + (grant.expires - time.time())

    def end(self) -> tuple[int | None, str, str]:
        """How the connection ended: its close code, who closed ("app" or "client"), and the reason's label.

        The client's code is the one in its ``websocket.disconnect``; None if it
        vanished without one (a send failed first).  The app's close has its
        reason's label, which tells the two 4429s apart; the client's reason is
        free text, never a label, so it is "none".
        """
        connection = self.connection
        if connection.close_sent is not None or connection.state is State.ACCEPTED:
            close = self.ending or close_codes.NORMAL  # sent, or at least tried until the timeout
            return close.code, "app", close.label
        code = connection.close_rcvd.code if connection.close_rcvd is not None else None
        return code, "client", "none"

    def kick(self, close: Close) -> None:
        """End this session with ``close`` as soon as its tasks next yield.  Never waits.

        Called from the session's own tasks, and from other connections' tasks
        when a broadcast finds this session's outbox full.
        """
        if self.ending is None:
            self.ending = close
            if close is close_codes.SLOW_CONSUMER:
                self.stats.slow_consumer()
        self._scope.cancel()

    # Receiving

    async def _receive_loop(self) -> None:
        """Read, check and answer every message until the client leaves or a policy ends the session.

        The hot loop of the echo endpoints: it calls the server's ``receive``
        itself, with no coroutine around it, and hands the connection only the
        events that move its state.
        """
        connection, route, stats, idle = self.connection, self.route, self.stats, self._idle
        receive = connection.server_receive
        echo = route.endpoint is Endpoint.ECHO
        max_size = self._settings.max_message_size
        # The rate limit, made at the first message rather than at accept: a bucket starts full and
        # stays full while nothing arrives, so it is the same bucket, and an idle connection holds none.
        bucket: TokenBucket | None = None
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                connection.received(message)
                if message["type"] == "websocket.disconnect":
                    return  # the client has left: the connection is closed
                continue
            now = monotonic()
            if now >= idle.due:
                idle.move(now)
            text = message.get("text")
            data = message.get("bytes")
            size = message_size(text, data)
            stats.messages_in += 1
            stats.bytes_in += size
            if bucket is None:
                bucket = TokenBucket(self._settings.rate_limit, self._settings.rate_burst, now)
            action = check_message(size, max_size, bucket, now) or answer(route, text, data)
            if isinstance(action, dict):  # a reply, the echo endpoints' hot path; the arrival moved the idle deadline
                if not await self._send(action, size if echo else message_size(action["text"], action["bytes"])):
                    return
            elif isinstance(action, Publish):
                self._hub.publish(action.topic, action.text, exclude=self if action.exclude_sender else None)
            elif isinstance(action, Append):
                self._hub.append(action.topic, action.post, None if action.post.publish_id is None else self._acked)
            elif isinstance(action, Push):
                if not self._queue_push(action.request):
                    # One request too many ends the connection at once, as every other policy does:
                    # a client that asks faster than it reads would otherwise hold its close back
                    # until the pushes it is not reading are sent.
                    self.kick(close_codes.TOO_MANY_REQUESTS)
                    return
            elif action is not None:  # a Close
                self.kick(action)
                return

    # Sending

    def deliver(self, item: WebSocketSendEvent | FeedMessage, size: int) -> bool:
        """Queue a broadcast of ``size`` payload bytes without waiting (the hub calls this).  False if full."""
        assert self._outbox is not None, "only fan-out endpoints join topics"
        return self._outbox.offer(item, size)

    def _acked(self, ack: Ack) -> None:
        """The broker's answer to this client's publish with an id: queue it behind the messages before it.

        On Redis it comes when Redis answers, after the client may have left:
        then there is nobody to tell.  An ack that finds the outbox full is a
        client that does not read, as a broadcast would find it (4503).
        """
        if self.connection.state is not ACCEPTED or self.ending is not None:
            return
        if not self.deliver(*ack.outgoing()):
            self.kick(close_codes.SLOW_CONSUMER)

    async def _send(self, event: WebSocketSendEvent, size: int) -> bool:
        """Send one data message of ``size`` payload bytes: True once the server took it.

        False if the client is gone: another task saw it leave, or this send
        failed, and then every task of the session stops.  The state is checked
        first, as :meth:`Connection.send <asgi_ws.connection.Connection.send>`
        does, but without its table lookups, since a data message never moves
        the state.  :meth:`_send_texts` takes the same steps, inline.
        """
        connection = self.connection
        if connection.state is not ACCEPTED:
            return self._refused(event)
        try:
            await connection.server_send(event)
        except Exception as exc:
            return self._failed(exc)
        self.stats.messages_out += 1
        self.stats.bytes_out += size
        return True

    async def _send_texts(self, texts: Iterable[str]) -> bool:
        """Send ``texts`` in order, yielding now and then; False if the client is gone.

        The hot loop of ``/stream``, also used for a feed's replay and gap
        fills: :meth:`_send`'s steps inline, because a coroutine per message
        cost the stream half as much again in process and 6 % of its rate over
        the wire (``docs/concurrency.md``, "Checking the state before every send").
        It looks at the clock for the idle deadline once per
        ``STREAM_YIELD_EVERY`` messages instead of once per message.
        """
        connection, stats = self.connection, self.stats
        send = connection.server_send
        for number, text in enumerate(texts, start=1):
            event = text_event(text)
            if connection.state is not ACCEPTED:
                return self._refused(event)
            try:
                await send(event)
            except Exception as exc:
                return self._failed(exc)
            stats.messages_out += 1
            stats.bytes_out += message_size(text, None)
            if number % STREAM_YIELD_EVERY == 0:
                self._idle.note_sent()
                await anyio.lowlevel.checkpoint()
        self._idle.note_sent()
        return True

    def _refused(self, event: WebSocketSendEvent) -> bool:
        """A data message found the connection no longer accepted: False if the client is gone, else a bug."""
        state = self.connection.state
        if state is not State.CLOSED:
            after_send(state, event)  # raises ProtocolError, naming the state: a bug of the app
        return False  # another task saw the client leave, and has cancelled this one

    def _failed(self, exc: Exception) -> bool:
        """The server's ``send`` raised ``exc``: the client is gone, and every task stops.  Always False."""
        self.connection.send_failed(exc)  # raises again if it was the app's own ProtocolError
        self._scope.cancel()
        return False

    @counted_task
    async def _drain_outbox(self) -> None:
        """The sender task: send queued broadcasts, oldest first, until the session ends.

        It notes activity for the idle deadline once per batch, whenever the
        outbox has run dry.
        """
        outbox = self._outbox
        assert outbox is not None
        while True:
            if not outbox:
                self._idle.note_sent()
            event, size = await outbox.get()
            if not await self._send(event, size):
                return

    @counted_task
    async def _drain_feed(self, topic: Topic) -> None:
        """The feed sender: the resume, if the client asked for one, then the live messages in order.

        A :class:`~asgi_ws.feed.FeedCursor` remembers the last message sent.  A
        queued message it calls already sent came with the replay, and is
        skipped.  One after a gap means messages went missing in between, and
        they are fetched from the history and sent first.  On Redis, that
        happens when the history was read for a resume before this process
        received the room's messages, or when Redis lost some; the memory
        broker numbers and queues in one step, so it never happens there.
        """
        outbox, stats, broker = self._outbox, self.stats, self._hub.broker
        assert outbox is not None
        cursor = FeedCursor()  # nothing sent yet: the first live message is next
        since = self.route.since
        if since is not None:
            replay = await broker.replay(topic, since)
            stats.resumed(replay.failure, len(replay.messages))
            if not await self._send_texts([control_text(replay.recovered, replay.epoch, replay.top)]):
                return
            if not await self._send_texts(message.text for message in replay.messages):
                return
            cursor = FeedCursor(replay.epoch, replay.top)
        while True:
            if not outbox:
                self._idle.note_sent()
            message: FeedMessage | WebSocketSendEvent
            message, size = await outbox.get()
            if isinstance(message, dict):  # for this client alone: an ack of its own post, a presence event
                if not await self._send(message, size):
                    return
                continue
            step = cursor.place(message)
            if step is Step.ALREADY_SENT:
                continue
            if isinstance(step, Gap):
                missing = await broker.between(topic, step.epoch, step.after, step.until)
                stats.filled(len(missing))
                if not await self._send_texts(earlier.text for earlier in missing):
                    return
            if not await self._send(message.event, size):
                return
            cursor.passed(message)

    def _queue_push(self, request: str) -> bool:
        """Start the pusher on ``request``, or queue it behind the running push.  False if too many wait."""
        waiting = self._pushes_waiting
        if waiting is None:  # no pusher runs: start one
            assert self._task_group is not None
            self._pushes_waiting = deque()
            self._task_group.start_soon(self._push, request)
            return True
        if len(waiting) >= self._settings.max_pending_pushes:
            return False
        waiting.append(request)
        self.stats.pushes_waiting = len(waiting)
        return True

    @counted_task
    async def _push(self, request: str) -> None:
        """The pusher: send ``request``'s ``count`` messages in order, then each waiting request's, then end.

        The pusher ends, and the next request starts a new one, only when no
        request waits: between the check and the end nothing else runs, so no
        request is left behind.
        """
        waiting = self._pushes_waiting
        assert waiting is not None, "made by _queue_push before it starts the pusher"
        while True:
            if not await self._send_texts(stream_payloads(request, self.route.count)):
                return
            if not waiting:
                self._pushes_waiting = None
                return
            request = waiting.popleft()
            self.stats.pushes_waiting = len(waiting)
