"""The feed: a chat room with offsets, epochs and replay, so nothing is lost on reconnect (contract §8).

A feed room numbers its messages.  Every client in ``/ws/feed/{room}``, the
sender included, receives each message as ``{"offset": n, "epoch": "e",
"data": t}``: ``offset`` counts from 1 and grows by one per message, and
``epoch`` names one unbroken history of the room.  When the history is lost (a
memory broker restarts, Redis is flushed, the room expires) the next message
starts a new epoch at offset 1.

A client that lost its connection reconnects with ``?since=EPOCH:OFFSET``, the
last message it saw.  The app answers ``{"recovered": true, "epoch": e,
"offset": top}`` and then every message after ``OFFSET`` up to ``top``, then
the live ones, with no gap and no duplicate; or ``{"recovered": false, ...}``
when that history is gone (another epoch, or trimmed), and live messages.

This module holds what both brokers share: the message and its wire text
(:class:`FeedMessage`), the parsed ``since`` (:class:`Since`), the rule that
decides whether a resume can be served (:func:`plan_replay`), the ordering
rule every reader of a room follows (:class:`FeedCursor`), and the memory
broker's history (:class:`MemoryHistory`).  Who keeps the history is the
broker's business (:mod:`asgi_ws.broker`, :mod:`asgi_ws.redis_broker`); what a
connection sends and in which order is the session's
(:meth:`asgi_ws.session.Session`).
"""

from __future__ import annotations

import enum
import re
import secrets
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from time import monotonic
from typing import TYPE_CHECKING

from .messages import dump_json, text_event
from .policy import message_size

if TYPE_CHECKING:
    from asgiref.typing import WebSocketSendEvent

__all__ = [
    "EPOCH_PATTERN",
    "FeedCursor",
    "FeedMessage",
    "Gap",
    "MemoryHistory",
    "Post",
    "Replay",
    "Since",
    "Step",
    "control_text",
    "new_epoch",
    "parse_since",
    "plan_replay",
]

# An epoch is ours (new_epoch) or a client's echo of one: short, URL-safe, no ":".
EPOCH_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}\Z")
# Digits only, as for ?count=: an offset is at most 18 digits, well inside a Redis integer.
_OFFSET = re.compile(r"[0-9]{1,18}\Z")

# What one message costs the memory history beyond its text: the FeedMessage, its
# event dict and the deque slot, rounded up (measured with sys.getsizeof: about 400 bytes).
MESSAGE_OVERHEAD = 512
# What one room costs before it holds a message: its deque, its entry, its epoch.
ROOM_OVERHEAD = 1024


def new_epoch() -> str:
    """A fresh epoch: 12 random URL-safe characters, never equal to an earlier one in practice."""
    return secrets.token_urlsafe(9)


@dataclass(frozen=True, slots=True)
class Since:
    """The last message a resuming client saw: ``?since=EPOCH:OFFSET``."""

    epoch: str
    offset: int


def parse_since(raw: str) -> Since | None:
    """``"e1:42"`` -> ``Since("e1", 42)``; None for anything else (answered with 400 before accept)."""
    epoch, colon, offset = raw.partition(":")
    if not colon or EPOCH_PATTERN.match(epoch) is None or _OFFSET.match(offset) is None:
        return None
    return Since(epoch, int(offset))


class FeedMessage:
    """One numbered message of a feed room, as every member receives it.

    The wire text and the ``websocket.send`` event are built once per process,
    and the same object is queued for every member, like a broadcast.
    """

    __slots__ = ("epoch", "event", "offset", "size", "text")

    def __init__(self, offset: int, epoch: str, data: str, sender: str | None = None) -> None:
        self.offset = offset  # 1, 2, 3 ... within the epoch
        self.epoch = epoch  # the unbroken history this offset belongs to
        # What the client receives; with access tokens, "from" is the sender's token's subject (contract §8.2).
        fields: dict[str, str | int] = {"offset": offset, "epoch": epoch, "data": data}
        if sender is not None:
            fields["from"] = sender
        self.text = dump_json(fields)
        self.event: WebSocketSendEvent = text_event(self.text)
        self.size = message_size(self.text, None)  # payload bytes, as every outbox counts them

    def __repr__(self) -> str:
        return f"FeedMessage({self.offset}, {self.epoch!r})"


