"""A WebSocket client that shows the wire: frames in and out exactly as sent.

The ``websockets`` client is what users run and what most scenarios use.  It
hides what some scenarios must see or do: send a fragmented message or a text
frame with invalid UTF-8, send a close frame with no code, read the server's
ping frames, end with a TCP reset instead of a closing handshake, or keep the
handshake's full HTTP response.  :class:`RawClient` does those.

It is built on the sans-I/O protocol of ``websockets`` (``ClientProtocol``): the
handshake and the parsing of incoming frames are that library's, tested code.
Outgoing frames are written either through the protocol (well-formed) or as
bytes serialized from a :class:`websockets.frames.Frame` straight onto the
socket, which bypasses every check: that is how malformed frames get out.

Everything is asyncio, bounded by timeouts, and bound to the given host.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType

from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.typing import Origin, Subprotocol
from websockets.uri import parse_uri

__all__ = ["Handshake", "RawClient", "Received"]

TIMEOUT = 10.0  # seconds any one read may wait before the scenario counts as hung
READ_CHUNK = 65536


@dataclass(frozen=True, slots=True)
class Handshake:
    """The server's answer to the opening handshake."""

    status: int  # 101 when accepted
    headers: tuple[tuple[str, str], ...]  # lower-case names, in order
    body: bytes  # the body of a refusal, b"" when accepted

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name.lower()), None)


@dataclass(slots=True)
class Received:
    """What came back from the server, frame by frame, until the connection ended."""

    frames: list[Frame] = field(default_factory=list)  # data and control frames, in order
    eof: bool = False  # the server closed the TCP connection (with FIN, or with RST: see reset)
    reset: bool = False  # the server ended the TCP connection with RST


