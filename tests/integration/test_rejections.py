"""Handshakes refused before accept (contract §1 last bullet, contract §3): status and body on the wire.

Where the server advertises the ``websocket.http.response`` extension (uvicorn,
hypercorn, granian, anycorn), every refusal is the app's own HTTP response; where
it does not (daphne, gunicorn), it is the bare 403 that close-before-accept
produces (``refused_as``).
"""

from __future__ import annotations

import anyio.to_thread
import pytest
from websockets.asyncio.client import connect

from conformance.launcher import RunningServer, StartServer

from .client import refusal, refused_as

pytestmark = [pytest.mark.server, pytest.mark.anyio]

NOT_FOUND = (404, b"not found")
BAD_ROOM = (400, b"invalid room name: expected 1-64 characters of [A-Za-z0-9_.-]")
BAD_COUNT = (400, b"invalid count: expected an integer from 1 to 1000000")
BAD_ORIGIN = (403, b"origin not allowed")
TOO_MANY_CONNECTIONS = (503, b"too many connections")


async def assert_accepted(url: str, origin: str | None = None) -> None:
    """The handshake to a ``/ws`` URL succeeds and the connection answers."""
    async with connect(url, origin=origin) as ws:
        await ws.send("ping")
        assert await ws.recv() == "Message text was: ping"


# Routing


@pytest.mark.parametrize("path", ["/nope", "/", "/WS", "/ws/", "/ws_json/", "/echo/more", "/healthz"])
async def test_unknown_path_is_404(server: RunningServer, path: str) -> None:
    assert await refusal(server.url(path)) == refused_as(server.name, *NOT_FOUND)


@pytest.mark.parametrize("room", ["", "a" * 65, "bad%20room", "room!", "caf%C3%A9", "nested/room"])
async def test_bad_room_name_is_400(server: RunningServer, room: str) -> None:
    assert await refusal(server.url(f"/ws/chat/{room}")) == refused_as(server.name, *BAD_ROOM)


@pytest.mark.parametrize("room", ["a", "a" * 64, "Room_1.2-3", "..."])
async def test_good_room_names_are_accepted(server: RunningServer, room: str) -> None:
    async with connect(server.url(f"/ws/chat/{room}")) as ws:
        await ws.send("hi")
        assert await ws.recv() == "hi"


@pytest.mark.parametrize(
    "query",
    ["count=0", "count=1000001", "count=-1", "count=abc", "count=", "count=+5", "count=5.0", "count=1&count=2"],
)
async def test_bad_count_is_400(server: RunningServer, query: str) -> None:
    assert await refusal(server.url(f"/stream?{query}")) == refused_as(server.name, *BAD_COUNT)


@pytest.mark.parametrize("query", ["count=1", "count=1000000", "other=x"])
async def test_good_counts_are_accepted(server: RunningServer, query: str) -> None:
    # Handshake only: a million messages are not asked for.
    async with connect(server.url(f"/stream?{query}")):
        pass


# Origin


async def test_no_origin_and_same_host_origin_are_accepted(server: RunningServer) -> None:
    await assert_accepted(server.url("/ws"))
    await assert_accepted(server.url("/ws"), origin=server.origin)


@pytest.mark.parametrize("origin", ["http://evil.example", "http://127.0.0.1:1", "null"])
async def test_foreign_origin_is_403(server: RunningServer, origin: str) -> None:
    assert await refusal(server.url("/ws"), origin=origin) == refused_as(server.name, *BAD_ORIGIN)


async def test_allowed_origins_setting_admits_listed_origins_only(start_server: StartServer) -> None:
    server = start_server({"ASGI_WS_ALLOWED_ORIGINS": "https://app.example.com,https://other.example"})
    await assert_accepted(server.url("/ws"), origin="https://app.example.com")
    await assert_accepted(server.url("/ws"), origin="https://other.example")
    await assert_accepted(server.url("/ws"), origin=server.origin)
    assert await refusal(server.url("/ws"), origin="https://evil.example") == refused_as(server.name, *BAD_ORIGIN)


# Connection cap


async def test_connection_past_max_connections_is_503_until_one_closes(start_server: StartServer) -> None:
    server = start_server({"ASGI_WS_MAX_CONNECTIONS": "2"})
    async with connect(server.url("/ws")) as first, connect(server.url("/ws")) as second:
        assert await refusal(server.url("/ws")) == refused_as(server.name, *TOO_MANY_CONNECTIONS)

        await first.close()
        # The server counts the connection out after its close frame; poll in a thread so that
        # this loop keeps serving the open client meanwhile.
        await anyio.to_thread.run_sync(server.wait_for_health, lambda health: health["connections"] == 1, 15.0)
        await assert_accepted(server.url("/ws"))

        await second.send("still served")
        assert await second.recv() == "Message text was: still served"
