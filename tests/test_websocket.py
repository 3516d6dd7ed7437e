"""asgi_ws.websocket: every endpoint of contract §1 and every policy of contract §3, in-process.

Each test drives the ASGI callable directly through :mod:`tests.asgi_driver`,
which also fails the test if the app sends an event that is invalid for the
connection's state.  No server, no sockets.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import anyio
import pytest

import asgi_ws.endpoints
import asgi_ws.handshake
import asgi_ws.runtime
import asgi_ws.websocket
from asgi_ws.app import App
from asgi_ws.lifecycle import State
from asgi_ws.topics import BROADCAST, chat_room
from tests.asgi_driver import WebSocketDriver, connect
from tests.conftest import MakeApp

pytestmark = pytest.mark.anyio


# /ws


@pytest.mark.parametrize("text", ["hello", "", "héllo wörld ✓ 🎉 日本"], ids=["ascii", "empty", "non-ascii"])
async def test_ws_answers_text_with_prefix(app: App, text: str) -> None:
    async with connect(app, "/ws") as ws:
        ws.send_text(text)
        assert await ws.receive_text() == f"Message text was: {text}"


async def test_ws_echoes_binary_unchanged(app: App) -> None:
    async with connect(app, "/ws") as ws:
        ws.send_bytes(b"\x00\xff\x80binary")
        assert await ws.receive_bytes() == b"\x00\xff\x80binary"
        ws.send_bytes(b"")
        assert await ws.receive_bytes() == b""


async def test_client_disconnect_ends_the_app_without_a_close(app: App) -> None:
    async with connect(app, "/ws") as ws:
        ws.disconnect(1001)
        await ws.wait_app_done()
        assert ws.pending() == []
    assert app.hub.connections == 0


async def test_normal_end_is_not_a_close_frame_from_the_app(app: App) -> None:
    # The client leaves first, so 1000 is the client's; the app sends nothing more.
    async with connect(app, "/ws") as ws:
        ws.send_text("a")
        assert await ws.receive_text() == "Message text was: a"
        ws.disconnect(1000)
        await ws.wait_app_done()
        assert ws.state is State.ACCEPTED


# /echo


async def test_echo_returns_text_and_bytes_unchanged(app: App) -> None:
    async with connect(app, "/echo") as ws:
        for text in ["", "plain", "ünïcödé 🚀", "x" * 1000]:
            ws.send_text(text)
            assert await ws.receive_text() == text
        ws.send_bytes(b"\x01\x02")
        assert await ws.receive_bytes() == b"\x01\x02"


async def test_echo_accepts_a_message_exactly_at_the_size_limit(make_app: MakeApp) -> None:
    app = make_app(max_message_size=1000)
    async with connect(app, "/echo") as ws:
        ws.send_text("é" * 500)  # 1000 bytes of UTF-8
        assert await ws.receive_text() == "é" * 500
        ws.send_bytes(b"b" * 1000)
        assert await ws.receive_bytes() == b"b" * 1000


# /ws_json


async def test_ws_json_wraps_valid_json(app: App) -> None:
    async with connect(app, "/ws_json") as ws:
        for value in [{"a": [1, 2, {"b": None}]}, [], "string", 3.5, None, True, {"ü": "日本"}]:
            ws.send_text(json.dumps(value))
            reply = json.loads(await ws.receive_text())
            assert reply == {"message": "Received JSON data", "data": value}


async def test_ws_json_answers_invalid_json_and_stays_open(app: App) -> None:
    async with connect(app, "/ws_json") as ws:
        for text in ["{bad", "", "[1,", "nul", "{'single': 1}"]:
            ws.send_text(text)
            reply = json.loads(await ws.receive_text())
            assert reply["error"] == "invalid_json"
            assert isinstance(reply["detail"], str)
            assert reply["detail"]
        ws.send_text('{"still": "open"}')
        assert json.loads(await ws.receive_text())["data"] == {"still": "open"}


async def test_ws_json_answers_json_nested_past_the_recursion_limit(app: App) -> None:
    async with connect(app, "/ws_json") as ws:
        ws.send_text("[" * 60_000)
        reply = json.loads(await ws.receive_text())
        assert reply["error"] == "invalid_json"


async def test_ws_json_keeps_non_ascii_as_is(app: App) -> None:
    async with connect(app, "/ws_json") as ws:
        ws.send_text('"日本"')
        assert await ws.receive_text() == '{"message": "Received JSON data", "data": "日本"}'


# Binary on text-only endpoints: close 4400 (contract §1, §3)


@pytest.mark.parametrize("path", ["/ws_json", "/ws_broadcast", "/ws/chat", "/ws/chat/room1", "/stream"])
async def test_binary_on_text_endpoint_closes_4400(app: App, path: str) -> None:
    async with connect(app, path) as ws:
        ws.send_bytes(b"\x00")
        assert await ws.receive_close() == (4400, "unsupported data")
        await ws.wait_app_done()


# /ws_broadcast


async def test_broadcast_reaches_every_other_client_not_the_sender(app: App) -> None:
    async with (
        connect(app, "/ws_broadcast") as a,
        connect(app, "/ws_broadcast") as b,
        connect(app, "/ws_broadcast") as c,
    ):
        a.send_text("from a")
        assert await b.receive_text() == "New message: from a"
        assert await c.receive_text() == "New message: from a"
        c.send_text("from c")
        assert await a.receive_text() == "New message: from c"
        assert await b.receive_text() == "New message: from c"
        await anyio.wait_all_tasks_blocked()
        assert a.pending() == []
        assert c.pending() == []


async def test_broadcast_with_one_client_sends_nothing(app: App) -> None:
    async with connect(app, "/ws_broadcast") as a:
        a.send_text("anyone?")
        await anyio.wait_all_tasks_blocked()
        assert a.pending() == []


# /ws/chat and /ws/chat/{room}


async def test_chat_reaches_everyone_in_the_room_sender_included(app: App) -> None:
    async with connect(app, "/ws/chat/r1") as a, connect(app, "/ws/chat/r1") as b:
        a.send_text("hi ✓")
        assert await a.receive_text() == "hi ✓"
        assert await b.receive_text() == "hi ✓"


async def test_chat_without_room_is_the_lobby(app: App) -> None:
    async with connect(app, "/ws/chat") as a, connect(app, "/ws/chat/lobby") as b:
        a.send_text("lobby message")
        assert await b.receive_text() == "lobby message"


async def test_chat_rooms_are_isolated(app: App) -> None:
    async with connect(app, "/ws/chat/red") as red, connect(app, "/ws/chat/blue") as blue:
        red.send_text("red only")
        assert await red.receive_text() == "red only"
        await anyio.wait_all_tasks_blocked()
        assert blue.pending() == []
        assert app.hub.room_count == 2


async def test_chat_keeps_each_senders_order(app: App) -> None:
    async with connect(app, "/ws/chat/order") as a, connect(app, "/ws/chat/order") as b:
        for i in range(100):
            a.send_text(f"a{i}")
        assert [await b.receive_text() for _ in range(100)] == [f"a{i}" for i in range(100)]


async def test_room_membership_ends_with_the_connection(app: App) -> None:
    async with connect(app, "/ws/chat/temp") as ws:
        assert app.hub.room_count == 1
        ws.disconnect()
        await ws.wait_app_done()
    assert app.hub.room_count == 0
    assert app.hub.connections == 0


# /stream


async def test_stream_pushes_numbers_in_order(app: App) -> None:
    async with connect(app, "/stream", query_string=b"count=5") as ws:
        ws.send_text("go")
        assert [await ws.receive_text() for _ in range(5)] == ["1", "2", "3", "4", "5"]


async def test_stream_with_a_json_message_labels_each_push(app: App) -> None:
    async with connect(app, "/stream", query_string=b"count=3") as ws:
        ws.send_text('{"message": "tick"}')
        replies = [json.loads(await ws.receive_text()) for _ in range(3)]
        assert replies == [{"message": f"tick - {i}", "number": i} for i in (1, 2, 3)]


async def test_stream_default_count_is_ten_thousand_complete_and_in_order(app: App) -> None:
    async with connect(app, "/stream") as ws:
        ws.send_text("go")
        assert [await ws.receive_text() for _ in range(10_000)] == [str(i) for i in range(1, 10_001)]
        await anyio.wait_all_tasks_blocked()
        assert ws.pending() == []


async def test_stream_requests_run_one_after_another(app: App) -> None:
    async with connect(app, "/stream", query_string=b"count=100") as ws:
        ws.send_text('{"message": "first"}')
        ws.send_text('{"message": "second"}')
        replies = [json.loads(await ws.receive_text())["message"] for _ in range(200)]
        assert replies == [f"first - {i}" for i in range(1, 101)] + [f"second - {i}" for i in range(1, 101)]


async def test_stream_stops_when_the_client_disconnects(app: App) -> None:
    async with connect(app, "/stream", query_string=b"count=1000000") as ws:
        ws.send_text("go")
        assert await ws.receive_text() == "1"
        ws.disconnect(1001)
        await ws.wait_app_done()
    assert len(ws.sent) < 1_000_000


async def _push_requests(ws: WebSocketDriver, count: int) -> None:
    """Hold the client's reading (its send_gate), send ``count`` requests r1, r2, ..., let the app take them."""
    ws.send_gate = anyio.Event()  # the first push now waits in its first send: every later request comes during it
    for number in range(1, count + 1):
        ws.send_text(json.dumps({"message": f"r{number}"}))
    await anyio.wait_all_tasks_blocked()


