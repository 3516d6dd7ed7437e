"""Presence: who is in a room, and who comes and goes (contract §8.2).

Every connection to a chat or feed room is a member, under a **subject**: its
access token's ``sub`` (:mod:`asgi_ws.access`), or, without tokens, a name
made for the connection, ``anonymous-`` and eight hex digits.  A client that
connects with ``?presence=1`` also *watches* the room: it is sent the member
list once, ``{"presence": [SUBJECTS...]}``, then ``{"join": S}`` and
``{"leave": S}`` as members come and go.

A subject with several connections in a room (two tabs) is one member: it
joins with its first connection and leaves with its last.  So membership is a
count per subject, and only the counts' moves between 0 and 1 are events.

This module is pure: :class:`Roster` keeps the counts of one process and says
which moves are events; the wire texts are :func:`members_text` and
:func:`event_text`.  The hub (:mod:`asgi_ws.hub`) holds a roster, tells the
watchers, and hands the events to the broker for the other processes.
"""

from __future__ import annotations

import secrets
from collections import Counter
from typing import TYPE_CHECKING, Literal

from .messages import dump_json

if TYPE_CHECKING:
    from .topics import Topic

__all__ = ["Roster", "anonymous_subject", "event_text", "members_text"]

Change = Literal["join", "leave"]


def anonymous_subject() -> str:
    """The subject of a connection without an access token: one of its own."""
    return "anonymous-" + secrets.token_hex(4)


def members_text(subjects: list[str]) -> str:
    """The first presence message: every member, sorted."""
    return dump_json({"presence": sorted(subjects)})


def event_text(change: Change, subject: str) -> str:
    """``{"join": S}`` or ``{"leave": S}``."""
    return dump_json({change: subject})


class Roster:
    """Every room's members in one process: how many connections each subject has there."""

    def __init__(self) -> None:
        self._counts: dict[Topic, Counter[str]] = {}  # room -> subject -> connections; only non-empty kept

    def add(self, room: Topic, subject: str) -> bool:
        """One more connection of ``subject`` in ``room``: True if the subject was not a member before."""
        counts = self._counts.setdefault(room, Counter())
        counts[subject] += 1
        return counts[subject] == 1

    def remove(self, room: Topic, subject: str) -> bool:
        """One connection of ``subject`` left ``room``: True if it was the subject's last."""
        counts = self._counts.get(room)
        if counts is None or counts[subject] == 0:
            return False
        counts[subject] -= 1
        if counts[subject]:
            return False
        del counts[subject]
        if not counts:
            del self._counts[room]
        return True

    def members(self, room: Topic) -> list[str]:
        """The subjects with a connection in ``room``."""
        return list(self._counts.get(room, ()))

    def __len__(self) -> int:
        """Members of all rooms together (a subject in two rooms counts twice)."""
        return sum(len(counts) for counts in self._counts.values())
