"""A WebSocket client that shows the wire: frames in and out exactly as sent.

The ``websockets`` client is what users run and what most checks and tests
use.  It hides what some of them must see or do: send a fragmented message, a
text frame with invalid UTF-8, a close frame with no code or half a frame; read
the server's ping frames; end with a TCP reset, or a bare FIN, instead of a
closing handshake;
set socket options (a small receive buffer makes a stalled reader); or keep the
handshake's full HTTP response.  :class:`RawClient` is the project's one
hand-written client that does those.

It is built on the sans-I/O protocol of ``websockets`` (``ClientProtocol``): the
handshake request and, by default, the parsing of incoming frames are that
library's, tested code.  Outgoing frames are written either through the
protocol (well-formed) or as bytes serialized from a
:class:`websockets.frames.Frame` straight onto the socket, which bypasses every
check: that is how malformed frames get out.

Two kinds of check need a client that parses and answers nothing.  Those
open the client with ``lenient=True``:

- **close frames an app asked for**: a server may put a code on the wire that
  RFC 6455 §7.4 forbids (1005, 999, 5000) or a reason longer than a control
  frame holds.  The protocol fails the connection on those and keeps nothing;
  a lenient client hands over the frame's bytes (:meth:`RawClient.read_frame`).
- **messages larger than the server accepts**: the server closes while the
  client is still sending.  Over an asyncio stream, the failed write poisons
  the reader, and the server's close frame, already received, is lost or not
  depending on timing.  Here the sending and the reading are separate socket
  calls (``loop.sock_sendall``, ``loop.sock_recv``), so whatever the server sent
  before its RST is always read.

A lenient client also sends its request target exactly as given (parsing it as
a URL would drop an empty query), splits the
handshake response by hand, and sends no pong and no close reply by itself: a
check does exactly what it says.

Everything is asyncio, bounded by timeouts (a lenient client's by its caller's),
and bound to the given host.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.typing import Origin, Subprotocol
from websockets.uri import parse_uri

__all__ = ["SEND_CHUNK", "Handshake", "RawClient", "Received", "close_view", "parse_frame"]

TIMEOUT = 10.0  # seconds any one read may wait before the scenario counts as hung
READ_CHUNK = 65536
SEND_CHUNK = 256 * 1024  # bytes per socket write of send_in_chunks, so that a refused message stops early


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

    frames: list[Frame] = field(default_factory=list)  # data and control frames, in order (not when lenient)
    eof: bool = False  # the server closed the TCP connection (with FIN, or with RST: see reset)
    reset: bool = False  # the server ended the TCP connection with RST


def close_view(payload: bytes) -> dict[str, Any]:
    """A close frame's payload as code and reason, whatever they are (RFC 6455 §5.5.1)."""
    if len(payload) < 2:
        return {"code": None, "payload_length": len(payload)}
    return {
        "code": int.from_bytes(payload[:2], "big"),
        "reason": payload[2:].decode(errors="replace"),
        "reason_bytes": len(payload) - 2,
    }


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
        lenient: bool = False,
    ) -> None:
        self._uri = parse_uri(f"ws://{host}:{port}{path}")  # where to connect
        self._target = path  # the request target as given, sent byte for byte when lenient
        self._headers = list(headers)  # extra request headers
        self._origin = origin  # the Origin header, if any
        self._subprotocols = list(subprotocols)  # offered in Sec-WebSocket-Protocol
        self._extensions_header = extensions_header  # a raw Sec-WebSocket-Extensions offer
        self._socket_options = list(socket_options)  # (level, option, value), set before connecting
        self.lenient = lenient  # parse and answer nothing after the request: see the module's docstring
        self.protocol = ClientProtocol(
            self._uri,
            origin=Origin(origin) if origin else None,
            subprotocols=[Subprotocol(name) for name in subprotocols] or None,
            max_size=None,
        )  # the handshake request; unless lenient, the response and frame parsing too
        self._sock: socket.socket | None = None  # non-blocking, driven by the loop's sock_* calls
        self.handshake: Handshake | None = None  # set by the opening handshake
        self.received = Received()  # everything read so far
        self._next_frame = 0  # index in received.frames of the frame next_frame() returns next
        self._unparsed = bytearray()  # lenient: bytes received and not yet parsed

    # Connection

    async def __aenter__(self) -> RawClient:
        await self.open()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.abort()

    async def open(self, early: bytes = b"") -> Handshake:
        """Connect and perform the opening handshake; the response, whatever its status.

        ``early``: bytes written in the same socket write as the request, before
        any response is read (frames sent ahead of the 101).  Raises
        ``ConnectionError`` if the server ends TCP before a response,
        ``TimeoutError`` if a step takes longer than ``TIMEOUT`` (not when
        lenient: then the caller's own timeout bounds the wait).
        """
        loop = asyncio.get_running_loop()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        for level, option, setting in self._socket_options:
            self._sock.setsockopt(level, option, setting)
        self._sock.setblocking(False)
        await asyncio.wait_for(loop.sock_connect(self._sock, (self._uri.host, self._uri.port)), TIMEOUT)
        request = self.protocol.connect()
        if self.lenient:
            request.path = self._target
        for name, value in self._headers:
            request.headers[name] = value
        if self._extensions_header is not None:
            request.headers["Sec-WebSocket-Extensions"] = self._extensions_header
        self.protocol.send_request(request)
        await self._write(b"".join(self.protocol.data_to_send()) + early)
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
        # struct linger {int l_onoff; int l_linger;}: on, with no time to send what is pending.
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.abort()

    def end_sending(self) -> None:
        """End the sending half of TCP with FIN, without a close frame; reading goes on (a half-close)."""
        if self._sock is not None:
            self._sock.shutdown(socket.SHUT_WR)

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

    async def send_half_frame(self, frame: Frame) -> None:
        """Write the first half of ``frame`` and nothing more: the server is left mid-frame."""
        data = frame.serialize(mask=True)
        await self._write(data[: len(data) // 2])

    async def send_raw(self, data: bytes) -> None:
        """Write bytes onto the socket, e.g. several frames at once."""
        await self._write(data)

    async def send_in_chunks(self, data: bytes) -> bool:
        """Write ``data`` in chunks of ``SEND_CHUNK``, with no time limit; False if the connection broke first.

        Meant to run as a task while the reading goes on: a server that stops
        reading (it refused the message) stops the sending, not the reading.
        """
        assert self._sock is not None
        loop = asyncio.get_running_loop()
        try:
            for start in range(0, len(data), SEND_CHUNK):
                await loop.sock_sendall(self._sock, data[start : start + SEND_CHUNK])
        except OSError:
            return False
        return True

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

        While the connection is open (and the client not lenient) the frame
        goes through the protocol, so that it knows the closing handshake has
        started: it then takes the server's close frame as the reply, instead of
        answering it with a second close frame of its own (RFC 6455 §5.5.1
        allows one).  Otherwise the code and reason go out unchecked: any code
        a test wants, valid or not.
        """
        if self.protocol.state is State.OPEN and not self.lenient:
            self.protocol.send_close(code, reason)
            await self._flush()
            return
        payload = b"" if code is None else code.to_bytes(2, "big") + reason.encode()
        await self.send_frame(Frame(Opcode.CLOSE, payload))

    # Receiving, through the protocol

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

    # Receiving, lenient or not

    async def read_to_end(self, within: float = TIMEOUT) -> bool:
        """Read until the server ends TCP, keeping nothing when lenient; False if it has not within ``within`` s."""
        try:
            async with asyncio.timeout(within):
                while await self._read_some():
                    self._unparsed.clear()
        except TimeoutError:
            return False
        return True

    # Receiving, lenient

    async def read_frame(self, within: float) -> tuple[int, bytes] | None:
        """The next frame other than a ping or pong: opcode and payload (RFC 6455 §5.2, nothing checked).

        Lenient clients only.  None at the end of TCP or after ``within``
        seconds.  Keepalive pings are skipped, unanswered: they come at times of
        the server's choosing.
        """
        assert self.lenient, "read_frame() reads a lenient client; others have next_frame()"
        try:
            async with asyncio.timeout(within):
                while True:
                    while (frame := parse_frame(self._unparsed)) is None:
                        if not await self._read_some():
                            return None
                    if frame[0] not in (Opcode.PING, Opcode.PONG):
                        return frame
        except TimeoutError:
            return None

    # Internals

    async def _read_some(self) -> bool:
        """Read one chunk, into the protocol or (lenient) the unparsed bytes; False at EOF."""
        if self._sock is None:
            return False
        data = await self._recv(self._sock)
        if self.lenient:
            return self._take_lenient(data)
        if not data:
            self.protocol.receive_eof()
            self._collect_events()  # a refusal without Content-Length ends at EOF (daphne's 403)
            return False
        self.protocol.receive_data(data)
        self._collect_events()
        await self._flush()  # pongs and close replies the protocol queued
        return True

    async def _recv(self, sock: socket.socket) -> bytes:
        """One chunk from ``sock``; b"" once the server has ended TCP (FIN or RST)."""
        # The loop's sock_recv, not a StreamReader: a reader that saw an RST raises it
        # before handing over data it had already buffered, such as the close frame
        # that came just before the RST.  Here every byte read is returned first.
        reading = asyncio.get_running_loop().sock_recv(sock, READ_CHUNK)
        try:
            # A lenient client waits as long as its caller does (a server's handshake timeout may be 10 s).
            data = await (reading if self.lenient else asyncio.wait_for(reading, TIMEOUT))
        except ConnectionResetError:
            # An RST ends the connection as surely as a FIN; what came before it was read.
            self.received.reset = True
            data = b""
        except OSError:
            if not self.lenient:
                raise
            data = b""
        if not data:
            self.received.eof = True
        return data

    def _take_lenient(self, data: bytes) -> bool:
        """Keep ``data`` unparsed; before the handshake, split its response off by hand.  False at EOF."""
        self._unparsed += data
        if self.handshake is None and b"\r\n\r\n" in self._unparsed:
            head, _, rest = bytes(self._unparsed).partition(b"\r\n\r\n")
            self.handshake = _handshake_from_head(head, rest)
            self._unparsed = bytearray(rest)  # frames that came with the response
        return bool(data)

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
        sending = asyncio.get_running_loop().sock_sendall(self._sock, data)
        # ConnectionError (any OSError when lenient): the server has gone; what it sent
        # before is still readable.  A lenient client waits as long as its caller does.
        with contextlib.suppress(OSError if self.lenient else ConnectionError):
            await (sending if self.lenient else asyncio.wait_for(sending, TIMEOUT))


def _handshake(response: Response) -> Handshake:
    headers = tuple((name.lower(), value) for name, value in response.headers.raw_items())
    return Handshake(response.status_code, headers, bytes(response.body or b""))


def _handshake_from_head(head: bytes, rest: bytes) -> Handshake:
    """A response split by hand: status line and headers, and as the body of a refusal what came with them."""
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = tuple((name.strip().lower(), value.strip()) for name, _, value in (line.partition(":") for line in lines))
    status = int(status_line.split(" ", 2)[1])
    return Handshake(status, headers, b"" if status == 101 else rest)


def parse_frame(buffer: bytearray) -> tuple[int, bytes] | None:
    """Take one whole frame off ``buffer``: opcode and payload; None if it has not all arrived."""
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
