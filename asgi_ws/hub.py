"""Who is connected, who is in which room, and fan-out to them (contract §3 cap, §4).

The hub owns two things for one process:

- the **connection count**, which :meth:`Hub.admit` checks against
  ``max_connections`` before a handshake is accepted;
- **topics**: the chat rooms, the feed rooms and the ``/ws_broadcast`` group,
  each a set of subscribers.  :meth:`Hub.publish` hands one event to every subscriber's
  outbox and never waits.  A subscriber whose outbox is full is removed and
  kicked with 4503; the others still get the event.

The event is built once by the publisher and the same object is queued for
every recipient: a broadcast is encoded once, not once per recipient.  Its
payload size, which each outbox counts against its byte bound, is worked out
once too, here, and handed to every recipient with the event.

Other processes are the **broker**'s business (:mod:`asgi_ws.broker`).  The
hub serves its own clients directly, passes each published message to the
broker for the rest, and takes the other processes' messages back through
:meth:`Hub.deliver_remote`.  A topic's member set doubles as its reference
count: the broker is told to subscribe when a topic gets its first member here
and to unsubscribe when it loses its last.

A feed room's messages are numbered by the broker, which keeps its history
(contract §8): the hub asks the broker for the number first, and fans out the
numbered message, a :class:`~asgi_ws.feed.FeedMessage`, when the broker gives
it back: at once on the memory broker, and through Redis, in Redis's order,
on the Redis broker.

The hub does no I/O and never awaits, so it needs no lock: on one event loop
nothing can run between its statements.  Sending is each connection's own
sender task (:mod:`asgi_ws.session`), parked on its outbox while there is
nothing to send.  A fan-out queues the message in every outbox at once, so no
later message can overtake it, but the senders it wakes run a batch at a time,
through the hub's :class:`~asgi_ws.wakeups.Wakeups`, so that the event loop
still polls its sockets while a broadcast reaches thousands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from . import close_codes
from .feed import FeedMessage, Post
from .messages import text_event
from .policy import message_size
from .presence import Roster, event_text, members_text
from .topics import BROADCAST
from .wakeups import Wakeups

if TYPE_CHECKING:
    from asgiref.typing import WebSocketSendEvent

    from .broker import Acked, Broker
    from .close_codes import Close
    from .topics import Topic

__all__ = ["Hub", "Subscriber"]


class Subscriber(Protocol):
    """What the hub needs from a connection."""

    def deliver(self, item: WebSocketSendEvent | FeedMessage, size: int) -> bool:
        """Queue ``item`` (a feed's numbered message in a feed room), of ``size`` payload bytes, without waiting.

        False if the outbox is full.
        """

    def kick(self, close: Close) -> None:
        """End the connection soon with ``close``.  Must not wait."""


class Hub:
    """Connection count and topic membership for one process."""

    def __init__(self, max_connections: int, broker: Broker) -> None:
        self.max_connections = max_connections  # contract §3 cap, checked by admit()
        self.connections = 0  # admitted and not yet released
        self.broker = broker  # the other processes: asgi_ws.broker.MemoryBroker when there are none
        # topic -> its members here, each with its subject in a room (None in the broadcast group);
        # only non-empty ones are kept
        self._topics: dict[Topic, dict[Subscriber, str | None]] = {}
        self.roster = Roster()  # who is in each chat and feed room: subjects and their connections (contract §8.2)
        self._watchers: dict[Topic, set[Subscriber]] = {}  # members that asked for ?presence=1; non-empty only
        self._remote: dict[Topic, frozenset[str]] = {}  # room -> subjects other processes have there (Redis)
        self.wakeups = Wakeups()  # wakes the members' parked senders a batch at a time (asgi_ws.wakeups)

    # Connections

    def admit(self) -> bool:
        """Count one more connection, unless that would pass the cap."""
        if self.connections >= self.max_connections:
            return False
        self.connections += 1
        return True

    def release(self) -> None:
        """Forget one admitted connection.  Call exactly once per successful admit()."""
        self.connections -= 1

    # Topics

    def join(self, topic: Topic, subscriber: Subscriber, subject: str | None = None, watch: bool = False) -> None:
        """Add ``subscriber`` to ``topic``; in a room, as ``subject``, and a watcher of its presence if ``watch``.

        A watcher is sent the member list first, itself included; the other
        watchers are told ``subject`` joined if it is new to the room.
        """
        members = self._topics.get(topic)
        if members is None:
            members = self._topics[topic] = {}
            self.broker.subscribe(topic)  # first member in this process
        members[subscriber] = subject
        if subject is None:
            return
        first = self.roster.add(topic, subject)
        if watch:
            self._watchers.setdefault(topic, set()).add(subscriber)
            text = members_text(list(self._remote.get(topic, frozenset()).union(self.roster.members(topic))))
            if not subscriber.deliver(text_event(text), message_size(text, None)):
                subscriber.kick(close_codes.SLOW_CONSUMER)
        if first:
            self.broker.joined(topic, subject)
            if subject not in self._remote.get(topic, ()):
                self._tell(topic, event_text("join", subject), exclude=subscriber)

    def leave(self, topic: Topic, subscriber: Subscriber) -> None:
        """Remove ``subscriber`` from ``topic``; its subject leaves the room with its last connection.

        Harmless if it is not there.
        """
        members = self._topics.get(topic)
        if members is None or subscriber not in members:
            return
        subject = members.pop(subscriber)
        if not members:
            del self._topics[topic]
            self._remote.pop(topic, None)
            self.broker.unsubscribe(topic)  # last member in this process
        watchers = self._watchers.get(topic)
        if watchers is not None:
            watchers.discard(subscriber)
            if not watchers:
                del self._watchers[topic]
        if subject is not None and self.roster.remove(topic, subject):
            self.broker.left(topic, subject)
            if subject not in self._remote.get(topic, ()):
                self._tell(topic, event_text("leave", subject))

    def _remote_members(self, topic: Topic, subjects: frozenset[str]) -> None:
        """The other processes have ``subjects`` in ``topic`` now: tell the watchers who came and went.

        A subject with a connection here too neither joins nor leaves by it.
        """
        if topic not in self._topics:
            return  # no member here any more: nobody to tell, nothing to keep
        before = self._remote.get(topic, frozenset())
        if subjects:
            self._remote[topic] = subjects
        else:
            self._remote.pop(topic, None)
        here = set(self.roster.members(topic))
        for subject in sorted(subjects - before - here):
            self._tell(topic, event_text("join", subject))
        for subject in sorted(before - subjects - here):
            self._tell(topic, event_text("leave", subject))

    def _tell(self, topic: Topic, text: str, exclude: Subscriber | None = None) -> None:
        """Queue a presence event for every watcher of ``topic`` but ``exclude``; a full outbox is 4503."""
        watchers = self._watchers.get(topic)
        if not watchers:
            return
        event, size = text_event(text), message_size(text, None)
        too_slow = [watcher for watcher in watchers if watcher is not exclude and not watcher.deliver(event, size)]
        for watcher in too_slow:
            watcher.kick(close_codes.SLOW_CONSUMER)  # its session's end calls leave, which tells the others

    def members(self, topic: Topic) -> frozenset[Subscriber]:
        return frozenset(self._topics.get(topic, {}))

    @property
    def room_count(self) -> int:
        """Chat and feed rooms with at least one member (the broadcast group is not a room)."""
        return sum(1 for topic in self._topics if topic != BROADCAST)

    @property
    def topic_count(self) -> int:
        """Topics with at least one member, the broadcast group included."""
        return len(self._topics)

    @property
    def remote_room_count(self) -> int:
        """Rooms whose members on other processes this process keeps: only rooms with a member here."""
        return len(self._remote)

    def publish(self, topic: Topic, text: str, *, exclude: Subscriber | None = None) -> int:
        """Send ``text`` to every member of ``topic`` but ``exclude``, here and in other processes.

        Returns how many members of this process got it.  Never waits.  A feed
        room's text is appended as a plain :class:`~asgi_ws.feed.Post`.
        """
        if topic.kind == "feed":
            return self.append(topic, Post(text), exclude=exclude)
        delivered = self._fan_out(topic, text_event(text), message_size(text, None), exclude)
        self.broker.publish(topic, text)
        return delivered

    def append(self, topic: Topic, post: Post, acked: Acked | None = None, *, exclude: Subscriber | None = None) -> int:
        """Have the broker number ``post`` in the feed room ``topic``, and send it to every member but ``exclude``.

        Returns how many members of this process got it now: on the Redis
        broker none, since it reaches them later, in Redis's order, through
        :meth:`deliver_remote`.  ``acked`` gets the post's ack if it has a
        publish id (:meth:`asgi_ws.broker.Broker.append`).
        """
        message = self.broker.append(topic, post, acked)
        return 0 if message is None else self._fan_out(topic, message, message.size, exclude)

    def deliver_remote(self, topic: Topic, item: str | FeedMessage | frozenset[str]) -> None:
        """A message from the broker: another process's text, a feed message Redis numbered, or the
        subjects the other processes have in the room now (presence)."""
        if isinstance(item, frozenset):
            self._remote_members(topic, item)
        elif isinstance(item, FeedMessage):
            self._fan_out(topic, item, item.size, None)
        else:
            self._fan_out(topic, text_event(item), message_size(item, None), None)

    def _fan_out(
        self, topic: Topic, item: WebSocketSendEvent | FeedMessage, size: int, exclude: Subscriber | None
    ) -> int:
        """Queue ``item``, of ``size`` bytes, for every local member of ``topic`` but ``exclude``.

        Never waits.  Members whose outbox is full are removed from the topic
        and kicked with 4503 after the loop, so they cannot be kicked twice.
        """
        members = self._topics.get(topic)
        if not members:
            return 0
        delivered = 0
        too_slow = []
        for member in members:
            if member is exclude:
                continue
            if member.deliver(item, size):
                delivered += 1
            else:
                too_slow.append(member)
        for member in too_slow:
            self.leave(topic, member)
            member.kick(close_codes.SLOW_CONSUMER)
        return delivered
