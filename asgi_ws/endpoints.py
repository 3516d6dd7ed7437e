"""What each endpoint does with one message: a pure table from a message to an action.

:func:`answer` is the behaviour of ``docs/contract.md`` §1 and nothing else.
It never awaits, never sends and touches no shared state: it returns what to
do, and the session (:mod:`asgi_ws.session`) does it.  The actions are:

- a ``websocket.send`` event: the reply, sent back to this client;
- :class:`Publish`: text for every member of a topic (chat, broadcast);
- :class:`Append`: a feed post to number, for every member of its room;
- :class:`Push`: start a ``/stream`` push for this request;
- a :class:`~asgi_ws.close_codes.Close`: end the connection (binary where only
  text is answered);
- None: nothing to do.

The policies that come before it (size, rate) are in :mod:`asgi_ws.policy`,
and the payload formats in :mod:`asgi_ws.messages`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import close_codes
from .close_codes import Close
from .feed import Post
from .messages import broadcast_text, bytes_event, from_text, json_reply, text_event, ws_reply
from .publish_ids import IdPublish, parse_publish
from .routing import Endpoint, Route
from .topics import BROADCAST, Topic, chat_room, feed_room

if TYPE_CHECKING:
    from asgiref.typing import WebSocketSendEvent

__all__ = [
    "BINARY_ENDPOINTS",
    "FAN_OUT_ENDPOINTS",
    "Action",
    "Append",
    "Publish",
    "Push",
    "answer",
    "topic_of",
]

# Endpoints that answer binary messages; all others close with 4400.
BINARY_ENDPOINTS = frozenset({Endpoint.WS, Endpoint.ECHO})

# Endpoints whose connections join a topic and are sent broadcasts (docs/contract.md §4).
FAN_OUT_ENDPOINTS = frozenset({Endpoint.WS_BROADCAST, Endpoint.CHAT, Endpoint.FEED})


@dataclass(frozen=True, slots=True)
class Publish:
    """Send ``text`` to every member of ``topic``, the sender too unless ``exclude_sender``."""

    topic: Topic
    text: str
    exclude_sender: bool


@dataclass(frozen=True, slots=True)
class Append:
    """Have ``post`` numbered in the feed room ``topic``, for every member, the sender included (contract §8)."""

    topic: Topic
    post: Post


@dataclass(frozen=True, slots=True)
class Push:
    """Start a ``/stream`` push for ``request``, the text that asked for it."""

    request: str


if TYPE_CHECKING:
    from typing import TypeAlias

    Action: TypeAlias = "WebSocketSendEvent | Publish | Append | Push | Close | None"


def answer(route: Route, text: str | None, data: bytes | None) -> Action:
    """What ``route``'s endpoint does with one message, ``text`` or ``data``."""
    endpoint = route.endpoint
    if text is None:
        if data is None:
            return None  # a receive event with neither key carries nothing to answer
        if endpoint not in BINARY_ENDPOINTS:
            return close_codes.UNSUPPORTED_DATA
        return bytes_event(data)
    if endpoint is Endpoint.ECHO:
        return text_event(text)
    if endpoint is Endpoint.WS:
        return text_event(ws_reply(text))
    if endpoint is Endpoint.WS_JSON:
        return text_event(json_reply(text))
    # With access tokens every room message says who sent it, from the token (contract §8.2).
    sender = route.grant.subject if route.grant is not None else None
    if endpoint is Endpoint.WS_BROADCAST:
        return Publish(BROADCAST, from_text(sender, broadcast_text(text)), exclude_sender=True)
    if endpoint is Endpoint.CHAT:
        return Publish(chat_room(route.room), from_text(sender, text), exclude_sender=False)
    if endpoint is Endpoint.FEED:  # numbered by the broker, which adds "from" beside the offset
        publish = parse_publish(text)
        if publish is None:
            return Append(feed_room(route.room), Post(text, sender=sender))
        if isinstance(publish, IdPublish):
            return Append(feed_room(route.room), Post(publish.data, publish.id, sender))
        return publish  # a Close: an id the client got wrong
    return Push(text)  # Endpoint.STREAM


def topic_of(route: Route) -> Topic | None:
    """The topic a connection to ``route`` joins, or None for the endpoints that answer only their client."""
    if route.endpoint is Endpoint.WS_BROADCAST:
        return BROADCAST
    if route.endpoint is Endpoint.CHAT:
        return chat_room(route.room)
    if route.endpoint is Endpoint.FEED:
        return feed_room(route.room)
    return None
