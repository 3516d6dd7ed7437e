"""Plain HTTP requests: the demo page, ``/healthz``, ``/metrics``, and 404 (contract §2).

This module owns the ``http`` scope.  Every response is small and complete, so
each is sent as one ``http.response.start`` and one body event.  No endpoint
takes a request body, so none is read.

- ``GET /``: the demo page, one self-contained HTML file
  (``asgi_ws/static/index.html``: vanilla JS, no external resources), read
  once and served from memory.  Its script connects back to the host that
  served it, so the origin check of contract §3 lets it in on every server.
- ``GET /feed.js``: the feed's JavaScript client (``asgi_ws/static/feed.js``),
  which the demo page's feed panel runs on, for pages of your own too.
- ``GET /healthz``: the document :func:`health` builds, a pure function of
  the hub; 503 while the broker is disconnected.
- ``GET /metrics``: the Prometheus text format (:mod:`asgi_ws.metrics`).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import TYPE_CHECKING, Any

from .metrics import CONTENT_TYPE as METRICS

if TYPE_CHECKING:
    from asgiref.typing import ASGIReceiveCallable, ASGISendCallable, HTTPScope

    from .hub import Hub
    from .metrics import Metrics

__all__ = ["DEMO_PAGE", "handle_http", "health"]

JSON = b"application/json"
TEXT = b"text/plain; charset=utf-8"
HTML = b"text/html; charset=utf-8"
JAVASCRIPT = b"text/javascript; charset=utf-8"

DEMO_PAGE = resources.files("asgi_ws").joinpath("static/index.html").read_bytes()
# The feed's JavaScript client (docs/feed.md): the demo page's feed panel runs on it.
FEED_CLIENT = resources.files("asgi_ws").joinpath("static/feed.js").read_bytes()
# The page's own inline script and style, /feed.js, WebSockets to its own origin, and nothing else.
DEMO_PAGE_POLICY = (
    b"default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; "
    b"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def health(hub: Hub) -> dict[str, Any]:
    """contract §2: the ``/healthz`` document.  Degraded while the broker cannot reach other processes."""
    broker = hub.broker.state()
    return {
        "status": "ok" if broker["connected"] else "degraded",
        "connections": hub.connections,
        "rooms": hub.room_count,
        "broker": broker,
    }


async def handle_http(
    scope: HTTPScope, receive: ASGIReceiveCallable, send: ASGISendCallable, hub: Hub, metrics: Metrics
) -> None:
    """Answer one HTTP request."""
    path = scope["path"]
    if path not in ("/", "/feed.js", "/healthz", "/metrics"):
        await respond(send, scope, 404, TEXT, b"not found\n")
    elif scope["method"] not in ("GET", "HEAD"):
        await respond(send, scope, 405, TEXT, b"method not allowed\n", [(b"allow", b"GET, HEAD")])
    elif path == "/":
        headers = [(b"content-security-policy", DEMO_PAGE_POLICY), (b"x-content-type-options", b"nosniff")]
        await respond(send, scope, 200, HTML, DEMO_PAGE, headers)
    elif path == "/feed.js":
        await respond(send, scope, 200, JAVASCRIPT, FEED_CLIENT, [(b"x-content-type-options", b"nosniff")])
    elif path == "/metrics":
        await respond(send, scope, 200, METRICS, metrics.render())
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
