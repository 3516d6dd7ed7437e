"""Chat and broadcast across processes through Redis pub/sub: subscriptions, the publish queue, the listener.

Owns the pub/sub half of the Redis broker on one connection to Redis (its
tasks run while :class:`asgi_ws.redis_broker.RedisBroker` is connected, and
the broker starts them again after each reconnect):

- **subscriptions**, one channel per topic with a member in this process
  (``asgi-ws:chat:<room>``, ``asgi-ws:broadcast``, ``asgi-ws:feed:<room>``).
  The hub's member sets are the reference counts: it calls ``subscribe`` on a
  topic's first member and ``unsubscribe`` after its last.  A feed room starts
  its cursor before it is subscribed, and ends it after
  (:class:`asgi_ws.redis_feed.RedisFeed`);
- **the publish queue**, bounded, so a chat message never waits for Redis.
  One task publishes it in order, in pipelined batches, which keeps each
  sender's messages in order;
- **the listener**, which hands the hub every other process's message, and
  every feed message to the feed, its own included.

The envelope is :mod:`asgi_ws.broker`'s; its ``node`` lets this process skip
its own messages when Redis hands them back: its local clients were already
served by the hub.  Delivery is at most once, as Redis pub/sub is.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel

from .broker import decode_envelope, encode_envelope
from .logs import log_event
from .redis_wire import COMMAND_TIMEOUT, PUBLISH_BATCH, channel, publish_queue, text_of, topic_of_channel
from .runtime import counted_task

if TYPE_CHECKING:
    import redis.asyncio as redis
    from redis.asyncio.client import PubSub

    from .broker import Deliver
    from .outbox import Outbox
    from .redis_feed import RedisFeed
    from .redis_presence import RedisPresence
    from .redis_wire import Counts
    from .topics import Topic

__all__ = ["POLL_INTERVAL", "RedisPubSub"]

logger = logging.getLogger(__name__)

POLL_INTERVAL = 5.0  # the listener wakes this often when idle, so health checks can run


class RedisPubSub:
    """The pub/sub half of one process's Redis broker.  See the module docstring."""

    def __init__(self, node: str, counts: Counts, feed: RedisFeed, presence: RedisPresence, wanted: set[str]) -> None:
        self.node = node  # this process, in every envelope it publishes
        self.counts = counts  # the broker's counters, shared
        self.feed = feed  # the feed rooms, which follow the subscriptions
        self.presence = presence  # who is in the rooms on other processes: their joins and leaves come here
        self.wanted = wanted  # channels of the topics with a member here; the feed reads it too
        self.subscribed: set[str] = set()  # channels the subscriber connection is subscribed to now
        self.deliver: Deliver | None = None  # the hub's, while the broker runs
        self._wanted_changed: anyio.Event | None = None  # set when wanted changes while connected
        self._subscriptions_moved: anyio.Event | None = None  # set each time subscribed catches up some
        self._outgoing: Outbox[tuple[str, bytes]] = publish_queue()  # (channel, envelope), for the publisher

    # What the broker hands on

    def subscribe(self, topic: Topic) -> None:
        self.wanted.add(channel(topic))
        self._wake()

    def unsubscribe(self, topic: Topic) -> None:
        self.wanted.discard(channel(topic))
        self._wake()

    def publish(self, topic: Topic, text: str) -> None:
        """Queue ``text`` for the other processes; dropped, and counted, if the queue is full."""
        envelope = encode_envelope(self.node, topic, text)
        if not self._outgoing.offer((channel(topic), envelope), len(envelope)):
            self.counts.dropped += 1

    def drop_queued(self) -> None:
        """Redis went away: drop what waits, so nothing is delivered late after an outage (at most once)."""
        self.counts.dropped += self._outgoing.clear()

    # Subscriptions

    async def subscribe_wanted(self, client: redis.Redis, pubsub: PubSub) -> set[str]:
        """On a new connection: follow the feed rooms, then subscribe to every wanted channel."""
        subscribed = set(self.wanted)
        topics = {topic_of_channel(name) for name in subscribed}
        self.feed.forget_all_but(topics)  # rooms left while Redis was away
        await self.feed.follow(client, topics)
        if subscribed:
            await pubsub.subscribe(*subscribed)
        self.subscribed = subscribed
        return subscribed

    @counted_task
    async def keep_subscriptions(self, client: redis.Redis, pubsub: PubSub) -> None:
        """Follow the hub: SUBSCRIBE new topics, UNSUBSCRIBE empty ones; feed rooms start and end a cursor."""
        subscribed = self.subscribed
        while True:
            self._wanted_changed = anyio.Event()
            if self.wanted == subscribed:
                await self._wanted_changed.wait()
                continue
            new, gone = self.wanted - subscribed, subscribed - self.wanted
            with anyio.fail_after(COMMAND_TIMEOUT):
                if new:
                    await self.feed.follow(client, {topic_of_channel(name) for name in new})
                    await pubsub.subscribe(*new)
                if gone:
                    await pubsub.unsubscribe(*gone)
            subscribed |= new
            subscribed -= gone
            if self._subscriptions_moved is not None:
                self._subscriptions_moved.set()  # a feed message waiting for one of these may go
            self.feed.forget(topic_of_channel(name) for name in gone - self.wanted)  # no member left here

    async def until_subscribed(self, topics: set[Topic]) -> None:
        """Wait until the subscriber connection is subscribed to every one of ``topics`` still wanted here."""
        while any(channel(topic) in self.wanted - self.subscribed for topic in topics):
            self._subscriptions_moved = anyio.Event()
            await self._subscriptions_moved.wait()

    def _wake(self) -> None:
        if self._wanted_changed is not None:
            self._wanted_changed.set()

    # Publishing and listening

    @counted_task
    async def publish_queued(self, client: redis.Redis) -> None:
        """Publish the queue in order, in pipelined batches."""
        while True:
            batch = [(await self._outgoing.get())[0]]
            while len(self._outgoing) and len(batch) < PUBLISH_BATCH:
                batch.append((await self._outgoing.get())[0])
            pipe = client.pipeline(transaction=False)
            for channel_name, envelope in batch:
                pipe.publish(channel_name, envelope)
            try:
                with anyio.fail_after(COMMAND_TIMEOUT):
                    await pipe.execute()
            except BaseException:
                self.counts.dropped += len(batch)
                raise
            self.counts.published += len(batch)

    async def listen(self, pubsub: PubSub) -> None:
        """Hand every other process's message to the hub, in the order Redis delivers them.

        It lets the event loop run after each one.  Redis hands over a burst of
        messages in one read, and ``get_message`` returns those already read
        without suspending: one message into each of 100 rooms was 100 fan-outs
        in one step, 16,667 outboxes filled while no socket was polled
        (``docs/concurrency.md``, "Broadcasting to 16,667 listeners").
        """
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=POLL_INTERVAL)
            if message is not None and message["type"] == "message":
                await self.on_message(message["channel"], message["data"])
                await anyio.lowlevel.checkpoint()

    async def on_message(self, channel_name: bytes | str, raw: bytes) -> None:
        """One message from Redis: deliver it unless it is ours or not an envelope at all.

        A feed message goes to the feed, every process's own included: it
        delivers them in order (:meth:`asgi_ws.redis_feed.RedisFeed.deliver_in_order`).
        """
        assert self.deliver is not None
        envelope = decode_envelope(raw)
        if envelope is None:
            self.counts.invalid += 1
            log_event(logger, logging.WARNING, "broker_invalid_message", channel=text_of(channel_name))
        elif envelope.offset is not None:
            await self.feed.deliver_in_order(envelope)
        elif envelope.presence is not None:
            self.presence.on_event(envelope)
        elif envelope.node != self.node:  # our own messages were delivered locally already
            self.counts.received += 1
            self.deliver(envelope.topic, envelope.text)
