"""asgi_ws.feed: wire text, ``since``, the resume and ordering rules, the memory broker's history (contract §8).

Pure: no event loop.  Time is passed in as ``now=`` wherever the TTL matters.
"""

from __future__ import annotations

import json

import pytest

from asgi_ws.feed import (
    MESSAGE_OVERHEAD,
    ROOM_OVERHEAD,
    FeedCursor,
    FeedMessage,
    Gap,
    MemoryHistory,
    Replay,
    Since,
    Step,
    control_text,
    new_epoch,
    parse_since,
    plan_replay,
)
from asgi_ws.routing import Endpoint, Route
from asgi_ws.session import outbox_capacity
from asgi_ws.settings import Settings

BIG = 1 << 40  # a byte budget no test reaches


def history(size: int = 100, ttl: float = 300.0, max_bytes: int = BIG) -> MemoryHistory:
    return MemoryHistory(size, ttl, max_bytes)


def offsets(messages: list[FeedMessage] | tuple[FeedMessage, ...] | Replay) -> list[int]:
    items = messages.messages if isinstance(messages, Replay) else messages
    return [message.offset for message in items]


def epoch_of(feed: MemoryHistory, room: str, now: float) -> str:
    """The room's epoch as a resuming client would learn it (creating the room if unknown)."""
    return feed.replay(room, Since("x", 0), now=now).epoch


# parse_since


@pytest.mark.parametrize(
    ("raw", "since"),
    [
        ("e1:42", Since("e1", 42)),
        ("e1:0", Since("e1", 0)),  # nothing seen yet in that epoch
        ("e1:007", Since("e1", 7)),
        ("A-z_9:1", Since("A-z_9", 1)),
        ("x" * 32 + ":1", Since("x" * 32, 1)),
        ("e:" + "9" * 18, Since("e", 10**18 - 1)),
    ],
)
def test_parse_since_reads_epoch_and_offset(raw: str, since: Since) -> None:
    assert parse_since(raw) == since


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "e1",
        "e1:",
        ":5",
        "e1:-1",
        "e1:+1",
        "e1: 1",
        "e1:1.5",
        "e1:1:2",
        "e1;1",
        "x" * 33 + ":1",  # epoch too long
        "e:" + "9" * 19,  # offset too long
        "é:1",  # non-ASCII epoch
        "e1:\u0661",  # an Arabic-Indic digit, which int() would take
        "e1:1\n",
        "e 1:1",
    ],
)
def test_parse_since_refuses_anything_else(raw: str) -> None:
    assert parse_since(raw) is None


def test_new_epochs_are_valid_since_epochs_and_differ() -> None:
    epochs = {new_epoch() for _ in range(100)}
    assert len(epochs) == 100
    assert all(parse_since(f"{epoch}:1") == Since(epoch, 1) for epoch in epochs)


# FeedMessage and the control message


def test_feed_message_text_is_the_exact_wire_json() -> None:
    message = FeedMessage(3, "ep", 'say "hi"')
    assert message.text == '{"offset": 3, "epoch": "ep", "data": "say \\"hi\\""}'
    assert message.event == {"type": "websocket.send", "bytes": None, "text": message.text}
    assert message.size == len(message.text)


def test_feed_message_keeps_non_ascii_and_counts_its_utf8_bytes() -> None:
    message = FeedMessage(1, "ep", "héllo 🎉")
    assert message.text == '{"offset": 1, "epoch": "ep", "data": "héllo 🎉"}'
    assert json.loads(message.text) == {"offset": 1, "epoch": "ep", "data": "héllo 🎉"}
    assert message.size == len(message.text.encode()) == len(message.text) + 1 + 3


def test_control_text_is_the_exact_wire_json() -> None:
    assert control_text(True, "ep", 7) == '{"recovered": true, "epoch": "ep", "offset": 7}'
    assert control_text(False, "ep", 0) == '{"recovered": false, "epoch": "ep", "offset": 0}'


# plan_replay


def kept(first: int, last: int, epoch: str = "ep") -> list[FeedMessage]:
    return [FeedMessage(offset, epoch, str(offset)) for offset in range(first, last + 1)]


def test_a_resume_in_the_epoch_with_everything_kept_is_served() -> None:
    replay = plan_replay(Since("ep", 2), "ep", 5, kept(3, 5))
    assert replay.recovered
    assert (replay.epoch, replay.top, offsets(replay)) == ("ep", 5, [3, 4, 5])


