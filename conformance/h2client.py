"""A WebSocket client over HTTP/2 (RFC 8441): h2 runs the connection and its streams, wsproto the frames.

A browser that loaded a page over HTTP/2 opens the page's WebSockets on the same
connection when the server's SETTINGS carry ``SETTINGS_ENABLE_CONNECT_PROTOCOL = 1``:
an extended CONNECT on a new stream (``:method CONNECT``, ``:protocol websocket``),
a ``:status 200`` answer instead of HTTP/1.1's 101, and then the WebSocket's frames,
unchanged, as the stream's DATA.  The harness does the same with two well-kept
libraries and nothing of its own on the wire:

- :mod:`h2` is the HTTP/2 connection: the preface and SETTINGS, the streams, flow
  control.  The client speaks it over TCP with prior knowledge (h2c) or over TLS
  after ALPN picked ``h2``;
- :class:`wsproto.connection.Connection` is the WebSocket after its handshake: it
  turns messages into frames and frames into events, as it does for hypercorn's
  own HTTP/2 WebSockets, and is told nothing about HTTP/2.

The scenarios do not use wsproto: :meth:`H2Client.websockets_client` gives them
the ``websockets`` client they use over HTTP/1.1, the library's own
:class:`~websockets.asyncio.client.ClientConnection`, running on the stream
instead of a TCP connection (:class:`StreamTransport`).  So a scenario under
HTTP/2 is the same client doing the same thing, and only the transport differs.

One :class:`H2Client` is one HTTP/2 connection.  A task reads the socket and
hands each stream's events to that stream, so several WebSockets and plain
requests can share the connection, as a browser's do.  Everything waits with a
time limit.

Theory of operation of :meth:`H2Client.websocket`:

1. Send the CONNECT's HEADERS on a new stream.  h2 itself refuses ``:protocol``
   unless the server advertised extended CONNECT; ``validate=False`` at
   :meth:`H2Client.open` lets a probe send it anyway.
2. Wait for the response's HEADERS.  Anything but 200 is a refusal: its status,
   headers and body are returned, and no WebSocket.
3. After 200, each DATA frame of the stream goes to wsproto, and the window is
   given back at once, so that the server may send as much as it has unless the
   test stops reading on purpose (:meth:`H2WebSocket.pause_reading`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from websockets.asyncio.client import ClientConnection
from websockets.client import ClientProtocol
from websockets.datastructures import Headers as WebSocketHeaders
from websockets.exceptions import InvalidStatus
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.headers import build_extension
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage

__all__ = ["H2Client", "H2Response", "H2WebSocket", "HandshakeRefused", "StreamTransport"]

TIMEOUT = 10.0  # seconds for any one wait: a connect, a response, a message
READ_SIZE = 65536
Headers = list[tuple[str, str]]


class HandshakeRefused(Exception):
    """The server answered the CONNECT with something other than 200."""

    def __init__(self, response: H2Response) -> None:
        super().__init__(f"the extended CONNECT was answered {response.status}")
        self.response = response


@dataclass
class H2Response:
    """A stream's answer: its status, headers and body, and how the stream ended."""

    status: int
    headers: Headers
    body: bytes = b""
    reset: int | None = None  # the RST_STREAM error code, if the server reset the stream


@dataclass
class _Stream:
    """What the reader task has for one stream so far."""

    headers: asyncio.Future[Headers]
    data: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)  # None: the stream ended
    reset: int | None = None
    ended: bool = False  # the server sent END_STREAM or RST_STREAM


