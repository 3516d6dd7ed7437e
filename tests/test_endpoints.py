"""asgi_ws.endpoints: what each endpoint does with one message, as plain values."""

from __future__ import annotations

import json

from asgi_ws import close_codes
from asgi_ws.endpoints import Publish, Push, answer, topic_of
from asgi_ws.routing import Endpoint, Route
from asgi_ws.topics import BROADCAST, chat_room


def route(endpoint: Endpoint, room: str = "", count: int = 10) -> Route:
    return Route(endpoint, room=room, count=count)


def test_echo_endpoints_reply() -> None:
    assert answer(route(Endpoint.ECHO), "hi", None) == {"type": "websocket.send", "bytes": None, "text": "hi"}
    assert answer(route(Endpoint.WS), "hi", None) == {
        "type": "websocket.send",
        "bytes": None,
        "text": "Message text was: hi",
    }
    assert answer(route(Endpoint.WS), None, b"\x00") == {"type": "websocket.send", "bytes": b"\x00", "text": None}
    reply = answer(route(Endpoint.WS_JSON), "[1]", None)
    assert isinstance(reply, dict)
    assert json.loads(reply["text"] or "") == {"message": "Received JSON data", "data": [1]}


def test_binary_where_only_text_is_answered_closes_4400() -> None:
    for endpoint in (Endpoint.WS_JSON, Endpoint.WS_BROADCAST, Endpoint.CHAT, Endpoint.STREAM):
        assert answer(route(endpoint, room="r"), None, b"x") is close_codes.UNSUPPORTED_DATA


def test_fan_out_endpoints_publish_and_stream_pushes() -> None:
    assert answer(route(Endpoint.WS_BROADCAST), "t", None) == Publish(BROADCAST, "New message: t", exclude_sender=True)
    assert answer(route(Endpoint.CHAT, room="r"), "t", None) == Publish(chat_room("r"), "t", exclude_sender=False)
    assert answer(route(Endpoint.STREAM), "go", None) == Push("go")


def test_an_event_with_neither_key_is_ignored() -> None:
    assert answer(route(Endpoint.ECHO), None, None) is None


def test_topics() -> None:
    assert topic_of(route(Endpoint.CHAT, room="r")) == chat_room("r")
    assert topic_of(route(Endpoint.WS_BROADCAST)) == BROADCAST
    assert topic_of(route(Endpoint.ECHO)) is None
