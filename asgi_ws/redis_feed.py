"""Feed rooms on Redis: one numbering every process agrees on, a history, and delivery in order (contract §8).

Owns the feed's half of the Redis broker: the two scripts, the queue of
messages waiting for a number, and each room's cursor.  It does not own the
connections: :class:`asgi_ws.redis_broker.RedisBroker` connects, subscribes,
reconnects, and hands it the command connection while Redis is up.

Theory of operation
-------------------
- Each feed room has two keys in one Redis Cluster hash slot (the ``{feed:room}``
  hash tag): a hash ``asgi-ws:{feed:room}:meta`` with the room's ``epoch`` and
  newest offset ``top``, and a Stream ``asgi-ws:{feed:room}:log`` whose entry
  ids are the offsets (``42-0``), trimmed to ``history_size`` entries with
  ``MAXLEN`` and expiring ``history_ttl`` after the room's last message.
- **Numbering.**  One Lua script (:data:`APPEND_SCRIPT`) numbers a message, adds
  it to the Stream and publishes it, atomically: Redis runs one script at a
  time, so two processes publishing into one room, under any servers, get one
  order, and pub/sub hands every subscriber the messages in that order.  A room
  without a ``meta`` starts a new epoch there.
- **Delivery.**  Every process delivers a feed message when it comes back from
  pub/sub, its own included: local clients are not served first, or they could
  see a message before an earlier one from another process.
- **Gaps.**  Each room followed here has a :class:`~asgi_ws.feed.FeedCursor`,
  the last message delivered.  A message after a gap means pub/sub lost some (a
  reconnect): they are read from the Stream and delivered first.  After a
  reconnect, every room is caught up from the Stream at once
  (:meth:`RedisFeed.catch_up`), not at its next message.
- **Outages.**  No feed message is delivered during one, not even locally: its
  number must come from Redis, and a number given here could be given to
  another message by another process.  Messages sent meanwhile wait in a
  bounded queue and are numbered and delivered, in order, once Redis is back.
  A batch whose reply was lost in the outage is sent again, so a plain message
  may appear twice under two offsets; no offset is ever skipped or repeated.
- **Publish ids.**  A message with an id (contract §8.1) has a third key in the
  room's slot, ``asgi-ws:{feed:room}:id:ID``, holding ``"EPOCH OFFSET"`` for
  ``dedupe_window``.  The append script reads it first and, when it is there,
  numbers nothing and returns it: the check and the numbering are one step, on
  any process.  So a batch sent again after an outage numbers its messages
  with ids once, and each sender's ack comes when the script's reply does.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

import anyio
import redis.asyncio as redis

from .broker import topic_to_wire
from .feed import FeedCursor, FeedMessage, Gap, Post, Replay, Since, Step, new_epoch, plan_replay
from .policy import message_size
from .publish_ids import Ack
from .redis_wire import (
    COMMAND_TIMEOUT,
    PUBLISH_BATCH,
    Counts,
    channel,
    feed_keys,
    is_connection_error,
    publish_id_key,
    publish_queue,
    text_of,
)
from .runtime import counted_task
from .settings import DEFAULTS

if TYPE_CHECKING:
    from .broker import Acked, Deliver, Envelope
    from .outbox import Outbox
    from .topics import Topic

__all__ = ["APPEND_SCRIPT", "READ_SCRIPT", "RedisFeed"]

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

# Number a feed message, keep it, and publish it, in one step; with a publish id, only if
# the id is not in the dedupe window (contract §8.1), so that the check and the numbering
# are one step too.  KEYS: meta, log, the id's key (KEYS[3] is unused without an id).
# ARGV: a fresh epoch, ttl in ms, data as a JSON string, node, history_size, channel,
# room as a JSON string, the publish id ('' for none), the dedupe window in ms, and
# the sender ("from", with access tokens) as a JSON string, or '' for none.
# Returns {offset, epoch, 1 if the id was seen before (nothing numbered) else 0}.
APPEND_SCRIPT = (
    """
if ARGV[8] ~= '' then
  local seen = redis.call('GET', KEYS[3])
  if seen then
    local space = string.find(seen, ' ', 1, true)
    return {tonumber(string.sub(seen, space + 1)), string.sub(seen, 1, space - 1), 1}
  end
end
"""
    + _EPOCH
    + """
local offset = redis.call('HINCRBY', KEYS[1], 'top', 1)
local sender = ''
if ARGV[10] ~= '' then
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[5], offset .. '-0', 'd', ARGV[3], 'f', ARGV[10])
  sender = ',"from":' .. ARGV[10]
else
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[5], offset .. '-0', 'd', ARGV[3])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
if ARGV[8] ~= '' then
  redis.call('SET', KEYS[3], epoch .. ' ' .. offset, 'PX', ARGV[9])
end
redis.call('PUBLISH', ARGV[6], '{"v":1,"node":"' .. ARGV[4] .. '","room":' .. ARGV[7] ..
  ',"offset":' .. offset .. ',"epoch":"' .. epoch .. '","data":' .. ARGV[3] .. sender .. '}')
return {offset, epoch, 0}
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