async def _pushed(ws: WebSocketDriver, requests: int, count: int) -> list[str]:
    """Open the client's reading and take ``requests`` pushes of ``count`` messages: their "message" fields."""
    assert ws.send_gate is not None
    ws.send_gate.set()
    return [json.loads(await ws.receive_text())["message"] for _ in range(requests * count)]


async def test_stream_requests_during_a_push_wait_their_turn_in_order(app: App) -> None:
    async with connect(app, "/stream", query_string=b"count=3") as ws:
        await _push_requests(ws, 5)  # one push runs, four wait: the default max_pending_pushes
        assert await _pushed(ws, 5, 3) == [f"r{request} - {i}" for request in range(1, 6) for i in (1, 2, 3)]
        await anyio.wait_all_tasks_blocked()
        assert ws.pending() == []  # and no close: the connection stays open
        ws.send_text("go")  # a later request starts a new push
        assert [await ws.receive_text() for _ in range(3)] == ["1", "2", "3"]


async def test_one_more_waiting_push_request_closes_4429_at_once(app: App) -> None:
    async with connect(app, "/stream", query_string=b"count=3") as ws:
        await _push_requests(ws, 7)  # r1 runs, r2 to r5 wait, r6 is one too many, r7 comes after it
        assert ws.unread() == 1  # the app read no further than the request it refused
        assert ws.send_gate is not None
        ws.send_gate.set()
        # The client never read, so the push had sent nothing; the close comes first, and nothing after it.
        assert await ws.receive() == {"type": "websocket.close", "code": 4429, "reason": "too many requests"}
        await ws.wait_app_done()
    assert app.hub.connections == 0