def test_a_resume_at_the_top_is_served_with_nothing_to_send() -> None:
    for top in (0, 5):
        replay = plan_replay(Since("ep", top), "ep", top, [])
        assert (replay.recovered, replay.top, offsets(replay)) == (True, top, [])


def test_another_epoch_is_not_recovered() -> None:
    replay = plan_replay(Since("old", 2), "ep", 5, kept(3, 5))
    assert (replay.failure, replay.epoch, replay.top, offsets(replay)) == ("epoch", "ep", 5, [])
    assert not replay.recovered


def test_an_offset_beyond_the_top_is_another_history() -> None:
    assert plan_replay(Since("ep", 6), "ep", 5, []).failure == "epoch"


@pytest.mark.parametrize("held", [kept(4, 5), []])
def test_a_resume_whose_next_message_is_gone_is_trimmed(held: list[FeedMessage]) -> None:
    replay = plan_replay(Since("ep", 2), "ep", 5, held)
    assert (replay.failure, replay.top, offsets(replay)) == ("trimmed", 5, [])


def test_an_empty_history_serves_offset_zero_and_refuses_more() -> None:
    assert plan_replay(Since("ep", 0), "ep", 0, []).recovered
    assert plan_replay(Since("ep", 1), "ep", 0, []).failure == "epoch"


# MemoryHistory: numbering, replay, between


def test_each_room_counts_from_one_in_its_own_epoch() -> None:
    feed = history()
    a = [feed.append("a", f"a{i}", now=0) for i in range(3)]
    b = feed.append("b", "b0", now=0)
    assert offsets(a) == [1, 2, 3]
    assert b.offset == 1
    assert len({message.epoch for message in a}) == 1
    assert b.epoch != a[0].epoch
    assert len(feed) == 2


def test_replay_sends_everything_after_the_offset() -> None:
    feed = history()
    messages = [feed.append("r", str(i), now=0) for i in range(5)]
    epoch = messages[0].epoch
    replay = feed.replay("r", Since(epoch, 2), now=1)
    assert (replay.recovered, replay.top, offsets(replay)) == (True, 5, [3, 4, 5])
    assert [json.loads(message.text)["data"] for message in replay.messages] == ["2", "3", "4"]
    assert offsets(feed.replay("r", Since(epoch, 0), now=1)) == [1, 2, 3, 4, 5]
    assert feed.replay("r", Since(epoch, 5), now=1).messages == []
    assert feed.replay("r", Since("other", 2), now=1).failure == "epoch"


def test_replay_of_an_unknown_room_creates_it_at_top_zero() -> None:
    feed = history()
    replay = feed.replay("new", Since("whatever", 0), now=0)
    assert (replay.failure, replay.top, replay.messages) == ("epoch", 0, ())
    assert len(feed) == 1
    assert feed.bytes == ROOM_OVERHEAD
    # The epoch it announced is the one the room's first message carries.
    assert feed.replay("new", Since(replay.epoch, 0), now=1).recovered
    assert feed.append("new", "first", now=2).epoch == replay.epoch


def test_between_returns_the_kept_messages_in_the_range_of_the_epoch() -> None:
    feed = history()
    epoch = feed.append("r", "1", now=0).epoch
    for i in range(2, 8):
        feed.append("r", str(i), now=0)
    assert offsets(feed.between("r", epoch, 2, 5)) == [3, 4, 5]
    assert offsets(feed.between("r", epoch, 5, 5)) == []
    assert feed.between("r", "other", 2, 5) == []
    assert feed.between("unknown", epoch, 0, 5) == []
    assert len(feed) == 1  # between never creates a room


# MemoryHistory: the three bounds


def test_a_room_keeps_its_last_size_messages() -> None:
    feed = history(size=3)
    epoch = feed.append("r", "1", now=0).epoch
    for i in range(2, 11):
        feed.append("r", str(i), now=0)
    assert offsets(feed.between("r", epoch, 0, 100)) == [8, 9, 10]
    assert feed.replay("r", Since(epoch, 7), now=0).recovered
    assert offsets(feed.replay("r", Since(epoch, 7), now=0)) == [8, 9, 10]
    trimmed = feed.replay("r", Since(epoch, 6), now=0)
    assert (trimmed.failure, trimmed.top) == ("trimmed", 10)
    assert feed.evicted == 0  # the ring, not the byte budget
    assert feed.bytes == ROOM_OVERHEAD + sum(m.size + MESSAGE_OVERHEAD for m in feed.between("r", epoch, 0, 100))


