"""/ws/feed/{room} in-process: numbering, resume, slow consumers and gap fills (contract §8).

Each test drives the ASGI callable through :mod:`tests.asgi_driver`, under
asyncio and trio.  Where the order in which a broker hands messages back
matters (Redis numbers them, and pub/sub may lose or delay some), a small
broker defined here, on top of the memory broker's history, hands them to the
hub in the order the test chooses.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
import pytest

from asgi_ws.app import App
from asgi_ws.broker import Acked, MemoryBroker
from asgi_ws.feed import FeedMessage, MemoryHistory, Post, Replay, Since
from asgi_ws.topics import Topic, feed_room
from tests.asgi_driver import WebSocketDriver, connect
from tests.conftest import MakeApp
from tests.test_metrics import delta, scrape

pytestmark = pytest.mark.anyio

ROOM = feed_room("r")


async def feed(ws: WebSocketDriver, count: int) -> list[dict[str, Any]]:
    """The next ``count`` messages ``ws`` got, as JSON."""
    return [json.loads(await ws.receive_text()) for _ in range(count)]


def offsets(messages: list[dict[str, Any]]) -> list[int]:
    return [message["offset"] for message in messages]


async def nothing_more(ws: WebSocketDriver) -> None:
    await anyio.wait_all_tasks_blocked()
    assert ws.pending() == []


async def send_one(ws: WebSocketDriver, text: str) -> str:
    """Send ``text`` and read it back numbered; the room's epoch."""
    ws.send_text(text)
    epoch: str = (await feed(ws, 1))[0]["epoch"]
    return epoch


def resume(app: App, since: str) -> AbstractAsyncContextManager[WebSocketDriver]:
    """Connect to the room ``r`` with ``?since=``."""
    return connect(app, "/ws/feed/r", query_string=b"since=" + since.encode())


# Numbering


async def test_every_member_the_sender_included_gets_numbered_messages(app: App) -> None:
    async with connect(app, "/ws/feed/r") as a, connect(app, "/ws/feed/r") as b:
        for text in ["one", "zwei ✓", ""]:
            a.send_text(text)
        got_a, got_b = await feed(a, 3), await feed(b, 3)
        assert got_a == got_b
        epoch = got_a[0]["epoch"]
        assert got_a == [
            {"offset": 1, "epoch": epoch, "data": "one"},
            {"offset": 2, "epoch": epoch, "data": "zwei ✓"},
            {"offset": 3, "epoch": epoch, "data": ""},
        ]
        b.send_text("from b")
        assert await feed(a, 1) == [{"offset": 4, "epoch": epoch, "data": "from b"}]
        assert await feed(b, 1) == [{"offset": 4, "epoch": epoch, "data": "from b"}]


async def test_offsets_run_from_one_without_gaps_and_rooms_count_apart(make_app: MakeApp) -> None:
    app = make_app(rate_limit=0)
    async with connect(app, "/ws/feed/r") as a, connect(app, "/ws/feed") as lobby:
        for number in range(300):
            a.send_text(str(number))
        assert offsets(await feed(a, 300)) == list(range(1, 301))
        lobby.send_text("x")
        assert offsets(await feed(lobby, 1)) == [1]
        await nothing_more(a)


async def test_without_since_there_is_no_control_message(app: App) -> None:
    async with connect(app, "/ws/feed/r") as a:
        a.send_text("first")
    async with connect(app, "/ws/feed/r") as b:
        await nothing_more(b)  # the history is not replayed, and no control message comes
        b.send_text("second")
        assert offsets(await feed(b, 1)) == [2]
        await nothing_more(b)


async def test_a_bad_since_is_refused_before_accept(app: App) -> None:
    async with connect(app, "/ws/feed/r", query_string=b"since=nope", accept=False) as ws:
        status, body = await ws.refusal()
        assert status == 400
        assert b"since" in body


async def test_binary_on_the_feed_closes_4400(app: App) -> None:
    async with connect(app, "/ws/feed/r") as ws:
        ws.send_bytes(b"\x00")
        assert await ws.receive_close() == (4400, "unsupported data")


# Resume


async def test_a_resume_gets_the_control_message_then_exactly_what_it_missed_then_live(app: App) -> None:
    async with connect(app, "/ws/feed/r") as a:
        for number in range(1, 6):
            a.send_text(f"m{number}")
        sent = await feed(a, 5)
        epoch = sent[0]["epoch"]
        before = await scrape(app)
        async with resume(app, f"{epoch}:2") as b:
            assert await feed(b, 1) == [{"recovered": True, "epoch": epoch, "offset": 5}]
            assert await feed(b, 3) == sent[2:]
            a.send_text("live")
            assert await feed(b, 1) == [{"offset": 6, "epoch": epoch, "data": "live"}]
            await nothing_more(b)
        after = await scrape(app)
    assert delta(before, after, "asgi_ws_feed_replays_total") == 1
    assert delta(before, after, "asgi_ws_feed_replayed_total") == 3