@dataclass(frozen=True, slots=True)
class Post:
    """A feed message as its sender published it, before the broker numbers it."""

    data: str  # what the room receives as "data"
    publish_id: str | None = None  # contract §8.1: numbered once within the dedupe window, and acked
    sender: str | None = None  # with access tokens: the sender's subject, "from" (contract §8.2)


class Step(enum.Enum):
    """Where a message stands for a reader of its room, when no message is missing before it."""

    ALREADY_SENT = "already sent"  # at or before the last one passed on: drop it
    NEXT = "next"  # the one after the last one passed on: pass it on


@dataclass(frozen=True, slots=True)
class Gap:
    """Messages ``after + 1`` to ``until`` of ``epoch`` are missing before the one at hand: fetch them first."""

    epoch: str
    after: int
    until: int


class FeedCursor:
    """Where one reader of a feed room stands: the last message it passed on.

    Two readers follow a room in order, with no gap and no duplicate, and both
    ask a cursor about each message that reaches them:

    - a feed connection's sender (:meth:`asgi_ws.session.Session._drain_feed`),
      about what its client has had: the resume first, then the live messages;
    - the Redis broker, per room, about what this process has delivered: pub/sub
      may lose messages in a reconnect, and a resume may read the Stream ahead
      of pub/sub (:mod:`asgi_ws.redis_broker`).

    The rule: a message at or before the last one is already sent; the one
    right after it is next; one further ahead leaves a gap, to fill from the
    history first.  A message of another epoch starts its history afresh: all of
    it is new here, from offset 1, so a gap is counted from 0.  A cursor that has
    passed nothing on yet takes the first message as next, whatever its offset:
    a connection that did not ask for a resume starts with the live messages.

    Pure: no I/O and no clock, so the rule is tested on its own (``tests/test_feed.py``).
    """

    __slots__ = ("epoch", "offset")

    def __init__(self, epoch: str | None = None, offset: int = 0) -> None:
        self.epoch = epoch  # the epoch of the last message passed on; None until one is
        self.offset = offset  # its offset; 0 before the first message of an epoch

    def place(self, message: FeedMessage) -> Step | Gap:
        """Where ``message`` stands: already sent, next, or after a gap."""
        if self.epoch is None:
            return Step.NEXT
        last = self.offset if message.epoch == self.epoch else 0
        if message.offset <= last:
            return Step.ALREADY_SENT
        if message.offset > last + 1:
            return Gap(message.epoch, last, message.offset - 1)
        return Step.NEXT

    def passed(self, message: FeedMessage) -> None:
        """``message`` was passed on: it is the last one now."""
        self.epoch, self.offset = message.epoch, message.offset

    def __repr__(self) -> str:
        return f"FeedCursor({self.epoch!r}, {self.offset})"


def control_text(recovered: bool, epoch: str, top: int) -> str:
    """The first message of a resume: whether it is served, in which epoch, and the newest offset."""
    return dump_json({"recovered": recovered, "epoch": epoch, "offset": top})


@dataclass(frozen=True, slots=True)
class Replay:
    """The answer to a resume: the control message's fields and the messages to send after it.

    ``failure`` is None when the resume is served, else why not: ``"epoch"``
    (the client's history is not this one) or ``"trimmed"`` (the messages after
    its offset are no longer all kept), or ``"unavailable"`` (the history could
    not be read: Redis is down).
    """

    epoch: str
    top: int
    messages: Sequence[FeedMessage]
    failure: str | None = None

    @property
    def recovered(self) -> bool:
        return self.failure is None


def plan_replay(since: Since, epoch: str, top: int, kept: Sequence[FeedMessage]) -> Replay:
    """Serve a resume from ``since`` out of a history at ``epoch`` whose newest offset is ``top``.

    ``kept`` are the messages still held after ``since.offset``, oldest first
    (all of them, or at least the first few: enough to tell whether the next
    one the client needs is there).  The resume is served when the client's
    epoch is this one, its offset is one this history has reached, and the
    message after it is still kept (or there is none yet).
    """
    if since.epoch != epoch or since.offset > top:
        return Replay(epoch, top, (), "epoch")
    if since.offset < top and (not kept or kept[0].offset != since.offset + 1):
        return Replay(epoch, top, (), "trimmed")
    return Replay(epoch, top, kept)


# The memory broker's history


