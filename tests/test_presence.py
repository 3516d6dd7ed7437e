"""Presence (contract §8.2): the roster's rule, and the members and their comings and goings on the wire."""

from __future__ import annotations

import json
import re
from typing import Any

import anyio
import pytest

from asgi_ws.access import mint_token
from asgi_ws.app import App
from asgi_ws.presence import Roster, anonymous_subject, event_text, members_text
from asgi_ws.topics import chat_room
from tests.asgi_driver import WebSocketDriver, connect
from tests.conftest import MakeApp
from tests.test_metrics import scrape

SECRET = "a-presence-test-secret-of-32-bytes-or-more"
ROOM = chat_room("r")


def test_a_subject_joins_with_its_first_connection_and_leaves_with_its_last() -> None:
    roster = Roster()
    assert roster.add(ROOM, "alice") is True
    assert roster.add(ROOM, "alice") is False  # a second tab
    assert roster.add(ROOM, "bob") is True
    assert sorted(roster.members(ROOM)) == ["alice", "bob"]
    assert len(roster) == 2
    assert roster.remove(ROOM, "alice") is False
    assert roster.remove(ROOM, "alice") is True
    assert roster.remove(ROOM, "alice") is False  # not a member: nothing to say
    assert roster.remove(ROOM, "bob") is True
    assert roster.members(ROOM) == []
    assert len(roster) == 0


def test_the_wire_texts() -> None:
    assert json.loads(members_text(["bob", "alice"])) == {"presence": ["alice", "bob"]}
    assert json.loads(event_text("join", "alice")) == {"join": "alice"}
    assert json.loads(event_text("leave", "alice")) == {"leave": "alice"}
    assert re.fullmatch(r"anonymous-[0-9a-f]{8}", anonymous_subject())


# On the wire, through the ASGI callable


async def received(ws: WebSocketDriver) -> dict[str, Any]:
    return dict(json.loads(await ws.receive_text()))


async def nothing_more(ws: WebSocketDriver) -> None:
    await anyio.wait_all_tasks_blocked()
    assert ws.pending() == []


def as_(name: str) -> bytes:
    return b"presence=1&token=" + mint_token(SECRET, name, ["*"], ttl=60).encode()


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/ws/chat/r", "/ws/feed/r"])
async def test_a_watcher_gets_the_members_then_joins_and_leaves_once_per_subject(make_app: MakeApp, path: str) -> None:
    app = make_app(token_secret=SECRET)
    async with connect(app, path, query_string=as_("alice")) as alice:
        assert await received(alice) == {"presence": ["alice"]}
        async with connect(app, path, query_string=as_("bob")) as bob:
            assert await received(bob) == {"presence": ["alice", "bob"]}
            assert await received(alice) == {"join": "bob"}
            async with connect(app, path, query_string=as_("bob")) as bob_again:  # a second tab: no event
                assert await received(bob_again) == {"presence": ["alice", "bob"]}
                await nothing_more(alice)
            await nothing_more(alice)  # bob still has a connection
        assert await received(alice) == {"leave": "bob"}
        await nothing_more(alice)


@pytest.mark.anyio
async def test_members_that_do_not_watch_count_and_are_sent_nothing(make_app: MakeApp) -> None:
    app = make_app(token_secret=SECRET)
    quiet = b"token=" + mint_token(SECRET, "carol", ["*"], ttl=60).encode()
    async with connect(app, "/ws/chat/r", query_string=quiet) as carol:
        async with connect(app, "/ws/chat/r", query_string=as_("alice")) as alice:
            assert await received(alice) == {"presence": ["alice", "carol"]}
        await nothing_more(carol)


@pytest.mark.anyio
async def test_without_tokens_each_connection_is_a_member_of_its_own(app: App) -> None:
    async with connect(app, "/ws/chat/r", query_string=b"presence=1") as first:
        [me] = (await received(first))["presence"]
        async with connect(app, "/ws/chat/r"):
            joined = (await received(first))["join"]
        assert await received(first) == {"leave": joined}
        assert re.fullmatch(r"anonymous-[0-9a-f]{8}", me)
        assert re.fullmatch(r"anonymous-[0-9a-f]{8}", joined)
        assert joined != me


@pytest.mark.anyio
@pytest.mark.parametrize("query", [b"presence=yes", b"presence=", b"presence=1&presence=1"])
async def test_a_bad_presence_is_400(app: App, query: bytes) -> None:
    async with connect(app, "/ws/chat/r", query_string=query, accept=False) as ws:
        assert await ws.refusal() == (400, b"invalid presence: expected 1 or 0")


@pytest.mark.anyio
async def test_metrics_count_the_members_once_per_subject(make_app: MakeApp) -> None:
    app = make_app(token_secret=SECRET)
    async with (
        connect(app, "/ws/chat/r", query_string=as_("alice")),
        connect(app, "/ws/chat/r", query_string=as_("alice")),
        connect(app, "/ws/feed/r", query_string=as_("alice")),
        connect(app, "/ws/chat/r", query_string=as_("bob")),
    ):
        assert (await scrape(app)).value("asgi_ws_presence_members") == 3  # alice twice (two rooms), bob once
    assert (await scrape(app)).value("asgi_ws_presence_members") == 0


@pytest.mark.anyio
async def test_the_other_processes_members_join_and_leave_unless_they_are_here_too(make_app: MakeApp) -> None:
    """What the Redis broker tells the hub (tests/test_redis_presence.py): the remote subjects of a room."""
    app = make_app(token_secret=SECRET)
    async with connect(app, "/ws/chat/r", query_string=as_("alice")) as alice:
        assert await received(alice) == {"presence": ["alice"]}
        app.hub.deliver_remote(ROOM, frozenset({"bob", "alice"}))  # alice on another process too: no event
        assert await received(alice) == {"join": "bob"}
        async with connect(app, "/ws/chat/r", query_string=as_("carol")) as carol:
            assert await received(carol) == {"presence": ["alice", "bob", "carol"]}
            assert await received(alice) == {"join": "carol"}
            app.hub.deliver_remote(ROOM, frozenset({"carol"}))  # bob gone there; carol there too now
            assert await received(alice) == {"leave": "bob"}
            await nothing_more(alice)
        await nothing_more(alice)  # carol left here, but is still on the other process
        app.hub.deliver_remote(ROOM, frozenset())
        assert await received(alice) == {"leave": "carol"}
    app.hub.deliver_remote(ROOM, frozenset({"dave"}))  # a room with no member here: nothing kept
    assert app.hub.remote_room_count == 0
