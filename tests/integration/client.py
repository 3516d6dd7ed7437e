"""Client-side helpers for the integration tests: what a test does *to* a server.

- :func:`refusal`: a handshake that must be refused before accept; its HTTP status and body.
- :func:`server_close`: read until the server closes the connection; its close code and reason.
- :func:`still_serves`: a well-behaved client is answered, and leaves no connection behind.

Everything else is the ``websockets`` client as users call it:
``async with connect(server.url("/ws")) as ws``, or, where a test must send
what a correct client never would or end with a TCP reset,
:class:`conformance.rawclient.RawClient`.
"""

from __future__ import annotations

import anyio
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from asgi_ws.servers import SERVERS
from conformance.launcher import RunningServer

__all__ = ["refusal", "refused_as", "server_close", "still_serves"]

PATIENCE = 60.0  # seconds for the server to wind a connection down; only a hung server takes that long


def refused_as(server_name: str, status: int, body: bytes) -> tuple[int, bytes]:
    """How the app's refusal with ``status`` and ``body`` reaches the client under ``server_name``.

    Where the server does not offer the websocket.http.response extension
    (``denial_response`` in asgi_ws.servers), the app closes before accept
    instead, and the server answers that with a bare 403 (contract §3, "Rejections before accept").
    """
    return (status, body) if SERVERS[server_name].denial_response else (403, b"")


async def refusal(url: str, origin: str | None = None) -> tuple[int, bytes]:
    """Open a handshake to ``url`` that the server must refuse; the response's status and body."""
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, origin=origin):
            pass
    response = refused.value.response
    return response.status_code, bytes(response.body)


async def server_close(ws: ClientConnection) -> tuple[int, str]:
    """Drop messages until the connection closes; the code and reason of the server's close frame."""
    try:
        while True:
            await ws.recv()
    except ConnectionClosed as closed:
        received = closed.rcvd
    assert received is not None, "the connection ended without a close frame from the server"
    return received.code, received.reason


async def still_serves(server: RunningServer) -> None:
    """A well-behaved client is answered, and no connection is left over once it is gone."""
    async with connect(server.url("/echo")) as ws:
        await ws.send("still here?")
        assert await ws.recv() == "still here?"
    await anyio.to_thread.run_sync(server.wait_for_health, lambda document: document["connections"] == 0, PATIENCE)
