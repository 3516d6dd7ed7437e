"""Client-side helpers for the integration tests: what a test does *to* a server.

- :func:`refusal`: a handshake that must be refused before accept; its HTTP status and body.
- :func:`server_close`: read until the server closes the connection; its close code and reason.
- :class:`RawClient`: a WebSocket client on a bare, blocking socket, so that a test can
  end the TCP connection with a reset instead of a closing handshake.

Everything else is the ``websockets`` client as users call it:
``async with connect(server.url("/ws")) as ws``.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
from types import TracebackType

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Frame, Opcode

from asgi_ws.servers import SERVERS
from conformance.launcher import HOST, RunningServer

__all__ = ["RawClient", "refusal", "server_close"]

SOCKET_TIMEOUT = 10.0  # seconds any one blocking call of RawClient may take before it fails


def refused_as(server_name: str, status: int, body: bytes) -> tuple[int, bytes]:
    """How the app's refusal with ``status`` and ``body`` reaches the client under ``server_name``.

    Where the server does not offer the websocket.http.response extension
    (``denial_response`` in asgi_ws.servers), the app closes before accept
    instead, and the server answers that with a bare 403 (see the README's close codes and rejections).
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


class RawClient:
    """A WebSocket client on a bare socket: handshake and frames by hand, and a TCP reset to end.

    Leaving the ``with`` block resets the connection: ``SO_LINGER`` on with a
    timeout of 0 makes ``close()`` discard unsent data and send RST instead of
    FIN, which is what a crashed client or a dropped network looks like to the
    server.  There is no closing handshake, on purpose.
    """

    def __init__(self, server: RunningServer, path: str) -> None:
        self._sock = socket.create_connection((HOST, server.port), timeout=SOCKET_TIMEOUT)  # blocking, with timeout
        try:
            self._received = self._handshake(server, path)  # bytes read past the 101 response, not yet returned
        except BaseException:
            self._sock.close()
            raise

    def __enter__(self) -> RawClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.reset()

    def _handshake(self, server: RunningServer, path: str) -> bytes:
        """RFC 6455 §4.1: send the upgrade request, check for 101, return what came after the headers."""
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\n"
            f"Host: {HOST}:{server.port}\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n"
            "\r\n"
        )
        self._sock.sendall(request.encode())
        response = b""
        while b"\r\n\r\n" not in response:
            response += self._receive()
        head, _, rest = response.partition(b"\r\n\r\n")
        status_line = head.split(b"\r\n", 1)[0]
        assert status_line.startswith(b"HTTP/1.1 101 "), f"handshake to {path} refused: {status_line!r}"
        return rest

    def send_text(self, text: str) -> None:
        """Send one complete text frame, masked as a client must (RFC 6455 §5.3)."""
        self._sock.sendall(_text_frame(text))

    def send_raw_text(self, payload: bytes) -> None:
        """Send one text frame whose payload is ``payload`` as is, valid UTF-8 or not."""
        self._sock.sendall(Frame(Opcode.TEXT, payload).serialize(mask=True))

    def read_until_closed(self) -> bool:
        """Read until the server ends the TCP connection: True, or False if it stays open SOCKET_TIMEOUT."""
        try:
            while True:
                self._receive()
        except ConnectionError:
            return True
        except TimeoutError:
            return False

    def send_half_text(self, text: str) -> None:
        """Send the first half of a text frame and nothing more: the server is left mid-message."""
        frame = _text_frame(text)
        self._sock.sendall(frame[: len(frame) // 2])

    def receive_some(self) -> bytes:
        """Whatever the server has sent and has not been returned yet; waits for at least one byte."""
        received, self._received = self._received, b""
        return received or self._receive()

    def reset(self) -> None:
        """End the TCP connection with RST.  Idempotent."""
        if self._sock.fileno() != -1:
            # struct linger {int l_onoff; int l_linger;}: on, with no time to send what is pending.
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self._sock.close()

    def _receive(self) -> bytes:
        data = self._sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        return data


def _text_frame(text: str) -> bytes:
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=True)
