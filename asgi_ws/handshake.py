"""Before accept: decide whether a handshake may become a connection, and refuse it if not.

The decision needs nothing but the scope and the settings: the route (404, or
400 for a bad room or count), the ``Origin`` (403), and, where
``ASGI_WS_TOKEN_SECRET`` is set, the access token (401 or 403, with a JSON
body naming why: :mod:`asgi_ws.access`).  The connection cap
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
from dataclasses import replace
from typing import TYPE_CHECKING

from . import close_codes
from .close_codes import Rejection
from .connection import Connection
from .endpoints import FAN_OUT_ENDPOINTS
from .policy import header, origin_allowed
from .routing import Endpoint, Route, query_values, resolve

if TYPE_CHECKING:
    from asgiref.typing import WebSocketResponseStartEvent, WebSocketScope

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
        if settings.token_secret and (settings.token_all or route.endpoint in FAN_OUT_ENDPOINTS):
            return _granted(route, scope.get("query_string", b""), settings.token_secret)
    except Exception:
        logger.exception("error while routing %r", scope.get("path"))
        return close_codes.REJECTED_INTERNAL_ERROR
    return route


def _granted(route: Route, query_string: bytes, secret: str) -> Route | Rejection:
    """``route`` with what its ``?token=`` grants, or why the token is refused (contract §10)."""
    from .access import check_token

    tokens = query_values(query_string, "token")
    if len(tokens) > 1:
        return close_codes.TOKEN_MALFORMED
    room = route.room if route.endpoint in (Endpoint.CHAT, Endpoint.FEED) else None  # broadcast is not a room
    grant = check_token(tokens[0] if tokens else None, secret, room)
    return grant if isinstance(grant, Rejection) else replace(route, grant=grant)


async def refuse(connection: Connection, scope: WebSocketScope, rejection: Rejection) -> None:
    """Refuse the handshake with ``rejection``'s status and body, or with the server's 403 where it must."""
    if "websocket.http.response" in (scope.get("extensions") or {}):
        body = rejection.body.encode()
        start: WebSocketResponseStartEvent = {
            "type": "websocket.http.response.start",
            "status": rejection.status,
            "headers": [
                (b"content-type", rejection.content_type.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
        if await connection.send(start):
            await connection.send({"type": "websocket.http.response.body", "body": body, "more_body": False})
    else:
        # The code is ignored before accept; 1000 because daphne raises on 1008 and 1011.
        await connection.send({"type": "websocket.close", "code": 1000, "reason": ""})
