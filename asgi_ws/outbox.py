"""A bounded queue of outgoing events for one connection (SPEC §4, first bullet).

Broadcasts must never wait for a slow client, so a publisher only ever calls
:meth:`Outbox.offer`, which returns at once: True if the event was queued,
False if the queue is full.  Full means the client has stopped reading, and the
caller closes it with 4503 (:data:`asgi_ws.close_codes.SLOW_CONSUMER`).

The connection's own sender task drains the queue with :meth:`Outbox.get`.
``get`` only suspends when the queue is empty, so a sender with a backlog sends
it all without a task switch per message.

There is no "put and wait" on purpose: the only producers are broadcasts, and a
broadcast that waited for one client would stall every other client behind it.

The one awaitable here is an :class:`anyio.Event`, so the outbox runs on
asyncio and on trio alike (hypercorn's trio worker, SPEC §0).  An idle sender
waits on a fresh Event every time it is woken, since anyio Events cannot be
reset; ``anyio.Event()`` finds the running backend on every call, so the
outbox keeps the backend's own Event class from its first one and makes the
others from that.  That is a sixth of what a wake-up costs the sender
(``docs/concurrency.md``).
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

import anyio

__all__ = ["Outbox"]

T = TypeVar("T")


class Outbox(Generic[T]):
    """FIFO of at most ``capacity`` items, one consumer, any number of producers."""

    __slots__ = ("_capacity", "_event_class", "_items", "_wakeup")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity  # items held before offer() refuses
        self._items: deque[T] = deque()  # queued, oldest first
        self._wakeup: anyio.Event | None = None  # set when an item arrives for a waiting get()
        self._event_class: type[anyio.Event] | None = None  # the running backend's Event, once known

    def __len__(self) -> int:
        return len(self._items)

    def offer(self, item: T) -> bool:
        """Queue ``item`` unless full.  Never waits.  False means the consumer is too slow."""
        if len(self._items) >= self._capacity:
            return False
        self._items.append(item)
        if self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = None
        return True

    def clear(self) -> int:
        """Drop every queued item.  Returns how many there were."""
        dropped = len(self._items)
        self._items.clear()
        return dropped

    async def get(self) -> T:
        """The oldest item, waiting for one if the queue is empty."""
        while not self._items:
            if self._event_class is None:
                self._event_class = type(anyio.Event())
            self._wakeup = self._event_class()
            await self._wakeup.wait()
        return self._items.popleft()