async def test_zero_pending_pushes_refuses_any_request_during_a_push(make_app: MakeApp) -> None:
    app = make_app(max_pending_pushes=0)
    async with connect(app, "/stream", query_string=b"count=2") as ws:
        await _push_requests(ws, 2)
        assert ws.send_gate is not None
        ws.send_gate.set()
        assert await ws.receive_close() == (4429, "too many requests")


async def test_waiting_push_requests_cost_no_task_each(make_app: MakeApp) -> None:
    app = make_app(max_pending_pushes=100, rate_limit=0)
    async with connect(app, "/stream", query_string=b"count=2") as ws:
        await anyio.wait_all_tasks_blocked()
        tasks, app_tasks = len(anyio.get_running_tasks()), asgi_ws.runtime.app_task_count()
        await _push_requests(ws, 101)  # one push and 100 waiting
        assert len(anyio.get_running_tasks()) == tasks + 1  # the pusher, and nothing per waiting request
        assert asgi_ws.runtime.app_task_count() == app_tasks + 1
        assert (await _pushed(ws, 101, 2))[-2:] == ["r101 - 1", "r101 - 2"]
        await anyio.wait_all_tasks_blocked()
        assert len(anyio.get_running_tasks()) == tasks  # the pusher ends with its queue: an idle /stream holds none
        assert asgi_ws.runtime.app_task_count() == app_tasks


