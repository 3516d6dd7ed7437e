"""The idle timeout: a connection with no message either way for ``idle_timeout`` is closed with 4408.

The same deadline also ends a connection whose access token expires, with
4401, at that moment (``docs/contract.md`` §10): the deadline is never later
than :attr:`IdleDeadline.end`.

An idle connection must cost as little as a connection can, so the timeout is
not a task that sleeps and checks: it is the deadline of the session's cancel
scope, which the event loop keeps as one timer.  When the deadline passes the
scope is cancelled, and the session, asking :meth:`IdleDeadline.expired`,
closes with 4408 (``docs/contract.md`` §3).

Moving a deadline reschedules that timer, which is too dear to do for every
message.  So :class:`IdleDeadline` moves it at most once per
``idle_timeout / IDLE_SLACK`` seconds, and sets it that much later than
strictly needed: a connection is closed between ``idle_timeout`` and
``idle_timeout * (1 + 1/IDLE_SLACK)`` seconds after its last message, never
before.  The hot loops only compare the time with :attr:`IdleDeadline.due`.
"""

from __future__ import annotations

import math
from time import monotonic

import anyio

__all__ = ["IDLE_SLACK", "IdleDeadline"]

# How late the idle close may come, as a fraction of idle_timeout: 1/16.
IDLE_SLACK = 16


class IdleDeadline:
    """The idle timeout of one session, kept as its cancel scope's deadline."""

    __slots__ = ("_after", "_scope", "due", "end")

    def __init__(self, scope: anyio.CancelScope, idle_after: float) -> None:
        self._scope = scope  # the session's cancel scope, whose deadline this moves
        self._after = idle_after  # seconds without a message before the close; 0 turns it off
        self.due = math.inf  # when (time.monotonic()) to move the deadline next; inf until started, or when off
        # When (the event loop's clock) the connection ends whatever its traffic: its access token's
        # expiry (asgi_ws.access), or inf.  The deadline never moves past it.
        self.end = math.inf

    def start(self, now: float, end: float = math.inf) -> None:
        """The session starts at ``now`` and must end by ``end``: set the first deadline."""
        self.end = end
        if self._after > 0:
            self.move(now)
        elif end != math.inf:
            self._scope.deadline = end

    def move(self, now: float) -> None:
        """A message went one way or the other at ``now``: push the deadline back."""
        # How often the deadline moves, and how late the close may be.  Worked out on each move (at most
        # IDLE_SLACK per idle_timeout) rather than kept: a float kept is 24 bytes on every idle connection.
        slack = self._after / IDLE_SLACK
        # The deadline is in the event loop's clock, which on trio is not time.monotonic().
        self._scope.deadline = min(anyio.current_time() + self._after + slack, self.end)
        self.due = now + slack

    def expired(self) -> bool:
        """Whether the deadline has passed: the idle timeout, not anything else, cancelled the scope."""
        # The scope's deadline is in the event loop's clock, as move() sets it.
        return self._after > 0 and anyio.current_time() >= self._scope.deadline

    def ended(self) -> bool:
        """Whether ``end`` has passed: the token's expiry, before any idle timeout, cancelled the scope."""
        return anyio.current_time() >= self.end

    def note_sent(self) -> None:
        """Messages went out (a push, a batch of broadcasts): move the deadline if it is due."""
        if self.due != math.inf:
            now = monotonic()
            if now >= self.due:
                self.move(now)
