"""Handshakes refused before accept (contract §1 last bullet, contract §3 last four rows).

Each refusal is recorded as the client saw it: the HTTP status and the body.
Where the server advertises the ``websocket.http.response`` extension, these
are the app's own (404, 400, 403, 503, each with a short text body).  Where it
does not (daphne, granian), the app can only close before accept, and the
server answers with a 403 and a body of its own choosing: that difference is
the server's, and shows in the transcripts.

The connection cap and the origin allow-list need settings of their own; they
share one server process (:data:`HANDSHAKE`), whose cap is small enough to
reach with a handful of clients.
"""

from __future__ import annotations

import contextlib

from ..checks import Target, Transcript, scenario
from .helpers import client, handshake, settle

__all__ = ["HANDSHAKE"]

CAP = 3  # connections the HANDSHAKE server accepts at once
ALLOWED = "https://good.example"  # the one extra origin the HANDSHAKE server allows

# Settings of the server for the handshake policies that are not the defaults.
HANDSHAKE = {"ASGI_WS_MAX_CONNECTIONS": str(CAP), "ASGI_WS_ALLOWED_ORIGINS": ALLOWED}


async def _handshakes(target: Target, paths: list[str]) -> Transcript:
    return {path: await handshake(target, path) for path in paths}


# Routing (contract §1)


@scenario(
    "unknown-path-404",
    "A WebSocket handshake to an unknown path is refused: 404 with the extension, 403 without.",
    "contract §1 unknown path",
)
async def unknown_path_404(target: Target) -> Transcript:
    """Paths near real ones: unknown, wrong case, trailing slash, an HTTP-only path."""
    return await _handshakes(target, ["/nope", "/WS", "/ws/", "/echo/more", "/healthz"])


@scenario(
    "bad-room-400",
    "A chat room name outside 1-64 of [A-Za-z0-9_.-] is refused before accept: 400, or 403 without the extension.",
    "contract §1 chat, §3 invalid room",
)
async def bad_room_400(target: Target) -> Transcript:
    """Empty, 65 characters, a space, punctuation, non-ASCII, a nested path; and the longest good name."""
    rooms = ["", "a" * 65, "bad%20room", "room!", "caf%C3%A9", "nested/room", "R_1.2-" + "x" * 58]
    return await _handshakes(target, [f"/ws/chat/{room}" for room in rooms])


@scenario(
    "bad-count-400",
    "A /stream count outside 1-1,000,000 or not an integer is refused before accept: 400, or 403.",
    "contract §1 /stream, §3 invalid count",
)
async def bad_count_400(target: Target) -> Transcript:
    """Zero, too many, negative, text, empty, a sign, a decimal, repeated; then the two bounds."""
    queries = ["0", "1000001", "-1", "abc", "", "+5", "5.0", "1&count=2", "1", "1000000"]
    return await _handshakes(target, [f"/stream?count={query}" for query in queries])


# Origin (contract §3)


@scenario(
    "origin-foreign-403",
    "A handshake whose Origin is another host is refused before accept with 403.",
    "contract §3 origin",
)
async def origin_foreign_403(target: Target) -> Transcript:
    """Another host, the same host on another port, and the opaque origin "null"."""
    origins = ["http://evil.example", "http://127.0.0.1:1", "null"]
    return {origin: await handshake(target, "/ws", origin=origin) for origin in origins}


@scenario(
    "origin-same-host-accepted",
    "A handshake without Origin, or with the server's own host as Origin, is accepted.",
    "contract §3 origin",
)
async def origin_same_host_accepted(target: Target) -> Transcript:
    """No Origin header (non-browser clients), then the origin of a page this server served."""
    return {
        "no origin": await handshake(target, "/ws"),
        "same host": await handshake(target, "/ws", origin=target.server.origin),
    }


@scenario(
    "origin-allow-list",
    "ASGI_WS_ALLOWED_ORIGINS adds origins, compared without case or trailing slash; others are still 403.",
    "contract §3 origin",
    settings=HANDSHAKE,
)
async def origin_allow_list(target: Target) -> Transcript:
    """The allowed origin as configured and in another spelling, a lookalike, and the same host."""
    origins = [ALLOWED, "HTTPS://Good.Example/", "https://good.example.evil", target.server.origin]
    return {
        "allowed": await handshake(target, "/ws", origin=origins[0]),
        "allowed, other spelling": await handshake(target, "/ws", origin=origins[1]),
        "lookalike": await handshake(target, "/ws", origin=origins[2]),
        "same host": await handshake(target, "/ws", origin=origins[3]),
    }


# Connection cap (contract §3)


@scenario(
    "max-connections-503",
    "Past max_connections a handshake is refused before accept: 503 with the extension, 403 without.",
    "contract §3 max_connections",
    settings=HANDSHAKE,
)
async def max_connections_503(target: Target) -> Transcript:
    """Fill the cap, try one more, let one go, try again."""
    transcript: Transcript = {"settled before": await settle(target)}
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(client(target, "/ws")) for _ in range(CAP)]
        transcript["one past the cap"] = await handshake(target, "/ws")
        await clients.pop().close()
        transcript["one left, settled"] = await settle(target, CAP - 1)
        transcript["after one left"] = await handshake(target, "/ws")
    return transcript
