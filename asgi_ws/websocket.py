"""One WebSocket connection's whole ASGI conversation, in one function: :func:`handle_websocket`.

Read it first.  It shows every step a raw ASGI app takes with a WebSocket
(the rules are in :mod:`asgi_ws.lifecycle`):

1. **connect**: wait for ``websocket.connect``;
2. **decide**: route, origin and the connection cap (:mod:`asgi_ws.handshake`),
   and refuse before accept where they say no;
3. **accept**;
4. **serve**, until something ends the connection (:mod:`asgi_ws.session`);
5. **close**, unless the client is already gone;
6. **drain** the events still coming until the server reports the disconnect.

Everything it sends goes through a :class:`~asgi_ws.connection.Connection`,
which knows the state of the conversation and refuses an event the state does
not allow.

Portability (``docs/contract.md`` §3, "Portability rules"): ``text`` and
``bytes`` are read with ``.get(...) is not None``; ``receive()`` is never called
after ``websocket.disconnect``; every ``send()`` may raise once the client is
gone, and how differs by server, so any exception from ``send()`` ends the
connection (rule 3 says why that is not proof the client has gone);
``websocket.close`` is always sent before returning after accept; nothing
required travels in accept headers; what is queued for a client is bounded
here, not by ``send()`` (rule 8).

anyio rather than asyncio, so that the same code runs under hypercorn's trio
worker.  The cost of that choice is measured in ``docs/concurrency.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from time import monotonic
from typing import TYPE_CHECKING

from . import close_codes
from .connection import Connection
from .handshake import decide, refuse
from .lifecycle import State
from .logs import log_event
from .routing import Route, endpoint_label
from .session import Session

if TYPE_CHECKING:
    from asgiref.typing import ASGIReceiveCallable, ASGISendCallable, WebSocketScope

    from .close_codes import Rejection
    from .hub import Hub
    from .metrics import Metrics
    from .settings import Settings

__all__ = ["CLOSE_TIMEOUT", "SLOW_CONSUMER_CLOSE_TIMEOUT", "handle_websocket"]

logger = logging.getLogger(__name__)

# How long the app waits on either side of its close: for the server to take the
# close frame, and for the server to report the disconnect after it.  Then the
# server is left to drop the socket.
CLOSE_TIMEOUT = 5.0

# How long a slow consumer's close frame may take to be handed to the server: it queues behind
# megabytes the server has already taken for the client.  30 s lets a client read a full 4 MiB at
# about 1 Mbit/s; why 5 s is too short under uvicorn, hypercorn and granian is measured in
# docs/concurrency.md, "Closing a slow consumer".
SLOW_CONSUMER_CLOSE_TIMEOUT = 30.0


async def handle_websocket(
    scope: WebSocketScope,
    receive: ASGIReceiveCallable,
    send: ASGISendCallable,
    settings: Settings,
    hub: Hub,
    metrics: Metrics,
) -> None:
    """Run one ``websocket`` scope to its end.  Never raises."""
    connection = Connection(receive, send)

    # 1. Connect: the server reports the client's handshake.
    if (await connection.receive())["type"] != "websocket.connect":
        return  # the client left before the handshake reached the app

    # 2. Decide, before accepting: the route and the origin, then a place under the connection cap.
    decision = decide(scope, settings)
    if isinstance(decision, Route) and not hub.admit():
        decision = close_codes.TOO_MANY_CONNECTIONS
    if not isinstance(decision, Route):
        _log_refusal(scope, decision, metrics)
        await refuse(connection, scope, decision)
        return
    try:  # the place under the cap is taken: give it back however this ends
        # 3. Accept.
        if not await connection.accept():
            return
        session = Session(connection, decision, settings, hub, metrics.connection(decision.endpoint.label))
        with _recorded(session, scope):
            # 4. Serve until something ends the connection.
            close = await session.serve()

            # 5. Close, unless the client is already gone.
            if close is not None:
                timeout = SLOW_CONSUMER_CLOSE_TIMEOUT if close is close_codes.SLOW_CONSUMER else CLOSE_TIMEOUT
                await connection.close(close, timeout)
    finally:
        hub.release()

    # 6. Drain: the server took the close; read on until it reports the disconnect.
    if connection.state is State.CLOSING:
        await connection.drain(CLOSE_TIMEOUT)


# Logs and metrics


def _client(scope: WebSocketScope) -> str:
    """``host:port`` of the client, as the server reports it, for the logs."""
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "unknown"


def _log_refusal(scope: WebSocketScope, rejection: Rejection, metrics: Metrics) -> None:
    label = endpoint_label(scope["path"])
    metrics.rejected(label, rejection.reason)
    log_event(
        logger,
        logging.INFO,
        "rejected",
        endpoint=label,
        status=rejection.status,
        reason=rejection.reason,
        client=_client(scope),
    )


@contextmanager
def _recorded(session: Session, scope: WebSocketScope) -> Iterator[None]:
    """One accepted connection in /metrics and in the log, from its start to its end: code, and who closed."""
    stats, label, client = session.stats, session.route.endpoint.label, _client(scope)
    stats.opened()
    log_event(logger, logging.DEBUG, "connected", endpoint=label, client=client)
    started = monotonic()
    try:
        yield
    finally:
        code, by, reason = session.end()
        stats.closed(code, by, reason)
        seconds = round(monotonic() - started, 3)
        log_event(
            logger,
            logging.DEBUG,
            "disconnected",
            endpoint=label,
            client=client,
            code=code,
            by=by,
            seconds=seconds,
            received=stats.messages_in,
            sent=stats.messages_out,
        )
