"""asgi_ws.redis_broker against a real redis-server (contract §4): delivery, dedup, outages.

Two brokers in one event loop stand for two processes: each has its own node
id, its own connections and its own ``deliver`` callback, as two worker
processes would.  Redis is a real ``redis-server`` (the ``redis_server``
fixture), which the outage tests kill and start again on the same port.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
import redis

import asgi_ws.redis_feed
from asgi_ws.app import App, create_app
from asgi_ws.broker import BrokerError, encode_envelope, topic_to_wire
from asgi_ws.feed import FeedMessage, Post, Replay, Since, new_epoch
from asgi_ws.http import health
from asgi_ws.publish_ids import Ack
from asgi_ws.redis_broker import MIN_BACKOFF, Link, RedisBroker, next_backoff
from asgi_ws.redis_feed import APPEND_SCRIPT
from asgi_ws.redis_wire import PUBLISH_QUEUE, PUBLISH_QUEUE_BYTES, channel, feed_keys, publish_id_key
from asgi_ws.settings import Settings
from asgi_ws.topics import BROADCAST, Topic, chat_room, feed_room
from conformance.redis_server import RedisServer

pytestmark = pytest.mark.anyio

PATIENCE = 30.0  # seconds any one wait may take; generous, so that only a broken broker times out
FAST_BACKOFF = 0.1  # seconds before the first retry, so that the outage tests do not wait 1 s per attempt
ROOM = chat_room("r")


@pytest.fixture
def anyio_backend() -> str:
    """redis-py's client is asyncio-only (the trio case is tested on its own below)."""
    return "asyncio"


class Inbox:
    """The ``deliver`` callback of one broker: what the hub of that "process" was handed."""

    def __init__(self) -> None:
        self.messages: list[tuple[Topic, str]] = []

    def __call__(self, topic: Topic, text: str) -> None:
        self.messages.append((topic, text))

    def texts(self, topic: Topic = ROOM) -> list[str]:
        return [text for got, text in self.messages if got == topic]


async def eventually(condition: Callable[[], bool], what: str) -> None:
    """Wait until ``condition()`` holds; fail saying ``what`` was awaited if PATIENCE runs out."""
    deadline = anyio.current_time() + PATIENCE
    while True:  # polling: these conditions are other processes' state, with no event to wait on
        if condition():
            return
        if anyio.current_time() > deadline:
            raise AssertionError(f"still waiting after {PATIENCE} s for {what}")
        await anyio.sleep(0.02)


def subscribers(server: RedisServer, topic: Topic) -> int:
    """How many connections (processes, workers) Redis has subscribed to ``topic``'s channel."""
    return server.subscribers(channel(topic))


@asynccontextmanager
async def running(broker: RedisBroker, inbox: Inbox) -> AsyncIterator[RedisBroker]:
    async with broker.running(inbox):
        yield broker


async def test_a_message_reaches_the_other_process_once_and_never_comes_back(redis_server: RedisServer) -> None:
    a_inbox, b_inbox = Inbox(), Inbox()
    async with (
        running(RedisBroker(redis_server.url), a_inbox) as a,
        running(RedisBroker(redis_server.url), b_inbox) as b,
    ):
        assert a.connected
        assert b.connected
        assert a.node != b.node
        a.subscribe(ROOM)
        b.subscribe(ROOM)
        await eventually(lambda: subscribers(redis_server, ROOM) == 2, "both subscriptions")
        sent = [f"m{number}" for number in range(200)]
        for text in sent:
            a.publish(ROOM, text)
        await eventually(lambda: len(b_inbox.texts()) == len(sent), "every message at b")
        assert b_inbox.texts() == sent  # in order, none twice
        assert a_inbox.messages == []  # a's own messages: its clients were served locally
        await eventually(lambda: a.counts.published == len(sent), "a to count what Redis accepted")
        assert (b.counts.received, a.counts.received, a.counts.dropped) == (200, 0, 0)


async def test_topics_are_separate_channels(redis_server: RedisServer) -> None:
    inbox = Inbox()
    async with running(RedisBroker(redis_server.url), Inbox()) as a, running(RedisBroker(redis_server.url), inbox) as b:
        b.subscribe(BROADCAST)
        await eventually(lambda: subscribers(redis_server, BROADCAST) == 1, "b on the broadcast channel")
        a.publish(ROOM, "to the room nobody on b is in")
        a.publish(BROADCAST, "to everyone")
        await eventually(lambda: inbox.messages != [], "the broadcast at b")
        await anyio.sleep(0.2)
        assert inbox.messages == [(BROADCAST, "to everyone")]


async def test_unsubscribe_leaves_the_channel(redis_server: RedisServer) -> None:
    async with running(RedisBroker(redis_server.url), Inbox()) as broker:
        broker.subscribe(ROOM)
        await eventually(lambda: subscribers(redis_server, ROOM) == 1, "the subscription")
        broker.unsubscribe(ROOM)
        await eventually(lambda: subscribers(redis_server, ROOM) == 0, "the unsubscription")
        assert broker.state()["subscriptions"] == 0


