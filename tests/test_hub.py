"""asgi_ws.hub: connection count, topic membership and fan-out (SPEC §3 cap, §4)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from asgi_ws import close_codes
from asgi_ws.hub import BROADCAST, Hub, chat_room

if TYPE_CHECKING:
    from asgiref.typing import WebSocketSendEvent

    from asgi_ws.close_codes import Close


@dataclass(eq=False)
class FakeSubscriber:
    """A subscriber with a fixed-size inbox: the hub's view of a connection."""

    capacity: int = 10
    received: list[WebSocketSendEvent] = field(default_factory=list)
    kicked: list[Close] = field(default_factory=list)

    def deliver(self, event: WebSocketSendEvent) -> bool:
        if len(self.received) >= self.capacity:
            return False
        self.received.append(event)
        return True

    def kick(self, close: Close) -> None:
        self.kicked.append(close)


EVENT: WebSocketSendEvent = {"type": "websocket.send", "bytes": None, "text": "hi"}


def test_admit_counts_up_to_the_cap() -> None:
    hub = Hub(max_connections=2)
    assert [hub.admit(), hub.admit(), hub.admit()] == [True, True, False]
    assert hub.connections == 2
    hub.release()
    assert hub.admit()


def test_publish_reaches_members_of_the_topic_only() -> None:
    hub = Hub(10)
    a, b, other = FakeSubscriber(), FakeSubscriber(), FakeSubscriber()
    hub.join(chat_room("r"), a)
    hub.join(chat_room("r"), b)
    hub.join(chat_room("s"), other)
    assert hub.publish(chat_room("r"), EVENT) == 2
    assert a.received == b.received == [EVENT]
    assert other.received == []


def test_the_same_event_object_goes_to_every_member() -> None:
    hub = Hub(10)
    members = [FakeSubscriber() for _ in range(5)]
    for member in members:
        hub.join(BROADCAST, member)
    hub.publish(BROADCAST, EVENT)
    assert all(member.received[0] is EVENT for member in members)


def test_publish_can_exclude_the_sender() -> None:
    hub = Hub(10)
    sender, other = FakeSubscriber(), FakeSubscriber()
    hub.join(BROADCAST, sender)
    hub.join(BROADCAST, other)
    assert hub.publish(BROADCAST, EVENT, exclude=sender) == 1
    assert sender.received == []


def test_a_full_member_is_removed_and_kicked_once() -> None:
    hub = Hub(10)
    slow, fast = FakeSubscriber(capacity=1), FakeSubscriber(capacity=100)
    hub.join(chat_room("r"), slow)
    hub.join(chat_room("r"), fast)
    for _ in range(5):
        hub.publish(chat_room("r"), EVENT)
    assert slow.kicked == [close_codes.SLOW_CONSUMER]
    assert len(fast.received) == 5
    assert hub.members(chat_room("r")) == frozenset({fast})


def test_empty_topics_are_forgotten() -> None:
    hub = Hub(10)
    member = FakeSubscriber()
    hub.join(chat_room("r"), member)
    hub.join(BROADCAST, member)
    assert (hub.room_count, hub.topic_count) == (1, 2)
    hub.leave(chat_room("r"), member)
    hub.leave(chat_room("r"), member)  # twice is harmless
    hub.leave(BROADCAST, member)
    assert (hub.room_count, hub.topic_count) == (0, 0)
    assert hub.publish(chat_room("r"), EVENT) == 0