class H2Client:
    """One HTTP/2 connection to a server, for WebSockets (RFC 8441) and plain requests."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        connection: h2.connection.H2Connection,
        authority: str,
        scheme: str,
    ) -> None:
        self._reader, self._writer, self._h2 = reader, writer, connection
        self.authority, self.scheme = authority, scheme
        self._streams: dict[int, _Stream] = {}
        self._paused: dict[int, list[int]] = {}  # per paused stream: the window not yet given back
        self._window_opened = asyncio.Event()  # set by every WINDOW_UPDATE and SETTINGS from the server
        self._settings: asyncio.Future[None] = asyncio.get_running_loop().create_future()  # the first SETTINGS
        self.goaway: int | None = None  # the GOAWAY error code, once the server sent one
        self._task = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, host: str, port: int, *, tls: ssl.SSLContext | None = None, validate: bool = True) -> H2Client:
        """Connect and exchange SETTINGS: over TLS with ALPN ``h2`` if ``tls`` is given, else h2c with prior knowledge.

        ``validate=False``: h2 sends whatever headers it is given, for probes that send what a
        client must not.  Raises ConnectionError if TLS did not settle on ``h2``.
        """
        if tls is not None:
            tls.set_alpn_protocols(["h2"])
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=tls, server_hostname=host if tls else None), TIMEOUT
        )
        if tls is not None:
            chosen = writer.get_extra_info("ssl_object").selected_alpn_protocol()
            if chosen != "h2":
                writer.close()
                with contextlib.suppress(OSError, ssl.SSLError):
                    await writer.wait_closed()
                raise ConnectionError(f"ALPN chose {chosen or 'no protocol'}, not h2")
        config = h2.config.H2Configuration(
            client_side=True, validate_outbound_headers=validate, normalize_outbound_headers=validate
        )
        connection = h2.connection.H2Connection(config=config)
        connection.initiate_connection()
        writer.write(connection.data_to_send())
        client = cls(reader, writer, connection, f"{host}:{port}", "https" if tls else "http")
        try:
            await asyncio.wait_for(asyncio.shield(client._settings), TIMEOUT)
        except BaseException:
            await client.close()
            raise
        return client

    @property
    def settings(self) -> dict[int, int]:
        """The server's SETTINGS as received, by code."""
        return dict(self._h2.remote_settings.items())

    @property
    def advertises_websockets(self) -> bool:
        """Whether the server's SETTINGS say it serves extended CONNECT (RFC 8441 §3)."""
        return self.settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL, 0) == 1

    async def websocket(
        self, path: str, *, protocol: str | None = "websocket", headers: Iterable[tuple[str, str]] = ()
    ) -> H2WebSocket:
        """An extended CONNECT to ``path``: the WebSocket, or HandshakeRefused with the server's answer.

        ``protocol=None`` sends a CONNECT without ``:protocol``, for probes; ``headers`` go after the
        WebSocket's own.
        """
        request = [(":method", "CONNECT")]
        if protocol is not None:
            request.append((":protocol", protocol))
        request += [(":scheme", self.scheme), (":path", path), (":authority", self.authority)]
        request += [("sec-websocket-version", "13"), ("origin", f"{self.scheme}://{self.authority}"), *headers]
        stream_id = self._send_headers(request, end_stream=False)
        stream = self._streams[stream_id]
        answer = await asyncio.wait_for(asyncio.shield(stream.headers), TIMEOUT)
        status = int(dict(answer)[":status"])
        if status != 200:
            raise HandshakeRefused(await self._rest(stream_id, status, answer))
        return H2WebSocket(self, stream_id, answer)

    async def websockets_client(
        self,
        path: str,
        *,
        headers: Iterable[tuple[str, str]] = (),
        origin: str | None = None,
        compression: str | None = "deflate",
        max_queue: int | None = 16,
        close_timeout: float = 5.0,
    ) -> ClientConnection:
        """An extended CONNECT to ``path``, as the ``websockets`` client: a ClientConnection on the stream.

        Raises the library's InvalidStatus for anything but 200, as its HTTP/1.1
        handshake does for anything but 101.  With ``compression="deflate"``
        the CONNECT offers permessage-deflate as the library does, and whatever
        the server accepts is in force on the stream, RSV1 bit and all.
        """
        extensions = enable_client_permessage_deflate(None) if compression == "deflate" else []
        protocol = ClientProtocol(
            parse_uri(f"{'wss' if self.scheme == 'https' else 'ws'}://{self.authority}{path}"),
            extensions=extensions,
            state=State.OPEN,
            max_size=None,
        )
        request = [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", self.scheme), (":path", path)]
        request += [(":authority", self.authority), ("sec-websocket-version", "13")]
        if origin is not None:
            request.append(("origin", origin))
        if extensions:
            offer = build_extension([(factory.name, factory.get_request_params()) for factory in extensions])
            request.append(("sec-websocket-extensions", offer))  # as ClientProtocol.connect() words it
        stream_id = self._send_headers([*request, *headers], end_stream=False)
        answer = await asyncio.wait_for(asyncio.shield(self._streams[stream_id].headers), TIMEOUT)
        answered = WebSocketHeaders([(name, value) for name, value in answer if not name.startswith(":")])
        status = int(dict(answer)[":status"])
        if status != 200:
            refused = await self._rest(stream_id, status, answer)
            raise InvalidStatus(Response(status, "", answered, refused.body))
        protocol.extensions = protocol.process_extensions(answered)
        connection = ClientConnection(protocol, ping_interval=None, close_timeout=close_timeout, max_queue=max_queue)
        connection.response = Response(200, "OK", answered)
        StreamTransport(self, stream_id, connection)
        return connection

    async def get(self, path: str) -> H2Response:
        """``GET path`` on a stream of its own, read to the end."""
        request = [(":method", "GET"), (":scheme", self.scheme), (":path", path), (":authority", self.authority)]
        stream_id = self._send_headers(request, end_stream=True)
        answer = await asyncio.wait_for(asyncio.shield(self._streams[stream_id].headers), TIMEOUT)
        return await self._rest(stream_id, int(dict(answer)[":status"]), answer)

    async def close(self) -> None:
        """Say GOAWAY, close the socket and stop the reader."""
        with contextlib.suppress(Exception):
            self._h2.close_connection()
            self._flush()
        self._writer.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()

    async def __aenter__(self) -> H2Client:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    # Streams

    def _send_headers(self, headers: Iterable[tuple[str, str]], *, end_stream: bool) -> int:
        stream_id = self._h2.get_next_available_stream_id()
        self._streams[stream_id] = _Stream(asyncio.get_running_loop().create_future())
        self._h2.send_headers(stream_id, list(headers), end_stream=end_stream)
        self._flush()
        return stream_id

    async def _rest(self, stream_id: int, status: int, headers: Headers) -> H2Response:
        """The rest of a stream after its response headers: its body, until it ends or is reset."""
        stream = self._streams[stream_id]
        body = b""
        while (chunk := await asyncio.wait_for(stream.data.get(), TIMEOUT)) is not None:
            body += chunk
        return H2Response(status, headers, body, stream.reset)

    async def send_data(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        """``data`` as DATA frames on ``stream_id``: no frame over the server's size, none past its window.

        Waits, up to TIMEOUT each time, for the server to open its window when it is shut.
        ``end_stream``: the last frame carries END_STREAM.
        """
        view = memoryview(data)
        while view:
            window = self._h2.local_flow_control_window(stream_id)
            if window <= 0:
                self._window_opened.clear()
                await asyncio.wait_for(self._window_opened.wait(), TIMEOUT)
                continue
            size = min(len(view), window, self._h2.max_outbound_frame_size)
            self._h2.send_data(stream_id, view[:size].tobytes(), end_stream=end_stream and size == len(view))
            self._flush()
            view = view[size:]

    def send_now(self, stream_id: int, data: bytes) -> None:
        """A small frame (a pong, a close) on ``stream_id`` at once: it must fit in the window and one DATA frame."""
        self._h2.send_data(stream_id, data)
        self._flush()

    def reset(self, stream_id: int, error_code: int = 0x8) -> None:
        """RST_STREAM on ``stream_id`` (CANCEL by default), as a browser does when a tab goes away."""
        self._h2.reset_stream(stream_id, error_code)
        self._flush()

    def acknowledge(self, stream_id: int, size: int) -> None:
        """Give ``size`` bytes of window back to the server, on the stream and on the connection."""
        if size:
            self._h2.acknowledge_received_data(size, stream_id)
            self._flush()

    def extra_info(self, name: str, default: Any = None) -> Any:
        """The socket's ``get_extra_info``: its addresses, its TLS object."""
        return self._writer.get_extra_info(name, default)

    def _flush(self) -> None:
        if data := self._h2.data_to_send():
            self._writer.write(data)

    async def _read(self) -> None:
        """The reader task: the socket's bytes through h2, each event to its stream."""
        try:
            while data := await self._reader.read(READ_SIZE):
                for event in self._h2.receive_data(data):
                    self._dispatch(event)
                self._flush()
        finally:
            for stream in self._streams.values():  # the connection is gone: every stream ends with it
                _fail(stream.headers, ConnectionError("the server closed the HTTP/2 connection"))
                stream.data.put_nowait(None)
            _fail(self._settings, ConnectionError("the server closed before its SETTINGS"))

    def _dispatch(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RemoteSettingsChanged) and not self._settings.done():
            self._settings.set_result(None)
            self._window_opened.set()
        elif isinstance(event, h2.events.ResponseReceived):
            self._streams[event.stream_id].headers.set_result(_decoded(event.headers))
        elif isinstance(event, h2.events.DataReceived):
            self._streams[event.stream_id].data.put_nowait(event.data)
            self._pending_acknowledge(event)
        elif isinstance(event, h2.events.StreamEnded):
            self._streams[event.stream_id].ended = True
            self._streams[event.stream_id].data.put_nowait(None)
        elif isinstance(event, h2.events.StreamReset) and event.stream_id in self._streams:
            stream = self._streams[event.stream_id]
            stream.reset, stream.ended = event.error_code, True
            if not stream.headers.done():
                stream.headers.set_result([(":status", "0")])
            stream.data.put_nowait(None)
        elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            self._window_opened.set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = event.error_code

    def _pending_acknowledge(self, event: h2.events.DataReceived) -> None:
        """Give the window back at once; for a paused stream, only the connection's (it gives its own back itself)."""
        size = event.flow_controlled_length
        paused = self._paused.get(event.stream_id)
        if paused is None:
            self.acknowledge(event.stream_id, size)
        elif size:
            self._h2.increment_flow_control_window(size)  # the connection's: its other streams go on
            self._flush()
            paused.append(size)

    def pause(self, stream_id: int) -> None:
        """Stop giving ``stream_id``'s own window back as its DATA arrives, as a browser does for a socket whose
        page stops reading: the connection's window, and with it every other stream, goes on."""
        self._paused.setdefault(stream_id, [])

    def resume(self, stream_id: int) -> None:
        """Give back what ``stream_id`` received while paused, and keep giving it back."""
        if received := sum(self._paused.pop(stream_id, [])):
            with contextlib.suppress(h2.exceptions.StreamClosedError):
                self._h2.increment_flow_control_window(received, stream_id=stream_id)
                self._flush()

    def stream(self, stream_id: int) -> _Stream:
        return self._streams[stream_id]

    def end_stream(self, stream_id: int) -> None:
        """END_STREAM on ``stream_id``: the client's half of the stream is closed."""
        self._h2.end_stream(stream_id)
        self._flush()


class StreamTransport(asyncio.Transport):
    """One HTTP/2 stream as the asyncio transport a ``websockets`` connection writes to and reads from.

    What TCP gives the library, the stream gives it here: ``write`` sends DATA
    (in order, within the server's window), ``write_eof`` and ``close`` send
    END_STREAM, ``abort`` sends RST_STREAM, and the server's END_STREAM or
    RST_STREAM is the end of the connection.  ``pause_reading`` stops both the
    delivery of data and the return of flow-control window, so a reader that
    stops holds the server back exactly as a full TCP receive buffer would.

    The close is Chromium's, not TCP's.  Over TCP the client waits for the
    server to close first (RFC 6455 §7.1.1).  Chromium 156's net log shows its
    close frame going out with END_STREAM on the same DATA frame, and the stream
    then cancelled.  So here: the client's close frame is followed by
    END_STREAM, and once close frames have gone both ways the WebSocket is over,
    and a stream the server has not ended is reset (CANCEL).  Whether a server
    ends its half by itself is a probe's question (``h2-close-ends-stream``),
    not every scenario's.
    """

    HIGH_WATER = 65536  # bytes queued for sending before the connection is asked to wait (pause_writing)

    def __init__(self, client: H2Client, stream_id: int, connection: ClientConnection) -> None:
        super().__init__()
        self._client, self._stream_id, self._connection = client, stream_id, connection
        self._outgoing: asyncio.Queue[bytes | None] = asyncio.Queue()  # None: END_STREAM after what is queued
        self._queued = 0  # bytes in _outgoing
        self._high, self._low = self.HIGH_WATER, self.HIGH_WATER // 4
        self._writing_paused = False
        self._reading = asyncio.Event()
        self._reading.set()
        self._closing = False
        self._ended = False  # connection_lost has been called
        connection.connection_made(self)
        self._tasks = [asyncio.create_task(self._send()), asyncio.create_task(self._receive())]

    # What the connection calls

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or not data:
            return
        self._outgoing.put_nowait(bytes(data))
        self._queued += len(data)
        if self._queued > self._high and not self._writing_paused:
            self._writing_paused = True
            self._connection.pause_writing()
        if self._connection.protocol.close_sent is not None:  # that was the close frame: END_STREAM follows it
            self.write_eof()

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if not self._closing:
            self._closing = True
            self._outgoing.put_nowait(None)

    def close(self) -> None:
        self.write_eof()

    def abort(self) -> None:
        self._closing = True
        with contextlib.suppress(Exception):
            self._client.reset(self._stream_id)
        self._lost(None)

    def is_closing(self) -> bool:
        return self._closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._client.extra_info(name, default)

    def pause_reading(self) -> None:
        self._reading.clear()
        self._client.pause(self._stream_id)

    def resume_reading(self) -> None:
        self._reading.set()
        self._client.resume(self._stream_id)

    def is_reading(self) -> bool:
        return self._reading.is_set()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high = self.HIGH_WATER if high is None else high
        self._low = self._high // 4 if low is None else low

    def get_write_buffer_size(self) -> int:
        return self._queued

    # The two tasks

    async def _send(self) -> None:
        """Everything written, in order, as DATA; then END_STREAM if the connection closed its side.

        END_STREAM rides on the last DATA frame where it can, as Chromium sends it with its close frame.
        """
        with contextlib.suppress(Exception):  # the stream or the connection went away: _receive reports it
            while (data := await self._outgoing.get()) is not None:
                last = self._closing and self._outgoing.qsize() == 1  # only the end is queued behind it
                await self._client.send_data(self._stream_id, data, end_stream=last)
                self._queued -= len(data)
                if self._writing_paused and self._queued <= self._low:
                    self._writing_paused = False
                    self._connection.resume_writing()
                if last:
                    return
            self._client.end_stream(self._stream_id)

    async def _receive(self) -> None:
        """The stream's DATA to the connection while it reads; its end as the end of the connection."""
        stream = self._client.stream(self._stream_id)
        protocol = self._connection.protocol
        while (data := await stream.data.get()) is not None:
            await self._reading.wait()
            self._connection.data_received(data)
            if protocol.close_sent is not None and protocol.close_rcvd is not None:
                await self._done()
                return
        if stream.reset is not None:
            self._lost(ConnectionResetError(f"the server reset the stream (error code {stream.reset})"))
        else:
            self._connection.eof_received()
            self._lost(None)

    async def _done(self) -> None:
        """Close frames have gone both ways: END_STREAM out, the stream cancelled unless the server ended it."""
        self.write_eof()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(self._tasks[0]), TIMEOUT)
        if not self._client.stream(self._stream_id).ended:
            with contextlib.suppress(Exception):
                self._client.reset(self._stream_id)
        self._lost(None)

    def _lost(self, exc: Exception | None) -> None:
        if not self._ended:
            self._ended = True
            self._closing = True
            for task in self._tasks:
                if task is not asyncio.current_task():
                    task.cancel()
            self._connection.connection_lost(exc)


class H2WebSocket:
    """A WebSocket on one stream of an :class:`H2Client`: send and receive messages, close, reset."""

    def __init__(self, client: H2Client, stream_id: int, headers: Headers) -> None:
        self.client, self.stream_id, self.headers = client, stream_id, headers
        self._ws = Connection(ConnectionType.CLIENT)
        self._messages: asyncio.Queue[str | bytes | CloseConnection] = asyncio.Queue()
        self._text: list[str] = []
        self._binary: list[bytes] = []
        self.close_received: CloseConnection | None = None
        self.stream_ended = False  # the server sent END_STREAM
        self.after_close = 0  # bytes of DATA the server sent after the closing handshake
        self._pump = asyncio.create_task(self._receive())

    async def send(self, message: str | bytes) -> None:
        """One message, as one frame."""
        event = TextMessage(data=message) if isinstance(message, str) else BytesMessage(data=message)
        await self.client.send_data(self.stream_id, self._ws.send(event))

    async def send_raw(self, data: bytes) -> None:
        """Bytes straight onto the stream, for probes that cut a frame in half."""
        await self.client.send_data(self.stream_id, data)

    async def recv(self) -> str | bytes:
        """The next message; ConnectionError if the server closed or the stream ended first."""
        item = await asyncio.wait_for(self._messages.get(), TIMEOUT)
        if isinstance(item, CloseConnection):
            self._messages.put_nowait(item)  # every later recv() sees it too
            raise ConnectionError(f"the server closed the WebSocket: {item.code} {item.reason!r}")
        return item

    async def close(self, code: int = 1000, reason: str = "", *, end_stream: bool = False) -> CloseConnection | None:
        """The closing handshake: send a close, wait for the server's; its close, or None if the stream ended first.

        ``end_stream``: the close frame's DATA frame carries END_STREAM, as Chromium sends it.
        """
        if self._ws.state is ConnectionState.OPEN:
            frame = self._ws.send(CloseConnection(code=code, reason=reason))
            await self.client.send_data(self.stream_id, frame, end_stream=end_stream)
        with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
            while True:
                await self.recv()
        return self.close_received

    async def wait_closed(self) -> None:
        """Until the server has ended the stream (END_STREAM or RST_STREAM)."""
        await asyncio.wait_for(asyncio.shield(self._pump), TIMEOUT)

    def pause_reading(self) -> None:
        """Stop giving flow-control window back: the server can send only what the window still allows."""
        self.client.pause(self.stream_id)

    def resume_reading(self) -> None:
        """Give back every byte received while paused, and keep giving it back."""
        self.client.resume(self.stream_id)

    def _write(self, data: bytes) -> None:
        """A control frame's bytes (a pong, a close), sent at once; nothing once the stream is closed for sending."""
        if data:
            with contextlib.suppress(h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                self.client.send_now(self.stream_id, data)

    async def _receive(self) -> None:
        stream = self.client.stream(self.stream_id)
        while (data := await stream.data.get()) is not None:
            if self._ws.state is ConnectionState.CLOSED:
                self.after_close += len(data)  # bytes the server sent after the closing handshake
                continue
            self._ws.receive_data(data)
            for event in self._ws.events():
                self._handle(event)
        self.stream_ended = stream.reset is None
        self._messages.put_nowait(self.close_received or CloseConnection(code=1006, reason="the stream ended"))

    def _handle(self, event: object) -> None:
        if isinstance(event, TextMessage):
            self._text.append(event.data)
            if event.message_finished:
                self._messages.put_nowait("".join(self._text))
                self._text.clear()
        elif isinstance(event, BytesMessage):
            self._binary.append(bytes(event.data))
            if event.message_finished:
                self._messages.put_nowait(b"".join(self._binary))
                self._binary.clear()
        elif isinstance(event, Ping) and self._ws.state is ConnectionState.OPEN:
            self._write(self._ws.send(event.response()))
        elif isinstance(event, CloseConnection):
            self.close_received = event
            if self._ws.state is not ConnectionState.CLOSED:
                self._write(self._ws.send(event.response()))
            self._messages.put_nowait(event)


def _fail(future: asyncio.Future[Any], error: Exception) -> None:
    """Fail ``future`` with ``error`` unless it is done; nobody may be waiting, so asyncio is not to log it."""
    if not future.done():
        future.set_exception(error)
        future.exception()  # marks it retrieved: whoever awaits it later still gets the error


def _decoded(headers: Iterable[tuple[bytes | str, bytes | str]]) -> Headers:
    return [(_text(name), _text(value)) for name, value in headers]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