# Size limit: close 4413


@pytest.mark.parametrize("path", ["/ws", "/echo", "/ws_json", "/ws/chat", "/stream"])
async def test_text_over_the_size_limit_closes_4413(make_app: MakeApp, path: str) -> None:
    app = make_app(max_message_size=100)
    async with connect(app, path) as ws:
        ws.send_text("é" * 51)  # 51 characters, 102 bytes: the limit is in bytes
        assert await ws.receive_close() == (4413, "message too big")


async def test_binary_over_the_size_limit_closes_4413(make_app: MakeApp) -> None:
    app = make_app(max_message_size=100)
    async with connect(app, "/echo") as ws:
        ws.send_bytes(b"x" * 101)
        assert await ws.receive_close() == (4413, "message too big")


async def test_default_size_limit_is_64_kib(app: App) -> None:
    async with connect(app, "/echo") as ws:
        ws.send_text("x" * 65536)
        assert await ws.receive_text() == "x" * 65536
        ws.send_text("x" * 65537)
        assert await ws.receive_close() == (4413, "message too big")


# Rate limit: close 4429


# The bucket is made at the first message: after a silent start it is as full as one made at accept, and no fuller.
@pytest.mark.parametrize("silence", [0, 0.2], ids=["at-once", "after-a-silent-start"])
async def test_flood_past_the_burst_closes_4429(make_app: MakeApp, silence: float) -> None:
    app = make_app(rate_limit=1, rate_burst=5)
    async with connect(app, "/echo") as ws:
        if silence:
            await anyio.sleep(silence)
        for i in range(6):
            ws.send_text(str(i))
        assert [await ws.receive_text() for _ in range(5)] == ["0", "1", "2", "3", "4"]
        assert await ws.receive_close() == (4429, "rate limited")


async def test_rate_limit_zero_turns_it_off(make_app: MakeApp) -> None:
    app = make_app(rate_limit=0, rate_burst=1)
    async with connect(app, "/echo") as ws:
        for i in range(500):
            ws.send_text(str(i))
        assert [await ws.receive_text() for _ in range(500)] == [str(i) for i in range(500)]


# Idle timeout: close 4408


async def test_idle_connection_closes_4408(make_app: MakeApp) -> None:
    app = make_app(idle_timeout=0.2)
    async with connect(app, "/ws") as ws:
        assert await ws.receive_close() == (4408, "idle timeout")


async def test_messages_keep_a_connection_from_idling(make_app: MakeApp) -> None:
    app = make_app(idle_timeout=0.5)
    async with connect(app, "/echo") as ws:
        for i in range(8):
            ws.send_text(str(i))
            assert await ws.receive_text() == str(i)
            await anyio.sleep(0.1)
        assert ws.state is State.ACCEPTED
        assert await ws.receive_close() == (4408, "idle timeout")


async def test_a_client_reading_an_active_room_is_not_idle(make_app: MakeApp) -> None:
    app = make_app(idle_timeout=0.5)
    async with connect(app, "/ws/chat/busy") as talker, connect(app, "/ws/chat/busy") as reader:
        for i in range(8):
            talker.send_text(str(i))
            assert await reader.receive_text() == str(i)
            await anyio.sleep(0.1)
        assert reader.state is State.ACCEPTED


async def test_idle_timeout_zero_turns_it_off(make_app: MakeApp) -> None:
    app = make_app(idle_timeout=0)
    async with connect(app, "/ws") as ws:
        await anyio.sleep(0.3)
        assert ws.pending() == []


# Slow consumer: close 4503, the others unaffected


@asynccontextmanager
async def clients(app: App, path: str, count: int) -> AsyncIterator[list[WebSocketDriver]]:
    """``count`` clients connected to ``path``, in the order they connected."""
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(connect(app, path)) for _ in range(count)]


