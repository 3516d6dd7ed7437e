"""The Redis broker: rooms and broadcast across processes and servers (contract §4), and its connection.

Owns the connection to Redis and the :class:`asgi_ws.broker.Broker` interface.
The work on that connection is done by two halves, each in its own module:

- :class:`asgi_ws.redis_pubsub.RedisPubSub`: chat and broadcast, through one
  subscriber connection and one publish connection, at most once, as Redis
  pub/sub is: a message published while a process is disconnected from Redis
  never reaches that process;
- :class:`asgi_ws.redis_feed.RedisFeed`: feed rooms (contract §8), numbered
  by a script so that every process agrees on one order, kept in a Stream, and
  delivered in order with no gap.  A resume made during an outage waits for
  Redis (up to :data:`RESUME_WAIT`) before it answers ``unavailable``.

Names, limits and the counters both share are in :mod:`asgi_ws.redis_wire`.

Theory of operation
-------------------
One supervisor task owns the connections, and the broker is in one
:class:`Link` state, which only the supervisor moves.  It connects, has the
two halves subscribe and catch up, goes ``up`` and runs their tasks until one
fails.  When Redis goes away the broker goes ``down`` (``/healthz`` turns
``degraded``), drops what cannot be published, and reconnects with
exponential backoff from 1 s to 30 s.  After a reconnect it counts one
reconnect.  Local delivery never depends on Redis, so chat inside one process
goes on throughout.  An unexpected exception in the supervisor's tasks is a
bug: it is logged with its traceback, shown in ``/healthz`` as
``last_error``, and the supervisor starts over rather than dying silently.

redis-py's client is asyncio-only, so this broker refuses to start on any other
event loop (hypercorn's trio worker) with :class:`~asgi_ws.broker.BrokerError`.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .broker import Acked, BrokerError, Deliver, new_node_id, redact
from .feed import FeedMessage, Post, Replay, Since
from .logs import log_event
from .redis_feed import RedisFeed
from .redis_presence import RedisPresence
from .redis_pubsub import RedisPubSub
from .redis_wire import COMMAND_TIMEOUT, Counts, describe, is_connection_error
from .runtime import counted_task
from .settings import DEFAULTS
from .topics import Topic

__all__ = ["Link", "RedisBroker", "next_backoff"]

logger = logging.getLogger(__name__)

MIN_BACKOFF = 1.0  # seconds before the first reconnect attempt (contract §4)
MAX_BACKOFF = 30.0  # the cap of the doubling delay (contract §4)
CONNECT_TIMEOUT = 2.0  # one attempt to reach Redis; startup never waits longer than this
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
        dedupe_window: float = DEFAULTS.dedupe_window,
        presence_ttl: float = DEFAULTS.presence_ttl,
    ) -> None:
        self.url = url  # redis://host:port/db, as configured
        self.node = node or new_node_id()  # this process, in every envelope it publishes
        self.link = Link.STOPPED  # where the broker stands with Redis; see _enter
        self.counts = Counts()  # what it has done, for /healthz; shared with both halves
        self.last_error: str | None = None  # why the last connection ended, for /healthz
        wanted: set[str] = set()  # channels of the topics with a member here: both halves follow them
        self.feed = RedisFeed(self.node, self.counts, wanted, history_size, history_ttl, dedupe_window)  # feed rooms
        self.presence = RedisPresence(self.node, presence_ttl)  # who is in the rooms on other processes
        self.pubsub = RedisPubSub(self.node, self.counts, self.feed, self.presence, wanted)  # chat and broadcast
        self._min_backoff = min_backoff  # seconds before the first reconnect attempt
        self._resume_wait = resume_wait  # seconds a resume waits for Redis to come back
        self._up: anyio.Event | None = None  # set while up, for resumes to wait on; a new one each time it goes down

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
        self.pubsub.deliver = self.feed.deliver = self.presence.deliver = deliver
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
        self.pubsub.subscribe(topic)

    def unsubscribe(self, topic: Topic) -> None:
        self.pubsub.unsubscribe(topic)

    def publish(self, topic: Topic, text: str) -> None:
        if self.link is Link.UP:
            self.pubsub.publish(topic, text)
        else:
            self.counts.dropped += 1  # at most once: never queued for after an outage

    def append(self, topic: Topic, post: Post, acked: Acked | None = None) -> None:
        """Queue ``post`` for numbering; it comes back numbered through pub/sub (:mod:`asgi_ws.redis_feed`)."""
        self.feed.append(topic, post, acked)

    async def replay(self, topic: Topic, since: Since) -> Replay:
        if self.link is Link.DOWN and self._up is not None:
            with anyio.move_on_after(self._resume_wait):
                await self._up.wait()  # an outage: give Redis a chance to come back first
        return await self.feed.replay(topic, since)

    async def between(self, topic: Topic, epoch: str, after: int, until: int) -> list[FeedMessage]:
        return await self.feed.between(topic, epoch, after, until)

    def joined(self, topic: Topic, subject: str) -> None:
        self.presence.joined(topic, subject)

    def left(self, topic: Topic, subject: str) -> None:
        self.presence.left(topic, subject)

    def state(self) -> dict[str, Any]:
        counts = self.counts
        return {
            "kind": self.kind,
            "connected": self.link is Link.UP,
            "url": redact(self.url),
            "node": self.node,
            "subscriptions": len(self.pubsub.wanted),
            "reconnects": counts.reconnects,
            "published": counts.published,
            "received": counts.received,
            "dropped": counts.dropped,
            "invalid": counts.invalid,
            "feed_filled": counts.filled,
            "feed_duplicates": counts.duplicates,
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
                self.pubsub.drop_queued()
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
                subscribed = await self.pubsub.subscribe_wanted(client, pubsub)
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
                tasks.start_soon(self.pubsub.keep_subscriptions, client, pubsub)
                tasks.start_soon(self.pubsub.publish_queued, client)
                tasks.start_soon(self.feed.publish_appends, client, self.pubsub.until_subscribed)
                tasks.start_soon(self.presence.run, client)
                await self.pubsub.listen(pubsub)
        finally:
            self.feed.client = None  # no read may start on a connection about to close
            # Close both connections even when the app is shutting down (cancelled).
            with anyio.CancelScope(shield=True), anyio.move_on_after(CONNECT_TIMEOUT):
                await pubsub.aclose()
                await client.aclose()


def next_backoff(delay: float) -> float:
    """The wait after ``delay``: doubled, up to MAX_BACKOFF (1, 2, 4, 8, 16, 30, 30 ... s)."""
    return min(delay * 2, MAX_BACKOFF)
