"""Presence across processes on Redis: who is in a room on the other processes (contract §8.2).

Owns the presence half of the Redis broker.  The hub keeps its own members
(:class:`asgi_ws.presence.Roster`) and tells this module when a subject gets
its first connection in a room here and loses its last; this module tells the
hub, room by room, which subjects the *other* processes have there.  Whether
that makes a join or a leave for the room's watchers is the hub's to work out.

Theory of operation
-------------------
- **One sorted set per room**, ``asgi-ws:{chat:room}:presence`` (in the room's
  hash slot), whose entries are ``"NODE SUBJECT"`` for every subject with a
  connection on process ``NODE``, scored with the time, in Redis's clock, at
  which the entry expires.
- **Refresh and read** (:data:`REFRESH_SCRIPT`), every ``presence_ttl / 3``
  seconds for each room with a member here, and at once for a room that just
  got its first one: one script writes this process's entries with a new
  expiry, ``presence_ttl * 2 / 3`` ahead, removes this process's entries for
  subjects that have left, drops every expired entry, and returns the rest.
  What other processes have is then exactly what that read says.
- **A process that dies** stops refreshing.  Its entries expire at most
  ``2/3`` of ``presence_ttl`` after its last refresh, and the other processes'
  next read, at most ``1/3`` later, no longer has them: its members leave
  within ``presence_ttl``, however it died.
- **Joins and leaves are also published** on the room's channel as they
  happen, so that other processes tell their watchers at once rather than at
  their next read.  Pub/sub may lose one in an outage; the next read puts the
  view right.
- **During an outage** nothing is written or read.  Other processes' views
  keep what they had until the entries expire; after the reconnect the first
  refresh writes this process's members as they are then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import anyio

from .broker import encode_presence
from .redis_wire import COMMAND_TIMEOUT, channel, presence_key, text_of
from .runtime import counted_task

if TYPE_CHECKING:
    import redis.asyncio as redis

    from .broker import Envelope
    from .topics import Topic

__all__ = ["REFRESH_SCRIPT", "RedisPresence"]

logger = logging.getLogger(__name__)

# KEYS: the room's presence set.  ARGV: ttl in ms, this node, then its subjects in the room.
# Returns every entry left, "NODE SUBJECT", this node's included.
REFRESH_SCRIPT = """
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
local expires = now + math.floor(tonumber(ARGV[1]) * 2 / 3)
local mine = {}
for i = 3, #ARGV do
  local entry = ARGV[2] .. ' ' .. ARGV[i]
  mine[entry] = true
  redis.call('ZADD', KEYS[1], expires, entry)
