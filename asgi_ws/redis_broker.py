"""The Redis pub/sub broker: rooms and broadcast across processes and servers (contract §4).

Per process, while :meth:`RedisBroker.running` is entered (the lifespan scope):

- **one subscriber connection**, subscribed to one channel per topic that has
  a member in this process (``asgi-ws:chat:<room>``, ``asgi-ws:broadcast``).
  The hub's member sets are the reference counts: it calls ``subscribe`` on a
  topic's first member and ``unsubscribe`` after its last;
- **one publish connection**, fed by a bounded queue, so a chat message never
  waits for Redis.  One task publishes the queue in order, in pipelined
  batches, which keeps each sender's messages in order;
- the **envelope** of :mod:`asgi_ws.broker`, whose ``node`` lets this process
  skip its own messages when Redis hands them back: its local clients were
  already served by the hub.

Delivery is at most once, as Redis pub/sub is: a message published while a
process is disconnected from Redis never reaches that process.

**Feed rooms** (contract §8) add a history, and an order every process agrees on:

- Each feed room has two keys in one Redis Cluster hash slot (the ``{feed:room}``
  hash tag): a hash ``asgi-ws:{feed:room}:meta`` with the room's ``epoch`` and
  newest offset ``top``, and a Stream ``asgi-ws:{feed:room}:log`` whose entry
  ids are the offsets (``42-0``), trimmed to ``history_size`` entries with
  ``MAXLEN`` and expiring ``history_ttl`` after the room's last message.
- One Lua script (:data:`APPEND_SCRIPT`) numbers a message, adds it to the
  Stream and publishes it, atomically: Redis runs one script at a time, so two
  processes publishing into one room, under any servers, get one order, and
  pub/sub hands every subscriber the messages in that order.  A room without
  a ``meta`` starts a new epoch there.
- Every process delivers a feed message when it comes back from pub/sub, its
  own included: local clients are not served first, or they could see a
  message before an earlier one from another process.
- Each process remembers the last offset it delivered per feed room.  A
  message further ahead means pub/sub lost some (a reconnect): they are read
  from the Stream and delivered first.  After a reconnect, every room is
  caught up from the Stream at once, not at its next message.
- During an outage no feed message is delivered, not even locally: its
  number must come from Redis, and a number given here could be given to
  another message by another process.  Messages sent meanwhile wait in a
  bounded queue and are numbered and delivered, in order, once Redis is back.
  A batch whose reply was lost in the outage is sent again, so a message may
  appear twice under two offsets; no offset is ever skipped or repeated.  A
  resume made during an outage waits for Redis (up to :data:`RESUME_WAIT`)
  before it answers ``unavailable``.

**Outages.**  One supervisor task owns the connections.  When Redis goes away
it marks the broker disconnected (``/healthz`` turns ``degraded``), drops what
cannot be published, and reconnects with exponential backoff from 1 s to 30 s.
After a reconnect it subscribes to every live topic again and counts one
reconnect.  Local delivery never depends on Redis, so chat inside one process
goes on throughout.  An unexpected exception in the supervisor's tasks is a bug:
it is logged with its traceback, shown in ``/healthz`` as ``last_error``, and the
supervisor starts over rather than dying silently.

redis-py's client is asyncio-only, so this broker refuses to start on any other
event loop (hypercorn's trio worker) with :class:`~asgi_ws.broker.BrokerError`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import redis.asyncio as redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from .broker import (
    BrokerError,
    Deliver,
    Envelope,
    decode_envelope,
    encode_envelope,
    new_node_id,
    redact,
    topic_from_wire,
    topic_to_wire,
)
from .feed import FeedMessage, Replay, Since, new_epoch, plan_replay
from .logs import log_event
from .outbox import Outbox
from .policy import message_size
from .runtime import counted_task
from .settings import DEFAULTS
from .topics import Topic

__all__ = ["RedisBroker"]

logger = logging.getLogger(__name__)

CHANNEL_PREFIX = "asgi-ws:"  # every channel this app uses starts with it
MIN_BACKOFF = 1.0  # seconds before the first reconnect attempt (contract §4)
MAX_BACKOFF = 30.0  # the cap of the doubling delay (contract §4)
CONNECT_TIMEOUT = 2.0  # one attempt to reach Redis; startup never waits longer than this
COMMAND_TIMEOUT = 5.0  # a publish batch or a subscribe that takes longer means Redis is gone
POLL_INTERVAL = 5.0  # the listener wakes this often when idle, so health checks can run
HEALTH_CHECK_INTERVAL = 10.0  # an idle subscriber connection is pinged this often
PUBLISH_QUEUE = 10_000  # messages waiting for the publish connection before new ones are dropped
# Bytes of envelopes waiting, whichever bound comes first: 10,000 chat messages of 64 KiB would
# be 640 MiB held for a Redis that is slow but still connected.  16 MiB is 10,000 messages of
# 1.6 KiB, or 256 of the largest a client may send.
PUBLISH_QUEUE_BYTES = 16 * 1024 * 1024
PUBLISH_BATCH = 512  # messages per pipelined round trip
# How long a feed resume waits for Redis to come back before it answers "unavailable": a
# client that reconnects during a short outage (a Redis restart) then still gets what it
# missed.  Its control message is simply late; live messages wait for Redis anyway.
RESUME_WAIT = 10.0

# Both scripts start with this: the room's epoch, or, for a room without one (new, expired,
# flushed), a new epoch at top 0, with any Stream left of the old one deleted.  KEYS: meta,
# log; ARGV[1]: a fresh epoch.
_EPOCH = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'top', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
"""

