"""Policy decisions of contract §3 as plain functions of plain values.  Pure: no I/O.

- :func:`origin_allowed`: may a browser page from this ``Origin`` connect?
- :class:`TokenBucket`: has this connection sent too many messages?
- :func:`message_size`: how many bytes is this message on the wire?
- :func:`check_message`: what, if anything, ends a connection for this message?

Time is passed in (``now``), never read here, so every decision can be tested
without an event loop or a clock.  Where each policy is *enforced*:
:mod:`asgi_ws.handshake` checks the origin before accept, and
:mod:`asgi_ws.session` the size and rate of every message; the codes and
reasons are :mod:`asgi_ws.close_codes`.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from . import close_codes
from .close_codes import Close

__all__ = ["TokenBucket", "check_message", "header", "message_size", "origin_allowed"]


def header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The first value of header ``name`` (lower-case, as ASGI gives names), or None."""
    for key, value in headers:
        if key == name:
            # RFC 9110 §5.5: field values are ASCII in practice; latin-1 never fails.
            return value.decode("latin-1")
    return None


def origin_allowed(origin: str | None, host: str | None, allowed: tuple[str, ...]) -> bool:
    """contract §3: no ``Origin`` is allowed, the same host is allowed, and so is the allow-list.

    ``Origin`` is sent by browsers only, and it is what stops a page on another
    site from opening a socket with the user's cookies (cross-site WebSocket
    hijacking).  Non-browser clients send none and are let through.

    "Same host" compares the origin's ``host[:port]`` with the ``Host`` header,
    so a page served by this app can always connect back to it.  ``allowed``
    adds origins (``https://example.com``, compared without case or trailing
    slash); ``*`` in it allows any origin.
    """
    if origin is None:
        return True
    normalised = origin.strip().rstrip("/").lower()
    if "*" in allowed or normalised in allowed:
        return True
    if host is None:
        return False
    try:
        netloc = urlsplit(normalised).netloc
    except ValueError:  # e.g. an unbalanced "[" in an IPv6 literal
        return False
    return netloc != "" and netloc == host.strip().lower()


def message_size(text: str | None, data: bytes | None) -> int:
    """Bytes on the wire: UTF-8 length for text, length for binary.

    Computed once per message: the size limit and the byte counters of
    ``/metrics`` both use it.
    """
    if text is not None:
        if text.isascii():  # one byte per character, and no need to encode
            return len(text)
        # surrogatepass: the server decoded this from UTF-8, so it has no lone
        # surrogates, but a direct ASGI caller could send some; count, don't crash.
        return len(text.encode("utf-8", "surrogatepass"))
    if data is not None:
        return len(data)
    return 0


class TokenBucket:
    """Rate limit as a token bucket: ``rate`` tokens per second, at most ``burst`` saved.

    Each message takes one token.  A full bucket lets a client send ``burst``
    messages at once; after that it may send ``rate`` per second, on average,
    for ever.  ``rate == 0`` turns the limit off.
    """

    __slots__ = ("_burst", "_rate", "_tokens", "_updated")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self._rate = rate  # tokens added per second
        self._burst = float(burst)  # the bucket's size
        self._tokens = float(burst)  # tokens available; starts full
        self._updated = now  # when _tokens was last brought up to date

    def allow(self, now: float) -> bool:
        """Take a token for one message at time ``now``; False if there is none.

        Called for every message, so plain comparisons rather than min() and max().
        """
        if self._rate == 0:
            return True
        if now > self._updated:  # a clock that went backwards adds nothing
            tokens = self._tokens + (now - self._updated) * self._rate
            self._tokens = tokens if tokens < self._burst else self._burst
            self._updated = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


def check_message(size: int, max_size: int, bucket: TokenBucket, now: float) -> Close | None:
    """The close a received message of ``size`` bytes earns, or None to handle it.  Size first, then rate."""
    if size > max_size:
        return close_codes.MESSAGE_TOO_BIG
    if not bucket.allow(now):
        return close_codes.RATE_LIMITED
    return None
