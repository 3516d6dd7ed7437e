"""Clients that open their WebSockets as a browser does: with permessage-deflate offered (RFC 7692).

Every browser offers compression when it opens a WebSocket, and most servers
accept it unless told not to, so a benchmark whose clients offer nothing
measures a client that no browser is.  Chromium 156 sends this line (captured
from a real Chromium by ``tests/integration/test_browser_offer.py``)::

    Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits

that is, "compress if you like; I can take any window size for what I send".
Two clients here offer exactly that line:

- :func:`connect`, the ``websockets`` library's client, which offers it word
  for word with its default ``compression="deflate"`` and compresses what it
  sends, as a browser does.  Its connections count the bytes that arrive
  (:class:`CountingConnection`), so that a benchmark can see the wire;
- :class:`bench.listening_client.ListeningClient` with ``offer=BROWSER_OFFER``,
  for the 100,000 clients of P8, which only listen.

:func:`connect` with ``deflate=False`` is the same client offering nothing:
the baseline that every other benchmark uses.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as websockets_connect

__all__ = ["BROWSER_OFFER", "CountingConnection", "connect", "negotiated"]

BROWSER_OFFER = "permessage-deflate; client_max_window_bits"  # Chromium 156's Sec-WebSocket-Extensions


class CountingConnection(ClientConnection):
    """A ``websockets`` client connection that counts the bytes it has received, frame headers included."""

    bytes_received = 0  # every byte after the handshake's request, the handshake's response included

    def data_received(self, data: bytes) -> None:
        self.bytes_received += len(data)
        super().data_received(data)


@contextlib.asynccontextmanager
async def connect(url: str, *, deflate: bool, **options: Any) -> AsyncIterator[CountingConnection]:
    """Open ``url`` offering permessage-deflate as Chromium does, or offering nothing.

    The client sends no pings of its own, as a browser does not; it answers the server's.
    ``options`` go to ``websockets.asyncio.client.connect``.
    """
    async with websockets_connect(
        url,
        compression="deflate" if deflate else None,
        create_connection=CountingConnection,
        ping_interval=None,
        max_size=None,
        **options,
    ) as connection:
        assert isinstance(connection, CountingConnection)
        yield connection


def negotiated(connection: ClientConnection) -> str:
    """What the server accepted of the offer: its ``Sec-WebSocket-Extensions``, or "" for nothing."""
    assert connection.response is not None
    return connection.response.headers.get("Sec-WebSocket-Extensions", "")