async def test_garbage_on_a_channel_is_counted_and_skipped(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = Inbox()
    async with running(RedisBroker(redis_server.url), inbox) as broker:
        broker.subscribe(ROOM)
        await eventually(lambda: subscribers(redis_server, ROOM) == 1, "the subscription")
        with redis.Redis(host="127.0.0.1", port=redis_server.port) as client:
            client.publish(channel(ROOM), b"\x80\x04pickle")
            client.publish(channel(ROOM), encode_envelope("another-node", ROOM, "valid"))
        await eventually(lambda: inbox.messages != [], "the valid message after the garbage")
        assert inbox.texts() == ["valid"]
        assert broker.counts.invalid == 1
        assert broker.connected
    assert "broker_invalid_message" in caplog.text


async def test_unreachable_redis_at_startup_starts_degraded_without_hanging(redis_server: RedisServer) -> None:
    redis_server.kill()
    broker = RedisBroker(redis_server.url, min_backoff=FAST_BACKOFF)
    with anyio.fail_after(PATIENCE):  # entering must not wait for Redis to come back
        async with running(broker, Inbox()):
            state = broker.state()
            assert state["connected"] is False
            assert "Connection" in state["last_error"]
            broker.publish(ROOM, "lost")
            assert broker.counts.dropped == 1
            redis_server.start()  # Redis arrives later: the broker finds it on its own
            await eventually(lambda: broker.connected, "the first connection")
            assert broker.state()["last_error"] is None


async def test_redis_killed_and_restarted_resubscribes_and_counts_a_reconnect(redis_server: RedisServer) -> None:
    b_inbox = Inbox()
    a = RedisBroker(redis_server.url, min_backoff=FAST_BACKOFF)
    b = RedisBroker(redis_server.url, min_backoff=FAST_BACKOFF)
    async with running(a, Inbox()), running(b, b_inbox):
        b.subscribe(ROOM)
        await eventually(lambda: subscribers(redis_server, ROOM) == 1, "b's subscription")
        a.publish(ROOM, "before")
        await eventually(lambda: b_inbox.texts() == ["before"], "the message before the outage")

        redis_server.kill()
        await eventually(lambda: not a.connected and not b.connected, "both brokers to notice the outage")
        assert b.state()["last_error"]
        a.publish(ROOM, "during")  # at most once: lost, and counted
        assert a.counts.dropped >= 1

        redis_server.start()
        await eventually(lambda: a.connected and b.connected, "both brokers to reconnect")
        assert (a.counts.reconnects, b.counts.reconnects) == (1, 1)
        await eventually(lambda: subscribers(redis_server, ROOM) == 1, "b's subscription, restored")
        a.publish(ROOM, "after")
        await eventually(lambda: b_inbox.texts()[-1:] == ["after"], "the message after the outage")
        assert b_inbox.texts() == ["before", "after"]


async def test_a_bug_in_the_listener_is_logged_shown_and_survived(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing delivery is a bug: it must show in the log (with a traceback) and in health, not kill the broker."""
    received: list[str] = []

    def deliver(topic: Topic, text: str) -> None:
        if text == "boom":
            raise RuntimeError("deliver failed")
        received.append(text)

    a = RedisBroker(redis_server.url)
    b = RedisBroker(redis_server.url, min_backoff=FAST_BACKOFF)
    with caplog.at_level(logging.ERROR, logger="asgi_ws.redis_broker"):
        async with running(a, Inbox()), b.running(deliver):
            b.subscribe(ROOM)
            await eventually(lambda: subscribers(redis_server, ROOM) == 1, "the subscription")
            a.publish(ROOM, "boom")
            await eventually(lambda: b.state()["last_error"] == "RuntimeError: deliver failed", "the bug in health")
            await eventually(lambda: b.connected and subscribers(redis_server, ROOM) == 1, "the restart")
            assert b.state()["supervisor"] == "running"
            a.publish(ROOM, "still works")
            await eventually(lambda: received == ["still works"], "delivery after the restart")
    assert "redis broker failed unexpectedly" in caplog.text
    assert "RuntimeError: deliver failed" in caplog.text  # the traceback


async def test_stopping_closes_the_connections(redis_server: RedisServer) -> None:
    broker = RedisBroker(redis_server.url)
    async with running(broker, Inbox()):
        broker.subscribe(ROOM)
        await eventually(lambda: subscribers(redis_server, ROOM) == 1, "the subscription")
    assert broker.state()["connected"] is False
    assert broker.state()["supervisor"] == "stopped"
    assert subscribers(redis_server, ROOM) == 0
    with redis.Redis(host="127.0.0.1", port=redis_server.port) as client:
        await eventually(lambda: len(client.client_list()) == 1, "only this client left")


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_under_trio_it_refuses_to_start_and_says_why(anyio_backend: str) -> None:
    broker = RedisBroker("redis://127.0.0.1:1/0")
    with pytest.raises(BrokerError, match=r"needs asyncio.*hypercorn -k trio"):
        async with broker.running(Inbox()):
            pass


def test_the_publish_queue_is_bounded_in_bytes_as_well_as_in_messages() -> None:
    # A broker marked connected whose publisher never runs: Redis accepted the connection and then
    # stopped reading, so nothing leaves the queue.  No Redis is needed to fill it.
    broker = RedisBroker("redis://127.0.0.1:1/0")
    broker.link = Link.UP
    largest = "x" * Settings().max_message_size
    envelope = len(encode_envelope(broker.node, ROOM, largest))
    fits = PUBLISH_QUEUE_BYTES // envelope
    for _ in range(fits + 10):
        broker.publish(ROOM, largest)
    assert broker.counts.dropped == 10
    assert fits < PUBLISH_QUEUE  # the byte bound, not the message bound, is what stopped it


def test_backoff_doubles_from_1_s_up_to_30_s() -> None:
    delays = [MIN_BACKOFF]
    for _ in range(7):
        delays.append(next_backoff(delays[-1]))
    assert delays == [1, 2, 4, 8, 16, 30, 30, 30]


async def test_the_app_starts_and_stops_the_broker_in_lifespan(redis_server: RedisServer) -> None:
    app = create_app(Settings(broker=redis_server.url))
    sent = await run_lifespan(app, until_started=lambda: health(app.hub)["broker"]["connected"])
    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]
    assert health(app.hub)["status"] == "degraded"  # stopped: no longer connected
    assert app.hub.broker.state()["supervisor"] == "stopped"


async def test_the_app_starts_degraded_when_redis_is_down(redis_server: RedisServer) -> None:
    redis_server.kill()
    app = create_app(Settings(broker=redis_server.url))
    states: list[dict[str, Any]] = []
    sent = await run_lifespan(app, until_started=lambda: bool(states.append(health(app.hub))) or True)
    assert sent[0] == {"type": "lifespan.startup.complete"}
    assert states[0]["status"] == "degraded"
    assert states[0]["broker"]["connected"] is False


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_under_trio_the_app_fails_startup_with_the_reason(anyio_backend: str) -> None:
    app = create_app(Settings(broker="redis://127.0.0.1:1/0"))
    sent = await run_lifespan(app, until_started=lambda: True)
    assert len(sent) == 1
    assert sent[0]["type"] == "lifespan.startup.failed"
    assert "needs asyncio" in sent[0]["message"]


async def run_lifespan(app: App, until_started: Callable[[], bool]) -> list[dict[str, Any]]:
    """Drive the lifespan scope: startup, wait until ``until_started()``, shutdown.  The events sent."""
    sent: list[dict[str, Any]] = []
    started = anyio.Event()
    shutdown = anyio.Event()

    async def receive() -> dict[str, Any]:
        if not started.is_set():
            started.set()
            return {"type": "lifespan.startup"}
        await shutdown.wait()
        return {"type": "lifespan.shutdown"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(app, {"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
        await eventually(lambda: bool(sent), "the answer to lifespan.startup")
        if sent[0]["type"] == "lifespan.startup.complete":
            await eventually(until_started, "the started app")
        shutdown.set()
    return sent


# Feed rooms: one order for every process, gaps filled from the Stream, nothing lost in an outage

FEED = feed_room("f")


class FeedInbox:
    """The ``deliver`` callback of one broker for a feed room: the numbered messages its hub was handed."""

    def __init__(self) -> None:
        self.messages: list[FeedMessage] = []

    def __call__(self, topic: Topic, item: str | FeedMessage) -> None:
        assert topic == FEED
        assert isinstance(item, FeedMessage), item
        self.messages.append(item)

    def offsets(self) -> list[int]:
        return [message.offset for message in self.messages]

    def data(self) -> list[str]:
        return [json.loads(message.text)["data"] for message in self.messages]


def append_unseen(server: RedisServer, topic: Topic, text: str, channel_name: str = "asgi-ws:nobody") -> int:
    """Run the append script as another process would, publishing on a channel nobody listens to.

    The message is numbered and kept in the Stream, but pub/sub never brings
    it to any broker: a lost pub/sub message.
    """
    with redis.Redis(host="127.0.0.1", port=server.port) as client:
        offset, _, _ = client.eval(*append_script_call(topic, text, channel_name))
        return int(offset)


def append_script_call(topic: Topic, text: str, channel_name: str, publish_id: str = "") -> list[str | int]:
    """EVAL's arguments for the append script as the broker gives them, from "another-node"."""
    meta, log = feed_keys(topic)
    args = [new_epoch(), 300_000, json.dumps(text), "another-node", 1000, channel_name]
    args += [json.dumps(topic_to_wire(topic)), publish_id, 120_000, ""]
    return [APPEND_SCRIPT, 3, meta, log, publish_id_key(topic, publish_id), *args]


async def subscribed(broker: RedisBroker, server: RedisServer, count: int = 1) -> None:
    broker.subscribe(FEED)
    await eventually(lambda: subscribers(server, FEED) >= count, "the feed subscription")


@asynccontextmanager
async def following(server: RedisServer, **options: Any) -> AsyncIterator[tuple[RedisBroker, FeedInbox]]:
    """A broker made with ``options``, running, subscribed to FEED, handing what it delivers to a fresh inbox."""
    inbox = FeedInbox()
    broker = RedisBroker(server.url, **options)
    async with running(broker, inbox):  # type: ignore[arg-type]
        await subscribed(broker, server)
        yield broker, inbox


async def test_two_processes_appending_into_one_feed_room_see_one_order(redis_server: RedisServer) -> None:
    a_inbox, b_inbox = FeedInbox(), FeedInbox()
    async with (
        running(RedisBroker(redis_server.url), a_inbox) as a,  # type: ignore[arg-type]
        running(RedisBroker(redis_server.url), b_inbox) as b,  # type: ignore[arg-type]
    ):
        a.subscribe(FEED)
        await subscribed(b, redis_server, 2)
        for number in range(300):
            assert a.append(FEED, Post(f"a{number}")) is None  # numbered by Redis, delivered through pub/sub
            b.append(FEED, Post(f"b{number}"))
        await eventually(lambda: len(a_inbox.messages) == len(b_inbox.messages) == 600, "all 600 at both")
        assert a_inbox.offsets() == list(range(1, 601))
        assert [m.text for m in a_inbox.messages] == [m.text for m in b_inbox.messages]
        assert len({message.epoch for message in a_inbox.messages}) == 1
        data = a_inbox.data()
        assert [text for text in data if text[0] == "a"] == [f"a{number}" for number in range(300)]
        assert [text for text in data if text[0] == "b"] == [f"b{number}" for number in range(300)]
        assert (a.counts.received, b.counts.received, a.counts.filled, b.counts.filled) == (300, 300, 0, 0)
        await eventually(lambda: a.counts.published == b.counts.published == 300, "both to count their appends")


async def test_a_feed_message_pub_sub_never_delivered_is_filled_from_the_stream(redis_server: RedisServer) -> None:
    async with following(redis_server) as (broker, inbox):
        broker.append(FEED, Post("first"))
        await eventually(lambda: inbox.offsets() == [1], "the first message")
        assert append_unseen(redis_server, FEED, "lost on pub/sub") == 2
        assert append_unseen(redis_server, FEED, "lost too") == 3
        await anyio.sleep(0.2)
        assert inbox.offsets() == [1]  # nothing came through pub/sub
        broker.append(FEED, Post("fourth"))
        await eventually(lambda: len(inbox.messages) == 4, "the fourth message, and the two before it")
        assert inbox.offsets() == [1, 2, 3, 4]
        assert inbox.data() == ["first", "lost on pub/sub", "lost too", "fourth"]
        assert broker.counts.filled == 2
        assert broker.state()["feed_filled"] == 2


async def test_a_numbered_envelope_from_afar_is_delivered_after_the_gap_before_it(redis_server: RedisServer) -> None:
    async with following(redis_server) as (broker, inbox):
        broker.append(FEED, Post("first"))
        await eventually(lambda: inbox.offsets() == [1], "the first message")
        epoch = inbox.messages[0].epoch
        append_unseen(redis_server, FEED, "second")
        append_unseen(redis_server, FEED, "third")
        envelope = {"v": 1, "node": "n2", "room": "feed:f", "offset": 3, "epoch": epoch, "data": "third"}
        with redis.Redis(host="127.0.0.1", port=redis_server.port) as client:
            client.publish(channel(FEED), json.dumps(envelope))  # only the later one reaches pub/sub
        await eventually(lambda: len(inbox.messages) == 3, "the third message and the one before it")
        assert inbox.data() == ["first", "second", "third"]
        assert broker.counts.filled == 1


# Publish ids (contract §8.1)


async def test_a_publish_id_seen_by_any_process_is_acked_with_the_first_number_and_not_numbered_again(
    redis_server: RedisServer,
) -> None:
    a_inbox, b_inbox = FeedInbox(), FeedInbox()
    acks: list[Ack] = []
    async with (
        running(RedisBroker(redis_server.url), a_inbox) as a,  # type: ignore[arg-type]
        running(RedisBroker(redis_server.url), b_inbox) as b,  # type: ignore[arg-type]
    ):
        a.subscribe(FEED)
        await subscribed(b, redis_server, 2)
        assert a.append(FEED, Post("once", "m1"), acks.append) is None
        await eventually(lambda: len(acks) == 1, "the first ack")
        b.append(FEED, Post("once", "m1"), acks.append)  # the sender reconnected to another process and resent
        a.append(FEED, Post("once", "m1"), acks.append)  # and again to the first
        b.append(FEED, Post("next", "m2"), acks.append)
        await eventually(lambda: len(acks) == 4, "every ack")
        epoch = acks[0].epoch
        # Each process acks when its own script replies, so the acks of two processes come in either order.
        assert sorted(acks, key=repr) == [Ack("m1", epoch, 1)] * 3 + [Ack("m2", epoch, 2)]
        await eventually(lambda: len(a_inbox.messages) == len(b_inbox.messages) == 2, "both messages at both")
        assert a_inbox.data() == b_inbox.data() == ["once", "next"]
        assert a_inbox.offsets() == [1, 2]
        assert (a.counts.duplicates, b.counts.duplicates) == (1, 1)
        assert (a.counts.published, b.counts.published) == (1, 1)
        assert a.state()["feed_duplicates"] == 1


async def test_the_sender_travels_through_pub_sub_and_the_stream(redis_server: RedisServer) -> None:
    """With access tokens a feed message carries "from" (contract §8.2), live and in a resume."""
    async with following(redis_server) as (broker, inbox):
        broker.append(FEED, Post("signed", sender="alice"))
        broker.append(FEED, Post("anonymous"))
        await eventually(lambda: len(inbox.messages) == 2, "both messages")
        live = [json.loads(message.text) for message in inbox.messages]
        assert [message.get("from") for message in live] == ["alice", None]
        replay = await broker.replay(FEED, Since(inbox.messages[0].epoch, 0))
        assert [message.text for message in replay.messages] == [message.text for message in inbox.messages]


def test_the_append_script_run_twice_for_one_id_numbers_once(redis_server: RedisServer) -> None:
    """What a batch sent again after an outage does: its reply was lost, so it runs a second time."""
    with redis.Redis(host="127.0.0.1", port=redis_server.port) as client:
        first = client.eval(*append_script_call(FEED, "x", "asgi-ws:nobody", publish_id="m1"))
        again = client.eval(*append_script_call(FEED, "x", "asgi-ws:nobody", publish_id="m1"))
        other = client.eval(*append_script_call(FEED, "y", "asgi-ws:nobody", publish_id="m2"))
        _, log = feed_keys(FEED)
        assert first[0] == again[0] == 1
        assert first[1] == again[1]
        assert (first[2], again[2], other[2]) == (0, 1, 0)
        assert other[0] == 2
        assert client.xlen(log) == 2
        window = client.pttl(publish_id_key(FEED, "m1"))
        assert 0 < window <= 120_000  # each id expires on its own after the window


async def test_a_publish_with_an_id_held_through_an_outage_and_resent_meanwhile_is_numbered_once(
    persistent_redis: RedisServer,
) -> None:
    server = persistent_redis
    acks: list[Ack] = []
    async with following(server, min_backoff=FAST_BACKOFF) as (broker, inbox):
        broker.append(FEED, Post("before"))
        await eventually(lambda: inbox.offsets() == [1], "the message before the outage")
        server.kill()
        await eventually(lambda: not broker.connected, "the broker to notice the outage")
        broker.append(FEED, Post("during", "m1"), acks.append)
        broker.append(FEED, Post("during", "m1"), acks.append)  # its sender, reconnected to this process, resent it
        assert broker.state()["feed_held"] == 2
        await anyio.sleep(0.3)
        assert acks == []  # no number yet: Redis gives them
        server.start()
        await eventually(lambda: len(acks) == 2, "both acks")
        assert acks[0] == acks[1] == Ack("m1", inbox.messages[0].epoch, 2)
        await eventually(lambda: broker.state()["feed_held"] == 0, "the held messages sent")
        await anyio.sleep(0.2)
        assert inbox.data() == ["before", "during"]
        assert broker.counts.duplicates == 1


async def test_outage_with_persistence_holds_feed_messages_then_numbers_them_and_catches_up(
    persistent_redis: RedisServer,
) -> None:
    server = persistent_redis
    a_inbox, b_inbox = FeedInbox(), FeedInbox()
    a = RedisBroker(server.url, min_backoff=FAST_BACKOFF)
    b = RedisBroker(server.url, min_backoff=3.0)  # back well after a: it misses what a sends meanwhile
    async with running(a, a_inbox), running(b, b_inbox):  # type: ignore[arg-type]
        a.subscribe(FEED)
        await subscribed(b, server, 2)
        a.append(FEED, Post("before"))
        await eventually(lambda: a_inbox.offsets() == b_inbox.offsets() == [1], "the message before the outage")
        epoch = a_inbox.messages[0].epoch

        server.kill()
        await eventually(lambda: not a.connected and not b.connected, "both brokers to notice the outage")
        a.append(FEED, Post("during 1"))
        a.append(FEED, Post("during 2"))
        assert a.state()["feed_held"] == 2  # held, not dropped
        assert a.counts.dropped == 0
        await anyio.sleep(0.3)
        assert a_inbox.offsets() == [1]  # not delivered, not even locally: Redis gives the numbers

        server.start()
        await eventually(lambda: a_inbox.offsets() == [1, 2, 3], "a's held messages, numbered, at a")
        await eventually(
            lambda: a.state()["feed_held"] == 0, "a to count them sent"
        )  # after pub/sub may have delivered them
        assert append_unseen(server, FEED, "while b was away") == 4  # and on no channel b could hear
        assert not b.connected, "b came back too early for this test to prove its catch-up"
        await eventually(lambda: b.connected, "b to reconnect")
        # b caught up from the Stream when it reconnected, with no later message to reveal the gap.
        assert b_inbox.offsets() == [1, 2, 3, 4]
        assert b.counts.filled == 3
        b.append(FEED, Post("after"))
        await eventually(lambda: len(a_inbox.messages) == 5 and len(b_inbox.messages) == 5, "the message after")
        assert a_inbox.offsets() == b_inbox.offsets() == [1, 2, 3, 4, 5]
        assert a_inbox.data() == b_inbox.data() == ["before", "during 1", "during 2", "while b was away", "after"]
        assert {message.epoch for message in a_inbox.messages + b_inbox.messages} == {epoch}
        assert a.counts.filled == 1  # 4, found behind 5


@asynccontextmanager
async def after_an_outage(server: RedisServer) -> AsyncIterator[tuple[RedisBroker, FeedInbox]]:
    """A broker following FEED that has delivered one message, "before", and Redis just killed."""
    async with following(server, min_backoff=FAST_BACKOFF) as (broker, inbox):
        broker.append(FEED, Post("before"))
        await eventually(lambda: inbox.offsets() == [1], "the message before the outage")
        server.kill()
        await eventually(lambda: not broker.connected, "the outage")
        yield broker, inbox


async def test_a_restart_without_persistence_starts_a_new_epoch(redis_server: RedisServer) -> None:
    async with after_an_outage(redis_server) as (broker, inbox):
        old = inbox.messages[0].epoch
        broker.append(FEED, Post("held"))
        redis_server.start()
        await eventually(lambda: len(inbox.messages) == 2, "the held message")
        new = inbox.messages[1]
        assert (new.offset, new.epoch != old, inbox.data()[1]) == (1, True, "held")
        lost = await broker.replay(FEED, Since(old, 1))
        assert (lost.failure, lost.epoch, lost.top, list(lost.messages)) == ("epoch", new.epoch, 1, [])
        served = await broker.replay(FEED, Since(new.epoch, 0))
        assert served.recovered
        assert [message.text for message in served.messages] == [new.text]


async def test_the_stream_is_trimmed_to_history_size(redis_server: RedisServer) -> None:
    async with following(redis_server, history_size=5) as (broker, inbox):
        for number in range(1, 13):
            broker.append(FEED, Post(f"m{number}"))
        await eventually(lambda: len(inbox.messages) == 12, "all twelve")
        epoch = inbox.messages[0].epoch
        with redis.Redis(host="127.0.0.1", port=redis_server.port) as client:
            assert client.xlen(feed_keys(FEED)[1]) == 5
        trimmed = await broker.replay(FEED, Since(epoch, 6))  # 7 is gone
        assert (trimmed.failure, trimmed.top) == ("trimmed", 12)
        served = await broker.replay(FEED, Since(epoch, 7))
        assert (served.failure, served.top) == (None, 12)
        assert [message.text for message in served.messages] == [message.text for message in inbox.messages[7:]]
        between = await broker.between(FEED, epoch, 8, 10)
        assert [message.text for message in between] == [message.text for message in inbox.messages[8:10]]


def test_feed_keys_share_one_cluster_slot() -> None:
    assert feed_keys(feed_room("r.1")) == ("asgi-ws:{feed:r.1}:meta", "asgi-ws:{feed:r.1}:log")


async def test_feed_keys_carry_the_hash_tag_and_expire_after_the_ttl(redis_server: RedisServer) -> None:
    async with following(redis_server, history_ttl=60) as (broker, inbox):
        broker.append(FEED, Post("x"))
        await eventually(lambda: len(inbox.messages) == 1, "the message")
        with redis.Redis(host="127.0.0.1", port=redis_server.port) as client:
            keys = sorted(key.decode() for key in client.keys("asgi-ws:*"))
            assert keys == ["asgi-ws:{feed:f}:log", "asgi-ws:{feed:f}:meta"]
            for key in keys:
                assert 0 < client.pttl(key) <= 60_000
            assert client.hgetall(keys[1]) == {b"epoch": inbox.messages[0].epoch.encode(), b"top": b"1"}


async def test_a_resume_while_redis_is_down_is_unavailable_and_raises_nothing(redis_server: RedisServer) -> None:
    async with following(redis_server, min_backoff=30.0, resume_wait=0.5) as (broker, inbox):
        broker.append(FEED, Post("x"))
        await eventually(lambda: len(inbox.messages) == 1, "the message")
        epoch = inbox.messages[0].epoch
        assert append_unseen(redis_server, FEED, "seen through another process") == 2  # this process lags at 1
        redis_server.kill()
        await eventually(lambda: not broker.connected, "the outage")
        replay = await broker.replay(FEED, Since(epoch, 0))
        assert (replay.failure, replay.epoch, replay.top, list(replay.messages)) == ("unavailable", epoch, 1, [])
        # A client that saw offset 2 through another process: the top is its 2, not this process's 1, so
        # that the session, which counts from the top, does not send offset 2 again after the catch-up.
        ahead = await broker.replay(FEED, Since(epoch, 2))
        assert (ahead.failure, ahead.epoch, ahead.top) == ("unavailable", epoch, 2)
        unknown = await broker.replay(feed_room("elsewhere"), Since("e", 3))
        assert (unknown.failure, unknown.epoch, unknown.top) == ("unavailable", "e", 3)
        assert await broker.between(FEED, epoch, 0, 5) == []


async def test_a_message_sent_as_a_room_is_joined_comes_back_to_its_own_process(redis_server: RedisServer) -> None:
    """The first member's first message is numbered only once the process is subscribed to the room.

    Numbered earlier, pub/sub would never bring it back here, and the room's cursor, read just
    before subscribing, would already count it as delivered: the member would never see it.
    """
    delivered: list[tuple[Topic, str | FeedMessage]] = []
    async with running(RedisBroker(redis_server.url), lambda topic, item: delivered.append((topic, item))) as broker:
        rooms = [feed_room(f"joined-{number}") for number in range(30)]
        for room in rooms:
            broker.subscribe(room)  # a first member joins ...
            broker.append(room, Post("hello"))  # ... and speaks at once
        await eventually(lambda: len(delivered) == len(rooms), "every room's first message, back here")
        assert sorted(topic.name for topic, _ in delivered) == sorted(room.name for room in rooms)
        assert {item.offset for _, item in delivered if isinstance(item, FeedMessage)} == {1}


async def test_a_resume_during_a_short_outage_waits_for_redis_and_is_served(persistent_redis: RedisServer) -> None:
    async with following(persistent_redis, min_backoff=FAST_BACKOFF, resume_wait=30.0) as (broker, inbox):
        for text in ("1", "2", "3"):
            broker.append(FEED, Post(text))
        await eventually(lambda: len(inbox.messages) == 3, "three messages")
        epoch = inbox.messages[0].epoch
        persistent_redis.kill()
        await eventually(lambda: not broker.connected, "the outage")
        answers: list[Replay] = []
        async with anyio.create_task_group() as tasks:

            async def resume() -> None:
                answers.append(await broker.replay(FEED, Since(epoch, 1)))

            tasks.start_soon(resume)
            await anyio.sleep(0.5)
            assert answers == [], "the resume waits for Redis rather than answering unavailable"
            persistent_redis.start()
        (replay,) = answers
        assert (replay.failure, replay.epoch, replay.top) == (None, epoch, 3)
        assert [json.loads(message.text)["data"] for message in replay.messages] == ["2", "3"]


async def test_a_room_whose_stream_vanished_but_not_its_meta_is_trimmed_not_replayed_empty(
    redis_server: RedisServer,
) -> None:
    async with following(redis_server) as (broker, inbox):
        for text in ("1", "2", "3"):
            broker.append(FEED, Post(text))
        await eventually(lambda: len(inbox.messages) == 3, "three messages")
        epoch = inbox.messages[0].epoch
        with redis.Redis(host="127.0.0.1", port=redis_server.port) as client:
            client.delete(feed_keys(FEED)[1])  # evicted, or expired on its own
        assert (await broker.replay(FEED, Since(epoch, 1))).failure == "trimmed"
        assert (await broker.replay(FEED, Since(epoch, 3))).recovered
        broker.append(FEED, Post("4"))
        await eventually(lambda: len(inbox.messages) == 4, "the fourth")
        assert inbox.messages[3].offset == 4
        assert inbox.messages[3].epoch == epoch
        assert [m.offset for m in (await broker.replay(FEED, Since(epoch, 3))).messages] == [4]


async def test_a_room_whose_meta_vanished_but_not_its_stream_starts_a_new_epoch(redis_server: RedisServer) -> None:
    async with following(redis_server) as (broker, inbox):
        broker.append(FEED, Post("1"))
        broker.append(FEED, Post("2"))
        await eventually(lambda: len(inbox.messages) == 2, "two messages")
        old = inbox.messages[0].epoch
        with redis.Redis(host="127.0.0.1", port=redis_server.port) as client:
            client.delete(feed_keys(FEED)[0])
        broker.append(FEED, Post("new"))
        await eventually(lambda: len(inbox.messages) == 3, "the first of the new history")
        assert (inbox.messages[2].offset, inbox.messages[2].epoch != old) == (1, True)
        replay = await broker.replay(FEED, Since(inbox.messages[2].epoch, 0))
        assert [message.text for message in replay.messages] == [inbox.messages[2].text]  # the old entries are gone


async def test_a_fill_cut_off_by_redis_is_caught_up_after_the_reconnect(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CLIENT PAUSE WRITE holds every script (the fill is one) while pub/sub still flows: the fill times out
    # as it would if Redis had gone, the connection is dropped, and the reconnect must deliver the gap.
    monkeypatch.setattr(asgi_ws.redis_feed, "COMMAND_TIMEOUT", 0.5)  # the fill's read
    async with following(redis_server, min_backoff=FAST_BACKOFF) as (broker, inbox):
        broker.append(FEED, Post("1"))
        await eventually(lambda: inbox.offsets() == [1], "the first message")
        append_unseen(redis_server, FEED, "2")
        with redis.Redis(host="127.0.0.1", port=redis_server.port) as client:
            pipe = client.pipeline(transaction=False)
            pipe.eval(*append_script_call(FEED, "3", channel(FEED)))  # 3, published: the broker sees the gap at once
            pipe.execute_command("CLIENT", "PAUSE", 1500, "WRITE")  # and its fill waits
            pipe.execute()
        await eventually(lambda: broker.counts.reconnects >= 1, "the broker to give up on the fill and reconnect")
        await eventually(lambda: len(inbox.messages) == 3, "the gap and the message after it")
        assert inbox.offsets() == [1, 2, 3]
        assert inbox.data() == ["1", "2", "3"]
        await anyio.sleep(0.2)
        assert len(inbox.messages) == 3  # and nothing twice


async def test_cursors_are_forgotten_with_the_last_member(redis_server: RedisServer) -> None:
    async with running(RedisBroker(redis_server.url), lambda topic, item: None) as broker:  # type: ignore[arg-type]
        for number in range(20):
            room = feed_room(f"room{number}")
            broker.subscribe(room)
            broker.append(room, Post("x"))
        await eventually(lambda: len(broker.feed._cursors) == 20, "a cursor per room with a member")
        for number in range(20):
            broker.unsubscribe(feed_room(f"room{number}"))
        await eventually(lambda: broker.feed._cursors == {}, "every cursor forgotten once its channel is unsubscribed")


async def test_after_a_new_epoch_a_message_pub_sub_lost_is_filled_from_offset_one(redis_server: RedisServer) -> None:
    async with after_an_outage(redis_server) as (broker, inbox):
        redis_server.start()  # without persistence: the room's history is gone
        await eventually(lambda: broker.connected and subscribers(redis_server, FEED) == 1, "the reconnect")
        assert append_unseen(redis_server, FEED, "first of the new history") == 1  # lost on pub/sub
        broker.append(FEED, Post("second of the new history"))
        await eventually(lambda: len(inbox.messages) >= 3, "the new history")
        assert inbox.offsets() == [1, 1, 2]
        assert inbox.data() == ["before", "first of the new history", "second of the new history"]
        assert inbox.messages[1].epoch == inbox.messages[2].epoch != inbox.messages[0].epoch
        assert broker.counts.filled == 1


async def test_an_append_redis_refuses_is_retried_alone_and_the_rest_of_its_batch_is_not_repeated(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = FeedInbox()
    bad = feed_room("bad")
    broker = RedisBroker(redis_server.url, min_backoff=FAST_BACKOFF)
    with redis.Redis(host="127.0.0.1", port=redis_server.port) as client:
        client.set(feed_keys(bad)[0], "not a hash")  # the append script fails on this room: WRONGTYPE
        async with running(broker, lambda topic, item: inbox(FEED, item) if topic == FEED else None):  # type: ignore[arg-type]
            await subscribed(broker, redis_server)
            broker.append(FEED, Post("first"))
            await eventually(lambda: inbox.offsets() == [1], "the first message")
            broker.append(FEED, Post("a"))
            broker.append(bad, Post("refused until the key is fixed"))
            broker.append(FEED, Post("b"))  # one pipelined batch of three
            await eventually(lambda: inbox.data() == ["first", "a", "b"], "the two appends Redis took")
            await eventually(lambda: broker.counts.reconnects >= 2, "two retries of the refused one")
            assert "WRONGTYPE" in caplog.text
            assert broker.state()["feed_held"] == 1
            client.delete(feed_keys(bad)[0])
            await eventually(lambda: broker.state()["feed_held"] == 0, "the refused one, once the key is fixed")
            assert client.hget(feed_keys(bad)[0], "top") == b"1"
            broker.append(FEED, Post("c"))
            await eventually(lambda: len(inbox.messages) >= 4, "the next message")
            assert inbox.offsets() == [1, 2, 3, 4]  # a and b were not appended again by the retries
            assert inbox.data() == ["first", "a", "b", "c"]


def test_feed_messages_held_for_redis_are_bounded() -> None:
    # Never connected: every append waits for Redis, up to the queue's bound, and the rest are counted as dropped.
    broker = RedisBroker("redis://127.0.0.1:1/0")
    for number in range(PUBLISH_QUEUE + 10):
        broker.append(FEED, Post(str(number)))
    assert broker.state()["feed_held"] == PUBLISH_QUEUE
    assert broker.counts.dropped == 10
    largest = "x" * Settings().max_message_size
    bytes_bound = RedisBroker("redis://127.0.0.1:1/0")
    for _ in range(PUBLISH_QUEUE_BYTES // len(largest) + 10):
        bytes_bound.append(FEED, Post(largest))
    assert bytes_bound.state()["feed_held"] == PUBLISH_QUEUE_BYTES // len(largest)
    assert bytes_bound.counts.dropped == 10


async def test_the_listener_lets_other_tasks_run_between_two_messages(redis_server: RedisServer) -> None:
    order: list[str] = []
    first_arrived = anyio.Event()

    class Probing(Inbox):
        def __call__(self, topic: Topic, text: str) -> None:
            super().__call__(topic, text)
            order.append(text)
            first_arrived.set()  # makes the other task ready: it runs before the next message, or after all

    async def other_task() -> None:
        await first_arrived.wait()
        order.append("other task")

    inbox = Probing()
    async with running(RedisBroker(redis_server.url), inbox) as broker, anyio.create_task_group() as task_group:
        task_group.start_soon(other_task)
        broker.subscribe(ROOM)
        await eventually(lambda: subscribers(redis_server, ROOM) == 1, "the subscription")
        with redis.Redis(host="127.0.0.1", port=redis_server.port) as client:
            pipe = client.pipeline(transaction=False)  # both in one write, so that both arrive in one read
            for text in ("first", "second"):
                pipe.publish(channel(ROOM), encode_envelope("another-node", ROOM, text))
            pipe.execute()
        await eventually(lambda: len(inbox.texts()) == 2, "both messages")
    assert order == ["first", "other task", "second"]
