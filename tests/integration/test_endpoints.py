"""Every WebSocket endpoint of contract §1, answered exactly as its table says, under every server.

One shared server per server name (the ``server`` fixture), real ``websockets``
clients.  Text payloads are compared to the character; JSON payloads as values,
because key order and spacing are not part of the contract.  Where a client
must receive *nothing*, the test proves it by order, not by waiting: another
message is sent after the one that must not arrive, and the client's next
message must be that later one.

Every test reads all that the server sends before it closes.  The websockets
client stops reading the socket when more than 16 messages wait unread
(``max_queue``), and then cannot see the server's close frame: closing would
take its whole close timeout (10 s) and end with 1006.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from conformance.launcher import RunningServer

from .client import server_close

pytestmark = [pytest.mark.server, pytest.mark.anyio]

TEXTS = ["hello", "", "héllo wörld ✓ Ωμέγα 日本語 🎉", "  spaces, tabs\tand\nnewlines  "]
DATA = [b"\x00\x01\x02\xff", b"", bytes(range(256))]


async def says(sender: ClientConnection, text: str, *hearers: ClientConnection, heard: str | None = None) -> None:
    """``sender`` sends ``text``; the next message of each of ``hearers`` is ``heard`` (``text`` itself by default)."""
    await sender.send(text)
    for ws in hearers:
        assert await ws.recv() == (text if heard is None else heard)


# /ws and /echo


@pytest.mark.parametrize("text", TEXTS)
async def test_ws_answers_text_with_prefix(server: RunningServer, text: str) -> None:
    async with connect(server.url("/ws")) as ws:
        await ws.send(text)
        assert await ws.recv() == f"Message text was: {text}"


@pytest.mark.parametrize("path", ["/ws", "/echo"])
@pytest.mark.parametrize("data", DATA)
async def test_binary_is_echoed_unchanged(server: RunningServer, path: str, data: bytes) -> None:
    async with connect(server.url(path)) as ws:
        await ws.send(data)
        assert await ws.recv() == data


@pytest.mark.parametrize("text", TEXTS)
async def test_echo_answers_text_unchanged(server: RunningServer, text: str) -> None:
    async with connect(server.url("/echo")) as ws:
        await ws.send(text)
        assert await ws.recv() == text


async def test_one_connection_answers_many_messages_in_order(server: RunningServer) -> None:
    async with connect(server.url("/echo")) as ws:
        for number in range(100):
            await ws.send(str(number))
        assert [await ws.recv() for _ in range(100)] == [str(number) for number in range(100)]


# /ws_json


@pytest.mark.parametrize(
    "value",
    [{"a": 1, "b": [1, 2.5, {"c": None}]}, [1, "two", False], "a string", 42, -0.5, True, None, {"ünï": "cödé ✓"}],
)
async def test_ws_json_wraps_the_value(server: RunningServer, value: Any) -> None:
    async with connect(server.url("/ws_json")) as ws:
        await ws.send(json.dumps(value))
        assert json.loads(await ws.recv()) == {"message": "Received JSON data", "data": value}


@pytest.mark.parametrize("text", ["{bad", "", "not json", "{'single': 'quotes'}", "[1, 2"])
async def test_ws_json_answers_invalid_json_with_an_error_and_stays_open(server: RunningServer, text: str) -> None:
    async with connect(server.url("/ws_json")) as ws:
        await ws.send(text)
        error = json.loads(await ws.recv())
        assert error.keys() == {"error", "detail"}
        assert error["error"] == "invalid_json"
        assert isinstance(error["detail"], str)
        assert error["detail"]

        await ws.send('{"still": "open"}')
        assert json.loads(await ws.recv()) == {"message": "Received JSON data", "data": {"still": "open"}}


# /ws_broadcast


async def test_broadcast_reaches_every_other_client_but_not_the_sender(server: RunningServer) -> None:
    url = server.url("/ws_broadcast")
    async with connect(url) as sender, connect(url) as first, connect(url) as second:
        await says(sender, "t", first, second, heard="New message: t")
        # Had the sender received its own "t", that would be its next message, not this one.
        await says(first, "u", sender, second, heard="New message: u")


# /ws/chat and /ws/chat/{room}


async def test_chat_room_delivers_to_everyone_the_sender_included(server: RunningServer) -> None:
    url = server.url("/ws/chat/everyone")
    async with connect(url) as sender, connect(url) as first, connect(url) as second:
        await says(sender, "hello, room ✓", sender, first, second)


async def test_chat_without_a_room_is_the_lobby(server: RunningServer) -> None:
    async with connect(server.url("/ws/chat")) as bare, connect(server.url("/ws/chat/lobby")) as named:
        await says(bare, "from /ws/chat", bare, named)
        await says(named, "from /ws/chat/lobby", bare)


async def test_chat_rooms_are_isolated(server: RunningServer) -> None:
    async with connect(server.url("/ws/chat/room-a")) as in_a, connect(server.url("/ws/chat/room-b")) as in_b:
        await says(in_b, "only for b", in_b)
        # Had "only for b" leaked into room-a, it would come before this; had "only for a" leaked into
        # room-b, it would come before "b again".
        await says(in_a, "only for a", in_a)
        await says(in_b, "b again", in_b)


# /stream


async def test_stream_default_pushes_10000_numbers_complete_and_in_order(server: RunningServer) -> None:
    async with connect(server.url("/stream")) as ws:
        await ws.send("go")
        received = [await ws.recv() for _ in range(10_000)]
        assert received == [str(number) for number in range(1, 10_001)]

        # Pushes run one after another, so an extra message of the first would come before these.
        await ws.send('{"message": "next"}')
        received = [json.loads(await ws.recv()) for _ in range(10_000)]
        assert received == [{"message": f"next - {number}", "number": number} for number in range(1, 10_001)]


async def test_stream_count_and_label(server: RunningServer) -> None:
    async with connect(server.url("/stream?count=3")) as ws:
        await ws.send("plain")
        assert [await ws.recv() for _ in range(3)] == ["1", "2", "3"]

        await ws.send(json.dumps({"message": "héllo ✓"}))
        received = [json.loads(await ws.recv()) for _ in range(3)]
        assert received == [{"message": f"héllo ✓ - {number}", "number": number} for number in (1, 2, 3)]

        await ws.send("again")
        assert [await ws.recv() for _ in range(3)] == ["1", "2", "3"]


@pytest.mark.parametrize("request_text", ['{"message": 5}', '{"other": "key"}', '["message"]', '"message"'])
async def test_stream_without_a_string_message_pushes_plain_numbers(server: RunningServer, request_text: str) -> None:
    async with connect(server.url("/stream?count=2")) as ws:
        await ws.send(request_text)
        assert [await ws.recv() for _ in range(2)] == ["1", "2"]


# Binary where only text is accepted (contract §1, §3)


@pytest.mark.parametrize("path", ["/ws_json", "/ws_broadcast", "/ws/chat", "/ws/chat/binary", "/stream"])
async def test_binary_on_a_text_endpoint_closes_4400(server: RunningServer, path: str) -> None:
    async with connect(server.url(path)) as ws:
        await ws.send(b"binary")
        assert await server_close(ws) == (4400, "unsupported data")
