"""A WebSocket client that only listens, cheap enough to hold by the ten thousand.

The soak (:mod:`bench.soak`) and P8's 100,000 clients (:mod:`bench.c100k_client`)
hold many connections that only receive: a full client library per connection
would be the bottleneck, not the server.  :class:`ListeningClient` is a bare
:class:`asyncio.Protocol`, with no task per connection:

- it sends the opening handshake (RFC 6455 §4.1) as soon as it is connected,
  and resolves :attr:`ListeningClient.opened` when the response's head is in:
  with None on ``101``, with :class:`ConnectionError` otherwise;
- it takes each whole frame off its buffer with
  :func:`conformance.rawclient.parse_frame`, the parser the conformance
  harness reads servers with;
- it answers pings (§5.5.2), so that a server's keepalive never closes it, and
  hands text frames and the server's close frame to its subclass
  (:meth:`~ListeningClient.on_text`, :meth:`~ListeningClient.on_close`).

What it leaves out, on purpose: it sends no data frame, so the only frames it
masks are its pongs; it does not check the server's ``Sec-WebSocket-Accept``,
so every client sends RFC 6455's sample key; and it does not join fragments,
since the messages it listens to are a few bytes, one frame each.

This module does not count, time or check what arrives: its subclasses do.
"""

from __future__ import annotations

import asyncio
from typing import cast

from websockets.frames import Frame, Opcode

from conformance.rawclient import parse_frame

__all__ = ["ListeningClient", "handshake"]

SAMPLE_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3's example key: the server's answer is not checked
NO_STATUS = 1005  # the close code of a close frame without one (RFC 6455 §7.1.5)


def handshake(path: str, host: str) -> bytes:
    """The opening handshake's request for ``path``, with ``host`` as its Host header (RFC 6455 §4.1)."""
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {SAMPLE_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


class ListeningClient(asyncio.Protocol):
    """One connection that sends its handshake, then reads frames and answers pings.

    Subclasses override :meth:`on_text` and :meth:`on_close`; they add
    ``__slots__`` of their own, since there may be 100,000 of them.
    """

    __slots__ = ("buffer", "opened", "request", "transport", "upgraded")

    def __init__(self, request: bytes) -> None:
        self.request = request  # the opening handshake, sent on connecting (see handshake())
        self.transport: asyncio.Transport | None = None  # set once connected
        self.buffer = bytearray()  # bytes not yet parsed: the response's head, or a partial frame
        self.upgraded = False  # the server answered 101: what follows is frames
        # Resolved once the response's head is in: None on 101, ConnectionError otherwise.
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # What a subclass does with what arrives

    def on_text(self, payload: bytes) -> None:
        """A text frame's payload, as it arrived (UTF-8, not decoded)."""

    def on_close(self, code: int) -> None:
        """The server's close frame, by its code (1005 if it has none)."""

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # uvloop's TCPTransport is not a subclass
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded and not self._response_head():
            return
        while (frame := parse_frame(self.buffer)) is not None:
            opcode, payload = frame
            if opcode == Opcode.TEXT:
                self.on_text(payload)
            elif opcode == Opcode.PING and self.transport is not None:
                self.transport.write(Frame(Opcode.PONG, payload).serialize(mask=True))
            elif opcode == Opcode.CLOSE:
                self.on_close(int.from_bytes(payload[:2], "big") if len(payload) >= 2 else NO_STATUS)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("the connection ended before the handshake's response"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # Internals

    def _response_head(self) -> bool:
        """Take the handshake's response off the buffer once it is all in; True if it is a 101.

        A refusal closes the connection, and :attr:`opened` carries its status line.
        """
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        status_line = bytes(self.buffer[: self.buffer.find(b"\r\n")])
        del self.buffer[: end + 4]
        self.upgraded = status_line.startswith(b"HTTP/1.1 101")
        if not self.opened.done():
            if self.upgraded:
                self.opened.set_result(None)
            else:
                self.opened.set_exception(ConnectionError(f"handshake refused: {status_line.decode('latin-1')}"))
        if not self.upgraded:
            self.close()
        return self.upgraded