class _Append(NamedTuple):
    """A feed message waiting for the append script."""

    topic: Topic
    post: Post
    acked: Acked | None  # called with the ack once the script has run


class RedisFeed:
    """The feed rooms of one process on Redis.  See the module docstring for the design."""

    def __init__(
        self,
        node: str,
        counts: Counts,
        wanted: set[str],
        history_size: int,
        history_ttl: float,
        dedupe_window: float = DEFAULTS.dedupe_window,
    ) -> None:
        self.node = node  # this process, in every message it appends
        self.counts = counts  # the broker's counters, shared
        self.history_size = history_size  # Stream entries kept per feed room (MAXLEN)
        self.history_ttl = history_ttl  # seconds a feed room's keys outlive its last message
        self.dedupe_window = dedupe_window  # seconds a publish id's key lives (contract §8.1)
        self.client: redis.Redis | None = None  # the command connection while Redis is up; the broker sets it
        self.deliver: Deliver | None = None  # the hub's, while the broker runs
        self._wanted = wanted  # channels of the topics with a member here (the pub/sub half's): rooms to follow
        self._cursors: dict[Topic, FeedCursor] = {}  # feed room -> the last message delivered here
        # Messages to number: kept through an outage, unlike chat.
        self._outgoing: Outbox[_Append] = publish_queue()
        self._retry: deque[_Append] = deque()  # a batch the outage cut off, sent first

    @property
    def held(self) -> int:
        """Messages waiting for a number."""
        return len(self._outgoing) + len(self._retry)

    # What the broker hands on

    def append(self, topic: Topic, post: Post, acked: Acked | None = None) -> None:
        """Queue ``post`` for the append script; it comes back numbered through pub/sub, and ``acked`` is called
        when the script has run (:meth:`asgi_ws.broker.Broker.append`)."""
        if not self._outgoing.offer(_Append(topic, post, acked), message_size(post.data, None)):
            self.counts.dropped += 1

    async def replay(self, topic: Topic, since: Since) -> Replay:
        """The resume from ``since``, read from the Stream; "unavailable" when Redis is away."""
        try:
            epoch, top, kept = await self._read(topic, since.offset + 1, self.history_size, since.epoch)
        except Exception as exc:
            if not is_connection_error(exc) and self.client is not None:
                raise
            cursor = self._cursors.get(topic)
            epoch, top = (cursor.epoch or since.epoch, cursor.offset) if cursor else (since.epoch, since.offset)
            if epoch == since.epoch:  # the client may have seen more, through a process ahead of this one
                top = max(top, since.offset)  # the session counts from top: what the client has is not sent again
            return Replay(epoch, top, (), "unavailable")
        return plan_replay(since, epoch, top, kept)

    async def between(self, topic: Topic, epoch: str, after: int, until: int) -> list[FeedMessage]:
        """The kept messages ``after + 1`` to ``until`` of ``epoch``; none when Redis is away."""
        try:
            _, _, kept = await self._read(topic, after + 1, until - after, epoch)
        except Exception as exc:
            if not is_connection_error(exc) and self.client is not None:
                raise
            return []  # Redis is gone: nothing to fill with; the later message goes out as it is
        return [message for message in kept if message.offset <= until]

    # Delivery in order

    async def deliver_in_order(self, envelope: Envelope) -> None:
        """Deliver a feed message from pub/sub after any this process missed, and never one twice."""
        assert envelope.offset is not None, "only feed envelopes come here"
        assert envelope.epoch is not None
        message = FeedMessage(envelope.offset, envelope.epoch, envelope.text, envelope.sender)
        topic = envelope.topic
        cursor = self._cursors.get(topic)
        if cursor is not None:
            step = cursor.place(message)
            if step is Step.ALREADY_SENT:
                return  # delivered already, from the Stream
            if isinstance(step, Gap) and self.client is not None:
                _, _, missing = await self._read(topic, step.after + 1, step.until - step.after, step.epoch)
                self.counts.filled += len(missing)
                self._deliver_all(topic, missing)
        if envelope.node != self.node:
            self.counts.received += 1
        self._deliver_all(topic, [message])

    def _deliver_all(self, topic: Topic, messages: Iterable[FeedMessage]) -> None:
        """Hand ``messages`` to the hub, but those delivered already; a room with a member here is followed."""
        assert self.deliver is not None
        cursor = self._cursors.get(topic)
        if cursor is None and channel(topic) in self._wanted:
            cursor = self._cursors[topic] = FeedCursor()
        for message in messages:
            if cursor is not None:
                if cursor.place(message) is Step.ALREADY_SENT:
                    continue
                cursor.passed(message)
            self.deliver(topic, message)

    async def follow(self, client: redis.Redis, topics: Iterable[Topic]) -> None:
        """Before subscribing to feed rooms, note each one's newest offset: nothing after it can then go missing.

        A message published between this read and the subscription is filled
        from the Stream when the next one arrives, or by :meth:`catch_up`.
        """
        for topic in topics:
            if topic.kind == "feed" and topic not in self._cursors:
                epoch, top, _ = await self._read(topic, 1, 0, "", client)
                self._cursors[topic] = FeedCursor(epoch, top)

    def forget(self, topics: Iterable[Topic]) -> None:
        """No member here follows ``topics`` any more: drop their cursors."""
        for topic in topics:
            self._cursors.pop(topic, None)

    def forget_all_but(self, topics: set[Topic]) -> None:
        """Drop the cursors of rooms not in ``topics``: their members left while Redis was away."""
        self.forget(set(self._cursors) - topics)

    async def catch_up(self, client: redis.Redis) -> None:
        """After a reconnect, deliver what every feed room here missed while this process was away."""
        for topic, cursor in list(self._cursors.items()):
            epoch = cursor.epoch or ""
            current, _, missing = await self._read(topic, cursor.offset + 1, self.history_size, epoch, client)
            if current != epoch:  # a new history (Redis lost the old one): all of it is new here
                _, _, missing = await self._read(topic, 1, self.history_size, current, client)
            self.counts.filled += len(missing)
            self._deliver_all(topic, missing)

    # Numbering

    @counted_task
    async def publish_appends(self, client: redis.Redis, subscribed: Callable[[set[Topic]], Awaitable[None]]) -> None:
        """Number, keep and publish the queued feed messages, in order, in pipelined batches.

        A batch cut off by an outage is kept and sent first after the
        reconnect: it may have run before the connection broke, so it may run
        twice.  That is the price of losing nothing: the same text under two
        offsets, never an offset skipped or given twice.  When Redis answers
        but refuses some appends (out of memory, a key of another type), only
        those are kept and sent again: the others were numbered and published.
        """
        script = client.register_script(APPEND_SCRIPT)
        retry = self._retry
        while True:
            if not retry:
                retry.append((await self._outgoing.get())[0])
                while len(self._outgoing) and len(retry) < PUBLISH_BATCH:
                    retry.append((await self._outgoing.get())[0])
            # A member of this process sent it, so this process wants the room: number it only once
            # the process is subscribed to the room, or pub/sub could never bring it back here, and
            # the room's cursor, read before subscribing, would already count it as delivered.
            await subscribed({item.topic for item in retry})
            pipe = client.pipeline(transaction=False)
            for item in retry:
                meta, log = feed_keys(item.topic)
                post, publish_id = item.post, item.post.publish_id or ""
                data, room = json.dumps(post.data), json.dumps(topic_to_wire(item.topic))
                args: list[str | int] = [new_epoch(), self._ttl_ms, data, self.node, self.history_size]
                args += [channel(item.topic), room, publish_id, self._window_ms]
                args += ["" if post.sender is None else json.dumps(post.sender)]
                keys = [meta, log, publish_id_key(item.topic, publish_id)]
                await script(keys=keys, args=args, client=pipe)
            with anyio.fail_after(COMMAND_TIMEOUT):
                results = await pipe.execute(raise_on_error=False)
            refused = []
            for item, result in zip(retry, results, strict=True):
                if isinstance(result, Exception):
                    refused.append((item, result))
                    continue
                offset, epoch, seen = result
                self.counts.published += not seen
                self.counts.duplicates += seen
                if item.acked is not None and item.post.publish_id is not None:
                    item.acked(Ack(item.post.publish_id, text_of(epoch), int(offset)))
            retry.clear()
            if refused:
                retry.extend(item for item, _ in refused)
                raise refused[0][1]  # the broker's supervisor logs it and tries again after its backoff

    # Reading

    @property
    def _ttl_ms(self) -> int:
        """``history_ttl`` for PEXPIRE, never 0, which would delete the keys at once."""
        return max(1, int(self.history_ttl * 1000))

    @property
    def _window_ms(self) -> int:
        """``dedupe_window`` for SET PX, never 0, which Redis refuses."""
        return max(1, int(self.dedupe_window * 1000))

    async def _read(
        self, topic: Topic, first: int, count: int, epoch: str, client: redis.Redis | None = None
    ) -> tuple[str, int, list[FeedMessage]]:
        """The room's epoch and top, and up to ``count`` kept messages from offset ``first`` if in ``epoch``."""
        client = client or self.client
        if client is None:
            raise ConnectionError("not connected to Redis")
        meta, log = feed_keys(topic)
        with anyio.fail_after(COMMAND_TIMEOUT):
            args = (new_epoch(), self._ttl_ms, first, max(count, 1), epoch)
            result = await client.eval(READ_SCRIPT, 2, meta, log, *args)
        current, top, entries = text_of(result[0]), int(result[1]), result[2]
        return current, top, [_stream_message(entry, current) for entry in entries]


def _stream_message(entry: Any, epoch: str) -> FeedMessage:
    """A Stream entry, ``(b"42-0", [b"d", b'"text"'])``, as the feed message it keeps.

    With access tokens the entry also has the sender: ``[b"d", b'"text"', b"f", b'"alice"']``.
    """
    entry_id, fields = entry
    sender = json.loads(fields[3]) if len(fields) >= 4 else None
    return FeedMessage(int(text_of(entry_id).partition("-")[0]), epoch, json.loads(fields[1]), sender)