class RawClient:
    """One WebSocket connection with full control over the frames.

    ``async with RawClient(host, port, "/echo") as ws`` performs the opening
    handshake (``ws.handshake`` holds the response, accepted or not) and, on
    exit, closes the socket without a closing handshake unless one was done.
    """

    def __init__(
        self,
        host: str,
        port: int,
        path: str,
        *,
        headers: Sequence[tuple[str, str]] = (),
        origin: str | None = None,
        subprotocols: Sequence[str] = (),
        extensions_header: str | None = None,
        socket_options: Sequence[tuple[int, int, int]] = (),
    ) -> None:
        self._uri = parse_uri(f"ws://{host}:{port}{path}")  # where to connect
        self._headers = list(headers)  # extra request headers
        self._origin = origin  # the Origin header, if any
        self._subprotocols = list(subprotocols)  # offered in Sec-WebSocket-Protocol
        self._extensions_header = extensions_header  # a raw Sec-WebSocket-Extensions offer
        self._socket_options = list(socket_options)  # (level, option, value), set before connecting
        self.protocol = ClientProtocol(
            self._uri,
            origin=Origin(origin) if origin else None,
            subprotocols=[Subprotocol(name) for name in subprotocols] or None,
            max_size=None,
        )  # handshake and frame parsing
        self._sock: socket.socket | None = None  # non-blocking, driven by the loop's sock_* calls
        self.handshake: Handshake | None = None  # set by the opening handshake
        self.received = Received()  # everything read so far
        self._next_frame = 0  # index in received.frames of the frame next_frame() returns next

    # Connection

    async def __aenter__(self) -> RawClient:
        await self.open()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.abort()

    async def open(self) -> Handshake:
        """Connect and perform the opening handshake; the response, whatever its status."""
        loop = asyncio.get_running_loop()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        for level, option, setting in self._socket_options:
            self._sock.setsockopt(level, option, setting)
        self._sock.setblocking(False)
        await asyncio.wait_for(loop.sock_connect(self._sock, (self._uri.host, self._uri.port)), TIMEOUT)
        request = self.protocol.connect()
        for name, value in self._headers:
            request.headers[name] = value
        if self._extensions_header is not None:
            request.headers["Sec-WebSocket-Extensions"] = self._extensions_header
        self.protocol.send_request(request)
        await self._flush()
        while self.handshake is None and self.protocol.handshake_exc is None:
            if not await self._read_some():
                break
        if self.handshake is None:
            raise ConnectionError(f"no handshake response: {self.protocol.handshake_exc!r}")
        return self.handshake

    def reset(self) -> None:
        """End the TCP connection with RST: no closing handshake, unsent data dropped."""
        if self._sock is None:
            return
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.abort()

    def abort(self) -> None:
        """Close the socket now, whatever the state."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    # Sending

    async def send_text(self, text: str) -> None:
        self.protocol.send_text(text.encode())
        await self._flush()

    async def send_binary(self, data: bytes) -> None:
        self.protocol.send_binary(data)
        await self._flush()

    async def send_frame(self, frame: Frame) -> None:
        """Write ``frame`` as is: no check of UTF-8, fragmentation or close codes."""
        await self._write(frame.serialize(mask=True))

    async def send_raw(self, data: bytes) -> None:
        """Write bytes onto the socket, e.g. half a frame."""
        await self._write(data)

    async def send_fragmented_text(self, text: str, pieces: int) -> None:
        """One text message as ``pieces`` frames: TEXT, then CONTINUATIONs."""
        payload = text.encode()
        size = max(1, -(-len(payload) // pieces))
        chunks = [payload[i : i + size] for i in range(0, len(payload), size)] or [b""]
        for index, chunk in enumerate(chunks):
            opcode = Opcode.TEXT if index == 0 else Opcode.CONT
            await self.send_frame(Frame(opcode, chunk, fin=index == len(chunks) - 1))

    async def close(self, code: int | None = 1000, reason: str = "") -> None:
        """Send a close frame; ``code=None`` sends one with an empty payload (no code).

        While the connection is open the frame goes through the protocol, so
        that it knows the closing handshake has started: it then takes the
        server's close frame as the reply, instead of answering it with a second
        close frame of its own (RFC 6455 §5.5.1 allows one).
        """
        if self.protocol.state is State.OPEN:
            self.protocol.send_close(code, reason)
            await self._flush()
            return
        payload = b"" if code is None else Close(code, reason).serialize()
        await self.send_frame(Frame(Opcode.CLOSE, payload))

    # Receiving

    async def next_frame(self, within: float = TIMEOUT) -> Frame | None:
        """The first frame from the server not returned yet, or None once the connection has ended.

        Frames are handed out one by one even when one read brought several.
        """
        async with asyncio.timeout(within):
            while len(self.received.frames) <= self._next_frame:
                if not await self._read_some():
                    return None
        frame = self.received.frames[self._next_frame]
        self._next_frame += 1
        return frame

    async def read_until_closed(self, within: float = TIMEOUT) -> Received:
        """Read (answering the server's close as the protocol does) until the server ends TCP."""
        async with asyncio.timeout(within):
            while await self._read_some():
                pass
        return self.received

    # Internals

    async def _read_some(self) -> bool:
        """Read one chunk into the protocol; False at EOF."""
        # The loop's sock_recv, not a StreamReader: a reader that saw an RST raises it
        # before handing over data it had already buffered, such as the close frame
        # that came just before the RST.  Here every byte read is returned first.
        if self._sock is None:
            return False
        try:
            data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(self._sock, READ_CHUNK), TIMEOUT)
        except ConnectionResetError:
            # An RST ends the connection as surely as a FIN; what came before it was read.
            self.received.reset = True
            data = b""
        if not data:
            self.protocol.receive_eof()
            self.received.eof = True
            self._collect_events()  # a refusal without Content-Length ends at EOF (daphne's 403)
            return False
        self.protocol.receive_data(data)
        self._collect_events()
        await self._flush()  # pongs and close replies the protocol queued
        return True

    def _collect_events(self) -> None:
        for event in self.protocol.events_received():
            if isinstance(event, Response):  # the protocol's first event: the handshake's answer
                self.handshake = _handshake(event)
            elif isinstance(event, Frame):
                self.received.frames.append(event)

    async def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                await self._write(data)

    async def _write(self, data: bytes) -> None:
        if self._sock is None:
            return
        # ConnectionError: the server has gone; what it sent before is still readable.
        with contextlib.suppress(ConnectionError):
            await asyncio.wait_for(asyncio.get_running_loop().sock_sendall(self._sock, data), TIMEOUT)


def _handshake(response: Response) -> Handshake:
    headers = tuple((name.lower(), value) for name, value in response.headers.raw_items())
    return Handshake(response.status_code, headers, bytes(response.body or b""))