def test_a_room_expires_ttl_after_its_last_message_and_starts_a_new_epoch() -> None:
    feed = history(ttl=10)
    first = feed.append("r", "a", now=0)
    feed.append("r", "b", now=8)  # the TTL runs from the last message
    assert feed.replay("r", Since(first.epoch, 0), now=17).recovered
    assert len(feed) == 1
    after = feed.replay("r", Since(first.epoch, 2), now=18.5)  # 10.5 s after the last message
    assert after.failure == "epoch"
    assert after.epoch != first.epoch
    assert after.top == 0
    again = feed.append("r", "c", now=19)
    assert (again.offset, again.epoch) == (1, after.epoch)
    assert feed.bytes == ROOM_OVERHEAD + again.size + MESSAGE_OVERHEAD


def test_expiry_forgets_only_the_rooms_past_their_ttl() -> None:
    feed = history(ttl=10)
    old = feed.append("old", "x", now=0)
    fresh = feed.append("fresh", "y", now=5)
    feed.append("other", "z", now=12)  # old expired at 10, fresh lives until 15
    assert len(feed) == 2
    assert feed.between("old", old.epoch, 0, 9) == []
    assert offsets(feed.between("fresh", fresh.epoch, 0, 9)) == [1]


def test_reading_a_room_does_not_keep_it_alive() -> None:
    feed = history(ttl=10)
    first = feed.append("r", "a", now=0)
    assert feed.replay("r", Since(first.epoch, 0), now=9).recovered
    assert feed.replay("r", Since(first.epoch, 0), now=11).failure == "epoch"


def test_the_byte_budget_holds_across_many_rooms() -> None:
    message_cost = len(FeedMessage(1000, new_epoch(), "m" * 100).text) + MESSAGE_OVERHEAD
    budget = 20 * (ROOM_OVERHEAD + message_cost)
    feed = history(size=1000, max_bytes=budget)
    for number in range(3000):
        feed.append(f"room{number % 97}", "m" * 100, now=number / 1000)
        assert feed.bytes <= budget + message_cost
    assert feed.evicted > 0
    assert len(feed) < 97
    # The count is exact: what the remaining rooms hold, overheads included.
    held = 0
    for room in {f"room{n}" for n in range(97)}:
        found = feed.between(room, epoch_if_known(feed, room), 0, 10**9)
        held += sum(message.size + MESSAGE_OVERHEAD for message in found)
    assert feed.bytes == held + len(feed) * ROOM_OVERHEAD


def epoch_if_known(feed: MemoryHistory, room: str) -> str:
    """The epoch of a room the history still holds, without creating one it has forgotten."""
    rooms = feed._rooms  # read-only: between() needs the epoch, and replay() would create the room
    return rooms[room].epoch if room in rooms else ""


def test_the_least_recently_written_room_loses_its_oldest_messages_first() -> None:
    one = FeedMessage(1, new_epoch(), "x" * 50).size + MESSAGE_OVERHEAD
    feed = history(max_bytes=3 * ROOM_OVERHEAD + 6 * one)
    a1 = feed.append("a", "x" * 50, now=0)
    feed.append("a", "x" * 50, now=1)
    b1 = feed.append("b", "x" * 50, now=2)
    feed.append("b", "x" * 50, now=3)
    c1 = feed.append("c", "x" * 50, now=4)
    feed.append("c", "x" * 50, now=5)
    assert feed.evicted == 0
    feed.append("c", "x" * 50, now=6)  # one message over: a, written least recently, loses its oldest
    assert feed.evicted == 1
    assert offsets(feed.between("a", a1.epoch, 0, 9)) == [2]
    assert offsets(feed.between("b", b1.epoch, 0, 9)) == [1, 2]
    assert offsets(feed.between("c", c1.epoch, 0, 9)) == [1, 2, 3]
    assert feed.replay("a", Since(a1.epoch, 0), now=6).failure == "trimmed"
    feed.append("a", "x" * 50, now=7)  # a is now the newest: b pays next
    assert offsets(feed.between("b", b1.epoch, 0, 9)) == [2]
    assert offsets(feed.between("a", a1.epoch, 0, 9)) == [2, 3]


