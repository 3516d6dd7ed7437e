"""Where rooms and the broadcast group live beyond one process (contract §4).

The :class:`~asgi_ws.hub.Hub` always delivers to the clients of its own
process itself.  A **broker** carries the same messages to the other processes
that serve the app, and hands the ones they publish back to the hub.  Two
brokers implement the one small :class:`Broker` interface:

- :class:`MemoryBroker` (``memory://``, the default): there are no other
  processes, so it carries nothing; it only keeps the feed rooms' history.
- :class:`asgi_ws.redis_broker.RedisBroker` (``redis://host:port/db``): Redis
  pub/sub, one channel per room, and a Redis Stream per feed room.

The broker also keeps the feed's history (contract §8), because the history
must be shared by every process that serves a room: the broker numbers each
feed message (:meth:`Broker.append`), and serves resumes
(:meth:`Broker.replay`) and gaps (:meth:`Broker.between`) from what it kept.

This module is the interface and the memory broker; it imports neither Redis
nor :mod:`asgi_ws.redis_broker`, which imports it.  The app picks one with
:func:`asgi_ws.app.create_broker`.

The interface is synchronous on purpose, like the hub: a chat message must not
wait for Redis.  ``publish`` and ``append`` queue, ``subscribe`` records a
wish, and the broker's own tasks, started by :meth:`Broker.running` from the
lifespan scope, do the I/O.  Only a resume awaits its history.

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

from .feed import FeedMessage, MemoryHistory, Post, Replay, Since
from .publish_ids import Ack, SeenIds
from .settings import DEFAULTS
from .topics import BROADCAST, Topic, chat_room, feed_room

__all__ = [
    "ENVELOPE_VERSION",
    "Acked",
    "Broker",
    "BrokerError",
    "Deliver",
    "Envelope",
    "MemoryBroker",
    "decode_envelope",
    "encode_envelope",
    "encode_presence",
    "new_node_id",
    "redact",
    "topic_from_wire",
    "topic_to_wire",
]

ENVELOPE_VERSION = 1

Deliver = Callable[[Topic, "str | FeedMessage | frozenset[str]"], None]
"""How a broker hands a message to the hub: its topic, and its text or, for a feed, the numbered message;
or, for presence, the subjects the other processes have in the room now."""

Acked = Callable[[Ack], None]
"""How a broker answers a feed publish with an id: the ack, for its sender alone."""


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

    def append(self, topic: Topic, post: Post, acked: Acked | None = None) -> FeedMessage | None:
        """Number ``post`` as the next message of the feed room ``topic`` and keep it.  Never waits.

        Returns the message when this process may deliver it at once (the
        memory broker).  None means the order is decided elsewhere (by Redis),
        and the message comes back through ``deliver``, to this process too.

        With a ``publish_id`` (contract §8.1) the post is numbered only if the
        id was not seen in the room within the dedupe window, and ``acked`` is
        called with its :class:`~asgi_ws.publish_ids.Ack` once its number is
        known, the first one's for an id seen before: at once in memory, when
        Redis answers on Redis.  A duplicate returns None.

        A post's ``sender``, with access tokens, is the subject of the sender's
        token: the message carries it as ``"from"`` (contract §8.2).
        """

    async def replay(self, topic: Topic, since: Since) -> Replay:
        """What a client resuming the feed room ``topic`` from ``since`` is sent first."""

    async def between(self, topic: Topic, epoch: str, after: int, until: int) -> list[FeedMessage]:
        """The kept messages of ``topic`` in ``epoch`` with ``after < offset <= until``, oldest first."""

    def joined(self, topic: Topic, subject: str) -> None:
        """``subject`` has its first connection in the room ``topic`` in this process (contract §8.2)."""

    def left(self, topic: Topic, subject: str) -> None:
        """``subject`` has lost its last connection in the room ``topic`` in this process."""

    def state(self) -> dict[str, Any]:
        """The ``broker`` object of ``/healthz``: at least ``kind`` and ``connected``."""


class MemoryBroker:
    """One process, no other processes to reach: it only keeps the feed's history and its publish ids."""

    kind = "memory"

    def __init__(self, history: MemoryHistory | None = None, seen_ids: SeenIds | None = None) -> None:
        if history is None:  # the feed rooms' last messages, bounded as the settings' defaults say
            history = MemoryHistory(DEFAULTS.history_size, DEFAULTS.history_ttl, DEFAULTS.history_bytes)
        self.history = history
        self.seen_ids = seen_ids or SeenIds(DEFAULTS.dedupe_window, DEFAULTS.dedupe_ids)  # the dedupe window
        self.duplicates = 0  # publishes with an id already seen: acked, not numbered

    @asynccontextmanager
    async def running(self, deliver: Deliver) -> AsyncIterator[None]:
        yield

    def subscribe(self, topic: Topic) -> None:
        pass

    def unsubscribe(self, topic: Topic) -> None:
        pass

    def publish(self, topic: Topic, text: str) -> None:
        pass

    def append(self, topic: Topic, post: Post, acked: Acked | None = None) -> FeedMessage | None:
        if post.publish_id is None:
            return self.history.append(topic.name, post.data, sender=post.sender)
        ack = self.seen_ids.ack_of(topic.name, post.publish_id)
        if ack is not None:
            self.duplicates += 1
            message = None
        else:
            message = self.history.append(topic.name, post.data, sender=post.sender)
            ack = Ack(post.publish_id, message.epoch, message.offset)
            self.seen_ids.remember(topic.name, ack)
        if acked is not None:
            acked(ack)
        return message

    async def replay(self, topic: Topic, since: Since) -> Replay:
        return self.history.replay(topic.name, since)

    def joined(self, topic: Topic, subject: str) -> None:
        pass  # no other process to tell

    def left(self, topic: Topic, subject: str) -> None:
        pass

    async def between(self, topic: Topic, epoch: str, after: int, until: int) -> list[FeedMessage]:
        return self.history.between(topic.name, epoch, after, until)

    def state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "connected": True,
            "feed_rooms": len(self.history),
            "feed_history_bytes": self.history.bytes,
            "feed_duplicates": self.duplicates,
            "feed_publish_ids": len(self.seen_ids),
        }


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
    """``Topic("chat", "lobby")`` -> ``"chat:lobby"`` (a feed: ``"feed:lobby"``); broadcast -> ``"broadcast"``."""
    return "broadcast" if topic == BROADCAST else f"{topic.kind}:{topic.name}"