async def test_a_resume_at_the_top_gets_the_control_message_and_then_live(app: App) -> None:
    async with connect(app, "/ws/feed/r") as a:
        epoch = await send_one(a, "only")
        async with resume(app, f"{epoch}:1") as b:
            assert await feed(b, 1) == [{"recovered": True, "epoch": epoch, "offset": 1}]
            await nothing_more(b)
            a.send_text("next")
            assert offsets(await feed(b, 1)) == [2]


async def test_a_long_replay_with_live_messages_meanwhile_has_no_gap_and_no_duplicate(make_app: MakeApp) -> None:
    app = make_app(rate_limit=0)
    async with connect(app, "/ws/feed/r") as a:
        for number in range(600):  # more than one batch of the replay's sends between yields
            a.send_text(str(number))
        epoch = (await feed(a, 600))[0]["epoch"]
        async with resume(app, f"{epoch}:0") as b:
            for number in range(600, 620):
                a.send_text(str(number))
            control = await feed(b, 1)
            got = await feed(b, 620)
            assert control == [{"recovered": True, "epoch": epoch, "offset": control[0]["offset"]}]
            assert offsets(got) == list(range(1, 621))
            assert [message["data"] for message in got] == [str(number) for number in range(620)]
            await nothing_more(b)


class HookedBroker(MemoryBroker):
    """The memory broker, running ``before_replay`` just before it reads the history for a resume."""

    def __init__(self, history: MemoryHistory, before_replay: Callable[[], None]) -> None:
        super().__init__(history)
        self.before_replay = before_replay

    async def replay(self, topic: Topic, since: Since) -> Replay:
        self.before_replay()
        return await super().replay(topic, since)


async def test_messages_queued_between_joining_and_reading_the_history_are_not_sent_twice(app: App) -> None:
    # The resuming client joins the room before the history is read, so that nothing falls between:
    # messages published in that window reach its outbox and the replay both.
    def meanwhile() -> None:
        app.hub.publish(ROOM, "meanwhile 1")
        app.hub.publish(ROOM, "meanwhile 2")

    app.hub.broker = HookedBroker(MemoryHistory(100, 300.0, 1 << 30), meanwhile)
    async with connect(app, "/ws/feed/r") as a:
        epoch = await send_one(a, "before")
        async with resume(app, f"{epoch}:1") as b:
            assert await feed(b, 1) == [{"recovered": True, "epoch": epoch, "offset": 3}]
            assert [(m["offset"], m["data"]) for m in await feed(b, 2)] == [(2, "meanwhile 1"), (3, "meanwhile 2")]
            await nothing_more(b)
            a.send_text("live")
            assert offsets(await feed(b, 1)) == [4]
            await nothing_more(b)


async def test_another_epoch_is_not_recovered_and_goes_on_live(app: App) -> None:
    async with connect(app, "/ws/feed/r") as a:
        epoch = await send_one(a, "x")
        before = await scrape(app)
        async with resume(app, "someotherepoch:1") as b:
            assert await feed(b, 1) == [{"recovered": False, "epoch": epoch, "offset": 1}]
            await nothing_more(b)
            a.send_text("y")
            assert await feed(b, 1) == [{"offset": 2, "epoch": epoch, "data": "y"}]
        async with resume(app, f"{epoch}:9") as c:  # an offset this history never reached
            assert await feed(c, 1) == [{"recovered": False, "epoch": epoch, "offset": 2}]
        after = await scrape(app)
    assert delta(before, after, "asgi_ws_feed_recoveries_failed_total", reason="epoch") == 2
    assert delta(before, after, "asgi_ws_feed_replays_total") == 0


async def test_a_resume_past_the_kept_history_is_trimmed_and_goes_on_live(make_app: MakeApp) -> None:
    app = make_app(history_size=3)  # and so an outbox of one message (half the history): read as it comes
    async with connect(app, "/ws/feed/r") as a:
        for number in range(10):
            epoch = await send_one(a, str(number))
        before = await scrape(app)
        async with resume(app, f"{epoch}:6") as b:  # 7 is gone: only 8, 9, 10 are kept
            assert await feed(b, 1) == [{"recovered": False, "epoch": epoch, "offset": 10}]
            await nothing_more(b)
            a.send_text("live")
            assert offsets(await feed(b, 1)) == [11]
        async with resume(app, f"{epoch}:8") as c:  # 9 onwards is kept
            assert await feed(c, 1) == [{"recovered": True, "epoch": epoch, "offset": 11}]
            assert offsets(await feed(c, 3)) == [9, 10, 11]
        after = await scrape(app)
    assert delta(before, after, "asgi_ws_feed_recoveries_failed_total", reason="trimmed") == 1
    assert delta(before, after, "asgi_ws_feed_replays_total") == 1
    assert delta(before, after, "asgi_ws_feed_replayed_total") == 3


