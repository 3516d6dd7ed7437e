"""Presence across processes through a real Redis (contract §8.2): joins, leaves, and a process that dies.

Each test runs two brokers, ``a`` and ``b``, as two processes would, on a
real ``redis-server`` the test starts.  ``b`` has a member in the room, so it
follows it, and records every set of subjects it is told the other processes
have there.  The room's watchers and the events they get are the hub's
(``tests/test_presence.py``); this is what the hub is told.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
import redis

from asgi_ws.broker import decode_envelope, encode_presence
from asgi_ws.redis_broker import RedisBroker
from asgi_ws.redis_wire import presence_key
from asgi_ws.topics import Topic, chat_room, feed_room
from conformance.redis_server import RedisServer
from tests.test_redis_broker import eventually

pytestmark = pytest.mark.anyio

ROOM = chat_room("presence")
TTL = 1.5  # seconds: short, so that a dead process's members leave within the test


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis-py's client is asyncio-only


class Seen:
    """What a broker tells its hub about presence: each room's latest set of remote subjects."""

    def __init__(self) -> None:
        self.latest: dict[Topic, frozenset[str]] = {}

    def __call__(self, topic: Topic, item: object) -> None:
        if isinstance(item, frozenset):
            self.latest[topic] = item

    def of(self, topic: Topic = ROOM) -> frozenset[str]:
        return self.latest.get(topic, frozenset())


@asynccontextmanager
async def broker(server: RedisServer, seen: Seen) -> AsyncIterator[RedisBroker]:
    running = RedisBroker(server.url, presence_ttl=TTL)
    async with running.running(seen):
        yield running


async def test_the_other_processes_members_come_and_go(redis_server: RedisServer) -> None:
    a_seen, b_seen = Seen(), Seen()
    async with broker(redis_server, a_seen) as a, broker(redis_server, b_seen) as b:
        a.subscribe(ROOM)
        b.subscribe(ROOM)
        b.joined(ROOM, "bob")
        a.joined(ROOM, "alice")
        await eventually(lambda: b_seen.of() == {"alice"} and a_seen.of() == {"bob"}, "each to see the other")
        a.joined(ROOM, "carol")
        await eventually(lambda: b_seen.of() == {"alice", "carol"}, "carol, on a")
        a.left(ROOM, "carol")
        await eventually(lambda: b_seen.of() == {"alice"}, "carol gone")
        b.joined(ROOM, "alice")  # alice on both: each process still sees her on the other
        await eventually(lambda: a_seen.of() == {"bob", "alice"}, "alice on b too")
        other = feed_room("presence")  # a feed room of the same name is another room
        b.joined(other, "dave")
        await anyio.sleep(TTL)  # a full round of refreshes
        assert "dave" not in a_seen.of()


async def test_a_process_that_dies_leaves_no_ghosts_after_the_ttl(redis_server: RedisServer) -> None:
    b_seen = Seen()
    async with broker(redis_server, b_seen) as b:
        b.subscribe(ROOM)
        b.joined(ROOM, "bob")
        async with broker(redis_server, Seen()) as a:
            a.joined(ROOM, "alice")
            await eventually(lambda: b_seen.of() == {"alice"}, "alice, on a")
        # a stops as a killed process would: its tasks end, nothing says alice left.
        died = time.monotonic()
        await eventually(lambda: b_seen.of() == frozenset(), "alice's entry to expire")
        took = time.monotonic() - died
        print(f"presence: a process gone, its member left the other's view after {took:.2f} s (ttl {TTL} s)")


async def test_this_process_s_entries_follow_its_members_and_expire(redis_server: RedisServer) -> None:
    async with broker(redis_server, Seen()) as a:
        a.joined(ROOM, "alice")
        a.joined(ROOM, "with space")  # a subject is any string; the node comes before the first space
        with redis.Redis(host="127.0.0.1", port=redis_server.port) as client:
            await eventually(lambda: len(client.zrange(presence_key(ROOM), 0, -1)) == 2, "both entries")
            entries = sorted(entry.decode() for entry in client.zrange(presence_key(ROOM), 0, -1))
            assert entries == [f"{a.node} alice", f"{a.node} with space"]
            assert 0 < client.pttl(presence_key(ROOM)) <= TTL * 1000
            a.left(ROOM, "alice")
            await eventually(lambda: len(client.zrange(presence_key(ROOM), 0, -1)) == 1, "alice's entry gone")


def test_a_presence_envelope_round_trips_and_bad_ones_are_dropped() -> None:
    envelope = decode_envelope(encode_presence("n1", ROOM, "join", "alice"))
    assert envelope is not None
    assert (envelope.node, envelope.topic, envelope.presence, envelope.text) == ("n1", ROOM, "join", "alice")
    assert decode_envelope(b'{"v":1,"node":"n","room":"chat:r","presence":"dance","subject":"x"}') is None
    assert decode_envelope(b'{"v":1,"node":"n","room":"chat:r","presence":"join","subject":5}') is None
    assert decode_envelope(b'{"v":1,"node":"n","room":"broadcast","presence":"join","subject":"x"}') is None
