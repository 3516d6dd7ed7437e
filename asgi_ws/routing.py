"""Which WebSocket endpoint a handshake asks for (contract §1).  Pure: no I/O.

:func:`resolve` turns the scope's ``path`` and ``query_string`` into a
:class:`Route`, or into the :class:`~asgi_ws.close_codes.Rejection` that
answers a bad request before accept.  It does not decide whether the handshake
is *allowed* (origin, connection cap); that is :mod:`asgi_ws.policy`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from . import close_codes
from .close_codes import Rejection
from .feed import Since, parse_since

if TYPE_CHECKING:
    from .access import Grant

__all__ = [
    "DEFAULT_ROOM",
    "DEFAULT_STREAM_COUNT",
    "MAX_STREAM_COUNT",
    "Endpoint",
    "Route",
    "endpoint_label",
    "query_values",
    "resolve",
]

DEFAULT_ROOM = "lobby"
DEFAULT_STREAM_COUNT = 10_000
MAX_STREAM_COUNT = 1_000_000

CHAT_PREFIX = "/ws/chat/"
FEED_PREFIX = "/ws/feed/"

# contract §1: 1-64 characters of [A-Za-z0-9_.-].  \Z, not $, so "room\n" fails.
_ROOM_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")
# Digits only: int() would also take " 5", "+5", "5_000" and non-ASCII digits.
_COUNT = re.compile(r"[0-9]{1,7}\Z")


class Endpoint(enum.Enum):
    """The WebSocket endpoints, named after their paths."""

    WS = "/ws"
    ECHO = "/echo"
    WS_JSON = "/ws_json"
    WS_BROADCAST = "/ws_broadcast"
    CHAT = "/ws/chat"
    FEED = "/ws/feed"
    STREAM = "/stream"

    @property
    def label(self) -> str:
        """The name in logs and metrics: ``ws``, ``echo``, ``ws_json``, ``ws_broadcast``, ``chat``, ``feed``..."""
        return _LABELS[self]


@dataclass(frozen=True, slots=True)
class Route:
    """A handshake that names a real endpoint with valid parameters."""

    endpoint: Endpoint
    room: str = DEFAULT_ROOM  # only meaningful for CHAT and FEED
    count: int = DEFAULT_STREAM_COUNT  # only meaningful for STREAM
    since: Since | None = None  # only for FEED: where a resuming client left off
    grant: Grant | None = None  # what the access token allows (asgi_ws.access); None without tokens
    presence: bool = False  # only for CHAT and FEED: ?presence=1, the members and their comings and goings


_EXACT_PATHS = {endpoint.value: endpoint for endpoint in Endpoint}

# Made once, not per connection: every accepted connection keeps its label (in
# its metrics) and its route for its whole life, and an idle connection should
# hold as little as a connection can (bench/RESULTS.md, P6).  A route without
# parameters is the same value for every connection to its path.
_LABELS = {endpoint: endpoint.name.lower() for endpoint in Endpoint}
_PLAIN_ROUTES = {endpoint: Route(endpoint) for endpoint in Endpoint}


def resolve(path: str, query_string: bytes) -> Route | Rejection:
    """Route a handshake by the scope's (already percent-decoded) ``path`` and raw query."""
    endpoint = _EXACT_PATHS.get(path)
    if endpoint is Endpoint.STREAM:
        return _stream_route(query_string)
    if endpoint is Endpoint.FEED:
        return _feed_route(DEFAULT_ROOM, query_string)
    if endpoint is Endpoint.CHAT:
        return _chat_route(DEFAULT_ROOM, query_string)
    if endpoint is not None:
        return _PLAIN_ROUTES[endpoint]
    if path.startswith(CHAT_PREFIX):
        # Everything under /ws/chat/ is the chat endpoint, so a bad name is
        # answered "bad room" (400) rather than "no such path" (404).
        return _chat_route(path.removeprefix(CHAT_PREFIX), query_string)
    if path.startswith(FEED_PREFIX):
        return _feed_route(path.removeprefix(FEED_PREFIX), query_string)
    return close_codes.NOT_FOUND


def endpoint_label(path: str) -> str:
    """The endpoint label of ``path`` even when the handshake is refused; ``unknown`` for no endpoint.

    A fixed set of values, never the path itself: room names and other paths
    would make a metrics label grow without bound.
    """
    endpoint = _EXACT_PATHS.get(path)
    if endpoint is not None:
        return endpoint.label
    if path.startswith(CHAT_PREFIX):
        return Endpoint.CHAT.label
    return Endpoint.FEED.label if path.startswith(FEED_PREFIX) else "unknown"


def _query(query_string: bytes) -> list[tuple[str, str]]:
    # latin-1 maps every byte to one character, so decoding never fails; any
    # non-ASCII byte then fails the ASCII-only patterns the values must match.
    return parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)


def query_values(query_string: bytes, name: str) -> list[str]:
    """Every value of the query parameter ``name``, in order (``?token=`` for :mod:`asgi_ws.access`)."""
    return [value for key, value in _query(query_string) if key == name]


def _presence(query_string: bytes) -> bool | None:
    """``?presence=1`` (True), ``0`` or absent (False); None for anything else, answered 400."""
    values = query_values(query_string, "presence")
    if not values:
        return False
    return {"1": True, "0": False}.get(values[0]) if len(values) == 1 else None


def _room_route(endpoint: Endpoint, room: str, query_string: bytes) -> Route | Rejection:
    """A chat or feed room: its name, and an optional ``presence=1``."""
    if _ROOM_NAME.match(room) is None:
        return close_codes.BAD_ROOM
    presence = _presence(query_string)
    if presence is None:
        return close_codes.BAD_PRESENCE
    return Route(endpoint, room=room, presence=presence)


def _chat_route(room: str, query_string: bytes) -> Route | Rejection:
    return _room_route(Endpoint.CHAT, room, query_string)


def _feed_route(room: str, query_string: bytes) -> Route | Rejection:
    """A feed room, with the names of chat rooms, an optional ``since=EPOCH:OFFSET`` and ``presence=1``."""
    route = _room_route(Endpoint.FEED, room, query_string)
    if not isinstance(route, Route):
        return route
    values = query_values(query_string, "since")
    if not values:
        return route
    since = parse_since(values[0]) if len(values) == 1 else None
    if since is None:
        return close_codes.BAD_SINCE
    return replace(route, since=since)


def _stream_route(query_string: bytes) -> Route | Rejection:
    counts = query_values(query_string, "count")
    if not counts:
        return _PLAIN_ROUTES[Endpoint.STREAM]
    if len(counts) > 1 or _COUNT.match(counts[0]) is None:
        return close_codes.BAD_COUNT
    count = int(counts[0])
    if not 1 <= count <= MAX_STREAM_COUNT:
        return close_codes.BAD_COUNT
    return Route(Endpoint.STREAM, count=count)
