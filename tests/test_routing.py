"""asgi_ws.routing: paths and query strings to routes or rejections (contract §1)."""

from __future__ import annotations

import pytest

from asgi_ws import close_codes
from asgi_ws.feed import Since
from asgi_ws.routing import Endpoint, Route, endpoint_label, resolve


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [
        ("/ws", Endpoint.WS),
        ("/echo", Endpoint.ECHO),
        ("/ws_json", Endpoint.WS_JSON),
        ("/ws_broadcast", Endpoint.WS_BROADCAST),
        ("/ws/chat", Endpoint.CHAT),
        ("/stream", Endpoint.STREAM),
    ],
)
def test_each_endpoint_has_its_path(path: str, endpoint: Endpoint) -> None:
    route = resolve(path, b"")
    assert isinstance(route, Route)
    assert route.endpoint is endpoint


def test_chat_without_a_room_is_the_lobby() -> None:
    assert resolve("/ws/chat", b"") == Route(Endpoint.CHAT, room="lobby")


@pytest.mark.parametrize("room", ["a", "Room_1", "with.dots-and_dashes", "x" * 64, "lobby", "0"])
def test_valid_room_names(room: str) -> None:
    assert resolve(f"/ws/chat/{room}", b"") == Route(Endpoint.CHAT, room=room)


@pytest.mark.parametrize(
    "room", ["", "x" * 65, "has space", "semi;colon", "ünï", "a/b", "room\n", "../etc", "a%20b", "*", "<script>"]
)
def test_invalid_room_names_are_400(room: str) -> None:
    assert resolve(f"/ws/chat/{room}", b"") is close_codes.BAD_ROOM


@pytest.mark.parametrize("path", ["/", "/nope", "/ws/", "/WS", "/echo/", "/ws/chatroom", "/stream/1", ""])
def test_unknown_paths_are_404(path: str) -> None:
    assert resolve(path, b"") is close_codes.NOT_FOUND


@pytest.mark.parametrize(
    ("query", "count"),
    [(b"", 10_000), (b"count=1", 1), (b"count=1000000", 1_000_000), (b"count=42&other=x", 42), (b"x=1", 10_000)],
)
def test_stream_counts(query: bytes, count: int) -> None:
    assert resolve("/stream", query) == Route(Endpoint.STREAM, count=count)


@pytest.mark.parametrize(
    "query",
    [
        b"count=0",
        b"count=1000001",
        b"count=99999999999999999999",
        b"count=-1",
        b"count=+5",
        b"count=",
        b"count=1.5",
        b"count=ten",
        b"count=%D9%A5",  # an Arabic-Indic digit: int() would take it
        b"count=5&count=6",
        b"count=\xff",
    ],
)
def test_bad_stream_counts_are_400(query: bytes) -> None:
    assert resolve("/stream", query) is close_codes.BAD_COUNT


# /ws/feed and /ws/feed/{room}


def test_feed_without_a_room_is_the_lobby() -> None:
    assert resolve("/ws/feed", b"") == Route(Endpoint.FEED, room="lobby")


@pytest.mark.parametrize("room", ["a", "Room_1", "with.dots-and_dashes", "x" * 64, "lobby"])
def test_feed_rooms_are_named_as_chat_rooms(room: str) -> None:
    assert resolve(f"/ws/feed/{room}", b"") == Route(Endpoint.FEED, room=room)


@pytest.mark.parametrize("room", ["", "x" * 65, "has space", "ünï", "a/b", "room\n", "a%20b"])
def test_invalid_feed_room_names_are_400(room: str) -> None:
    assert resolve(f"/ws/feed/{room}", b"") is close_codes.BAD_ROOM


def test_a_bad_room_is_answered_before_a_bad_since() -> None:
    assert resolve("/ws/feed/bad room", b"since=nope") is close_codes.BAD_ROOM


@pytest.mark.parametrize(
    ("path", "query", "since"),
    [
        ("/ws/feed/r", b"since=e1:42", Since("e1", 42)),
        ("/ws/feed/r", b"since=e1:0", Since("e1", 0)),
        ("/ws/feed/r", b"since=e1%3A7", Since("e1", 7)),  # a percent-encoded colon, as URLSearchParams sends it
        ("/ws/feed/r", b"other=x&since=ab-_9:3", Since("ab-_9", 3)),
        ("/ws/feed", b"since=e:5", Since("e", 5)),
        ("/ws/feed/r", b"", None),
        ("/ws/feed/r", b"sinc=e:1", None),
    ],
)
def test_feed_since(path: str, query: bytes, since: Since | None) -> None:
    room = path.removeprefix("/ws/feed").removeprefix("/") or "lobby"
    assert resolve(path, query) == Route(Endpoint.FEED, room=room, since=since)


@pytest.mark.parametrize(
    "query",
    [
        b"since=",
        b"since=e1",
        b"since=:1",
        b"since=e1:",
        b"since=e1:-1",
        b"since=e1:1.5",
        b"since=e%C3%A9:1",  # a non-ASCII epoch
        b"since=e1:\xd9\xa1",  # a non-ASCII digit, raw
        b"since=" + b"x" * 33 + b":1",
        b"since=e1:" + b"9" * 19,
        b"since=e1:1&since=e1:2",  # two since: which one?
        b"since=e1:1&since=e1:1",
    ],
)
def test_bad_since_is_400(query: bytes) -> None:
    assert resolve("/ws/feed/r", query) is close_codes.BAD_SINCE
    assert close_codes.BAD_SINCE.status == 400


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("/ws/feed", "feed"),
        ("/ws/feed/r1", "feed"),
        ("/ws/feed/bad room", "feed"),
        ("/ws/chat/x", "chat"),
        ("/ws/feedx", "unknown"),
        ("/nope", "unknown"),
    ],
)
def test_endpoint_label_of_feed_paths(path: str, label: str) -> None:
    assert endpoint_label(path) == label
