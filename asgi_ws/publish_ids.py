"""Publish ids and acks on the feed: a message numbered once, however often it is sent (contract §8.1).

A feed client that loses its connection between sending a message and seeing
it come back numbered cannot tell whether it was numbered.  If it sends it
again as plain text, the room gets it twice.  So a client may publish
``{"id": ID, "data": t}`` instead: the broker numbers ``t`` as plain text would
be, and answers the sender alone with ``{"ack": ID, "epoch": e, "offset": n}``.
The same ID in the same room within ``dedupe_window`` seconds is not numbered
again: it is acked with the first one's epoch and offset, so a client resends
everything it has no ack for, and nothing is doubled.

This module owns the wire side (:func:`parse_publish`, :class:`Ack`) and the
memory broker's window of ids seen (:class:`SeenIds`).  The Redis broker keeps
its window in Redis, checked and written by the script that numbers the
message (:mod:`asgi_ws.redis_feed`), so that every process sees one window.

Theory of operation
-------------------
- **Which texts carry an id.**  A feed text that is a JSON object with an
  ``"id"`` key, starting with ``{`` (no whitespace before it), is a publish
  with an id; any other text is plain, as before.
  Such an object must be exactly ``{"id": ID, "data": TEXT}`` with ID 1 to 64
  characters of ``[A-Za-z0-9_.:-]``: anything else closes the connection with
  4400 ``invalid publish id``, since the client meant an id and would
  otherwise never get its ack.
- **The ack and the message.**  The sender receives both: its message,
  numbered, as every member does, and its ack.  They can come in either order
  (on Redis the ack comes back on one connection, the message on another), so
  a client matches them by offset, not by order.
- **The window.**  An id is remembered for ``dedupe_window`` seconds (default
  120, the default of NATS JetStream's ``duplicate_window``), counted from its
  first publish; a resend does not extend it.  In memory the ids of all rooms
  are also bounded in number (``dedupe_ids``): past it the oldest are
  forgotten early, and counted.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from dataclasses import dataclass
from time import monotonic
from typing import TYPE_CHECKING

from . import close_codes
from .messages import dump_json, text_event
from .policy import message_size

if TYPE_CHECKING:
    from asgiref.typing import WebSocketSendEvent

    from .close_codes import Close

__all__ = ["PUBLISH_ID_PATTERN", "Ack", "IdPublish", "SeenIds", "parse_publish"]

PUBLISH_ID_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,64}\Z")

# What one remembered id costs the memory broker: its key tuple, the Ack and the dict slot,
# rounded up (sys.getsizeof of each: about 300 bytes for a 16-character id).
SEEN_ID_OVERHEAD = 384


@dataclass(frozen=True, slots=True)
class IdPublish:
    """A feed text that carries a publish id: ``{"id": ID, "data": t}``."""

    id: str
    data: str


def parse_publish(text: str) -> IdPublish | Close | None:
    """``'{"id": "m1", "data": "hi"}'`` -> ``IdPublish("m1", "hi")``; None for plain text.

    A JSON object with an ``"id"`` key that is not exactly that shape is
    ``close_codes.INVALID_PUBLISH_ID``.  Only a text whose first character is
    ``{`` is parsed, so the plain texts of a chat cost one comparison.
    """
    if not text.startswith("{"):
        return None
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict) or "id" not in document:
        return None
    publish_id, data = document["id"], document.get("data")
    if (
        document.keys() != {"id", "data"}
        or not isinstance(publish_id, str)
        or PUBLISH_ID_PATTERN.match(publish_id) is None
        or not isinstance(data, str)
    ):
        return close_codes.INVALID_PUBLISH_ID
    return IdPublish(publish_id, data)


@dataclass(frozen=True, slots=True)
class Ack:
    """The sender's answer to a publish with an id: where the message stands in the room's history."""

    id: str
    epoch: str
    offset: int

    @property
    def text(self) -> str:
        return dump_json({"ack": self.id, "epoch": self.epoch, "offset": self.offset})

    def outgoing(self) -> tuple[WebSocketSendEvent, int]:
        """The ack as a ``websocket.send`` event, and its payload size for the outbox's byte bound."""
        text = self.text
        return text_event(text), message_size(text, None)


class SeenIds:
    """The memory broker's window: every room's publish ids of the last ``window`` seconds, at most ``max_ids``.

    Kept in the order they were first seen, so the expired and the oldest are
    always at the front: each call does a small, bounded amount of clean-up
    and no timer is needed, as in :class:`asgi_ws.feed.MemoryHistory`.
    """

    def __init__(self, window: float, max_ids: int) -> None:
        self.window = window  # seconds an id is remembered after its first publish
        self.max_ids = max_ids  # ids of all rooms together, whatever their age
        self.evicted = 0  # ids forgotten before their window ended, for max_ids
        self._acks: OrderedDict[tuple[str, str], tuple[Ack, float]] = OrderedDict()  # (room, id) -> ack, first seen

    def __len__(self) -> int:
        return len(self._acks)

    def ack_of(self, room: str, publish_id: str, now: float | None = None) -> Ack | None:
        """The ack given to ``publish_id`` in ``room`` within the window, or None if it is new."""
        self._expire(monotonic() if now is None else now)
        seen = self._acks.get((room, publish_id))
        return None if seen is None else seen[0]

    def remember(self, room: str, ack: Ack, now: float | None = None) -> None:
        """``ack.id`` was numbered in ``room``: remember its ack for the window."""
        now = monotonic() if now is None else now
        self._expire(now)
        self._acks[(room, ack.id)] = (ack, now)
        while len(self._acks) > self.max_ids:
            self._acks.popitem(last=False)
            self.evicted += 1

    def _expire(self, now: float) -> None:
        acks = self._acks
        while acks:
            _, first_seen = next(iter(acks.values()))
            if now - first_seen < self.window:
                return
            acks.popitem(last=False)
