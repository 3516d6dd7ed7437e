"""asgi_ws.broker: the envelope, topic names on the wire, URLs, and the memory broker (contract §4)."""

from __future__ import annotations

import json
import sys

import pytest

from asgi_ws.app import create_broker
from asgi_ws.broker import (
    ENVELOPE_VERSION,
    BrokerError,
    Envelope,
    MemoryBroker,
    decode_envelope,
    encode_envelope,
    new_node_id,
    redact,
    topic_from_wire,
    topic_to_wire,
)
from asgi_ws.redis_broker import RedisBroker
from asgi_ws.settings import Settings
from asgi_ws.topics import BROADCAST, Topic, chat_room

# What /healthz shows of a memory broker that has numbered nothing (contract §2, /healthz fields).
IDLE_MEMORY_BROKER = {
    "kind": "memory",
    "connected": True,
    "feed_rooms": 0,
    "feed_history_bytes": 0,
    "feed_duplicates": 0,
    "feed_publish_ids": 0,
}
TEXTS = ["", "hi", "héllo ☃ 🎉", '{"json": "inside"}', "\ud800 lone surrogate", "x" * 70_000]


@pytest.mark.parametrize("text", TEXTS, ids=range(len(TEXTS)))
@pytest.mark.parametrize("topic", [BROADCAST, chat_room("lobby"), chat_room("a.b-c_9")])
def test_envelope_round_trip(text: str, topic: Topic) -> None:
    raw = encode_envelope("node-1", topic, text)
    assert decode_envelope(raw) == Envelope("node-1", topic, text)
    assert decode_envelope(raw.decode()) == Envelope("node-1", topic, text)


def test_envelope_is_versioned_json_with_the_origin_node() -> None:
    document = json.loads(encode_envelope("n", chat_room("r"), "t"))
    assert document == {"v": ENVELOPE_VERSION, "node": "n", "room": "chat:r", "data": "t"}


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xff\xfe",
        b"not json",
        b"[]",
        b'{"v": 2, "node": "n", "room": "broadcast", "data": "t"}',
        b'{"node": "n", "room": "broadcast", "data": "t"}',
        b'{"v": 1, "node": 5, "room": "broadcast", "data": "t"}',
        b'{"v": 1, "node": "n", "room": "chat:", "data": "t"}',
        b'{"v": 1, "node": "n", "room": "elsewhere:x", "data": "t"}',
        b'{"v": 1, "node": "n", "room": "broadcast", "data": ["t"]}',
        b"\x80\x04\x95pickle",
    ],
)
def test_anything_else_on_the_channel_is_not_an_envelope(raw: bytes) -> None:
    assert decode_envelope(raw) is None


def test_topics_on_the_wire() -> None:
    assert topic_to_wire(BROADCAST) == "broadcast"
    assert topic_to_wire(chat_room("lobby")) == "chat:lobby"
    for topic in (BROADCAST, chat_room("lobby")):
        assert topic_from_wire(topic_to_wire(topic)) == topic
    assert topic_from_wire("nonsense") is None


def test_node_ids_differ() -> None:
    assert len({new_node_id() for _ in range(100)}) == 100


def test_passwords_never_show() -> None:
    assert redact("redis://:secret@host:6379/1") == "redis://:***@host:6379/1"
    assert redact("redis://user:secret@host/2") == "redis://user:***@host/2"
    assert redact("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"  # nothing to hide


@pytest.mark.parametrize(
    "url", ["memory://", "redis://localhost", "redis://127.0.0.1:6379/3", "rediss://:pw@host:6380/0"]
)
def test_broker_urls_accepted(url: str) -> None:
    assert Settings(broker=url).broker == url


def test_create_broker_picks_by_url() -> None:
    assert isinstance(create_broker(Settings()), MemoryBroker)
    redis_broker = create_broker(Settings(broker="redis://127.0.0.1:1/0"))
    assert redis_broker.kind == "redis"
    assert redis_broker.state()["connected"] is False  # not running yet


def test_create_broker_explains_a_missing_redis_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)  # import redis.asyncio now fails
    monkeypatch.delitem(sys.modules, "asgi_ws.redis_broker", raising=False)
    with pytest.raises(BrokerError, match=r"pip install 'asgi-ws\[redis\]'"):
        create_broker(Settings(broker="redis://:pw@127.0.0.1:1/0"))


@pytest.mark.anyio
async def test_the_memory_broker_is_always_connected_and_carries_nothing() -> None:
    broker = MemoryBroker()
    delivered: list[object] = []
    async with broker.running(lambda topic, text: delivered.append((topic, text))):
        broker.subscribe(BROADCAST)
        broker.publish(BROADCAST, "hi")
        broker.unsubscribe(BROADCAST)
    assert delivered == []
    assert broker.state() == IDLE_MEMORY_BROKER


@pytest.mark.anyio
async def test_a_process_skips_its_own_messages_and_takes_the_others() -> None:
    """Node-id dedup: what Redis hands back to the publisher was already delivered locally."""
    delivered: list[tuple[Topic, str]] = []
    broker = RedisBroker("redis://127.0.0.1:1/0", node="me")
    broker.pubsub.deliver = lambda topic, text: delivered.append((topic, text))
    await broker.pubsub.on_message(b"asgi-ws:chat:r", encode_envelope("me", chat_room("r"), "mine"))
    await broker.pubsub.on_message(b"asgi-ws:chat:r", encode_envelope("other", chat_room("r"), "theirs"))
    await broker.pubsub.on_message(b"asgi-ws:chat:r", b"garbage")
    assert delivered == [(chat_room("r"), "theirs")]
    assert (broker.counts.received, broker.counts.invalid) == (1, 1)
