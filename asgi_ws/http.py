"""Plain HTTP requests: ``/healthz``, and 404 for everything else (SPEC §2).

This module owns the ``http`` scope.  The health document is built by
:func:`health`, a pure function of the hub, so it can be tested without a
server.  ``GET /`` (the demo page) and ``GET /metrics`` are not served yet and
answer 404 like any other unknown path.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from asgiref.typing import ASGIReceiveCallable, ASGISendCallable, HTTPScope

    from .hub import Hub

__all__ = ["handle_http", "health"]

JSON = b"application/json"
TEXT = b"text/plain; charset=utf-8"


def health(hub: Hub) -> dict[str, Any]:
    """SPEC §2: the ``/healthz`` document.  Degraded while the broker cannot reach other processes."""
    broker = hub.broker.state()
    return {
        "status": "ok" if broker["connected"] else "degraded",
        "connections": hub.connections,
        "rooms": hub.room_count,
        "broker": broker,
    }


async def handle_http(scope: HTTPScope, receive: ASGIReceiveCallable, send: ASGISendCallable, hub: Hub) -> None:
    """Answer one HTTP request.  The request body, if any, is not read: no endpoint takes one."""
    if scope["path"] != "/healthz":
        await respond(send, scope, 404, TEXT, b"not found\n")
    elif scope["method"] not in ("GET", "HEAD"):
        await respond(send, scope, 405, TEXT, b"method not allowed\n", [(b"allow", b"GET, HEAD")])
    else:
        document = health(hub)
        status = 200 if document["status"] == "ok" else 503
        await respond(send, scope, status, JSON, json.dumps(document).encode() + b"\n")


async def respond(
    send: ASGISendCallable,
    scope: HTTPScope,
    status: int,
    content_type: bytes,
    body: bytes,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Send a complete response in one body event.  HEAD gets the headers only."""
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *(extra_headers or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers, "trailers": False})
    if scope["method"] == "HEAD":
        body = b""
    await send({"type": "http.response.body", "body": body, "more_body": False})
