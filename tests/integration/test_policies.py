"""The policies that close an accepted connection (contract §3): size 4413, rate 4429, idle 4408.

Each limit is tested with its ``ASGI_WS_*`` variable set low on a server of its
own, so that one message or a short flood trips it however slow the machine
is.  The default size limit is tested on the shared server too.  Nothing here
measures time: the idle test only checks *how* the connection ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import anyio
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from conformance.launcher import RunningServer, run_server

from .client import server_close

pytestmark = [pytest.mark.server, pytest.mark.anyio]

DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024
SMALL_MAX_MESSAGE_SIZE = 1000
LIMITS = {
    "ASGI_WS_MAX_MESSAGE_SIZE": str(SMALL_MAX_MESSAGE_SIZE),
    "ASGI_WS_RATE_LIMIT": "1",
    "ASGI_WS_RATE_BURST": "5",
}
# One token a second and five saved: the sixth message trips the limit unless sending took longer
# than the minutes it would take.  200 is far more than hypercorn's queue of received messages
# (0.18: max_app_queue_size = 10); the app reads that queue empty after its close, which is what
# lets hypercorn see the client's close reply and end the TCP connection.
FLOOD = 200
# Generous: a server that never ends the TCP connection is the failure this catches, not a slow one.
TCP_CLOSE_PATIENCE = 30.0
IDLE = {"ASGI_WS_IDLE_TIMEOUT": "0.5"}


@pytest.fixture(scope="module")
def limited_server(server_name: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The app with a small size limit and a slow rate limit."""
    with run_server(server_name, tmp_path_factory.mktemp(f"{server_name}-limits"), LIMITS) as server:
        yield server


@pytest.fixture(scope="module")
def idle_server(server_name: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The app with a half-second idle timeout."""
    with run_server(server_name, tmp_path_factory.mktemp(f"{server_name}-idle"), IDLE) as server:
        yield server


# Size


@pytest.mark.parametrize(
    ("largest", "too_big"),
    [
        ("x" * DEFAULT_MAX_MESSAGE_SIZE, "x" * (DEFAULT_MAX_MESSAGE_SIZE + 1)),
        (b"x" * DEFAULT_MAX_MESSAGE_SIZE, b"x" * (DEFAULT_MAX_MESSAGE_SIZE + 1)),
    ],
    ids=["text", "binary"],
)
async def test_default_limit_echoes_64_kib_and_closes_4413_past_it(
    server: RunningServer, largest: str | bytes, too_big: str | bytes
) -> None:
    await echoes_then_closes_4413(server, largest, too_big)


@pytest.mark.parametrize(
    ("largest", "too_big"),
    [
        ("x" * SMALL_MAX_MESSAGE_SIZE, "x" * (SMALL_MAX_MESSAGE_SIZE + 1)),
        (b"x" * SMALL_MAX_MESSAGE_SIZE, b"x" * (SMALL_MAX_MESSAGE_SIZE + 1)),
        # The limit is in UTF-8 bytes, not characters: 501 "é" are 1002 bytes.
        ("é" * (SMALL_MAX_MESSAGE_SIZE // 2), "é" * (SMALL_MAX_MESSAGE_SIZE // 2 + 1)),
    ],
    ids=["text", "binary", "non-ascii"],
)
async def test_max_message_size_setting(
    limited_server: RunningServer, largest: str | bytes, too_big: str | bytes
) -> None:
    await echoes_then_closes_4413(limited_server, largest, too_big)


async def echoes_then_closes_4413(server: RunningServer, largest: str | bytes, too_big: str | bytes) -> None:
    """``largest`` comes back as it was sent; ``too_big``, on the same connection, closes it with 4413."""
    async with connect(server.url("/echo")) as ws:
        await ws.send(largest)
        assert await ws.recv() == largest

        await ws.send(too_big)
        assert await server_close(ws) == (4413, "message too big")


# Rate


async def test_flood_past_rate_limit_closes_4429(limited_server: RunningServer) -> None:
    async with connect(limited_server.url("/echo"), close_timeout=2 * TCP_CLOSE_PATIENCE) as ws:
        # Sending fails once the close frame has arrived, which may be before the flood ends.
        with contextlib.suppress(ConnectionClosed):
            for number in range(FLOOD):
                await ws.send(str(number))
        assert await server_close(ws) == (4429, "rate limited")
        # The close handshake completes: the server ends the TCP connection after the client's reply.
        with anyio.fail_after(TCP_CLOSE_PATIENCE):
            await ws.wait_closed()


# Idle


# A client that sends nothing cannot be late with a message, however slow the machine: the idle
# close is the only way these connections can end.
@pytest.mark.parametrize("path", ["/ws", "/ws_json", "/ws_broadcast", "/ws/chat/idle", "/stream"])
async def test_silent_connection_closes_4408(idle_server: RunningServer, path: str) -> None:
    async with connect(idle_server.url(path)) as ws:
        assert await server_close(ws) == (4408, "idle timeout")
