"""asgi_ws.redis_broker against a real redis-server (contract §4): delivery, dedup, outages.

Two brokers in one event loop stand for two processes: each has its own node
id, its own connections and its own ``deliver`` callback, as two worker
processes would.  Redis is a real ``redis-server`` (the ``redis_server``
fixture), which the outage tests kill and start again on the same port.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
import redis

from asgi_ws.app import App, create_app
from asgi_ws.broker import BrokerError, encode_envelope
from asgi_ws.http import health
from asgi_ws.hub import BROADCAST, Topic, chat_room
from asgi_ws.redis_broker import (
    MIN_BACKOFF,
    PUBLISH_QUEUE,
    PUBLISH_QUEUE_BYTES,
    RedisBroker,
    channel,
    next_backoff,
)
from asgi_ws.settings import Settings
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
        await eventually(lambda: a.published == len(sent), "a to count what Redis accepted")
        assert (b.received, a.received, a.dropped) == (200, 0, 0)


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
        assert broker.invalid == 1
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
            assert broker.dropped == 1
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
        assert a.dropped >= 1

        redis_server.start()
        await eventually(lambda: a.connected and b.connected, "both brokers to reconnect")
        assert (a.reconnects, b.reconnects) == (1, 1)
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
    broker.connected = True
    largest = "x" * Settings().max_message_size
    envelope = len(encode_envelope(broker.node, ROOM, largest))
    fits = PUBLISH_QUEUE_BYTES // envelope
    for _ in range(fits + 10):
        broker.publish(ROOM, largest)
    assert broker.dropped == 10
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
