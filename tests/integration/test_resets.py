"""Clients that reset their TCP connection leave no trace (SPEC §7, last bullet).

Twenty connections are opened with :class:`~.client.RawClient` and caught in
the middle of something: a chat fan-out, a broadcast, a stream the client reads
or one it never reads, half a frame, or nothing at all.  Then every one is
reset (RST, no closing handshake), and ``/healthz`` must come back to zero
connections and zero rooms.  The server is fresh, so only this test moves its
counts.
"""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from conformance.launcher import StartServer

from .client import RawClient

pytestmark = pytest.mark.server

RESET_TIMEOUT = 15.0  # seconds for the server to notice every reset; only a bound, not a measure


def test_reset_connections_are_released_and_rooms_emptied(start_server: StartServer) -> None:
    server = start_server({})
    with ExitStack() as connections:

        def open_client(path: str) -> RawClient:
            return connections.enter_context(RawClient(server, path))

        chatters = [open_client(f"/ws/chat/reset-{number % 2}") for number in range(6)]
        broadcasters = [open_client("/ws_broadcast") for _ in range(4)]
        readers = [open_client("/stream") for _ in range(2)]
        non_readers = [open_client("/stream?count=1000000") for _ in range(2)]
        half_senders = [open_client("/echo") for _ in range(3)]
        silent = [open_client("/ws") for _ in range(3)]
        total = sum(map(len, (chatters, broadcasters, readers, non_readers, half_senders, silent)))
        # Connections are counted before accept, so all of them are by now.
        assert server.health()["connections"] == total

        for chatter in chatters:
            chatter.send_text("hello")
            chatter.receive_some()  # a room message: this chatter has joined its room
        assert server.health()["rooms"] == 2

        for client in chatters + broadcasters:
            client.send_text("in flight when the reset comes")
        for client in readers + non_readers:
            client.send_text("go")
            client.receive_some()  # the push has started
        for client in half_senders:
            client.send_half_text("x" * 1000)
        # Leaving the block resets every connection.

    health = server.wait_for_health(lambda health: health["connections"] == 0, RESET_TIMEOUT)
    assert health["rooms"] == 0
    assert "Traceback" not in server.log_text()
