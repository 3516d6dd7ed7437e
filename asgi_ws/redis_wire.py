"""What the Redis broker puts in Redis and expects of it: names, limits, counters and errors.

Owns the channel and key names (one channel per topic, two keys per feed
room), the broker's limits and timeouts, the counters ``/healthz`` shows, and
the rule that tells an outage from a bug.  It does no I/O.  The broker's two
halves share it: :mod:`asgi_ws.redis_broker` (supervision and pub/sub) and
:mod:`asgi_ws.redis_feed` (the feed rooms' numbering and order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from redis.exceptions import RedisError

from .broker import topic_from_wire, topic_to_wire
from .outbox import Outbox
from .topics import Topic

T = TypeVar("T")

__all__ = [
    "CHANNEL_PREFIX",
    "COMMAND_TIMEOUT",
    "PUBLISH_BATCH",
    "PUBLISH_QUEUE",
    "PUBLISH_QUEUE_BYTES",
    "Counts",
    "channel",
    "describe",
    "feed_keys",
    "is_connection_error",
    "presence_key",
    "publish_id_key",
    "publish_queue",
    "text_of",
    "topic_of_channel",
]

CHANNEL_PREFIX = "asgi-ws:"  # every channel and key this app uses starts with it
COMMAND_TIMEOUT = 5.0  # a publish batch, a script or a subscribe that takes longer means Redis is gone
PUBLISH_QUEUE = 10_000  # messages waiting for Redis before new ones are dropped, per queue
# Bytes of messages waiting, whichever bound comes first: 10,000 chat messages of 64 KiB would
# be 640 MiB held for a Redis that is slow but still connected.  16 MiB is 10,000 messages of
# 1.6 KiB, or 256 of the largest a client may send.
PUBLISH_QUEUE_BYTES = 16 * 1024 * 1024
PUBLISH_BATCH = 512  # messages per pipelined round trip


def publish_queue() -> Outbox[T]:
    """A queue of messages waiting for Redis, bounded in messages and in bytes."""
    return Outbox(PUBLISH_QUEUE, PUBLISH_QUEUE_BYTES)


@dataclass(slots=True)
class Counts:
    """What one process's broker has done since it started (contract §4 counters, in ``/healthz``)."""

    published: int = 0  # messages Redis accepted from this process: chat envelopes and feed appends
    received: int = 0  # messages from other processes handed to the hub
    dropped: int = 0  # messages not published: Redis down, or a publish queue full
    invalid: int = 0  # messages on our channels that were not a valid envelope
    reconnects: int = 0  # successful connections after the first one
    filled: int = 0  # feed messages read from a Stream to fill a gap in pub/sub
    duplicates: int = 0  # feed publishes whose id Redis had seen: acked, not numbered


def channel(topic: Topic) -> str:
    """The Redis channel of ``topic``."""
    return CHANNEL_PREFIX + topic_to_wire(topic)


def topic_of_channel(name: str) -> Topic:
    """The topic of one of our channels (the inverse of :func:`channel`)."""
    topic = topic_from_wire(name.removeprefix(CHANNEL_PREFIX))
    assert topic is not None, f"not a channel of ours: {name!r}"
    return topic


def feed_keys(topic: Topic) -> tuple[str, str]:
    """The Redis keys of a feed room: its meta hash and its Stream, in one Cluster hash slot."""
    slot = "{" + topic_to_wire(topic) + "}"
    return f"{CHANNEL_PREFIX}{slot}:meta", f"{CHANNEL_PREFIX}{slot}:log"


def presence_key(topic: Topic) -> str:
    """The Redis key of a room's presence set (contract §8.2), in the room's hash slot."""
    return f"{CHANNEL_PREFIX}{{{topic_to_wire(topic)}}}:presence"


def publish_id_key(topic: Topic, publish_id: str) -> str:
    """The Redis key of a publish id in a feed room (contract §8.1), in the room's hash slot."""
    return f"{CHANNEL_PREFIX}{{{topic_to_wire(topic)}}}:id:{publish_id}"


def is_connection_error(exc: BaseException) -> bool:
    """Redis went away or never answered: expected in an outage, retried without a traceback."""
    if isinstance(exc, BaseExceptionGroup):
        return all(is_connection_error(inner) for inner in exc.exceptions)
    return isinstance(exc, RedisError | OSError | TimeoutError)


def describe(exc: BaseException) -> str:
    """One line for logs and /healthz; the first real error inside exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def text_of(name: bytes | str) -> str:
    """A channel name or a reply from Redis as text."""
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else name
