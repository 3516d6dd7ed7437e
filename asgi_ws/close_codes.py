"""Every way a connection can end or be refused, in one place (contract §3).

This module owns the numbers and the words: WebSocket close codes and reasons for
connections that were accepted, and HTTP statuses and bodies for handshakes that
were refused.  It does not decide *when* either happens; that is ``policy`` and
``routing``.

Close codes sit in the private range 4000-4999 because some servers refuse RFC
codes other than 1000 (daphne raises on 1001, 1008 and 1011).  Each one mirrors
the HTTP status with the same meaning, a convention the graphql-ws protocol also
uses: 4400 is "bad request", 4413 "payload too large", and so on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = [
    "BAD_COUNT",
    "BAD_ORIGIN",
    "BAD_PRESENCE",
    "BAD_ROOM",
    "BAD_SINCE",
    "IDLE_TIMEOUT",
    "INTERNAL_ERROR",
    "INVALID_PUBLISH_ID",
    "MESSAGE_TOO_BIG",
    "NORMAL",
    "NOT_FOUND",
    "RATE_LIMITED",
    "REJECTED_INTERNAL_ERROR",
    "SLOW_CONSUMER",
    "TOKEN_ALGORITHM",
    "TOKEN_EXPIRED",
    "TOKEN_EXPIRED_CLOSE",
    "TOKEN_MALFORMED",
    "TOKEN_MISSING",
    "TOKEN_TAMPERED",
    "TOKEN_WRONG_ROOM",
    "TOO_MANY_CONNECTIONS",
    "TOO_MANY_REQUESTS",
    "UNSUPPORTED_DATA",
    "Close",
    "Rejection",
    "code_label",
]

# RFC 6455 §5.5.1: a close frame's payload is at most 125 bytes, two of which
# carry the code.  Reasons longer than this are truncated by some servers and
# rejected by others, so none of ours comes near it.
MAX_REASON_BYTES = 123


@dataclass(frozen=True, slots=True)
class Close:
    """How an accepted connection ends: the code and reason of the close frame."""

    code: int
    reason: str

    def __post_init__(self) -> None:
        if len(self.reason.encode()) > MAX_REASON_BYTES:
            raise ValueError(f"close reason longer than {MAX_REASON_BYTES} bytes: {self.reason!r}")

    @property
    def label(self) -> str:
        """The reason as a metrics label value, like a :class:`Rejection`'s: ``too_many_requests``."""
        return self.reason.replace(" ", "_") or "normal"


@dataclass(frozen=True, slots=True)
class Rejection:
    """How a handshake is refused before accept: an HTTP status and a short body.

    ``status`` is sent as is where the server advertises the
    ``websocket.http.response`` extension.  Elsewhere the app can only send
    ``websocket.close`` before accept, which every server turns into a 403.
    """

    status: int
    body: str
    reason: str  # a short name for logs and metrics labels, e.g. "bad_room"
    content_type: str = "text/plain; charset=utf-8"  # of the body, where the server lets the app send one


def _token_refusal(status: int, reason: str, message: str) -> Rejection:
    """A refused token (contract §10): a JSON body, so that a client can tell the reasons apart."""
    body = json.dumps({"error": reason, "message": message})
    return Rejection(status, body, reason, "application/json")


# Connections that were accepted (contract §3, "what happens").
NORMAL = Close(1000, "")
UNSUPPORTED_DATA = Close(4400, "unsupported data")
# 4400 again: a feed text that is a JSON object with "id" but not {"id": ID, "data": TEXT}
# (asgi_ws.publish_ids).  The client meant an id, and would never get its ack.
INVALID_PUBLISH_ID = Close(4400, "invalid publish id")
IDLE_TIMEOUT = Close(4408, "idle timeout")
MESSAGE_TOO_BIG = Close(4413, "message too big")
RATE_LIMITED = Close(4429, "rate limited")
# 4429 again, with its own reason: a /stream request while max_pending_pushes
# requests already wait behind the running push.  Too many requests at once,
# not too many per second.
TOO_MANY_REQUESTS = Close(4429, "too many requests")
INTERNAL_ERROR = Close(4500, "internal error")
SLOW_CONSUMER = Close(4503, "slow consumer")
# The connection's access token expired (contract §10), at that moment: 4401 mirrors 401.
TOKEN_EXPIRED_CLOSE = Close(4401, "token expired")

# Handshakes refused before accept (contract §1 last bullet, contract §3 last rows).
BAD_COUNT = Rejection(400, "invalid count: expected an integer from 1 to 1000000", "bad_count")
BAD_ROOM = Rejection(400, "invalid room name: expected 1-64 characters of [A-Za-z0-9_.-]", "bad_room")
BAD_SINCE = Rejection(400, "invalid since: expected EPOCH:OFFSET, as in a feed message", "bad_since")
BAD_PRESENCE = Rejection(400, "invalid presence: expected 1 or 0", "bad_presence")
BAD_ORIGIN = Rejection(403, "origin not allowed", "bad_origin")
NOT_FOUND = Rejection(404, "not found", "not_found")
REJECTED_INTERNAL_ERROR = Rejection(500, "internal error", "internal_error")
TOO_MANY_CONNECTIONS = Rejection(503, "too many connections", "too_many_connections")

# Access tokens refused before accept (contract §10): 401 for a token that proves nothing,
# 403 for a valid token that does not name the room.
TOKEN_MISSING = _token_refusal(401, "token_missing", "this endpoint needs ?token=JWT")
TOKEN_MALFORMED = _token_refusal(401, "token_malformed", "expected a JWT with sub, exp and rooms (a list of names)")
TOKEN_ALGORITHM = _token_refusal(401, "token_algorithm", "only HS256 tokens are accepted")
TOKEN_TAMPERED = _token_refusal(401, "token_tampered", "the token's signature does not match")
TOKEN_EXPIRED = _token_refusal(401, "token_expired", "the token has expired: get a fresh one")
TOKEN_WRONG_ROOM = _token_refusal(403, "token_wrong_room", "the token does not name this room")


# The codes a close's ``code`` label names one by one: those RFC 6455 §7.4.1 defines and
# the app's own.  Any other code comes from a client, which may pick any of the 2000
# codes of 3000-4999: as labels they would let one client add a time series per code.
_APP_CLOSES = (
    UNSUPPORTED_DATA,
    TOKEN_EXPIRED_CLOSE,
    IDLE_TIMEOUT,
    MESSAGE_TOO_BIG,
    RATE_LIMITED,
    INTERNAL_ERROR,
    SLOW_CONSUMER,
)
_NAMED_CODES = frozenset(range(1000, 1016)) | {close.code for close in _APP_CLOSES}


def code_label(code: int | None) -> str:
    """A close code as a metrics label from a small fixed set.

    ``none`` when the client vanished without one; the code itself when the RFC
    or this app defines it; ``3xxx`` or ``4xxx`` for a registered or private code
    a client chose; ``other`` for anything else a lenient server lets through.
    """
    if code is None:
        return "none"
    if code in _NAMED_CODES:
        return str(code)
    if 3000 <= code <= 4999:
        return f"{code // 1000}xxx"
    return "other"