def test_a_room_emptied_by_the_budget_is_forgotten() -> None:
    one = FeedMessage(1, new_epoch(), "x" * 50).size + MESSAGE_OVERHEAD
    feed = history(max_bytes=2 * ROOM_OVERHEAD + 2 * one)
    a1 = feed.append("a", "x" * 50, now=0)
    feed.append("b", "x" * 50, now=1)
    feed.append("b", "x" * 50, now=2)  # over by one message: a's only message goes, and a with it
    assert len(feed) == 1
    assert feed.bytes == ROOM_OVERHEAD + 2 * one
    assert feed.between("a", a1.epoch, 0, 9) == []
    fresh = feed.append("a", "x" * 50, now=3)  # a new room, a new history
    assert (fresh.offset, fresh.epoch != a1.epoch) == (1, True)


def test_one_room_over_the_budget_keeps_its_newest_message() -> None:
    feed = history(max_bytes=ROOM_OVERHEAD + 10)
    epoch = feed.append("r", "x" * 1000, now=0).epoch
    last = feed.append("r", "y" * 1000, now=1)
    assert offsets(feed.between("r", epoch, 0, 9)) == [2]
    assert feed.bytes == ROOM_OVERHEAD + last.size + MESSAGE_OVERHEAD
    assert len(feed) == 1


def test_rooms_created_by_readers_count_against_the_budget_and_are_forgotten_first() -> None:
    feed = history(max_bytes=10 * ROOM_OVERHEAD)
    for number in range(100):
        feed.replay(f"r{number}", Since("e", 0), now=number)
        assert feed.bytes <= 10 * ROOM_OVERHEAD
    assert len(feed) == 10


@pytest.mark.parametrize(
    ("endpoint", "history_size", "outbox_size", "capacity"),
    [
        (Endpoint.FEED, 1000, 1024, 500),  # the defaults: half the history
        (Endpoint.FEED, 4000, 1024, 1024),  # a history large enough: the outbox's own bound
        (Endpoint.FEED, 1, 1024, 1),  # never below one message
        (Endpoint.CHAT, 1000, 1024, 1024),  # chat keeps no history: its own bound
    ],
)
def test_a_feed_outbox_holds_at_most_half_the_history(
    endpoint: Endpoint, history_size: int, outbox_size: int, capacity: int
) -> None:
    settings = Settings(history_size=history_size, outbox_size=outbox_size)
    assert outbox_capacity(Route(endpoint), settings) == capacity


# FeedCursor: the ordering rule of every reader of a feed room, without an event loop


def test_a_fresh_cursor_takes_the_first_message_as_next_whatever_its_offset() -> None:
    assert FeedCursor().place(FeedMessage(57, "e1", "x")) is Step.NEXT


def test_a_cursor_drops_what_it_passed_on_and_takes_the_one_after() -> None:
    cursor = FeedCursor("e1", 5)
    assert cursor.place(FeedMessage(4, "e1", "x")) is Step.ALREADY_SENT
    assert cursor.place(FeedMessage(5, "e1", "x")) is Step.ALREADY_SENT
    assert cursor.place(FeedMessage(6, "e1", "x")) is Step.NEXT


def test_a_message_further_ahead_leaves_a_gap_to_fill_first() -> None:
    assert FeedCursor("e1", 5).place(FeedMessage(9, "e1", "x")) == Gap("e1", 5, 8)


def test_a_new_epoch_is_new_from_offset_one() -> None:
    cursor = FeedCursor("e1", 500)
    assert cursor.place(FeedMessage(1, "e2", "x")) is Step.NEXT  # not "already sent": another history
    assert cursor.place(FeedMessage(4, "e2", "x")) == Gap("e2", 0, 3)


def test_passing_a_message_on_moves_the_cursor() -> None:
    cursor = FeedCursor()
    cursor.passed(FeedMessage(3, "e1", "x"))
    assert (cursor.epoch, cursor.offset) == ("e1", 3)
    assert cursor.place(FeedMessage(3, "e1", "x")) is Step.ALREADY_SENT
    cursor.passed(FeedMessage(1, "e2", "x"))
    assert cursor.place(FeedMessage(3, "e1", "x")) == Gap("e1", 0, 2)  # back to e1 counts e1 afresh too