# Slow consumers lose nothing


async def until_close(ws: WebSocketDriver) -> tuple[list[dict[str, Any]], tuple[int, str]]:
    """The data messages ``ws`` got up to the app's close, and the close."""
    got = []
    while True:
        event = await ws.receive()
        if event["type"] == "websocket.close":
            return got, (event["code"], event["reason"])
        got.append(json.loads(event["text"]))


async def test_a_feed_client_closed_4503_resumes_and_gets_everything_it_missed(make_app: MakeApp) -> None:
    app = make_app(outbox_size=8, rate_limit=0)
    async with connect(app, "/ws/feed/r") as talker:
        async with connect(app, "/ws/feed/r") as stuck:
            talker.send_text("0")
            seen = await feed(stuck, 1)
            stuck.send_gate = anyio.Event()  # it stops reading
            for number in range(1, 50):
                talker.send_text(str(number))
            assert offsets(await feed(talker, 50)) == list(range(1, 51))
            stuck.send_gate.set()
            more, close = await until_close(stuck)
            assert close == (4503, "slow consumer")
            seen += more
            assert offsets(seen) == list(range(1, len(seen) + 1))  # what it got before the close, in order
        epoch = seen[0]["epoch"]
        async with resume(app, f"{epoch}:{seen[-1]['offset']}") as again:
            assert await feed(again, 1) == [{"recovered": True, "epoch": epoch, "offset": 50}]
            missed = await feed(again, 50 - len(seen))
            assert [message["data"] for message in seen + missed] == [str(number) for number in range(50)]
            await nothing_more(again)


# Publish ids and acks (contract §8.1)


