"""Where rooms and the broadcast group live beyond one process (contract §4).

The :class:`~asgi_ws.hub.Hub` always delivers to the clients of its own
process itself.  A **broker** carries the same messages to the other processes
that serve the app, and hands the ones they publish back to the hub.  Two
brokers implement the one small :class:`Broker` interface:

- :class:`MemoryBroker` (``memory://``, the default): there are no other
  processes, so it does nothing at all.
- :class:`asgi_ws.redis_broker.RedisBroker` (``redis://host:port/db``): Redis
  pub/sub, one channel per room.

This module is the interface and the memory broker; it imports neither Redis
nor :mod:`asgi_ws.redis_broker`, which imports it.  The app picks one with
:func:`asgi_ws.app.create_broker`.

The interface is synchronous on purpose, like the hub: a chat message must not
wait for Redis.  ``publish`` queues, ``subscribe`` records a wish, and the
broker's own tasks, started by :meth:`Broker.running` from the lifespan scope,
do the I/O.

On the wire between processes a message is a small versioned JSON
**envelope**, ``{"v": 1, "node": ..., "room": ..., "data": ...}``, never a
pickle: ``node`` is the publishing process, which ignores its own messages
when Redis hands them back (its local clients were served directly), and
``room`` names the topic, so one envelope is enough to route it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, NamedTuple, Protocol
from urllib.parse import urlsplit

from .topics import BROADCAST, Topic, chat_room

__all__ = [
    "ENVELOPE_VERSION",
    "Broker",
    "BrokerError",
    "Deliver",
    "Envelope",
    "MemoryBroker",
    "decode_envelope",
    "encode_envelope",
    "new_node_id",
    "redact",
    "topic_from_wire",
    "topic_to_wire",
]

ENVELOPE_VERSION = 1

Deliver = Callable[[Topic, str], None]
"""How a broker hands a message from another process to the hub: topic and text."""


class BrokerError(RuntimeError):
    """The broker cannot run here at all (not: Redis is down).  The message says why and what to do."""


class Broker(Protocol):
    """What the hub and the lifespan scope need from a broker."""

    kind: str  # "memory" or "redis", as /healthz shows it

    def running(self, deliver: Deliver) -> AbstractAsyncContextManager[None]:
        """Run the broker's tasks for the life of the ``async with`` block.

        Entering returns promptly even when the backend is unreachable: the
        broker then reports itself disconnected and keeps retrying.  It raises
        :class:`BrokerError` only when it can never work in this process.
        """

    def subscribe(self, topic: Topic) -> None:
        """This process now has a client in ``topic``: receive the topic from other processes."""

    def unsubscribe(self, topic: Topic) -> None:
        """This process has no client left in ``topic``."""

    def publish(self, topic: Topic, text: str) -> None:
        """Send ``text`` to ``topic``'s clients in other processes.  Never waits."""

    def state(self) -> dict[str, Any]:
        """The ``broker`` object of ``/healthz``: at least ``kind`` and ``connected``."""


class MemoryBroker:
    """One process, no other processes to reach: every method is a no-op."""

    kind = "memory"

    @asynccontextmanager
    async def running(self, deliver: Deliver) -> AsyncIterator[None]:
        yield

    def subscribe(self, topic: Topic) -> None:
        pass

    def unsubscribe(self, topic: Topic) -> None:
        pass

    def publish(self, topic: Topic, text: str) -> None:
        pass

    def state(self) -> dict[str, Any]:
        return {"kind": self.kind, "connected": True}


def redact(url: str) -> str:
    """``url`` without its password, for logs and /healthz."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def new_node_id() -> str:
    """A random id for this process, unique among the processes sharing one Redis."""
    return uuid.uuid4().hex[:16]


# Topics on the wire


def topic_to_wire(topic: Topic) -> str:
    """``Topic("chat", "lobby")`` -> ``"chat:lobby"``; the broadcast group -> ``"broadcast"``."""
    return "broadcast" if topic == BROADCAST else f"chat:{topic.name}"


def topic_from_wire(room: str) -> Topic | None:
    """The inverse of :func:`topic_to_wire`, or None for a name no topic has."""
    if room == "broadcast":
        return BROADCAST
    kind, _, name = room.partition(":")
    if kind == "chat" and name:
        return chat_room(name)
    return None


# The envelope


class Envelope(NamedTuple):
    """One message between processes."""

    node: str  # the publishing process
    topic: Topic
    text: str  # exactly what the clients receive


def encode_envelope(node: str, topic: Topic, text: str) -> bytes:
    """The JSON envelope, encoded once per message whatever the number of recipients.

    ``json.dumps`` escapes every non-ASCII character, so any ``str`` survives
    the trip, even one a strict UTF-8 encoder would refuse.
    """
    document = {"v": ENVELOPE_VERSION, "node": node, "room": topic_to_wire(topic), "data": text}
    return json.dumps(document, separators=(",", ":")).encode("ascii")


def decode_envelope(raw: bytes | str) -> Envelope | None:
    """The envelope in ``raw``, or None if it is not one this version understands.

    Anything can be published on a Redis channel, so every field is checked;
    a bad envelope is dropped by the caller, never raised through the listener.
    """
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(document, dict) or document.get("v") != ENVELOPE_VERSION:
        return None
    node, room, text = document.get("node"), document.get("room"), document.get("data")
    if not (isinstance(node, str) and isinstance(room, str) and isinstance(text, str)):
        return None
    topic = topic_from_wire(room)
    if topic is None:
        return None
    return Envelope(node, topic, text)
