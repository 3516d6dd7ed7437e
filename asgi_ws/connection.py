"""One WebSocket connection's ASGI side: its state, how it closed, and the one place that sends.

Every event of a WebSocket conversation goes through a :class:`Connection`:
``receive()`` and ``send()`` wrap the server's callables, look each event up in
the lifecycle's tables (:mod:`asgi_ws.lifecycle`) and move the state.  So the
app cannot send in the wrong state without a :class:`~asgi_ws.lifecycle.ProtocolError`
that names the state and the event, and the rest of the code asks the
connection where it stands instead of keeping flags of its own.

A connection does not decide anything: the handshake (:mod:`asgi_ws.handshake`)
and the session (:mod:`asgi_ws.session`) do, and call it.  It owns no task.

The close is a value, not a flag: :attr:`Connection.close_sent` is the
``websocket.close`` the server took from the app, :attr:`Connection.close_rcvd`
the client's end as the server reported it.

The hot path
------------
Data messages are most of what a connection sends and receives, so the hot
loops of :mod:`asgi_ws.session` call the server's own callables,
:attr:`Connection.server_receive` and :attr:`Connection.server_send`, with no
wrapper coroutine between (a coroutine per message was a third of the app's
cost per echo: ``bench/RESULTS.md``, P2).  The state stays one plain
attribute: they look at it before every send, and hand back what the tables
must see: an event that is not a message to :meth:`Connection.received`, a
failed send to :meth:`Connection.send_failed`.  Checking the state before every
send costs nothing outside noise: echo and the stream ran at the speed they had
when each change of state swapped the callables for refusing ones, in one run
(1.011x and 0.987x in process; ``docs/concurrency.md``, "Checking the state
before every send").  Everything else (connect, accept, close, refusals, the
drain) goes through :meth:`Connection.receive` and :meth:`Connection.send`,
which check every event against the tables.

A failed ``send()`` means the client is gone.  After a disconnect uvicorn
raises ``ClientDisconnected`` (an ``OSError``), other servers raise
``RuntimeError`` or their own types, and some return as if the event had been
sent (``docs/server-divergences.md``, "send() after a disconnect"; the ASGI
spec 2.4 asks for an ``OSError`` subclass but does not guarantee one).  So any
exception from the server's ``send()`` closes the connection here, and
:meth:`Connection.send` says so by returning False.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from .close_codes import Close
from .lifecycle import ProtocolError, State, after_receive, after_send, before_receive

if TYPE_CHECKING:
    from asgiref.typing import (
        ASGIReceiveCallable,
        ASGIReceiveEvent,
        ASGISendCallable,
        ASGISendEvent,
        WebSocketCloseEvent,
    )

__all__ = ["Connection", "Disconnect"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Disconnect:
    """The client's end of a connection."""

    code: int | None  # from its websocket.disconnect; None when it vanished and a send failed first
    reason: str  # from its websocket.disconnect; where a send failed, what the server raised


class Connection:
    """The app's side of one WebSocket conversation."""

    __slots__ = ("close_rcvd", "close_sent", "server_receive", "server_send", "state")

    def __init__(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        self.server_receive = receive  # the server's receive callable
        self.server_send = send  # the server's send callable
        self.state = State.CONNECTING  # where the conversation is (asgi_ws.lifecycle)
        self.close_sent: Close | None = None  # the app's websocket.close, once the server has taken it
        self.close_rcvd: Disconnect | None = None  # the client's end, once the app knows of it

    # Receiving

    async def receive(self) -> ASGIReceiveEvent:
        """The server's next event.  Raises :class:`~asgi_ws.lifecycle.ProtocolError` once the connection is closed."""
        before_receive(self.state)
        event = await self.server_receive()
        if event["type"] != "websocket.receive":  # a message leaves every state as it is
            self.received(event)
        return event

    def received(self, event: ASGIReceiveEvent) -> None:
        """The app received ``event``, which is not a message: move the state as the table says."""
        self.state = after_receive(self.state, event)
        if event["type"] == "websocket.disconnect":
            self.close_rcvd = Disconnect(event.get("code"), event.get("reason") or "")

    async def drain(self, within: float) -> None:
        """After the app's close, read and drop events until the server reports the disconnect.

        The close handshake is the server's job, but some servers cannot finish it
        while received messages sit unread: hypercorn 0.18 holds at most
        ``max_app_queue_size`` (10) events per connection and stops reading the
        socket while that queue is full, so after closing a client that flooded
        (4429) it never reads the client's close reply and the socket stays open.
        Draining frees the queue.  Bounded, because not every server reports a
        disconnect after an app's close, and any error just means it is over.
        """
        with anyio.move_on_after(within):
            try:
                while self.state is State.CLOSING:
                    await self.receive()
            except Exception as exc:
                logger.debug("receive after close failed: %r", exc)

    # Sending

    async def send(self, event: ASGISendEvent) -> bool:
        """Send ``event``: True once the server took it, False if the client is gone.

        Raises :class:`~asgi_ws.lifecycle.ProtocolError` if the state does not
        allow the event: that is a bug in the app, never swallowed here.
        """
        state = self.state
        next_state = after_send(state, event)
        try:
            await self.server_send(event)
        except Exception as exc:
            self.send_failed(exc)
            return False
        if self.state is not state:
            return True  # the server took it, but a disconnect came in meanwhile: the connection stays closed
        self.state = next_state
        if event["type"] == "websocket.close" and next_state is State.CLOSING:
            self.close_sent = Close(event.get("code", 1000), event.get("reason") or "")
        return True

    def send_failed(self, exc: Exception) -> None:
        """The server's ``send`` raised ``exc``: the client is gone, and the connection is closed.

        A :class:`~asgi_ws.lifecycle.ProtocolError` is the app's own bug, not
        the client's absence: it is raised again.
        """
        if isinstance(exc, ProtocolError):
            raise exc
        logger.debug("send failed: %r", exc)
        self.state = State.CLOSED
        if self.close_rcvd is None:
            self.close_rcvd = Disconnect(None, f"send raised {type(exc).__name__}")

    async def accept(self) -> bool:
        """Accept the handshake, with no subprotocol and no extra headers; False if the client is gone."""
        return await self.send({"type": "websocket.accept", "subprotocol": None, "headers": []})

    async def close(self, close: Close, within: float) -> bool:
        """Send ``websocket.close``, waiting at most ``within`` seconds for the server to take it.

        False if it did not: the client is gone, or the server did not take the
        frame in time.  Either way the server is then left to drop the socket.
        """
        event: WebSocketCloseEvent = {"type": "websocket.close", "code": close.code, "reason": close.reason}
        with anyio.move_on_after(within):
            return await self.send(event)
        return False