async def test_full_outbox_closes_that_client_4503_and_others_get_everything(make_app: MakeApp) -> None:
    app = make_app(outbox_size=8, rate_limit=0)
    async with clients(app, "/ws/chat/fan", 3) as (talker, healthy, stuck):
        stuck.send_gate = anyio.Event()  # its send() now blocks: a client that stopped reading
        for i in range(50):
            talker.send_text(str(i))
        assert [await healthy.receive_text() for _ in range(50)] == [str(i) for i in range(50)]
        assert [await talker.receive_text() for _ in range(50)] == [str(i) for i in range(50)]
        stuck.send_gate.set()  # let the stuck client's close through
        assert await stuck.receive_close() == (4503, "slow consumer")
        await stuck.wait_app_done()
        assert len(app.hub.members(chat_room("fan"))) == 2


async def test_a_stalled_member_is_closed_4503_past_the_byte_bound_before_the_message_bound(app: App) -> None:
    # Defaults: 1024 messages or 1 MiB.  Messages of 64 KiB fill 1 MiB at 16, long before 1024.
    big = "x" * 65536
    async with connect(app, "/ws/chat/big") as talker, connect(app, "/ws/chat/big") as stuck:
        stuck.send_gate = anyio.Event()
        talker.send_text(big)
        assert await talker.receive_text() == big
        await anyio.wait_all_tasks_blocked()  # the stuck member's sender holds message 1 in its send()
        for _ in range(16):  # 16 more fill its outbox to exactly 1 MiB: not too many yet
            talker.send_text(big)
        assert [len(await talker.receive_text()) for _ in range(16)] == [65536] * 16
        await anyio.wait_all_tasks_blocked()
        assert len(app.hub.members(chat_room("big"))) == 2  # the stuck member is still in the room
        assert stuck.pending() == []
        talker.send_text(big)  # one byte past the bound would do; this is 64 KiB past it
        assert len(await talker.receive_text()) == 65536
        await anyio.wait_all_tasks_blocked()
        assert len(app.hub.members(chat_room("big"))) == 1
        stuck.send_gate.set()
        assert await stuck.receive_close() == (4503, "slow consumer")


@asynccontextmanager
async def _stopped_reading(make_app: MakeApp) -> AsyncIterator[tuple[App, WebSocketDriver]]:
    """A /ws_broadcast client whose send() blocks until its ``send_gate`` is set, broadcast past its outbox of 2."""
    app = make_app(outbox_size=2, rate_limit=0)
    async with connect(app, "/ws_broadcast") as talker, connect(app, "/ws_broadcast") as stuck:
        stuck.send_gate = anyio.Event()
        for i in range(10):
            talker.send_text(str(i))
        yield app, stuck


