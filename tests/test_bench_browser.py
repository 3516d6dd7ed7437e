"""bench.browser: the websockets client offers permessage-deflate as Chromium does, or nothing, and counts bytes in."""

from __future__ import annotations

import asyncio

import pytest

from bench.browser import BROWSER_OFFER, connect


async def offered(deflate: bool) -> list[str]:
    """The Sec-WebSocket-Extensions lines the client sends, read by a listener that never answers."""
    heads: list[bytes] = []

    async def read(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.close()

    server = await asyncio.start_server(read, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        with pytest.raises(Exception):  # noqa: B017, PT011 - the listener hangs up: what fails does not matter
            async with connect(f"ws://127.0.0.1:{port}/ws/chat/room", deflate=deflate, open_timeout=5):
                pass
    [head] = heads
    lines = head.decode("latin-1").split("\r\n")
    return [line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("sec-websocket-extensions:")]


def test_with_deflate_it_offers_chromiums_line_word_for_word() -> None:
    assert asyncio.run(offered(deflate=True)) == [BROWSER_OFFER]


def test_without_deflate_it_offers_nothing() -> None:
    assert asyncio.run(offered(deflate=False)) == []


def test_a_connection_counts_the_bytes_of_each_frame_it_receives() -> None:
    async def scenario() -> list[int]:
        from websockets.asyncio.server import ServerConnection, serve

        async def echo(ws: ServerConnection) -> None:
            async for message in ws:
                await ws.send(message)

        grown = []
        async with serve(echo, "127.0.0.1", 0, compression=None) as server:
            port = server.sockets[0].getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}/", deflate=False) as ws:
                for text in ("hello", "x" * 200):
                    before = ws.bytes_received
                    await ws.send(text)
                    await ws.recv()
                    grown.append(ws.bytes_received - before)
        return grown

    # An unmasked server frame: 2 bytes of header, 2 more for a length of 126 to 65535 (RFC 6455 §5.2).
    assert asyncio.run(scenario()) == [2 + 5, 4 + 200]
