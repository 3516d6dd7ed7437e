"""Topics: the groups a message is published to (contract §1 chat and /ws_broadcast, §8 feed).

A topic is one chat room, one feed room or the broadcast group.  A chat room
and a feed room of the same name are two topics: a feed numbers its messages.  The hub keeps the members of
each topic in this process; the broker carries a topic's messages to the other
processes (contract §4).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

__all__ = ["BROADCAST", "Topic", "chat_room", "feed_room"]


class Topic(NamedTuple):
    """A fan-out group: one chat room, one feed room, or the broadcast group."""

    kind: Literal["chat", "feed", "broadcast"]
    name: str


BROADCAST = Topic("broadcast", "all")


def chat_room(name: str) -> Topic:
    """The topic of chat room ``name`` (already validated by :mod:`asgi_ws.routing`)."""
    return Topic("chat", name)


def feed_room(name: str) -> Topic:
    """The topic of feed room ``name`` (already validated by :mod:`asgi_ws.routing`)."""
    return Topic("feed", name)