def topic_from_wire(room: str) -> Topic | None:
    """The inverse of :func:`topic_to_wire`, or None for a name no topic has."""
    if room == "broadcast":
        return BROADCAST
    kind, _, name = room.partition(":")
    if kind == "chat" and name:
        return chat_room(name)
    if kind == "feed" and name:
        return feed_room(name)
    return None


# The envelope


class Envelope(NamedTuple):
    """One message between processes."""

    node: str  # the publishing process
    topic: Topic
    text: str  # exactly what the clients receive; in a feed room, the data the offset numbers
    offset: int | None = None  # in a feed room: the message's number, given by Redis
    epoch: str | None = None  # in a feed room: the history the offset belongs to
    sender: str | None = None  # in a feed room, with access tokens: "from", the sender's subject
    presence: str | None = None  # a presence event, "join" or "leave": then ``text`` is the subject


def encode_envelope(node: str, topic: Topic, text: str) -> bytes:
    """The JSON envelope, encoded once per message whatever the number of recipients.

    ``json.dumps`` escapes every non-ASCII character, so any ``str`` survives
    the trip, even one a strict UTF-8 encoder would refuse.
    """
    document = {"v": ENVELOPE_VERSION, "node": node, "room": topic_to_wire(topic), "data": text}
    return json.dumps(document, separators=(",", ":")).encode("ascii")


def encode_presence(node: str, topic: Topic, change: str, subject: str) -> bytes:
    """A presence event's envelope: ``subject`` joined or left ``topic`` on ``node`` (contract §8.2)."""
    document = {"v": ENVELOPE_VERSION, "node": node, "room": topic_to_wire(topic), "presence": change}
    return json.dumps({**document, "subject": subject}, separators=(",", ":")).encode("ascii")


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
    change = document.get("presence")
    if change is not None:  # a presence event carries a subject, not data
        text = document.get("subject")
        if change not in ("join", "leave"):
            return None
    if not (isinstance(node, str) and isinstance(room, str) and isinstance(text, str)):
        return None
    topic = topic_from_wire(room)
    if topic is None:
        return None
    if change is not None:
        return Envelope(node, topic, text, presence=change) if topic.kind != "broadcast" else None
    if topic.kind != "feed":
        return Envelope(node, topic, text)
    # A feed message also carries its number and epoch (written by the Redis broker's
    # append script); bool is an int in Python, and never an offset.
    offset, epoch, sender = document.get("offset"), document.get("epoch"), document.get("from")
    if type(offset) is not int or offset < 1 or not isinstance(epoch, str):
        return None
    if sender is not None and not isinstance(sender, str):
        return None
    return Envelope(node, topic, text, offset, epoch, sender)
