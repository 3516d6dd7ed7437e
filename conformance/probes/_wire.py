"""A WebSocket client on a bare socket, for the probes that must see what a correct client refuses.

:class:`~conformance.rawclient.RawClient` parses what the server sends with the
websockets protocol, which is right for almost every probe.  Two kinds of
probe need less help:

- **close frames an app asked for**: a server may put a code on the wire that
  RFC 6455 §7.4 forbids (1005, 999, 5000) or a reason longer than a control
  frame holds.  websockets fails the connection on those and keeps nothing;
  :class:`WireClient` reports the bytes.
- **messages larger than the server accepts**: the server closes while the
  client is still sending.  Over an asyncio stream, the failed write poisons
  the reader, and the server's close frame, already received, is lost or not
  depending on timing.  Here the sending and the reading are separate socket
  calls (``loop.sock_sendall``, ``loop.sock_recv``), so whatever the server sent
  before its RST is always read.

It validates nothing and answers nothing by itself (no pongs, no close
replies): a probe does exactly what it says.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from typing import Any

from websockets.frames import Frame, Opcode

__all__ = ["SEND_CHUNK", "WireClient", "close_view"]

SEND_CHUNK = 256 * 1024  # bytes per socket write, so that a refused message stops early
RECEIVE_CHUNK = 65536


def close_view(payload: bytes) -> dict[str, Any]:
    """A close frame's payload as code and reason, whatever they are (RFC 6455 §5.5.1)."""
    if len(payload) < 2:
        return {"code": None, "payload_length": len(payload)}
    return {
        "code": int.from_bytes(payload[:2], "big"),
        "reason": payload[2:].decode(errors="replace"),
        "reason_bytes": len(payload) - 2,
    }


class WireClient:
    """One connection: ``await open()``, then :meth:`send` bytes and :meth:`read_frame` frames, then :meth:`close`."""

    def __init__(self, host: str, port: int, path: str, headers: dict[str, str]) -> None:
        self._host = host  # where to connect
        self._port = port
        self._path = path  # the request target, with its query string
        self._headers = headers  # extra request headers
        self._sock: socket.socket | None = None  # set by open()
        self._buffer = bytearray()  # received and not yet parsed
        self.ended = False  # the server ended TCP (FIN or RST)

    async def open(self, within: float) -> int | None:
        """Connect and send the opening handshake; the response's status code, or None if none came."""
        loop = asyncio.get_running_loop()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setblocking(False)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {self._path} HTTP/1.1",
            f"Host: {self._host}:{self._port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *(f"{name}: {value}" for name, value in self._headers.items()),
        ]
        try:
            async with asyncio.timeout(within):
                await loop.sock_connect(self._sock, (self._host, self._port))
                await loop.sock_sendall(self._sock, ("\r\n".join(lines) + "\r\n\r\n").encode())
                while b"\r\n\r\n" not in self._buffer:
                    if not await self._receive():
                        return None
        except (OSError, TimeoutError):
            return None
        head, _, rest = bytes(self._buffer).partition(b"\r\n\r\n")
        self._buffer = bytearray(rest)  # frames that came with the response
        return int(head.split(b" ", 2)[1])

    async def send(self, data: bytes) -> bool:
        """Write ``data`` in chunks; False if the connection broke first (the server stopped listening)."""
        assert self._sock is not None
        loop = asyncio.get_running_loop()
        try:
            for start in range(0, len(data), SEND_CHUNK):
                await loop.sock_sendall(self._sock, data[start : start + SEND_CHUNK])
        except OSError:
            return False
        return True

    async def send_close(self, code: int | None = 1000, reason: str = "") -> None:
        """Send a close frame, if the connection still takes it; ``code=None`` sends an empty one (no code)."""
        payload = b"" if code is None else code.to_bytes(2, "big") + reason.encode()
        await self.send(Frame(Opcode.CLOSE, payload).serialize(mask=True))

    async def read_frame(self, within: float) -> tuple[int, bytes] | None:
        """The next frame other than a ping or pong: opcode and payload (RFC 6455 §5.2, nothing checked).

        None at the end of TCP or after ``within`` seconds.  Keepalive pings are
        skipped, unanswered: they come at times of the server's choosing.
        """
        try:
            async with asyncio.timeout(within):
                while True:
                    while (frame := self._parse()) is None:
                        if not await self._receive():
                            return None
                    if frame[0] not in (Opcode.PING, Opcode.PONG):
                        return frame
        except TimeoutError:
            return None

    async def read_to_end(self, within: float) -> bool:
        """Discard what comes until the server ends TCP; False if it has not within ``within`` seconds."""
        try:
            async with asyncio.timeout(within):
                while await self._receive():
                    self._buffer.clear()
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    # Internals

    async def _receive(self) -> bool:
        """Append what arrives to the buffer; False once the server has ended TCP (FIN or RST)."""
        assert self._sock is not None
        try:
            data = await asyncio.get_running_loop().sock_recv(self._sock, RECEIVE_CHUNK)
        except OSError:
            data = b""
        if not data:
            self.ended = True
            return False
        self._buffer += data
        return True

    def _parse(self) -> tuple[int, bytes] | None:
        """Take one whole frame off the buffer, or None if it has not all arrived."""
        buffer = self._buffer
        if len(buffer) < 2:
            return None
        length, offset = buffer[1] & 0x7F, 2
        if length >= 126:
            size = 2 if length == 126 else 8
            if len(buffer) < offset + size:
                return None
            length, offset = int.from_bytes(buffer[offset : offset + size], "big"), offset + size
        mask = b""
        if buffer[1] & 0x80:  # servers must not mask; this client does not judge
            mask, offset = bytes(buffer[offset : offset + 4]), offset + 4
        if len(buffer) < offset + length:
            return None
        payload = bytes(buffer[offset : offset + length])
        if mask:
            payload = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
        opcode = buffer[0] & 0x0F
        del buffer[: offset + length]
        return opcode, payload
