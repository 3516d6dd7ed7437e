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

Waking the sender
-----------------
A sender parks on its empty outbox until an offer wakes it.  With a
:class:`~asgi_ws.wakeups.Wakeups` (the hub gives one to every connection's
outbox), the wake-up waits its turn there, so that a broadcast to thousands
does not make thousands of senders ready at once; without one, the offer wakes
the sender itself.

What a sender parks on is made for each wait, and lives until the next
message: after a broadcast, every idle listener holds a fresh one.  Objects
that live that long end in the garbage collector's oldest generation, whose
full collections walk every object of the process, 1.3 s at 16,667 listeners;
the fewer a broadcast leaves behind, the rarer those are.  So the outbox parks
on the cheapest thing each backend has: on asyncio the running loop's own
Future, 4 objects per parked sender where an ``anyio.Event`` made 9 (the
asyncio Event inside it, the Event's deque of waiters, two ``wait``
coroutines), and quicker to wake (3.4 µs against 4.8 on uvloop); on trio,
where the app has nothing cheaper, an ``anyio.Event``.  The queue keeps
each item and its size side by side rather than as a pair, so queueing a
message allocates nothing the collector tracks (``docs/concurrency.md``,
"Broadcasting to 16,667 listeners").
"""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from typing import TYPE_CHECKING, Any, Generic, TypeVar, Union

import anyio

if TYPE_CHECKING:
    from .wakeups import Wakeups

__all__ = ["Outbox"]

T = TypeVar("T")

# What a parked consumer waits on: the running asyncio loop's Future, or an anyio.Event on trio.
Waiter = Union["asyncio.Future[None]", anyio.Event]


class Outbox(Generic[T]):
    """FIFO of at most ``capacity`` items and ``max_bytes`` of them, one consumer, any number of producers."""

    __slots__ = (
        "_bytes",
        "_capacity",
        "_event_class",
        "_items",
        "_max_bytes",
        "_waiter",
        "_wake_asked",
        "_wakeups",
    )

    def __init__(self, capacity: int, max_bytes: int = sys.maxsize, wakeups: Wakeups | None = None) -> None:
        self._capacity = capacity  # items held before offer() refuses
        self._max_bytes = max_bytes  # bytes held before offer() refuses (an empty outbox takes any one item)
        self._items: deque[Any] = deque()  # item, its size, item, its size, ...: oldest first
        self._bytes = 0  # the sum of the queued items' sizes
        self._waiter: Waiter | None = None  # what the consumer is parked on while get() waits
        self._wake_asked = False  # an offer has asked for the parked consumer to be woken
        self._wakeups = wakeups  # whose turn it is to be woken; None: an offer wakes the consumer itself
        self._event_class: type[anyio.Event] | None = None  # on trio, the backend's own Event, once known

    def __len__(self) -> int:
        return len(self._items) >> 1

    @property
    def bytes(self) -> int:
        """The size of everything queued, as the producers gave it."""
        return self._bytes

    def offer(self, item: T, size: int = 0) -> bool:
        """Queue ``item`` of ``size`` bytes unless full.  Never waits.  False means the consumer is too slow."""
        items = self._items
        if len(items) >= 2 * self._capacity or (self._bytes + size > self._max_bytes and items):
            return False
        items.append(item)
        items.append(size)
        self._bytes += size
        if self._waiter is not None and not self._wake_asked:
            self._wake_asked = True
            if self._wakeups is None:
                self.wake()
            else:
                self._wakeups.wake(self)
        return True

    def clear(self) -> int:
        """Drop every queued item.  Returns how many there were."""
        dropped = len(self)
        self._items.clear()
        self._bytes = 0
        return dropped

    async def get(self) -> tuple[T, int]:
        """The oldest item and the size it was offered with, waiting for one if the queue is empty."""
        items = self._items
        while not items:
            waiter = self._waiter = self._new_waiter()
            try:
                await (waiter if isinstance(waiter, asyncio.Future) else waiter.wait())
            finally:
                self._waiter = None
                self._wake_asked = False
                if self._wakeups is not None and _was_set(waiter):
                    self._wakeups.ran()  # it woke this one: its turn has passed
        item: T = items.popleft()
        size: int = items.popleft()
        self._bytes -= size
        return item, size

    # Parking the consumer

    def _new_waiter(self) -> Waiter:
        """Something fresh to park the consumer on: the asyncio loop's Future, or an anyio.Event on trio."""
        if self._event_class is None:
            try:
                return asyncio.get_running_loop().create_future()
            except RuntimeError:  # no asyncio loop: trio
                # anyio.Event() looks the backend up on every call (sniffio), so keep the backend's own class.
                self._event_class = type(anyio.Event())
        return self._event_class()

    def wake(self) -> bool:
        """Wake the parked consumer; False if it is not parked any more (its task was cancelled).

        Called by an offer, or by the :class:`~asgi_ws.wakeups.Wakeups` when its turn comes.
        """
        waiter = self._waiter
        if isinstance(waiter, asyncio.Future):
            if waiter.done():  # cancelled with its task, which has not run its finally yet
                return False
            waiter.set_result(None)
            return True
        if waiter is None:
            return False
        waiter.set()
        return True


def _was_set(waiter: Waiter) -> bool:
    """Whether ``waiter`` was woken, rather than cancelled or still waiting."""
    if isinstance(waiter, asyncio.Future):
        return waiter.done() and not waiter.cancelled()
    return waiter.is_set()
