"""How many parked senders one process wakes at once: at most ``WAKE_BATCH`` woken and not yet run.

A broadcast queues its message in every member's outbox at once, in the order
it was published (:meth:`asgi_ws.hub.Hub.publish`), and each member's sender
task, parked on its empty outbox, has to be woken to send it.  Woken all at
once, the 16,667 senders of one P8 worker were all ready together, and an event
loop runs every task that is ready before it polls its sockets again: for the
half second they took, the process answered nothing, not ``/healthz``, not a
handshake.  The 33,000 objects the loop held for them meanwhile (a callback
and its arguments per task) also set off the garbage collector's young
collections, which promoted every sender's fresh wake-up to the oldest
generation, and every two or three broadcasts a full collection walked all
2.2 million objects of the process: another 1.3 s with the loop stopped
(``docs/concurrency.md``, "Broadcasting to 16,667 listeners").

So the outboxes of one hub wake their senders through one :class:`Wakeups`:

- it wakes a parked sender at once while fewer than ``batch`` woken senders
  have yet to run, and otherwise queues it, oldest first;
- each woken sender tells it when it runs (:meth:`Wakeups.ran`), which wakes
  the next queued one.

A sender woken while the loop runs one batch runs in the loop's next pass,
after the loop has polled its sockets: asyncio and trio both run in one pass
only the tasks that were ready when it began.  So a pass runs at most
``batch`` senders, beside whatever else is ready.

Only the wake-ups wait their turn, never the messages: every outbox already
holds its message, in publish order, so no message can overtake another, and
a full outbox has already refused it (its client is kicked with 4503) by the
time its sender is queued here.  A sender with a backlog is not parked, and
sends it without asking.

The count only stays right if every sender woken here reports, so an outbox
reports in a ``finally`` (:meth:`asgi_ws.outbox.Outbox.get`), cancelled or
not, and a sender that left before its turn is skipped: its
:meth:`Parked.wake` says it is gone.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

__all__ = ["WAKE_BATCH", "Parked", "Wakeups"]

# Woken senders a process lets run per pass of its event loop.  With 6 workers sharing 2 cores, 3,300
# chat listeners each, /healthz p99 during a broadcast was 37-47 ms at 32, 46-89 ms at 64 and 41-136 ms
# at 16 (that one with a stall of the whole machine), against 691 ms waking all at once.  The CPU per
# delivery did not move with the batch, in process or over the wire, and fan-out to 100 and 1000 (P4)
# ran as before at 16 and at 64 (docs/concurrency.md, "Broadcasting to 16,667 listeners").
WAKE_BATCH = 32


class Parked(Protocol):
    """A consumer that may be parked, waiting for something to do: an outbox's sender."""

    def wake(self) -> bool:
        """Wake the consumer if it is still parked; False if it has gone (its task was cancelled)."""


class Wakeups:
    """Wakes parked consumers, at most ``batch`` woken and not yet run at any time, in the order asked."""

    __slots__ = ("_queue", "_woken", "batch")

    def __init__(self, batch: int = WAKE_BATCH) -> None:
        self.batch = batch  # woken consumers that may be waiting to run at once
        self._woken = 0  # woken, and not yet reported by ran()
        self._queue: deque[Parked] = deque()  # asked to be woken while batch were, oldest first

    @property
    def waiting(self) -> int:
        """Consumers waiting for their turn to be woken."""
        return len(self._queue)

    def wake(self, consumer: Parked) -> None:
        """Wake ``consumer`` now if its turn has come, else queue it.  Never waits."""
        if self._woken < self.batch:
            if consumer.wake():
                self._woken += 1
        else:
            self._queue.append(consumer)

    def ran(self) -> None:
        """A consumer this woke has run: wake the next queued ones, as far as the batch allows."""
        self._woken -= 1
        queue = self._queue
        while queue and self._woken < self.batch:
            if queue.popleft().wake():
                self._woken += 1
