"""conformance.rawclient: what the lenient client sends and reads, against a scripted server on 127.0.0.1.

The scripted server is a few lines of asyncio: it reads the request, answers
with the bytes a test gives it, and records what the client sent.  No ASGI
server is involved: these tests are about the client, byte for byte.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from websockets.frames import Frame, Opcode
from websockets.utils import accept_key

from conformance.rawclient import RawClient, close_view, parse_frame

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """The client is built on the asyncio loop's socket calls."""
    return "asyncio"


@asynccontextmanager
async def scripted_server(*after_handshake: bytes, read_once: bool = False) -> AsyncIterator[tuple[int, list[bytes]]]:
    """A server on 127.0.0.1 that accepts the handshake and writes ``after_handshake`` in the same write.

    Yields its port and the list of what the connection sent: the request, and
    with ``read_once`` the client's next write.  Then it ends TCP.
    """
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        seen.append(request)
        key = next(
            line.split(b":", 1)[1].strip().decode()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        response = (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n"
        ).encode()
        writer.write(response + b"".join(after_handshake))
        await writer.drain()
        if read_once:
            seen.append(await reader.read(65536))
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], seen
    finally:
        server.close()
        await server.wait_closed()


def server_frame(opcode: Opcode, payload: bytes) -> bytes:
    """An unmasked final frame as a server writes it, built by hand so that nothing checks it (RFC 6455 §5.2)."""
    length = len(payload).to_bytes(1) if len(payload) < 126 else b"\x7e" + len(payload).to_bytes(2, "big")
    return bytes([0x80 | opcode]) + length + payload


async def test_a_close_frame_the_rfc_forbids_is_read_as_it_came() -> None:
    """1005 must never be on the wire and the reason is longer than a control frame holds; both come through."""
    payload = (1005).to_bytes(2, "big") + b"r" * 200
    async with scripted_server(server_frame(Opcode.CLOSE, payload)) as (port, _):
        client = RawClient("127.0.0.1", port, "/", lenient=True)
        handshake = await client.open()
        frame = await client.read_frame(5.0)
        ended = await client.read_to_end(5.0)
        client.abort()
    assert handshake.status == 101
    assert frame is not None
    assert frame[0] == Opcode.CLOSE
    assert close_view(frame[1]) == {"code": 1005, "reason": "r" * 200, "reason_bytes": 200}
    assert ended
    assert client.received.eof


async def test_pings_are_skipped_and_not_answered_and_any_close_code_goes_out() -> None:
    ping, text = server_frame(Opcode.PING, b"p"), server_frame(Opcode.TEXT, b"ready")
    async with scripted_server(ping, text, read_once=True) as (port, seen):
        client = RawClient("127.0.0.1", port, "/", lenient=True)
        await client.open()
        frame = await client.read_frame(5.0)
        await client.close(999, "bye")  # a code RFC 6455 does not allow; a pong, had one gone out, came first
        ended = await client.read_to_end(5.0)
        client.abort()
    assert frame == (Opcode.TEXT, b"ready")
    assert ended
    sent = bytearray(seen[1])
    assert parse_frame(sent) == (Opcode.CLOSE, (999).to_bytes(2, "big") + b"bye")
    assert not sent  # nothing else: no pong


@pytest.mark.parametrize(
    "target",
    ["/path/caf%C3%A9%2Fa%20b%25?q=caf%C3%A9%2F&r=a+b", "/empty-query?"],
    ids=["percent-encoded", "empty-query"],
)
async def test_the_request_target_goes_out_byte_for_byte(target: str) -> None:
    """Parsed as a URL, the target would lose its bare ``?``; a lenient client sends it as given."""
    async with scripted_server() as (port, seen):
        client = RawClient("127.0.0.1", port, target, lenient=True, headers=[("x-tag", "1")])
        await client.open()
        client.abort()
    request_line, *headers = seen[0].decode().split("\r\n")
    assert request_line == f"GET {target} HTTP/1.1"
    assert "x-tag: 1" in headers
    assert not any(header.lower().startswith("user-agent") for header in headers)


async def test_half_a_frame_is_half_of_its_bytes() -> None:
    async with scripted_server(read_once=True) as (port, seen):
        client = RawClient("127.0.0.1", port, "/")
        await client.open()
        await client.send_half_frame(Frame(Opcode.TEXT, b"x" * 1000))
        ended = await client.read_to_end(5.0)
        client.abort()
    assert ended
    whole = len(Frame(Opcode.TEXT, b"x" * 1000).serialize(mask=True))
    assert len(seen[1]) == whole // 2


async def test_end_sending_sends_fin_and_reading_goes_on() -> None:
    """A half-close: the server reads EOF where a close frame could have been, and can still write."""
    async with scripted_server(read_once=True) as (port, seen):
        client = RawClient("127.0.0.1", port, "/", lenient=True)
        await client.open()
        client.end_sending()
        ended = await client.read_to_end(5.0)
        client.abort()
    assert seen[1] == b""  # the server's read after the handshake got EOF, no frame
    assert ended
