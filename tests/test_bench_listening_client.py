"""bench.listening_client: the handshake it sends, and what it makes of the bytes a server sends back.

The client is driven with an in-memory transport; the server's bytes are made
by the ``websockets`` library's own frame and handshake code, so the client is
checked against another implementation of RFC 6455, not against itself.
"""

from __future__ import annotations

import asyncio

import pytest
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from bench.browser import BROWSER_OFFER
from bench.listening_client import ListeningClient, handshake
from conformance.rawclient import parse_frame

SWITCHING = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"


class MemoryTransport(asyncio.Transport):
    """What the client writes, and whether it closed."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True


class Recorder(ListeningClient):
    __slots__ = ("closes", "texts")

    def __init__(self, offer: str | None = None) -> None:
        super().__init__(handshake("/ws/chat/room", "127.0.0.1:8000", offer))
        self.texts: list[bytes] = []
        self.closes: list[int] = []

    def on_text(self, payload: bytes) -> None:
        self.texts.append(payload)

    def on_close(self, code: int) -> None:
        self.closes.append(code)


def server_frame(opcode: Opcode, payload: bytes) -> bytes:
    return Frame(opcode, payload).serialize(mask=False)


def connected(offer: str | None = None) -> tuple[Recorder, MemoryTransport]:
    client, transport = Recorder(offer), MemoryTransport()
    client.connection_made(transport)
    return client, transport


def test_the_handshake_is_one_a_websocket_server_accepts() -> None:
    server = ServerProtocol()
    server.receive_data(handshake("/ws/chat/room", "127.0.0.1:8000"))
    [request] = server.events_received()
    assert isinstance(request, Request)
    assert request.path == "/ws/chat/room"
    assert server.accept(request).status_code == 101


def test_it_sends_the_handshake_on_connecting_and_opens_on_101() -> None:
    async def scenario() -> None:
        client, transport = connected()
        assert bytes(transport.written) == client.request
        assert not client.opened.done()
        client.data_received(SWITCHING)
        assert client.opened.done()
        assert client.opened.result() is None
        assert client.upgraded

    asyncio.run(scenario())


def test_text_frames_arrive_whole_however_the_bytes_are_split() -> None:
    async def scenario() -> None:
        client, _ = connected()
        long = b"x" * 70_000  # a 64-bit length (RFC 6455 §5.2)
        wire = SWITCHING + server_frame(Opcode.TEXT, b"1") + server_frame(Opcode.TEXT, long)
        wire += server_frame(Opcode.TEXT, b"2")
        for start in range(0, len(wire), 7):
            client.data_received(wire[start : start + 7])
        assert client.texts == [b"1", long, b"2"]
        assert client.buffer == b""

    asyncio.run(scenario())


def test_a_ping_is_answered_with_a_masked_pong_of_the_same_payload() -> None:
    async def scenario() -> None:
        client, transport = connected()
        client.data_received(SWITCHING)
        transport.written.clear()
        client.data_received(server_frame(Opcode.PING, b"keepalive"))
        assert transport.written[1] & 0x80, "a client's frames are masked (RFC 6455 §5.3)"
        assert parse_frame(transport.written) == (Opcode.PONG, b"keepalive")
        assert client.texts == []

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("payload", "code"),
    [(Close(1001, "going away").serialize(), 1001), (b"", 1005)],
    ids=["with a code", "without one"],
)
def test_the_servers_close_frame_is_handed_over_by_its_code(payload: bytes, code: int) -> None:
    async def scenario() -> None:
        client, _ = connected()
        client.data_received(SWITCHING + server_frame(Opcode.CLOSE, payload))
        assert client.closes == [code]

    asyncio.run(scenario())


def test_a_refused_handshake_fails_opened_with_the_status_line_and_closes() -> None:
    async def scenario() -> None:
        client, transport = connected()
        client.data_received(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        with pytest.raises(ConnectionError, match="403 Forbidden"):
            await client.opened
        assert transport.closed
        assert not client.upgraded

    asyncio.run(scenario())


def test_a_connection_lost_before_the_response_fails_opened() -> None:
    async def scenario() -> None:
        client, _ = connected()
        client.connection_lost(None)
        with pytest.raises(ConnectionError, match="before the handshake's response"):
            await client.opened

    asyncio.run(scenario())


def deflating_server(client: Recorder, transport: MemoryTransport, **options: bool) -> ServerProtocol:
    """A ``websockets`` server that accepted the client's handshake, with permessage-deflate on these terms."""
    server = ServerProtocol(extensions=[ServerPerMessageDeflateFactory(**options)])  # type: ignore[arg-type]
    server.receive_data(bytes(transport.written))
    [request] = server.events_received()
    assert isinstance(request, Request)
    server.send_response(server.accept(request))
    return server


@pytest.mark.parametrize("takeover", [True, False], ids=["context kept", "server_no_context_takeover"])
def test_offered_as_a_browser_does_compressed_messages_arrive_inflated(takeover: bool) -> None:
    async def scenario() -> None:
        client, transport = connected(BROWSER_OFFER)
        server = deflating_server(client, transport, server_no_context_takeover=not takeover)
        texts = ["hello, room", "hello, room", "hello again, room"]  # a repeat compresses to a back-reference
        for text in texts:
            server.send_text(text.encode())
        wire = b"".join(server.data_to_send())
        assert b"permessage-deflate" in wire.split(b"\r\n\r\n")[0], "the server accepted the offer"
        for start in range(0, len(wire), 5):
            client.data_received(wire[start : start + 5])
        assert client.texts == [text.encode() for text in texts]
        assert client.takeover is takeover

    asyncio.run(scenario())


def test_the_browser_offer_is_sent_as_the_extensions_header() -> None:
    request = handshake("/ws/chat/room", "127.0.0.1:8000", BROWSER_OFFER)
    assert f"\r\nSec-WebSocket-Extensions: {BROWSER_OFFER}\r\n".encode() in request
    assert b"Sec-WebSocket-Extensions" not in handshake("/ws/chat/room", "127.0.0.1:8000")
