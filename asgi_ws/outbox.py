"""A bounded queue of outgoing events for one connection (``docs/contract.md`` §4).

Broadcasts must never wait for a slow client, so a publisher only ever calls
:meth:`Outbox.offer`, which returns at once: True if the event was queued,
False if the queue is full.  Full means the client has stopped reading, and the
caller closes it with 4503 (:data:`asgi_ws.close_codes.SLOW_CONSUMER`).

Full has two bounds, whichever comes first: ``capacity`` items, and
``max_bytes`` of payload.  The count alone would let 1024 messages of 64 KiB
hold 64 MiB for one client that is not reading.  The caller says how big each
item is when it offers it: a broadcast is encoded once and the same event is
queued for every recipient, so its size is worked out once, by the hub, not
once per outbox.  The outbox counts what it holds, adding on ``offer`` and
subtracting on ``get``.  An empty outbox takes any one item, however large, so
a ``max_bytes`` below the largest message slows a client down to one message
at a time rather than closing it.

The connection's own sender task drains the queue with :meth:`Outbox.get`,
which hands back each item with its size, so the sender counts what it sends
without working the size out again.
``get`` only suspends when the queue is empty, so a sender with a backlog sends
it all without a task switch per message.

There is no "put and wait" on purpose: the only producers are broadcasts, and a
broadcast that waited for one client would stall every other client behind it.

The one awaitable here is an :class:`anyio.Event`, so the outbox runs on
asyncio and on trio alike (hypercorn's trio worker).  An idle sender waits on a
fresh Event every time it is woken, since anyio Events cannot be reset;
``anyio.Event()`` finds the running backend on every call, so the outbox keeps
the backend's own Event class from its first one and makes the others from
that.  That is a sixth of what a wake-up costs the sender
(``docs/concurrency.md``).
"""

from __future__ import annotations

import sys
from collections import deque
from typing import Generic, TypeVar

import anyio

__all__ = ["Outbox"]

T = TypeVar("T")


class Outbox(Generic[T]):
    """FIFO of at most ``capacity`` items and ``max_bytes`` of them, one consumer, any number of producers."""

    __slots__ = ("_bytes", "_capacity", "_event_class", "_items", "_max_bytes", "_wakeup")

    def __init__(self, capacity: int, max_bytes: int = sys.maxsize) -> None:
        self._capacity = capacity  # items held before offer() refuses
        self._max_bytes = max_bytes  # bytes held before offer() refuses (an empty outbox takes any one item)
        self._items: deque[tuple[T, int]] = deque()  # queued with their sizes, oldest first
        self._bytes = 0  # the sum of the queued items' sizes
        self._wakeup: anyio.Event | None = None  # set when an item arrives for a waiting get()
        self._event_class: type[anyio.Event] | None = None  # the running backend's Event, once known

    def __len__(self) -> int:
        return len(self._items)

    @property
    def bytes(self) -> int:
        """The size of everything queued, as the producers gave it."""
        return self._bytes

    def offer(self, item: T, size: int = 0) -> bool:
        """Queue ``item`` of ``size`` bytes unless full.  Never waits.  False means the consumer is too slow."""
        items = self._items
        if len(items) >= self._capacity or (self._bytes + size > self._max_bytes and items):
            return False
        items.append((item, size))
        self._bytes += size
        if self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = None
        return True

    def clear(self) -> int:
        """Drop every queued item.  Returns how many there were."""
        dropped = len(self._items)
        self._items.clear()
        self._bytes = 0
        return dropped

    async def get(self) -> tuple[T, int]:
        """The oldest item and the size it was offered with, waiting for one if the queue is empty."""
        while not self._items:
            if self._event_class is None:
                self._event_class = type(anyio.Event())
            self._wakeup = self._event_class()
            await self._wakeup.wait()
        item = self._items.popleft()
        self._bytes -= item[1]
        return item