def by_kind(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The numbered messages and the acks among ``messages``, each in the order they came."""
    return [m for m in messages if "ack" not in m], [m for m in messages if "ack" in m]


async def test_a_publish_with_an_id_is_numbered_for_the_room_and_acked_to_its_sender_alone(app: App) -> None:
    async with connect(app, "/ws/feed/r") as sender, connect(app, "/ws/feed/r") as reader:
        sender.send_text(json.dumps({"id": "m1", "data": "hello"}))
        numbered, acks = by_kind(await feed(sender, 2))
        epoch = numbered[0]["epoch"]
        assert numbered == [{"offset": 1, "epoch": epoch, "data": "hello"}]
        assert acks == [{"ack": "m1", "epoch": epoch, "offset": 1}]
        assert await feed(reader, 1) == numbered  # the room gets the data, not the id, and no ack
        await nothing_more(reader)
        sender.send_text("plain")  # plain text keeps working, without an ack
        assert await feed(sender, 1) == [{"offset": 2, "epoch": epoch, "data": "plain"}]
        await nothing_more(sender)


async def test_a_resend_after_a_reconnect_is_acked_with_the_first_number_and_not_numbered_again(app: App) -> None:
    before = await scrape(app)
    publish = json.dumps({"id": "m1", "data": "once"})
    async with connect(app, "/ws/feed/r") as reader:
        async with connect(app, "/ws/feed/r") as sender:
            sender.send_text(publish)
            _, [ack] = by_kind(await feed(sender, 2))
        # The sender lost its connection before it could tell: it resends on a new one.
        async with resume(app, f"{ack['epoch']}:0") as again:
            assert (await feed(again, 2))[1] == {"offset": 1, "epoch": ack["epoch"], "data": "once"}  # the replay
            again.send_text(publish)
            assert await feed(again, 1) == [ack]
            again.send_text(json.dumps({"id": "m2", "data": "next"}))
            numbered, acks = by_kind(await feed(again, 2))
            assert offsets(numbered) == [2]
            assert acks == [{"ack": "m2", "epoch": ack["epoch"], "offset": 2}]
        assert [message["data"] for message in await feed(reader, 2)] == ["once", "next"]  # "once" once
        await nothing_more(reader)
    after = await scrape(app)
    assert delta(before, after, "asgi_ws_feed_duplicates_total") == 1


async def test_the_same_id_in_another_room_is_another_message(app: App) -> None:
    publish = json.dumps({"id": "m1", "data": "x"})
    async with connect(app, "/ws/feed/r") as first, connect(app, "/ws/feed/s") as second:
        first.send_text(publish)
        second.send_text(publish)
        assert by_kind(await feed(first, 2))[1][0]["offset"] == 1
        assert by_kind(await feed(second, 2))[1][0]["offset"] == 1


@pytest.mark.parametrize(
    "text",
    [
        '{"id": "", "data": "x"}',
        '{"id": "has space", "data": "x"}',
        '{"id": "m1", "data": 1}',
        '{"id": "m1"}',
        '{"id": "m1", "data": "x", "from": "mallory"}',
    ],
)
async def test_an_object_with_an_id_the_client_got_wrong_closes_4400(app: App, text: str) -> None:
    async with connect(app, "/ws/feed/r") as ws:
        ws.send_text(text)
        assert await ws.receive_close() == (4400, "invalid publish id")


async def test_an_id_on_chat_is_plain_text(app: App) -> None:
    """Only the feed numbers, so only the feed acks: elsewhere the text is what it always was."""
    publish = json.dumps({"id": "m1", "data": "x"})
    async with connect(app, "/ws/chat/r") as ws:
        ws.send_text(publish)
        assert await ws.receive_text() == publish


# Gaps: a broker that numbers elsewhere (Redis) and hands messages back out of order


class LateBroker(MemoryBroker):
    """Numbers like the memory broker but delivers nothing itself: the test hands each message to the hub.

    As the Redis broker does, ``append`` returns None, so the hub sends nothing
    at once; ``held`` keeps the numbered messages for the test to deliver in any
    order, or never, as a lossy pub/sub would.
    """

    def __init__(self) -> None:
        super().__init__(MemoryHistory(100, 300.0, 1 << 30))
        self.held: list[FeedMessage] = []
        self.between_calls: list[tuple[int, int]] = []

    def append(self, topic: Topic, post: Post, acked: Acked | None = None) -> None:  # type: ignore[override]
        self.held.append(self.history.append(topic.name, post.data, sender=post.sender))

    async def between(self, topic: Topic, epoch: str, after: int, until: int) -> list[FeedMessage]:
        self.between_calls.append((after, until))
        return await super().between(topic, epoch, after, until)


async def test_a_session_fills_a_gap_from_the_history_before_a_later_message(app: App) -> None:
    broker = LateBroker()
    app.hub.broker = broker
    async with connect(app, "/ws/feed/r") as a, connect(app, "/ws/feed/r") as b:
        for number in range(1, 8):
            a.send_text(f"m{number}")
        await anyio.wait_all_tasks_blocked()
        assert [message.offset for message in broker.held] == list(range(1, 8))
        await nothing_more(a)  # nothing is delivered until the broker hands it back
        held = {message.offset: message for message in broker.held}
        before = await scrape(app)
        app.hub.deliver_remote(ROOM, held[1])
        app.hub.deliver_remote(ROOM, held[2])
        assert offsets(await feed(a, 2)) == [1, 2]
        app.hub.deliver_remote(ROOM, held[5])  # 3 and 4 never came: they are in the history
        assert [(m["offset"], m["data"]) for m in await feed(a, 3)] == [(3, "m3"), (4, "m4"), (5, "m5")]
        assert offsets(await feed(b, 5)) == [1, 2, 3, 4, 5]
        app.hub.deliver_remote(ROOM, held[3])  # late, after the fill: dropped
        app.hub.deliver_remote(ROOM, held[4])
        app.hub.deliver_remote(ROOM, held[6])
        assert offsets(await feed(a, 1)) == [6]
        assert offsets(await feed(b, 1)) == [6]
        await nothing_more(a)
        await nothing_more(b)
        after = await scrape(app)
    assert broker.between_calls == [(2, 4), (2, 4)]  # once per session
    assert delta(before, after, "asgi_ws_feed_gaps_filled_total") == 4  # two messages for each of two sessions


async def test_a_message_of_a_new_epoch_starts_a_new_count_without_a_fill(app: App) -> None:
    broker = LateBroker()
    app.hub.broker = broker
    async with connect(app, "/ws/feed/r") as a:
        app.hub.deliver_remote(ROOM, FeedMessage(7, "old", "before the history was lost"))
        app.hub.deliver_remote(ROOM, FeedMessage(1, "new", "first of the new history"))
        app.hub.deliver_remote(ROOM, FeedMessage(2, "new", "second"))
        got = await feed(a, 3)
        assert [(m["epoch"], m["offset"]) for m in got] == [("old", 7), ("new", 1), ("new", 2)]
        assert broker.between_calls == []
        await nothing_more(a)