end
local prefix = ARGV[2] .. ' '
for _, entry in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.sub(entry, 1, #prefix) == prefix and not mine[entry] then
    redis.call('ZREM', KEYS[1], entry)
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""

Remote = Callable[["Topic", frozenset[str]], None]
"""How the presence half tells the hub which subjects the other processes have in a room."""


class RedisPresence:
    """The presence half of one process's Redis broker.  See the module docstring for the design."""

    def __init__(self, node: str, ttl: float) -> None:
        self.node = node  # this process: the NODE of its entries
        self.ttl = ttl  # seconds within which a dead process's members leave
        self.deliver: Remote | None = None  # the hub's, while the broker runs
        self._local: dict[Topic, set[str]] = {}  # rooms with a member here -> its subjects; non-empty only
        self._remote: dict[Topic, dict[str, set[str]]] = {}  # room -> another node -> its subjects there
        self._due: set[Topic] = set()  # rooms to refresh and read at once (a first member, a reconnect)
        self._events: list[tuple[Topic, Literal["join", "leave"], str]] = []  # to publish, oldest first
        self._wake = anyio.Event()  # set when there is something to do before the next round
        # Rooms being read -> the events that came meanwhile, to apply on top of what the read returns:
        # the read may have run before them, and a stale read must not undo a join (and then redo it).
        self._reading: dict[Topic, list[Envelope]] = {}

    # What the hub hands on

    def joined(self, topic: Topic, subject: str) -> None:
        """``subject`` has its first connection in ``topic`` here."""
        subjects = self._local.setdefault(topic, set())
        if not subjects:
            self._due.add(topic)  # a room new here: read who else is in it now
        subjects.add(subject)
        self._events.append((topic, "join", subject))
        self._wake.set()

    def left(self, topic: Topic, subject: str) -> None:
        """``subject`` has lost its last connection in ``topic`` here."""
        subjects = self._local.get(topic)
        if subjects is not None:
            subjects.discard(subject)
            if not subjects:
                del self._local[topic]
                self._remote.pop(topic, None)  # no member here: nobody to tell
        self._events.append((topic, "leave", subject))
        self._wake.set()

    # What other processes say

    def on_event(self, envelope: Envelope) -> None:
        """A join or leave another process published: update its entry in the room's view."""
        if envelope.node == self.node or envelope.topic not in self._local:
            return
        if envelope.topic in self._reading:
            self._reading[envelope.topic].append(envelope)
        _apply(self._remote.setdefault(envelope.topic, {}), envelope)
        self._tell(envelope.topic)

    def _tell(self, topic: Topic) -> None:
        assert self.deliver is not None
        nodes = self._remote.get(topic, {})
        self.deliver(topic, frozenset(subject for subjects in nodes.values() for subject in subjects))

    # The task

    @counted_task
    async def run(self, client: redis.Redis) -> None:
        """Publish joins and leaves as they come, and refresh and read every room each ``ttl / 3``."""
        script = client.register_script(REFRESH_SCRIPT)
        self._due.update(self._local)  # a new connection: write this process's members as they are now
        self._events.clear()  # those of the outage are stale; the refresh says what is true
        next_round = anyio.current_time()
        while True:
            with anyio.move_on_after(max(0.0, next_round - anyio.current_time())):
                await self._wake.wait()
            self._wake = anyio.Event()
            if anyio.current_time() >= next_round:
                self._due.update(self._local)
                next_round = anyio.current_time() + self.ttl / 3
            # Entries first, then the events that announce them: a process that reads the room on hearing
            # of a join finds the entry there.
            due, self._due = self._due, set()
            for topic in due:
                if topic in self._local:
                    await self._refresh(script, topic)
            await self._publish_events(client)

    async def _publish_events(self, client: redis.Redis) -> None:
        events, self._events = self._events, []
        if not events:
            return
        pipe = client.pipeline(transaction=False)
        for topic, change, subject in events:
            if change == "leave":  # the next refresh would remove it too; at once, others' reads agree sooner
                pipe.zrem(presence_key(topic), f"{self.node} {subject}")
            pipe.publish(channel(topic), encode_presence(self.node, topic, change, subject))
        with anyio.fail_after(COMMAND_TIMEOUT):
            await pipe.execute()

    async def _refresh(self, script: Any, topic: Topic) -> None:
        ttl_ms = max(3, int(self.ttl * 1000))
        self._reading[topic] = []
        try:
            with anyio.fail_after(COMMAND_TIMEOUT):
                entries = await script(keys=[presence_key(topic)], args=[ttl_ms, self.node, *self._local[topic]])
        finally:
            meanwhile = self._reading.pop(topic)
        nodes: dict[str, set[str]] = {}
        for raw in entries:
            node, _, subject = text_of(raw).partition(" ")
            if node != self.node:
                nodes.setdefault(node, set()).add(subject)
        for envelope in meanwhile:  # idempotent for the events the read already saw
            _apply(nodes, envelope)
        if topic in self._local and nodes != self._remote.get(topic, {}):
            self._remote[topic] = nodes
            self._tell(topic)


def _apply(nodes: dict[str, set[str]], envelope: Envelope) -> None:
    """A join or leave event on a room's view: node -> its subjects."""
    subjects = nodes.setdefault(envelope.node, set())
    if envelope.presence == "join":
        subjects.add(envelope.text)
    else:
        subjects.discard(envelope.text)
        if not subjects:
            del nodes[envelope.node]
