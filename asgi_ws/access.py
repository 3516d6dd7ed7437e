"""Access tokens: who may enter which room, and for how long (contract §10).

Without ``ASGI_WS_TOKEN_SECRET`` nothing here runs and every room is open, as
before.  With it, a chat, feed or ``/ws_broadcast`` handshake must carry
``?token=``: browsers cannot set headers on a WebSocket, so the query is where
a token can go.  (``ASGI_WS_TOKEN_ALL=1`` asks it of every endpoint.)

A token is an HS256 JWT (RFC 7519) that the application's backend mints with
the shared secret, as Centrifugo's connection tokens are.  Its claims:

- ``sub``: who the client is.  Every message it sends carries it as ``"from"``,
  set here from the token, never by the client (contract §8.2);
- ``exp``: when the token, and every connection opened with it, ends;
- ``rooms``: the room names it may enter, each exact or a prefix ending in
  ``*`` (``"team-*"``).  The broadcast group is not a room: any valid token
  enters it.

:func:`check_token` is pure: the raw token, the secret, the room and the time
in, a :class:`Grant` or the :class:`~asgi_ws.close_codes.Rejection` saying why
out.  PyJWT does the cryptography and the claim checks; the one algorithm
accepted is HS256, named to PyJWT so that a token that names ``none`` or
another algorithm is never verified with it (RFC 8725 §3.1).

A grant's expiry ends its connection at that moment, with 4401 ``token
expired``: it is the session's cancel-scope deadline, as the idle timeout is
(:mod:`asgi_ws.idle`), so it costs no task and no timer of its own.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import jwt

from . import close_codes
from .close_codes import Rejection

__all__ = ["ALGORITHM", "MIN_SECRET_BYTES", "Grant", "check_token", "mint_token"]

ALGORITHM = "HS256"
# RFC 7518 §3.2: an HS256 key must be at least as long as the hash, 256 bits.
MIN_SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class Grant:
    """What a valid token lets its connection do: who it is, until when, and where."""

    subject: str  # the token's sub: "from" on every message the connection sends
    expires: float  # the token's exp, seconds since the epoch: the connection ends then
    rooms: tuple[str, ...]  # room names, or prefixes ending in "*"

    def allows(self, room: str) -> bool:
        """Whether ``room`` is one of the grant's rooms or matches one of its patterns."""
        return any(room.startswith(name[:-1]) if name.endswith("*") else room == name for name in self.rooms)


def check_token(raw: str | None, secret: str, room: str | None, now: float | None = None) -> Grant | Rejection:
    """The grant of the token ``raw`` for ``room`` (None: an endpoint that is not a room), or why not.

    The checks run in this order, so that each refusal names the first thing
    wrong: present, parseable, HS256, signed with ``secret``, not expired, with
    the claims, and naming ``room``.
    """
    if not raw:
        return close_codes.TOKEN_MISSING
    try:
        algorithm = jwt.get_unverified_header(raw).get("alg")
    except jwt.DecodeError:
        return close_codes.TOKEN_MALFORMED
    if algorithm != ALGORITHM:
        return close_codes.TOKEN_ALGORITHM
    now = time.time() if now is None else now
    try:
        claims = jwt.decode(
            raw,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["sub", "exp", "rooms"], "verify_exp": False, "verify_iat": False},
        )
    except jwt.InvalidSignatureError:
        return close_codes.TOKEN_TAMPERED
    except jwt.InvalidTokenError:  # undecodable, a claim missing or of the wrong type
        return close_codes.TOKEN_MALFORMED
    # exp is checked here, against ``now``, rather than by PyJWT against its own clock: the same
    # rule then serves the handshake and the tests, with no leeway either way.  iat is not checked
    # at all (RFC 7519 §4.1.6 makes it information, not a condition); an nbf still in the future
    # is refused by PyJWT, as malformed.
    expires, rooms = claims["exp"], claims["rooms"]
    if not isinstance(expires, int | float) or isinstance(expires, bool):
        return close_codes.TOKEN_MALFORMED
    if not (isinstance(rooms, list) and all(isinstance(name, str) and name for name in rooms)):
        return close_codes.TOKEN_MALFORMED
    if expires <= now:
        return close_codes.TOKEN_EXPIRED
    grant = Grant(claims["sub"], float(expires), tuple(rooms))
    if room is not None and not grant.allows(room):
        return close_codes.TOKEN_WRONG_ROOM
    return grant


def mint_token(secret: str, subject: str, rooms: Sequence[str], ttl: float, now: float | None = None) -> str:
    """An HS256 token for ``subject`` to enter ``rooms`` for ``ttl`` seconds: what ``asgi-ws token`` prints."""
    now = time.time() if now is None else now
    claims = {"sub": subject, "rooms": list(rooms), "iat": int(now), "exp": int(now + ttl)}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)
