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
  (:meth:`~ListeningClient.on_text`, :meth:`~ListeningClient.on_close`);
- given an ``offer`` (:data:`bench.browser.BROWSER_OFFER`, as a browser sends),
  it offers permessage-deflate, and inflates the compressed messages of a server
  that accepted (RFC 7692 §7.2.2): with one inflater kept from message to
  message, made when the first compressed message arrives, or a fresh one per
  message if the server said ``server_no_context_takeover``.  A browser keeps
  its inflater for the connection's life; here a client that never receives a
  compressed message never holds one, which only spares the load generator.

What it leaves out, on purpose: it sends no data frame, so the only frames it
masks are its pongs; it does not check the server's ``Sec-WebSocket-Accept``,
so every client sends RFC 6455's sample key; and it does not join fragments,
since the messages it listens to are a few bytes, one frame each.  It sends
nothing compressed, since it sends no data at all.

This module does not count, time or check what arrives: its subclasses do.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import cast

from websockets.frames import Frame, Opcode

from conformance.rawclient import parse_frame

__all__ = ["ListeningClient", "handshake"]

SAMPLE_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3's example key: the server's answer is not checked
NO_STATUS = 1005  # the close code of a close frame without one (RFC 6455 §7.1.5)
RSV1 = 0x40  # the first byte's bit that marks a compressed message (RFC 7692 §6)
TAIL = b"\x00\x00\xff\xff"  # what the sender stripped off the end of each compressed message (RFC 7692 §7.2.1)
NO_TAKEOVER = b"server_no_context_takeover"


def handshake(path: str, host: str, offer: str | None = None) -> bytes:
    """The opening handshake's request for ``path``, with ``host`` as its Host header (RFC 6455 §4.1).

    ``offer``: a ``Sec-WebSocket-Extensions`` line to send, such as :data:`bench.browser.BROWSER_OFFER`.
    """
    extensions = f"Sec-WebSocket-Extensions: {offer}\r\n" if offer else ""
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {SAMPLE_KEY}\r\nSec-WebSocket-Version: 13\r\n{extensions}\r\n"
    ).encode()


class ListeningClient(asyncio.Protocol):
    """One connection that sends its handshake, then reads frames and answers pings.

    Subclasses override :meth:`on_text` and :meth:`on_close`; they add
    ``__slots__`` of their own, since there may be 100,000 of them.
    """

    __slots__ = ("buffer", "inflater", "opened", "request", "takeover", "transport", "upgraded")

    def __init__(self, request: bytes) -> None:
        self.request = request  # the opening handshake, sent on connecting (see handshake())
        self.transport: asyncio.Transport | None = None  # set once connected
        self.buffer = bytearray()  # bytes not yet parsed: the response's head, or a partial frame
        self.upgraded = False  # the server answered 101: what follows is frames
        self.takeover = True  # the server keeps its compression context from message to message
        self.inflater: zlib._Decompress | None = None  # made by the first compressed message
        # Resolved once the response's head is in: None on 101, ConnectionError otherwise.
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # What a subclass does with what arrives

    def on_text(self, payload: bytes) -> None:
        """A text frame's payload (UTF-8, not decoded), inflated if it arrived compressed."""

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
        while self.buffer:
            compressed = self.buffer[0] & RSV1  # read before parse_frame takes the frame off the buffer
            frame = parse_frame(self.buffer)
            if frame is None:
                return  # the rest of the frame is still on its way
            opcode, payload = frame
            if opcode == Opcode.TEXT:
                self.on_text(self._inflate(payload) if compressed else payload)
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

    def _inflate(self, payload: bytes) -> bytes:
        """A compressed message's payload, inflated (RFC 7692 §7.2.2)."""
        if self.inflater is None or not self.takeover:
            self.inflater = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate; the largest window reads any
        return self.inflater.decompress(payload + TAIL)

    def _response_head(self) -> bool:
        """Take the handshake's response off the buffer once it is all in; True if it is a 101.

        A refusal closes the connection, and :attr:`opened` carries its status line.
        """
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self.buffer[:end])
        status_line = head.split(b"\r\n", 1)[0]
        self.takeover = NO_TAKEOVER not in head.lower()
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
