"""Clients that reset their TCP connection leave no trace (contract §7, last bullet).

Twenty connections are opened with :class:`~conformance.rawclient.RawClient`
and caught in the middle of something: a chat fan-out, a broadcast, a stream
the client reads or one it never reads, half a frame, or nothing at all.  Then
every one is reset (RST, no closing handshake), and ``/healthz`` must come back
to zero connections and zero rooms.  The server is fresh, so only this test
moves its counts.
"""

from __future__ import annotations

from contextlib import AsyncExitStack

import pytest
from websockets.frames import Frame, Opcode

from conformance.launcher import HOST, StartServer
from conformance.rawclient import RawClient

pytestmark = [pytest.mark.server, pytest.mark.anyio]

RESET_TIMEOUT = 15.0  # seconds for the server to notice every reset; only a bound, not a measure


async def test_reset_connections_are_released_and_rooms_emptied(start_server: StartServer) -> None:
    server = start_server({})
    async with AsyncExitStack() as connections:

        async def open_client(path: str) -> RawClient:
            client = await connections.enter_async_context(RawClient(HOST, server.port, path))
            connections.callback(client.reset)  # leaving the block resets the connection, before the socket closes
            assert client.handshake is not None
            assert client.handshake.status == 101, path
            return client

        chatters = [await open_client(f"/ws/chat/reset-{number % 2}") for number in range(6)]
        broadcasters = [await open_client("/ws_broadcast") for _ in range(4)]
        readers = [await open_client("/stream") for _ in range(2)]
        non_readers = [await open_client("/stream?count=1000000") for _ in range(2)]
        half_senders = [await open_client("/echo") for _ in range(3)]
        silent = [await open_client("/ws") for _ in range(3)]
        total = sum(map(len, (chatters, broadcasters, readers, non_readers, half_senders, silent)))
        # Connections are counted before accept, so all of them are by now.
        assert server.health()["connections"] == total

        for chatter in chatters:
            await chatter.send_text("hello")
            assert await chatter.next_frame() is not None  # a room message: this chatter has joined its room
        assert server.health()["rooms"] == 2

        for client in chatters + broadcasters:
            await client.send_text("in flight when the reset comes")
        for client in readers + non_readers:
            await client.send_text("go")
            assert await client.next_frame() is not None  # the push has started
        for client in half_senders:
            await client.send_half_frame(Frame(Opcode.TEXT, b"x" * 1000))
        # Leaving the block resets every connection.

    health = server.wait_for_health(lambda health: health["connections"] == 0, RESET_TIMEOUT)
    assert health["rooms"] == 0
    assert "Traceback" not in server.log_text()
