"""Before accept: decide whether a handshake may become a connection, and refuse it if not.

The decision needs nothing but the scope and the settings: the route (404, or
400 for a bad room or count) and the ``Origin`` (403).  The connection cap
(503) needs the hub, and is taken where the connection is counted, in
:func:`asgi_ws.websocket.handle_websocket`.

A refusal is sent as a real HTTP response where the server offers the
``websocket.http.response`` extension, and as ``websocket.close`` before
accept elsewhere, which the ASGI spec has the server answer with a bare 403
(daphne and gunicorn's ASGI worker offer no extension:
``docs/server-divergences.md``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from . import close_codes
from .connection import Connection
from .policy import header, origin_allowed
from .routing import Route, resolve

if TYPE_CHECKING:
    from asgiref.typing import WebSocketResponseStartEvent, WebSocketScope

    from .close_codes import Rejection
    from .settings import Settings

__all__ = ["decide", "refuse"]

logger = logging.getLogger(__name__)


def decide(scope: WebSocketScope, settings: Settings) -> Route | Rejection:
    """The route to serve, or why the handshake is refused: the path and query first, then the origin."""
    try:
        route = resolve(scope["path"], scope.get("query_string", b""))
        if not isinstance(route, Route):
            return route
        headers = scope.get("headers", ())
        if not origin_allowed(header(headers, b"origin"), header(headers, b"host"), settings.allowed_origins):
            return close_codes.BAD_ORIGIN
    except Exception:
        logger.exception("error while routing %r", scope.get("path"))
        return close_codes.REJECTED_INTERNAL_ERROR
    return route


async def refuse(connection: Connection, scope: WebSocketScope, rejection: Rejection) -> None:
    """Refuse the handshake with ``rejection``'s status and body, or with the server's 403 where it must."""
    if "websocket.http.response" in (scope.get("extensions") or {}):
        body = rejection.body.encode()
        start: WebSocketResponseStartEvent = {
            "type": "websocket.http.response.start",
            "status": rejection.status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())],
        }
        if await connection.send(start):
            await connection.send({"type": "websocket.http.response.body", "body": body, "more_body": False})
    else:
        # The code is ignored before accept; 1000 because daphne raises on 1008 and 1011.
        await connection.send({"type": "websocket.close", "code": 1000, "reason": ""})