async def test_a_slow_consumers_close_waits_longer_than_an_ordinary_close(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server that takes the close frame only once the client has read some of its backlog, as
    # uvicorn 0.54.0 does (websockets_sansio_impl.py, WebSocketsSansIOProtocol.send awaits
    # ``writable`` before writing; Kludex/uvicorn#3048, merged): the close must outlast CLOSE_TIMEOUT.
    monkeypatch.setattr(asgi_ws.websocket, "CLOSE_TIMEOUT", 0.05)
    async with _stopped_reading(make_app) as (app, stuck):
        await anyio.sleep(0.3)  # six ordinary close timeouts, and the client still reads nothing
        assert len(app.hub.members(BROADCAST)) == 1  # the stuck client was closed and left the group
        assert stuck.send_gate is not None
        stuck.send_gate.set()
        assert await stuck.receive_close() == (4503, "slow consumer")
        await stuck.wait_app_done()


async def test_a_slow_consumer_that_never_reads_again_is_let_go(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(asgi_ws.websocket, "SLOW_CONSUMER_CLOSE_TIMEOUT", 0.2)
    async with _stopped_reading(make_app) as (app, stuck):
        await stuck.wait_app_done()  # its gate stays shut: the close never went out, and the app returned
        assert stuck.pending() == []
        assert app.hub.connections == 1  # only the talker


async def test_broadcast_never_waits_for_a_slow_client(make_app: MakeApp) -> None:
    app = make_app(outbox_size=1000, rate_limit=0)
    async with clients(app, "/ws_broadcast", 3) as (talker, healthy, stuck):
        stuck.send_gate = anyio.Event()  # its send() blocks from now on
        for i in range(100):
            talker.send_text(str(i))
        # Everything reaches the healthy client while the stuck one holds its first message.
        assert [await healthy.receive_text() for _ in range(100)] == [f"New message: {i}" for i in range(100)]
        assert stuck.pending() == []
        stuck.send_gate.set()
        assert [await stuck.receive_text() for _ in range(100)] == [f"New message: {i}" for i in range(100)]


# Unexpected error: close 4500


async def test_unexpected_error_closes_4500_and_is_logged(
    app: App, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(text: str) -> str:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(asgi_ws.endpoints, "ws_reply", broken)
    async with connect(app, "/ws") as ws:
        ws.send_text("x")
        assert await ws.receive_close() == (4500, "internal error")
    assert "ZeroDivisionError: boom" in caplog.text
    assert app.hub.connections == 0


# Sends that fail after a disconnect (contract §3: servers raise different things)


@pytest.mark.parametrize("error", [OSError("gone"), RuntimeError("closed"), ConnectionResetError()])
async def test_failed_send_ends_the_session_quietly(app: App, error: Exception) -> None:
    async with connect(app, "/echo") as ws:
        ws.fail_sends = error
        ws.send_text("x")
        await ws.wait_app_done()
    assert app.hub.connections == 0


# Rejections before accept


@pytest.mark.parametrize(
    ("path", "query", "status"),
    [
        ("/nope", b"", 404),
        ("/ws/", b"", 404),
        ("/ws/chat/", b"", 400),
        ("/ws/chat/bad room", b"", 400),
        ("/ws/chat/" + "r" * 65, b"", 400),
        ("/ws/chat/a/b", b"", 400),
        ("/stream", b"count=0", 400),
        ("/stream", b"count=1000001", 400),
        ("/stream", b"count=ten", 400),
    ],
)
async def test_bad_handshakes_get_a_denial_response(app: App, path: str, query: bytes, status: int) -> None:
    async with connect(app, path, query_string=query, accept=False) as ws:
        got, body = await ws.refusal()
        assert got == status
        assert body
        await ws.wait_app_done()


async def test_without_the_denial_extension_rejection_is_close_before_accept(app: App) -> None:
    async with connect(app, "/nope", extensions={}, accept=False) as ws:
        ws.put({"type": "websocket.connect"})
        event = await ws.receive()
        assert event["type"] == "websocket.close"
        await ws.wait_app_done()
        assert ws.state is State.CLOSED


async def test_extensions_none_is_treated_as_no_extensions(app: App) -> None:
    driver_scope_extensions: dict[str, dict[object, object]] | None = None
    async with connect(app, "/nope", accept=False) as ws:
        ws.scope["extensions"] = driver_scope_extensions
        ws.put({"type": "websocket.connect"})
        assert (await ws.receive())["type"] == "websocket.close"


ORIGIN_CASES = [
    ([], [(b"host", b"example.com")], True),  # no Origin: not a browser, allowed
    ([], [(b"host", b"example.com"), (b"origin", b"https://example.com")], True),
    ([], [(b"host", b"example.com:8000"), (b"origin", b"http://example.com:8000")], True),
    ([], [(b"host", b"example.com"), (b"origin", b"https://evil.example")], False),
    ([], [(b"host", b"example.com"), (b"origin", b"null")], False),
    (["https://app.example"], [(b"host", b"api.example"), (b"origin", b"https://app.example")], True),
    (["*"], [(b"host", b"example.com"), (b"origin", b"https://anything.example")], True),
]


@pytest.mark.parametrize(("allowed", "headers", "ok"), ORIGIN_CASES)
async def test_origin_check(
    make_app: MakeApp, allowed: list[str], headers: list[tuple[bytes, bytes]], ok: bool
) -> None:
    app = make_app(allowed_origins=tuple(allowed))
    async with connect(app, "/ws", headers=headers, accept=False) as ws:
        if ok:
            await ws.accept()
        else:
            assert await ws.refusal() == (403, b"origin not allowed")


async def test_connection_cap_refuses_with_503(make_app: MakeApp) -> None:
    app = make_app(max_connections=2)
    async with connect(app, "/ws"), connect(app, "/ws"):
        async with connect(app, "/ws", accept=False) as third:
            assert await third.refusal() == (503, b"too many connections")
        assert app.hub.connections == 2
    async with connect(app, "/ws"):
        assert app.hub.connections == 1
    assert app.hub.connections == 0


async def test_connection_cap_without_extension_is_403_close(make_app: MakeApp) -> None:
    app = make_app(max_connections=1)
    async with connect(app, "/ws"), connect(app, "/ws", extensions={}, accept=False) as second:
        second.put({"type": "websocket.connect"})
        assert (await second.receive())["type"] == "websocket.close"


async def test_disconnect_before_connect_is_ignored(app: App) -> None:
    async with connect(app, "/ws", accept=False) as ws:
        ws.disconnect()
        await ws.wait_app_done()
        assert ws.sent == []
    assert app.hub.connections == 0


async def test_routing_error_is_refused_with_500(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(path: str, query: bytes) -> None:
        raise ValueError("router bug")

    monkeypatch.setattr(asgi_ws.handshake, "resolve", broken)
    async with connect(app, "/ws", accept=False) as ws:
        assert await ws.refusal() == (500, b"internal error")


async def test_ignores_unknown_event_types(app: App) -> None:
    async with connect(app, "/echo") as ws:
        ws.put({"type": "websocket.unknown"})
        ws.put({"type": "websocket.receive", "text": None, "bytes": None})
        ws.send_text("after")
        assert await ws.receive_text() == "after"


async def test_refusal_to_a_client_already_gone_is_quiet(app: App, caplog: pytest.LogCaptureFixture) -> None:
    async with connect(app, "/nope", accept=False) as ws:
        ws.fail_sends = OSError("gone")
        ws.put({"type": "websocket.connect"})
        await ws.wait_app_done()
    # The app tried the refusal once, gave up at the first failed send, and neither raised nor logged an error.
    assert [event["type"] for event in ws.attempted] == ["websocket.http.response.start"]
    assert ws.attempted[0]["status"] == 404
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


async def test_accept_to_a_client_already_gone_is_quiet(app: App) -> None:
    async with connect(app, "/ws", accept=False) as ws:
        ws.fail_sends = OSError("gone")
        ws.put({"type": "websocket.connect"})
        await ws.wait_app_done()
    assert app.hub.connections == 0


async def test_stream_stops_when_a_send_fails(app: App) -> None:
    async with connect(app, "/stream", query_string=b"count=1000000") as ws:
        ws.send_text("go")
        assert await ws.receive_text() == "1"
        ws.fail_sends = RuntimeError("Unexpected ASGI message after close")
        await ws.wait_app_done()
    # One send failed, and the app sent nothing after it: no further message, and no close to a client that is gone.
    assert len(ws.attempted) == len(ws.sent) + 1
    assert ws.attempted[-1]["type"] == "websocket.send"
    assert app.hub.connections == 0


async def test_after_its_close_the_app_reads_what_was_queued_until_the_disconnect(make_app: MakeApp) -> None:
    # hypercorn stops reading a socket while 10 events wait for the app; draining lets it finish the close.
    app = make_app(rate_limit=1, rate_burst=1)
    async with connect(app, "/echo") as ws:
        for i in range(20):
            ws.send_text(str(i))
        assert await ws.receive_close() == (4429, "rate limited")
        await ws.wait_app_done()
        assert ws.unread() == 0  # the 18 unanswered messages and the disconnect were all read
    assert app.hub.connections == 0


async def test_waiting_for_the_disconnect_after_close_is_bounded(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(asgi_ws.websocket, "CLOSE_TIMEOUT", 0.2)
    app = make_app(idle_timeout=0.1)
    async with connect(app, "/ws") as ws:
        ws.answer_close = False  # a server that never reports the disconnect
        assert await ws.receive_close() == (4408, "idle timeout")
        await ws.wait_app_done()
    assert app.hub.connections == 0
