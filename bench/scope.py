"""A ``websocket`` scope as a server builds it, for calling the app in process with no server.

:mod:`bench.concurrency` times the app that way, and the unit tests drive it
that way (``tests/asgi_driver.py``); both call the app with the scope of
:func:`websocket_scope`.  The keys are those of the ASGI WebSocket
specification's connection scope (version 2.4), with the values a server on
127.0.0.1:8000 gives a client on 127.0.0.1.

This module builds the scope only: the events that follow it (connect,
receive, disconnect) are each caller's.
"""

from __future__ import annotations

from typing import Any

__all__ = ["websocket_scope"]

SERVER = ("127.0.0.1", 8000)  # where the app is served, as the scope's "server" says
CLIENT = ("127.0.0.1", 50000)  # the client's address and port, as its "client" says


def websocket_scope(
    path: str,
    *,
    query_string: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    extensions: dict[str, dict[object, object]] | None = None,
) -> dict[str, Any]:
    """The scope of a WebSocket handshake for ``path``: only a Host header unless ``headers`` are given.

    ``extensions``: what the server offers, such as ``{"websocket.http.response": {}}``
    (an app may then refuse with an HTTP response); none by default.
    """
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "ws",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query_string,
        "root_path": "",
        "headers": [(b"host", f"{SERVER[0]}:{SERVER[1]}".encode())] if headers is None else headers,
        "client": CLIENT,
        "server": SERVER,
        "subprotocols": [],
        "extensions": {} if extensions is None else extensions,
    }
