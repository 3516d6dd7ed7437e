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

**Feed rooms** (contract §8) add a history, and an order every process agrees
on: numbering, the history and delivery in order are
:class:`asgi_ws.redis_feed.RedisFeed`'s, which this broker runs on the same
connections.  A resume made during an outage waits for Redis (up to
:data:`RESUME_WAIT`) before it answers ``unavailable``.

**Outages.**  One supervisor task owns the connections, and the broker is in
one :class:`Link` state, which only the supervisor moves.  When Redis goes
away it goes ``down`` (``/healthz`` turns ``degraded``), drops what cannot be
published, and reconnects with exponential backoff from 1 s to 30 s.  After a
reconnect it subscribes to every live topic again and counts one reconnect.
Local delivery never depends on Redis, so chat inside one process goes on
throughout.  An unexpected exception in the supervisor's tasks is a bug: it is
logged with its traceback, shown in ``/healthz`` as ``last_error``, and the
supervisor starts over rather than dying silently.

Names, limits and counters shared with the feed are in :mod:`asgi_ws.redis_wire`.

redis-py's client is asyncio-only, so this broker refuses to start on any other
event loop (hypercorn's trio worker) with :class:`~asgi_ws.broker.BrokerError`.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import redis.asyncio as redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .broker import BrokerError, Deliver, Envelope, decode_envelope, encode_envelope, new_node_id, redact
from .feed import FeedMessage, Replay, Since
from .logs import log_event
from .redis_feed import RedisFeed
from .redis_wire import (
    COMMAND_TIMEOUT,
    PUBLISH_BATCH,
    Counts,
    channel,
    describe,
    is_connection_error,
    publish_queue,
    text_of,
    topic_of_channel,
)
from .runtime import counted_task
from .settings import DEFAULTS
from .topics import Topic

if TYPE_CHECKING:
    from .outbox import Outbox

__all__ = ["Link", "RedisBroker", "next_backoff"]

logger = logging.getLogger(__name__)

MIN_BACKOFF = 1.0  # seconds before the first reconnect attempt (contract §4)
MAX_BACKOFF = 30.0  # the cap of the doubling delay (contract §4)
CONNECT_TIMEOUT = 2.0  # one attempt to reach Redis; startup never waits longer than this
POLL_INTERVAL = 5.0  # the listener wakes this often when idle, so health checks can run
HEALTH_CHECK_INTERVAL = 10.0  # an idle subscriber connection is pinged this often
# How long a feed resume waits for Redis to come back before it answers "unavailable": a
# client that reconnects during a short outage (a Redis restart) then still gets what it
# missed.  Its control message is simply late; live messages wait for Redis anyway.
RESUME_WAIT = 10.0


class Link(enum.Enum):
    """Where one process's broker stands with Redis.  Only the supervisor moves it (:meth:`RedisBroker._enter`).

    ``stopped`` -> ``down`` when :meth:`RedisBroker.running` starts the
    supervisor; ``down`` <-> ``up`` as connections come and go; -> ``stopped``
    when the supervisor ends.
    """

    STOPPED = "stopped"  # no supervisor: not running yet, or shut down
    DOWN = "down"  # the supervisor is connecting, or waiting out its backoff
    UP = "up"  # both connections up and every wanted channel subscribed


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
        self.link = Link.STOPPED  # where the broker stands with Redis; see _enter
        self.counts = Counts()  # what it has done, for /healthz; shared with the feed
        self.last_error: str | None = None  # why the last connection ended, for /healthz
        self.feed = RedisFeed(self.node, self.counts, self._wants, history_size, history_ttl)  # the feed rooms
        self._min_backoff = min_backoff  # seconds before the first reconnect attempt
        self._resume_wait = resume_wait  # seconds a resume waits for Redis to come back
        self._up: anyio.Event | None = None  # set while up, for resumes to wait on; a new one each time it goes down
        self._wanted: set[str] = set()  # channels of the topics with a member here
        self._subscribed: set[str] = set()  # channels the subscriber connection is subscribed to now
        self._subscriptions_moved: anyio.Event | None = None  # set each time _subscribed catches up some
        self._wanted_changed: anyio.Event | None = None  # set when _wanted changes while connected
        self._outgoing: Outbox[tuple[str, bytes]] = publish_queue()  # (channel, envelope), for the publisher
        self._deliver: Deliver | None = None  # the hub's, while running

    @property
    def connected(self) -> bool:
        """Both connections up and every wanted channel subscribed."""
        return self.link is Link.UP

    def _enter(self, link: Link, client: redis.Redis | None = None) -> None:
        """Move to ``link``: the one place the state changes, and what follows from it."""
        self.link = link
        self.feed.client = client if link is Link.UP else None  # the feed reads the history while up only
        if self._up is None:
            return  # not running: nothing waits
        if link is Link.UP:
            self._up.set()
        elif self._up.is_set():
            self._up = anyio.Event()  # resumes wait on this one until the next connection

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
        self._deliver = self.feed.deliver = deliver
        self._up = anyio.Event()
        async with anyio.create_task_group() as tasks:
            first_attempt = anyio.Event()
            tasks.start_soon(self._supervise, first_attempt)
            await first_attempt.wait()  # connected, or failed once and retrying: never hangs startup
            try:
                yield
            finally:
                tasks.cancel_scope.cancel()
        log_event(
            logger, logging.INFO, "broker_stopped", published=self.counts.published, received=self.counts.received
        )

    def subscribe(self, topic: Topic) -> None:
        self._wanted.add(channel(topic))
        self._wake_subscriptions()

    def unsubscribe(self, topic: Topic) -> None:
        self._wanted.discard(channel(topic))
        self._wake_subscriptions()

    def publish(self, topic: Topic, text: str) -> None:
        if self.link is not Link.UP:
            self.counts.dropped += 1
            return
        envelope = encode_envelope(self.node, topic, text)
        if not self._outgoing.offer((channel(topic), envelope), len(envelope)):
            self.counts.dropped += 1

    def append(self, topic: Topic, text: str) -> None:
        """Queue ``text`` for numbering; it comes back numbered through pub/sub (:mod:`asgi_ws.redis_feed`)."""
        self.feed.append(topic, text)

    async def replay(self, topic: Topic, since: Since) -> Replay:
        if self.link is Link.DOWN and self._up is not None:
            with anyio.move_on_after(self._resume_wait):
                await self._up.wait()  # an outage: give Redis a chance to come back first
        return await self.feed.replay(topic, since)

    async def between(self, topic: Topic, epoch: str, after: int, until: int) -> list[FeedMessage]:
        return await self.feed.between(topic, epoch, after, until)

    def state(self) -> dict[str, Any]:
        counts = self.counts
        return {
            "kind": self.kind,
            "connected": self.link is Link.UP,
            "url": redact(self.url),
            "node": self.node,
            "subscriptions": len(self._wanted),
            "reconnects": counts.reconnects,
            "published": counts.published,
            "received": counts.received,
            "dropped": counts.dropped,
            "invalid": counts.invalid,
            "feed_filled": counts.filled,
            "feed_held": self.feed.held,
            "supervisor": "stopped" if self.link is Link.STOPPED else "running",
            "last_error": self.last_error,
        }

    # The supervisor: connect, serve, and reconnect with backoff

    @counted_task
    async def _supervise(self, first_attempt: anyio.Event) -> None:
        self._enter(Link.DOWN)
        delay = self._min_backoff
        ever_connected = False
        try:
            while True:
                try:
                    await self._session(first_attempt, reconnect=ever_connected)
                except Exception as exc:  # every failure is reported, then retried
                    self.last_error = describe(exc)
                    if is_connection_error(exc):
                        event = "broker_disconnected" if self.link is Link.UP else "broker_unreachable"
                        log_event(
                            logger, logging.WARNING, event, url=redact(self.url), error=self.last_error, retry_in=delay
                        )
                    else:
                        logger.exception("redis broker failed unexpectedly; restarting in %.0f s", delay)
                if self.link is Link.UP:
                    ever_connected = True
                    delay = self._min_backoff  # a working connection resets the backoff
                self._enter(Link.DOWN)
                self.counts.dropped += self._outgoing.clear()  # at most once: no late delivery after an outage
                first_attempt.set()
                await anyio.sleep(delay)
                delay = next_backoff(delay)
        finally:
            self._enter(Link.STOPPED)

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
                topics = {topic_of_channel(name) for name in subscribed}
                self.feed.forget_all_but(topics)  # rooms left while Redis was away
                await self.feed.follow(client, topics)
                if subscribed:
                    await pubsub.subscribe(*subscribed)
                self._subscribed = subscribed
            with anyio.fail_after(COMMAND_TIMEOUT):
                await self.feed.catch_up(client)
            self.last_error = None
            self._enter(Link.UP, client)
            if reconnect:
                self.counts.reconnects += 1
                log_event(logger, logging.INFO, "broker_reconnected", url=redact(self.url), rooms=len(subscribed))
            else:
                log_event(logger, logging.INFO, "broker_connected", url=redact(self.url), node=self.node)
            first_attempt.set()
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._keep_subscriptions, client, pubsub, subscribed)
                tasks.start_soon(self._publish_queued, client)
                tasks.start_soon(self.feed.publish_appends, client, self._until_subscribed)
                await self._listen(pubsub)
        finally:
            self.feed.client = None  # no read may start on a connection about to close
            # Close both connections even when the app is shutting down (cancelled).
            with anyio.CancelScope(shield=True), anyio.move_on_after(CONNECT_TIMEOUT):
                await pubsub.aclose()
                await client.aclose()

    # Pub/sub

    async def _listen(self, pubsub: PubSub) -> None:
        """Hand every other process's message to the hub, in the order Redis delivers them."""
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=POLL_INTERVAL)
            if message is not None and message["type"] == "message":
                feed_message = self.on_message(message["channel"], message["data"])
                if feed_message is not None:
                    await self.feed.deliver_in_order(feed_message)

    def on_message(self, channel_name: bytes | str, raw: bytes) -> Envelope | None:
        """One message from Redis: deliver it unless it is ours or not an envelope at all.

        A feed message is returned instead, for :meth:`RedisFeed.deliver_in_order
        <asgi_ws.redis_feed.RedisFeed.deliver_in_order>`: every process delivers
        those from there, its own included.
        """
        assert self._deliver is not None
        envelope = decode_envelope(raw)
        if envelope is None:
            self.counts.invalid += 1
            log_event(logger, logging.WARNING, "broker_invalid_message", channel=text_of(channel_name))
        elif envelope.offset is not None:
            return envelope
        elif envelope.node != self.node:  # our own messages were delivered locally already
            self.counts.received += 1
            self._deliver(envelope.topic, envelope.text)
        return None

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
                    await self.feed.follow(client, {topic_of_channel(name) for name in new})
                    await pubsub.subscribe(*new)
                if gone:
                    await pubsub.unsubscribe(*gone)
            subscribed |= new
            subscribed -= gone
            if self._subscriptions_moved is not None:
                self._subscriptions_moved.set()  # a feed message waiting for one of these may go
            self.feed.forget(topic_of_channel(name) for name in gone - self._wanted)  # no member left here

    def _wants(self, topic: Topic) -> bool:
        """Whether a member of this process is in ``topic``."""
        return channel(topic) in self._wanted

    async def _until_subscribed(self, topics: set[Topic]) -> None:
        """Wait until the subscriber connection is subscribed to every one of ``topics`` still wanted here."""
        while any(channel(topic) in self._wanted - self._subscribed for topic in topics):
            self._subscriptions_moved = anyio.Event()
            await self._subscriptions_moved.wait()

    @counted_task
    async def _publish_queued(self, client: redis.Redis) -> None:
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

    def _wake_subscriptions(self) -> None:
        if self._wanted_changed is not None:
            self._wanted_changed.set()


def next_backoff(delay: float) -> float:
    """The wait after ``delay``: doubled, up to MAX_BACKOFF (1, 2, 4, 8, 16, 30, 30 ... s)."""
    return min(delay * 2, MAX_BACKOFF)
