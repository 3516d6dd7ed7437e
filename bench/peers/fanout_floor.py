"""The broadcast's floors at P8's scale (P12): the least any app can cost to send one message to every connection.

``GET /fanout`` sends one message to every WebSocket of the process and
answers when it is done.  Every other HTTP request is answered like asgi-ws's
``/healthz`` (the connection count, and a broker that is always connected), so
that the benchmark waits for these workers as it waits for asgi-ws's.  Two apps:

- :func:`app`, **one task**: the request's own task awaits every connection's
  ``send`` in turn, yielding to the event loop every :data:`BATCH` sends.  No
  outbox, no task per connection, no wake-up: what uvicorn and the event loop
  alone cost.  Nothing protects one client from another, though: a client that
  stops reading holds up the ``send`` of everyone after it (contract §6, P5).
- :func:`app_with_senders`, **a sender per connection**, the least that keeps
  clients apart: each connection's own task sends what is queued for it and
  parks on a Future of the loop while nothing is; ``/fanout`` queues the
  message for all and wakes the parked senders, yielding every :data:`BATCH`
  wake-ups, so that at most that many run per pass of the loop, as asgi-ws's
  :class:`~asgi_ws.wakeups.Wakeups` allows.

Like :mod:`.raw_asgi`, neither imports anything beyond the standard library.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from typing import Any

BATCH = 32  # asgi_ws.wakeups.WAKE_BATCH, copied so that the floor imports nothing of the app's
EVENT = {"type": "websocket.send", "text": "broadcast"}

sends: set[Any] = set()  # app: every open connection's send
listeners: set[Listener] = set()  # app_with_senders: every open connection


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """One task sends to all."""
    if scope["type"] == "http":
        if scope["path"] == "/fanout":
            for number, each in enumerate(list(sends), start=1):
                try:
                    await each(EVENT)
                except Exception:  # the client left: its own task forgets it
                    continue
                if number % BATCH == 0:
                    await asyncio.sleep(0)
        await healthz(send, len(sends))
    elif scope["type"] == "websocket":
        await accept(receive, send)
        sends.add(send)
        try:
            await until_disconnect(receive)
        finally:
            sends.discard(send)
    # lifespan: returning at once means "not supported"


class Listener:
    """One connection of :func:`app_with_senders`: what is queued for it, and the Future its sender parks on."""

    __slots__ = ("queue", "send", "waiter")

    def __init__(self, send: Any) -> None:
        self.send = send
        self.queue: deque[dict[str, Any]] = deque()
        self.waiter: asyncio.Future[None] | None = None  # set while the sender is parked

    async def sender(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self.queue:
                self.waiter = loop.create_future()
                await self.waiter
                self.waiter = None
            try:
                await self.send(self.queue.popleft())
            except Exception:  # the client left: its connection's task cancels this one
                return


async def app_with_senders(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A sender task per connection, woken a batch at a time."""
    if scope["type"] == "http":
        if scope["path"] == "/fanout":
            woken = 0
            for listener in list(listeners):
                listener.queue.append(EVENT)
                if listener.waiter is not None and not listener.waiter.done():
                    listener.waiter.set_result(None)
                    woken += 1
                    if woken % BATCH == 0:
                        await asyncio.sleep(0)  # the woken senders run in the loop's next pass
        await healthz(send, len(listeners))
    elif scope["type"] == "websocket":
        await accept(receive, send)
        listener = Listener(send)
        listeners.add(listener)
        sender = asyncio.create_task(listener.sender())
        try:
            await until_disconnect(receive)
        finally:
            listeners.discard(listener)
            sender.cancel()


async def accept(receive: Any, send: Any) -> None:
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})


async def until_disconnect(receive: Any) -> None:
    while (await receive())["type"] != "websocket.disconnect":
        pass


async def healthz(send: Any, connections: int) -> None:
    body = json.dumps({"broker": {"connected": True}, "connections": connections}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