class _Room:
    """One room's history in this process: its epoch, its newest offset, its last messages."""

    __slots__ = ("epoch", "messages", "top", "touched")

    def __init__(self, now: float) -> None:
        self.epoch = new_epoch()
        self.top = 0  # the newest offset given out; 0 before the first message
        self.messages: deque[FeedMessage] = deque()  # the kept ones, oldest first, offsets consecutive
        self.touched = now  # the last message, or the creation: the TTL runs from here


class MemoryHistory:
    """Every feed room's recent messages in one process, bounded three ways.

    - ``size``: each room keeps its last ``size`` messages (a ring buffer).
    - ``ttl``: a room is forgotten ``ttl`` seconds after its last message, and
      with it its epoch: the next message starts a new one.
    - ``max_bytes``: all rooms together hold at most this much text plus a
      fixed overhead per message and per room, so that clients spreading
      messages over many rooms cannot grow the process without bound.  Past
      it, the oldest messages of the room written least recently go first, and
      a room left with none is forgotten.

    Rooms are kept in the order of their last message, so the expired and the
    least recently written are always at the front: each append does a small,
    bounded amount of clean-up and no timer is needed.
    """

    def __init__(self, size: int, ttl: float, max_bytes: int) -> None:
        self.size = size  # messages kept per room
        self.ttl = ttl  # seconds a room outlives its last message
        self.max_bytes = max_bytes  # the budget for all rooms together
        self.bytes = 0  # what the rooms hold now, overheads included
        self.evicted = 0  # messages dropped for the byte budget (not for size or ttl)
        self._rooms: OrderedDict[str, _Room] = OrderedDict()  # least recently written first

    def __len__(self) -> int:
        return len(self._rooms)

    def append(self, room: str, data: str, now: float | None = None, sender: str | None = None) -> FeedMessage:
        """Number ``data``, from ``sender`` (with access tokens), as ``room``'s next message and keep it."""
        now = monotonic() if now is None else now
        history = self._room(room, now)
        history.top += 1
        message = FeedMessage(history.top, history.epoch, data, sender)
        history.messages.append(message)
        history.touched = now
        self._rooms.move_to_end(room)
        self.bytes += message.size + MESSAGE_OVERHEAD
        if len(history.messages) > self.size:
            self._drop_oldest(history)
        self._evict(now)
        return message

    def replay(self, room: str, since: Since, now: float | None = None) -> Replay:
        """What a client resuming from ``since`` in ``room`` is sent (the room is created if unknown)."""
        history = self._room(room, monotonic() if now is None else now)
        first = history.messages[0].offset if history.messages else history.top + 1
        start = max(since.offset - first + 1, 0)
        kept = [history.messages[index] for index in range(start, len(history.messages))]
        return plan_replay(since, history.epoch, history.top, kept)

    def between(self, room: str, epoch: str, after: int, until: int) -> list[FeedMessage]:
        """The kept messages of ``room`` in ``epoch`` with ``after < offset <= until``."""
        history = self._rooms.get(room)
        if history is None or history.epoch != epoch:
            return []
        return [message for message in history.messages if after < message.offset <= until]

    def _room(self, room: str, now: float) -> _Room:
        self._expire(now)
        history = self._rooms.get(room)
        if history is None:
            history = self._rooms[room] = _Room(now)
            self.bytes += ROOM_OVERHEAD
            self._evict(now)
        return history

    def _drop_oldest(self, history: _Room) -> None:
        self.bytes -= history.messages.popleft().size + MESSAGE_OVERHEAD

    def _forget(self, room: str) -> None:
        history = self._rooms.pop(room)
        self.bytes -= ROOM_OVERHEAD + sum(message.size + MESSAGE_OVERHEAD for message in history.messages)

    def _expire(self, now: float) -> None:
        """Forget the rooms whose last message is more than ``ttl`` ago; they are all at the front."""
        while self._rooms:
            room, history = next(iter(self._rooms.items()))
            if now - history.touched < self.ttl:
                return
            self._forget(room)

    def _evict(self, now: float) -> None:
        """Drop the least recently written messages until the budget holds; keep the newest room's last one."""
        while self.bytes > self.max_bytes and self._rooms:
            room, history = next(iter(self._rooms.items()))
            if len(self._rooms) == 1 and len(history.messages) <= 1:
                return  # only the message just appended is left: it stays, over budget or not
            if history.messages:
                self._drop_oldest(history)
                self.evicted += 1
            if not history.messages:
                self._forget(room)
