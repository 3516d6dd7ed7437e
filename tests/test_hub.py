"""asgi_ws.hub: connection count, topic membership and fan-out (contract §3 cap, §4)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from asgi_ws import close_codes
from asgi_ws import hub as hub_module
from asgi_ws.broker import MemoryBroker
from asgi_ws.hub import Hub
from asgi_ws.policy import message_size
from asgi_ws.topics import BROADCAST, Topic, chat_room

if TYPE_CHECKING:
    from asgiref.typing import WebSocketSendEvent

    from asgi_ws.close_codes import Close


@dataclass(eq=False)
class FakeSubscriber:
    """A subscriber with a fixed-size inbox: the hub's view of a connection."""

    capacity: int = 10
    received: list[WebSocketSendEvent] = field(default_factory=list)
    kicked: list[Close] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)  # the payload size the hub gave with each event

    def deliver(self, event: WebSocketSendEvent, size: int) -> bool:
        if len(self.received) >= self.capacity:
            return False
        self.received.append(event)
        self.sizes.append(size)
        return True

    def kick(self, close: Close) -> None:
        self.kicked.append(close)


EVENT: WebSocketSendEvent = {"type": "websocket.send", "bytes": None, "text": "hi"}


@dataclass
class RecordingBroker:
    """A broker that records what the hub asks of it."""

    kind: str = "recording"
    calls: list[tuple[str, object]] = field(default_factory=list)

    def running(self, deliver: object) -> Any:
        raise NotImplementedError

    def subscribe(self, topic: Topic) -> None:
        self.calls.append(("subscribe", topic))

    def unsubscribe(self, topic: Topic) -> None:
        self.calls.append(("unsubscribe", topic))

    def publish(self, topic: Topic, text: str) -> None:
        self.calls.append(("publish", (topic, text)))

    def state(self) -> dict[str, Any]:
        return {"kind": self.kind, "connected": True}


def test_admit_counts_up_to_the_cap() -> None:
    hub = Hub(max_connections=2, broker=MemoryBroker())
    assert [hub.admit(), hub.admit(), hub.admit()] == [True, True, False]
    assert hub.connections == 2
    hub.release()
    assert hub.admit()


def test_publish_reaches_members_of_the_topic_only() -> None:
    hub = Hub(10, MemoryBroker())
    a, b, other = FakeSubscriber(), FakeSubscriber(), FakeSubscriber()
    hub.join(chat_room("r"), a)
    hub.join(chat_room("r"), b)
    hub.join(chat_room("s"), other)
    assert hub.publish(chat_room("r"), "hi") == 2
    assert a.received == b.received == [EVENT]
    assert other.received == []


def test_one_event_object_goes_to_every_member() -> None:
    hub = Hub(10, MemoryBroker())
    members = [FakeSubscriber() for _ in range(5)]
    for member in members:
        hub.join(BROADCAST, member)
    hub.publish(BROADCAST, "hi")
    first = members[0].received[0]
    assert first == EVENT
    assert all(member.received[0] is first for member in members)


@pytest.mark.parametrize("remote", [False, True], ids=["local", "remote"])
def test_every_member_gets_the_payload_size_worked_out_once(remote: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str | None, bytes | None]] = []

    def counting_size(text: str | None, data: bytes | None) -> int:
        calls.append((text, data))
        return message_size(text, data)

    monkeypatch.setattr(hub_module, "message_size", counting_size)
    hub = Hub(10, MemoryBroker())
    members = [FakeSubscriber() for _ in range(5)]
    for member in members:
        hub.join(BROADCAST, member)
    if remote:
        hub.deliver_remote(BROADCAST, "héllo")
    else:
        hub.publish(BROADCAST, "héllo")
    assert [member.sizes for member in members] == [[6]] * 5  # UTF-8 bytes: é is two
    assert calls == [("héllo", None)]


def test_publish_can_exclude_the_sender() -> None:
    hub = Hub(10, MemoryBroker())
    sender, other = FakeSubscriber(), FakeSubscriber()
    hub.join(BROADCAST, sender)
    hub.join(BROADCAST, other)
    assert hub.publish(BROADCAST, "hi", exclude=sender) == 1
    assert sender.received == []


def test_a_full_member_is_removed_and_kicked_once() -> None:
    hub = Hub(10, MemoryBroker())
    slow, fast = FakeSubscriber(capacity=1), FakeSubscriber(capacity=100)
    hub.join(chat_room("r"), slow)
    hub.join(chat_room("r"), fast)
    for _ in range(5):
        hub.publish(chat_room("r"), "hi")
    assert slow.kicked == [close_codes.SLOW_CONSUMER]
    assert len(fast.received) == 5
    assert hub.members(chat_room("r")) == frozenset({fast})


def test_empty_topics_are_forgotten() -> None:
    hub = Hub(10, MemoryBroker())
    member = FakeSubscriber()
    hub.join(chat_room("r"), member)
    hub.join(BROADCAST, member)
    assert (hub.room_count, hub.topic_count) == (1, 2)
    hub.leave(chat_room("r"), member)
    hub.leave(chat_room("r"), member)  # twice is harmless
    hub.leave(BROADCAST, member)
    assert (hub.room_count, hub.topic_count) == (0, 0)
    assert hub.publish(chat_room("r"), "hi") == 0


def test_the_broker_subscribes_on_the_first_member_and_unsubscribes_after_the_last() -> None:
    broker = RecordingBroker()
    hub = Hub(10, broker)
    a, b = FakeSubscriber(), FakeSubscriber()
    room = chat_room("r")
    hub.join(room, a)
    hub.join(room, b)
    hub.leave(room, a)
    assert broker.calls == [("subscribe", room)]  # b still holds the topic
    hub.leave(room, b)
    hub.leave(room, b)  # a second leave is not a second unsubscribe
    assert broker.calls == [("subscribe", room), ("unsubscribe", room)]
    hub.join(room, a)
    assert broker.calls[-1] == ("subscribe", room)


def test_a_slow_last_member_unsubscribes_the_topic() -> None:
    broker = RecordingBroker()
    hub = Hub(10, broker)
    hub.join(BROADCAST, FakeSubscriber(capacity=0))
    hub.publish(BROADCAST, "hi")
    assert broker.calls == [("subscribe", BROADCAST), ("unsubscribe", BROADCAST), ("publish", (BROADCAST, "hi"))]


def test_publish_goes_to_the_broker_once_whatever_the_local_members() -> None:
    broker = RecordingBroker()
    hub = Hub(10, broker)
    sender = FakeSubscriber()
    hub.join(BROADCAST, sender)
    hub.publish(BROADCAST, "hi", exclude=sender)
    hub.publish(chat_room("nobody-here"), "hello")
    assert [call for call in broker.calls if call[0] == "publish"] == [
        ("publish", (BROADCAST, "hi")),
        ("publish", (chat_room("nobody-here"), "hello")),
    ]


def test_remote_messages_reach_every_local_member_and_go_no_further() -> None:
    broker = RecordingBroker()
    hub = Hub(10, broker)
    a, b = FakeSubscriber(), FakeSubscriber()
    hub.join(BROADCAST, a)
    hub.join(BROADCAST, b)
    hub.deliver_remote(BROADCAST, "from elsewhere")
    assert a.received == b.received == [{"type": "websocket.send", "bytes": None, "text": "from elsewhere"}]
    assert all(call[0] != "publish" for call in broker.calls)