# Number a feed message, keep it, and publish it, in one step.  KEYS: meta, log.
# ARGV: a fresh epoch, ttl in ms, data as a JSON string, node, history_size,
# channel, room as a JSON string.  Returns the offset.
APPEND_SCRIPT = (
    _EPOCH
    + """
local offset = redis.call('HINCRBY', KEYS[1], 'top', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[5], offset .. '-0', 'd', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('PUBLISH', ARGV[6], '{"v":1,"node":"' .. ARGV[4] .. '","room":' .. ARGV[7] ..
  ',"offset":' .. offset .. ',"epoch":"' .. epoch .. '","data":' .. ARGV[3] .. '}')
return offset
"""
)

# A room's epoch and top, and its kept messages after an offset.  KEYS: meta, log.
# ARGV: a fresh epoch (used if the room has none), ttl in ms, the first offset
# wanted, the most to read, and the epoch they must belong to.
READ_SCRIPT = (
    _EPOCH
    + """
local top = redis.call('HGET', KEYS[1], 'top')
local entries = {}
if epoch == ARGV[5] then
  entries = redis.call('XRANGE', KEYS[2], ARGV[3] .. '-0', '+', 'COUNT', ARGV[4])
end
return {epoch, top, entries}
"""
)


class RedisBroker:
    """Redis pub/sub for one process.  See the module docstring for the design."""

    kind = "redis"

    def __init__(
        self,
        url: str,
        *,
        node: str | None = None,
        min_backoff: float = MIN_BACKOFF,
        resume_wait: float = RESUME_WAIT,
        history_size: int = DEFAULTS.history_size,
        history_ttl: float = DEFAULTS.history_ttl,
    ) -> None:
        self.url = url  # redis://host:port/db, as configured
        self.node = node or new_node_id()  # this process, in every envelope it publishes
        self.connected = False  # both connections up and every wanted channel subscribed
        self.reconnects = 0  # successful connections after the first one (contract §4 counter)
        self.published = 0  # envelopes Redis accepted from this process
        self.received = 0  # envelopes from other processes handed to the hub
        self.dropped = 0  # messages not published: Redis down, or the publish queue full
        self.invalid = 0  # messages on our channels that were not a valid envelope
        self.last_error: str | None = None  # why the last connection ended, for /healthz
        self._min_backoff = min_backoff
        self._wanted: set[str] = set()  # channels of the topics with a member here
        self._subscribed: set[str] = set()  # channels the subscriber connection is subscribed to now
        self._subscriptions_moved: anyio.Event | None = None  # set each time _subscribed catches up some
        self._wanted_changed: anyio.Event | None = None  # set when _wanted changes while connected
        self._outgoing: Outbox[tuple[str, bytes]] = Outbox(PUBLISH_QUEUE, PUBLISH_QUEUE_BYTES)  # (channel, envelope)
        self._deliver: Deliver | None = None
        self._supervising = False  # the supervisor task is alive
        # The feed (see the module docstring)
        self.history_size = history_size  # Stream entries kept per feed room (MAXLEN)
        self.history_ttl = history_ttl  # seconds a feed room's keys outlive its last message
        self.feed_filled = 0  # feed messages read from a Stream to fill a gap in pub/sub
        self._client: redis.Redis | None = None  # the command connection while connected
        self._resume_wait = resume_wait  # seconds a resume waits for Redis to come back
        self._up: anyio.Event | None = None  # set while connected; a new one after each outage
        self._cursors: dict[Topic, tuple[str, int]] = {}  # feed room -> (epoch, last offset delivered here)
        # Feed messages to number, (topic, data): kept through an outage, unlike chat.
        self._feed_outgoing: Outbox[tuple[Topic, str]] = Outbox(PUBLISH_QUEUE, PUBLISH_QUEUE_BYTES)
        self._feed_retry: deque[tuple[Topic, str]] = deque()  # a batch the outage cut off, sent first

    # The Broker interface

    @asynccontextmanager
    async def running(self, deliver: Deliver) -> AsyncIterator[None]:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise BrokerError(
                f"the broker {redact(self.url)} needs asyncio (redis-py's client is asyncio-only), "
                "and this server runs another event loop, such as hypercorn -k trio: "
                "use -k asyncio or -k uvloop, or the memory:// broker"
            ) from None
        self._deliver = deliver
        self._up = anyio.Event()
        async with anyio.create_task_group() as tasks:
            first_attempt = anyio.Event()
            tasks.start_soon(self._supervise, first_attempt)
            await first_attempt.wait()  # connected, or failed once and retrying: never hangs startup
            try:
                yield
            finally:
                tasks.cancel_scope.cancel()
        self.connected = False
        log_event(logger, logging.INFO, "broker_stopped", published=self.published, received=self.received)

    def subscribe(self, topic: Topic) -> None:
        self._wanted.add(channel(topic))
        self._wake_subscriptions()

    def unsubscribe(self, topic: Topic) -> None:
        self._wanted.discard(channel(topic))
        self._wake_subscriptions()

    def publish(self, topic: Topic, text: str) -> None:
        if not self.connected:
            self.dropped += 1
            return
        envelope = encode_envelope(self.node, topic, text)
        if not self._outgoing.offer((channel(topic), envelope), len(envelope)):
            self.dropped += 1

    def append(self, topic: Topic, text: str) -> None:
        """Queue ``text`` for the append script; it comes back numbered through pub/sub."""
        if not self._feed_outgoing.offer((topic, text), message_size(text, None)):
            self.dropped += 1

    async def replay(self, topic: Topic, since: Since) -> Replay:
        if self._client is None and self._up is not None:
            with anyio.move_on_after(self._resume_wait):
                await self._up.wait()  # an outage: give Redis a chance to come back first
        try:
            epoch, top, kept = await self._read(topic, since.offset + 1, self.history_size, since.epoch)
        except Exception as exc:
            if not is_connection_error(exc) and self._client is not None:
                raise
            epoch, top = self._cursors.get(topic, (since.epoch, since.offset))
            if epoch == since.epoch:  # the client may have seen more, through a process ahead of this one
                top = max(top, since.offset)  # the session counts from top: what the client has is not sent again
            return Replay(epoch, top, (), "unavailable")
        return plan_replay(since, epoch, top, kept)

    async def between(self, topic: Topic, epoch: str, after: int, until: int) -> list[FeedMessage]:
        try:
            _, _, kept = await self._read(topic, after + 1, until - after, epoch)
        except Exception as exc:
            if not is_connection_error(exc) and self._client is not None:
                raise
            return []  # Redis is gone: nothing to fill with; the later message goes out as it is
        return [message for message in kept if message.offset <= until]

    @property
    def _ttl_ms(self) -> int:
        """``history_ttl`` for PEXPIRE, never 0, which would delete the keys at once."""
        return max(1, int(self.history_ttl * 1000))

    def state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "connected": self.connected,
            "url": redact(self.url),
            "node": self.node,
            "subscriptions": len(self._wanted),
            "reconnects": self.reconnects,
            "published": self.published,
            "received": self.received,
            "dropped": self.dropped,
            "invalid": self.invalid,
            "feed_filled": self.feed_filled,
            "feed_held": len(self._feed_outgoing) + len(self._feed_retry),
            "supervisor": "running" if self._supervising else "stopped",
            "last_error": self.last_error,
        }

    # The supervisor: connect, serve, and reconnect with backoff

    @counted_task
    async def _supervise(self, first_attempt: anyio.Event) -> None:
        self._supervising = True
        delay = self._min_backoff
        ever_connected = False
        try:
            while True:
                try:
                    await self._session(first_attempt, reconnect=ever_connected)
                except Exception as exc:  # every failure is reported, then retried
                    self.last_error = describe(exc)
                    if is_connection_error(exc):
                        event = "broker_disconnected" if self.connected else "broker_unreachable"
                        log_event(
                            logger, logging.WARNING, event, url=redact(self.url), error=self.last_error, retry_in=delay
                        )
                    else:
                        logger.exception("redis broker failed unexpectedly; restarting in %.0f s", delay)
                ever_connected = ever_connected or self.connected
                if self.connected:
                    delay = self._min_backoff  # a working connection resets the backoff
                self.connected = False
                if self._up is not None and self._up.is_set():
                    self._up = anyio.Event()  # resumes wait on this one until the next connection
                self.dropped += self._outgoing.clear()  # at most once: no late delivery after an outage
                first_attempt.set()
                await anyio.sleep(delay)
                delay = next_backoff(delay)
        finally:
            self._supervising = False

    async def _session(self, first_attempt: anyio.Event, *, reconnect: bool) -> None:
        """One connection to Redis, from connect to failure.  Never returns normally."""
        client = redis.Redis.from_url(
            self.url,
            # The asyncio client's own Retry (redis.asyncio.retry): redis-py 8.2 converts the synchronous one
            # with a warning. No retries: the supervisor does the retrying, visibly.
            retry=Retry(NoBackoff(), 0),
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_keepalive=True,
            health_check_interval=HEALTH_CHECK_INTERVAL,
        )
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            with anyio.fail_after(CONNECT_TIMEOUT + COMMAND_TIMEOUT):
                await client.ping()
                await pubsub.connect()  # type: ignore[no-untyped-call]
                subscribed = set(self._wanted)
                for topic in set(self._cursors) - {topic_of_channel(name) for name in subscribed}:
                    del self._cursors[topic]  # left while Redis was away
                await self._start_cursors(client, subscribed)
                if subscribed:
                    await pubsub.subscribe(*subscribed)
                self._subscribed = subscribed
            with anyio.fail_after(COMMAND_TIMEOUT):
                await self._catch_up(client)
            self._client = client
            self.connected = True
            self.last_error = None
            assert self._up is not None
            self._up.set()
            if reconnect:
                self.reconnects += 1
                log_event(logger, logging.INFO, "broker_reconnected", url=redact(self.url), rooms=len(subscribed))
            else:
                log_event(logger, logging.INFO, "broker_connected", url=redact(self.url), node=self.node)
            first_attempt.set()
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._keep_subscriptions, client, pubsub, subscribed)
                tasks.start_soon(self._publish_queued, client)
                tasks.start_soon(self._publish_feed, client)
                await self._listen(pubsub)
        finally:
            self._client = None
            # Close both connections even when the app is shutting down (cancelled).
            with anyio.CancelScope(shield=True), anyio.move_on_after(CONNECT_TIMEOUT):
                await pubsub.aclose()
                await client.aclose()

    async def _listen(self, pubsub: PubSub) -> None:
        """Hand every other process's message to the hub, in the order Redis delivers them."""
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=POLL_INTERVAL)
            if message is not None and message["type"] == "message":
                feed_message = self.on_message(message["channel"], message["data"])
                if feed_message is not None:
                    await self._deliver_in_order(feed_message)

    def on_message(self, channel_name: bytes | str, raw: bytes) -> Envelope | None:
        """One message from Redis: deliver it unless it is ours or not an envelope at all.

        A feed message is returned instead, for :meth:`_deliver_in_order`:
        every process delivers those from here, its own included.
        """
        assert self._deliver is not None
        envelope = decode_envelope(raw)
        if envelope is None:
            self.invalid += 1
            log_event(logger, logging.WARNING, "broker_invalid_message", channel=_text(channel_name))
        elif envelope.offset is not None:
            return envelope
        elif envelope.node != self.node:  # our own messages were delivered locally already
            self.received += 1
            self._deliver(envelope.topic, envelope.text)
        return None

    # The feed: in order, with no gap, through pub/sub and the Streams

    async def _deliver_in_order(self, envelope: Envelope) -> None:
        """Deliver a feed message after any this process missed, and never one twice."""
        topic, offset, epoch = envelope.topic, envelope.offset, envelope.epoch
        assert offset is not None, "only feed envelopes come here"
        assert epoch is not None
        cursor = self._cursors.get(topic)
        if cursor is not None:
            # A new epoch seen while following the room: all of that history is new here, from offset 1.
            last = cursor[1] if cursor[0] == epoch else 0
            if offset <= last:
                return  # delivered already, from the Stream
            if offset > last + 1 and self._client is not None:
                _, _, missing = await self._read(topic, last + 1, offset - last - 1, epoch)
                self.feed_filled += len(missing)
                for message in missing:
                    self._deliver_one(topic, message)
        if envelope.node != self.node:
            self.received += 1
        self._deliver_one(topic, FeedMessage(offset, epoch, envelope.text))

    def _deliver_one(self, topic: Topic, message: FeedMessage) -> None:
        assert self._deliver is not None
        cursor = self._cursors.get(topic)
        if cursor is not None and cursor[0] == message.epoch and message.offset <= cursor[1]:
            return
        if topic in self._cursors or channel(topic) in self._wanted:
            self._cursors[topic] = (message.epoch, message.offset)
        self._deliver(topic, message)

    async def _start_cursors(self, client: redis.Redis, channels: set[str]) -> None:
        """Before subscribing to a feed room, note its newest offset: nothing after it can then go missing.

        A message published between this read and the subscription is filled
        from the Stream when the next one arrives, or by :meth:`_catch_up`.
        """
        for name in channels:
            topic = topic_of_channel(name)
            if topic.kind == "feed" and topic not in self._cursors:
                epoch, top, _ = await self._read(topic, 1, 0, "", client)
                self._cursors[topic] = (epoch, top)

    async def _catch_up(self, client: redis.Redis) -> None:
        """After a reconnect, deliver what every feed room here missed while this process was away."""
        for topic, (epoch, last) in list(self._cursors.items()):
            current, _, missing = await self._read(topic, last + 1, self.history_size, epoch, client)
            if current != epoch:  # a new history (Redis lost the old one): all of it is new here
                _, _, missing = await self._read(topic, 1, self.history_size, current, client)
            self.feed_filled += len(missing)
            for message in missing:
                self._deliver_one(topic, message)

    async def _read(
        self, topic: Topic, first: int, count: int, epoch: str, client: redis.Redis | None = None
    ) -> tuple[str, int, list[FeedMessage]]:
        """The room's epoch and top, and up to ``count`` kept messages from offset ``first`` if in ``epoch``."""
        client = client or self._client
        if client is None:
            raise ConnectionError("not connected to Redis")
        meta, log = feed_keys(topic)
        with anyio.fail_after(COMMAND_TIMEOUT):
            args = (new_epoch(), self._ttl_ms, first, max(count, 1), epoch)
            result = await client.eval(READ_SCRIPT, 2, meta, log, *args)
        current, top, entries = _text(result[0]), int(result[1]), result[2]
        return current, top, [_stream_message(entry, current) for entry in entries]

    @counted_task
    async def _keep_subscriptions(self, client: redis.Redis, pubsub: PubSub, subscribed: set[str]) -> None:
        """Follow the hub: SUBSCRIBE new topics, UNSUBSCRIBE empty ones; feed rooms start and end a cursor."""
        while True:
            self._wanted_changed = anyio.Event()
            if self._wanted == subscribed:
                await self._wanted_changed.wait()
                continue
            new, gone = self._wanted - subscribed, subscribed - self._wanted
            with anyio.fail_after(COMMAND_TIMEOUT):
                if new:
                    await self._start_cursors(client, new)
                    await pubsub.subscribe(*new)
                if gone:
                    await pubsub.unsubscribe(*gone)
            subscribed |= new
            subscribed -= gone
            if self._subscriptions_moved is not None:
                self._subscriptions_moved.set()  # a feed message waiting for one of these may go
            for name in gone - self._wanted:
                self._cursors.pop(topic_of_channel(name), None)  # no member left to keep in order

    @counted_task
    async def _publish_queued(self, client: redis.Redis) -> None:
        """Publish the queue in order, in pipelined batches."""
        while True:
            batch = [await self._outgoing.get()]
            while len(self._outgoing) and len(batch) < PUBLISH_BATCH:
                batch.append(await self._outgoing.get())
            pipe = client.pipeline(transaction=False)
            for channel_name, envelope in batch:
                pipe.publish(channel_name, envelope)
            try:
                with anyio.fail_after(COMMAND_TIMEOUT):
                    await pipe.execute()
            except BaseException:
                self.dropped += len(batch)
                raise
            self.published += len(batch)

    @counted_task
    async def _publish_feed(self, client: redis.Redis) -> None:
        """Number, keep and publish the queued feed messages, in order, in pipelined batches.

        A batch cut off by an outage is kept and sent first after the
        reconnect: it may have run before the connection broke, so it may run
        twice.  That is the price of losing nothing: the same text under two
        offsets, never an offset skipped or given twice.  When Redis answers
        but refuses some appends (out of memory, a key of another type), only
        those are kept and sent again: the others were numbered and published.
        """
        script = client.register_script(APPEND_SCRIPT)
        retry = self._feed_retry
        while True:
            if not retry:
                retry.append(await self._feed_outgoing.get())
                while len(self._feed_outgoing) and len(retry) < PUBLISH_BATCH:
                    retry.append(await self._feed_outgoing.get())
            # A member of this process sent it, so this process wants the room: number it only once
            # the process is subscribed to the room, or pub/sub could never bring it back here, and
            # the room's cursor, read before subscribing, would already count it as delivered.
            while any(channel(topic) in self._wanted - self._subscribed for topic, _ in retry):
                self._subscriptions_moved = anyio.Event()
                await self._subscriptions_moved.wait()
            pipe = client.pipeline(transaction=False)
            for topic, text in retry:
                meta, log = feed_keys(topic)
                data, room = json.dumps(text), json.dumps(topic_to_wire(topic))
                args: list[str | int] = [new_epoch(), self._ttl_ms, data, self.node, self.history_size]
                args += [channel(topic), room]
                await script(keys=[meta, log], args=args, client=pipe)
            with anyio.fail_after(COMMAND_TIMEOUT):
                results = await pipe.execute(raise_on_error=False)
            refused = [
                (item, result) for item, result in zip(retry, results, strict=True) if isinstance(result, Exception)
            ]
            self.published += len(retry) - len(refused)
            retry.clear()
            if refused:
                retry.extend(item for item, _ in refused)
                raise refused[0][1]  # the supervisor logs it and tries again after its backoff

    def _wake_subscriptions(self) -> None:
        if self._wanted_changed is not None:
            self._wanted_changed.set()


def next_backoff(delay: float) -> float:
    """The wait after ``delay``: doubled, up to MAX_BACKOFF (1, 2, 4, 8, 16, 30, 30 ... s)."""
    return min(delay * 2, MAX_BACKOFF)


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


def _stream_message(entry: Any, epoch: str) -> FeedMessage:
    """A Stream entry, ``(b"42-0", [b"d", b'"text"'])``, as the feed message it keeps."""
    entry_id, fields = entry
    return FeedMessage(int(_text(entry_id).partition("-")[0]), epoch, json.loads(fields[1]))


def _text(name: bytes | str) -> str:
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else name
