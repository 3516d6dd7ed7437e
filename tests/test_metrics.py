"""asgi_ws.metrics and GET /metrics: scrape, run a known workload, scrape again, check the deltas (contract §2)."""

from __future__ import annotations

import gc

import anyio
import pytest

from asgi_ws.app import App
from conformance.launcher import MetricSamples
from tests.asgi_driver import DENIAL, call_http, connect

from .conftest import MakeApp

pytestmark = pytest.mark.anyio

Samples = MetricSamples


async def scrape(app: App) -> Samples:
    status, headers, body = await call_http(app, "/metrics")
    assert status == 200
    assert headers[b"content-type"].startswith(b"text/plain; version=0.0.4")
    return MetricSamples.parse(body.decode())


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return after.value(name, **labels) - before.value(name, **labels)


async def test_an_echo_session_counts_messages_bytes_the_connection_and_its_close(app: App) -> None:
    before = await scrape(app)
    async with connect(app, "/echo") as ws:
        during = await scrape(app)
        assert delta(before, during, "asgi_ws_connections", endpoint="echo") == 1
        for text in ("a", "é", ""):  # 1 + 2 + 0 bytes of UTF-8
            ws.send_text(text)
            assert await ws.receive_text() == text
        ws.send_bytes(b"xyz")
        assert await ws.receive_bytes() == b"xyz"
        ws.disconnect(1001)
        await ws.wait_app_done()
    after = await scrape(app)
    assert delta(before, after, "asgi_ws_messages_received_total", endpoint="echo") == 4
    assert delta(before, after, "asgi_ws_messages_sent_total", endpoint="echo") == 4
    assert delta(before, after, "asgi_ws_received_bytes_total", endpoint="echo") == 6
    assert delta(before, after, "asgi_ws_sent_bytes_total", endpoint="echo") == 6
    assert delta(before, after, "asgi_ws_connections", endpoint="echo") == 0
    assert delta(before, after, "asgi_ws_closes_total", endpoint="echo", code="1001", by="client", reason="none") == 1


async def test_a_client_close_code_of_its_own_choosing_is_counted_under_a_bounded_label(app: App) -> None:
    before = await scrape(app)
    for code in (4000, 4001, 4999, 3123):
        async with connect(app, "/echo") as ws:
            ws.disconnect(code)
            await ws.wait_app_done()
    after = await scrape(app)
    assert delta(before, after, "asgi_ws_closes_total", endpoint="echo", code="4xxx", by="client", reason="none") == 3
    assert delta(before, after, "asgi_ws_closes_total", endpoint="echo", code="3xxx", by="client", reason="none") == 1
    assert delta(before, after, "asgi_ws_closes_total", endpoint="echo", code="4001", by="client", reason="none") == 0


async def test_chat_counts_one_message_in_and_one_out_per_member(app: App) -> None:
    before = await scrape(app)
    async with connect(app, "/ws/chat/m") as a, connect(app, "/ws/chat/m") as b, connect(app, "/ws/chat/m") as c:
        a.send_text("hi")
        for ws in (a, b, c):
            assert await ws.receive_text() == "hi"
    after = await scrape(app)
    assert delta(before, after, "asgi_ws_messages_received_total", endpoint="chat") == 1
    assert delta(before, after, "asgi_ws_messages_sent_total", endpoint="chat") == 3
    assert delta(before, after, "asgi_ws_sent_bytes_total", endpoint="chat") == 6


async def test_a_stream_counts_every_pushed_message(app: App) -> None:
    before = await scrape(app)
    async with connect(app, "/stream", query_string=b"count=250") as ws:
        ws.send_text("go")
        assert [await ws.receive_text() for _ in range(250)][-1] == "250"
    after = await scrape(app)
    assert delta(before, after, "asgi_ws_messages_sent_total", endpoint="stream") == 250
    assert delta(before, after, "asgi_ws_sent_bytes_total", endpoint="stream") == sum(
        len(str(number)) for number in range(1, 251)
    )


async def test_app_closes_are_counted_by_their_code(make_app: MakeApp) -> None:
    app = make_app(max_message_size=10)
    before = await scrape(app)
    async with connect(app, "/echo") as ws:
        ws.send_text("x" * 11)
        assert await ws.receive_close() == (4413, "message too big")
    async with connect(app, "/ws_json") as ws:
        ws.send_bytes(b"binary")
        assert await ws.receive_close() == (4400, "unsupported data")
    after = await scrape(app)
    assert (
        delta(before, after, "asgi_ws_closes_total", endpoint="echo", code="4413", by="app", reason="message_too_big")
        == 1
    )
    assert (
        delta(
            before, after, "asgi_ws_closes_total", endpoint="ws_json", code="4400", by="app", reason="unsupported_data"
        )
        == 1
    )


@pytest.mark.parametrize(
    ("path", "query", "headers", "endpoint", "reason"),
    [
        ("/nope", b"", [], "unknown", "not_found"),
        ("/ws/chat/bad room", b"", [], "chat", "bad_room"),
        ("/stream", b"count=0", [], "stream", "bad_count"),
        ("/ws", b"", [(b"origin", b"http://evil.example")], "ws", "bad_origin"),
    ],
)
async def test_rejections_are_counted_by_endpoint_and_reason(
    app: App, path: str, query: bytes, headers: list[tuple[bytes, bytes]], endpoint: str, reason: str
) -> None:
    before = await scrape(app)
    async with connect(
        app, path, query_string=query, headers=[(b"host", b"testserver"), *headers], extensions=DENIAL, accept=False
    ) as ws:
        await ws.refusal()
    after = await scrape(app)
    assert delta(before, after, "asgi_ws_rejections_total", endpoint=endpoint, reason=reason) == 1
    assert delta(before, after, "asgi_ws_connections", endpoint=endpoint) == 0


async def test_the_connection_cap_is_a_rejection_too(make_app: MakeApp) -> None:
    app = make_app(max_connections=1)
    before = await scrape(app)
    async with connect(app, "/ws"), connect(app, "/ws", extensions=DENIAL, accept=False) as refused:
        await refused.refusal()
    after = await scrape(app)
    assert delta(before, after, "asgi_ws_rejections_total", endpoint="ws", reason="too_many_connections") == 1


async def test_a_slow_consumer_drop_is_counted_once(make_app: MakeApp) -> None:
    app = make_app(outbox_size=4, rate_limit=0)
    before = await scrape(app)
    async with connect(app, "/ws/chat/slow") as talker, connect(app, "/ws/chat/slow") as stuck:
        stuck.send_gate = anyio.Event()  # it stops reading
        for number in range(20):
            talker.send_text(str(number))
        # The talker is in the room too: once it has all 20, every publish has happened.
        assert [await talker.receive_text() for _ in range(20)] == [str(number) for number in range(20)]
        stuck.send_gate.set()
        assert await stuck.receive_close() == (4503, "slow consumer")
    after = await scrape(app)
    assert delta(before, after, "asgi_ws_slow_consumer_drops_total", endpoint="chat") == 1
    assert (
        delta(before, after, "asgi_ws_closes_total", endpoint="chat", code="4503", by="app", reason="slow_consumer")
        == 1
    )


async def test_the_broker_shows_in_the_metrics(app: App) -> None:
    samples = await scrape(app)
    assert samples[("asgi_ws_broker_connected", frozenset({("kind", "memory")}))] == 1
    assert samples[("asgi_ws_broker_reconnects_total", frozenset({("kind", "memory")}))] == 0


async def test_a_full_garbage_collection_is_counted(app: App) -> None:
    """A full collection stops the event loop for as long as it walks every object: operators see each one."""
    before = await scrape(app)
    gc.collect()  # generation 2: a full collection
    assert delta(before, await scrape(app), "python_gc_collections_total", generation="2") >= 1  # or more, on its own


async def test_two_apps_never_share_numbers(make_app: MakeApp) -> None:
    first, second = make_app(), make_app()
    async with connect(first, "/echo") as ws:
        ws.send_text("only here")
        assert await ws.receive_text() == "only here"
    assert ("asgi_ws_messages_received_total", frozenset({("endpoint", "echo")})) not in await scrape(second)


async def test_app_tasks_go_up_with_a_push_and_back_to_where_they_were(app: App) -> None:
    before = await scrape(app)
    async with connect(app, "/stream", query_string=b"count=300") as ws:
        ws.send_gate = anyio.Event()  # the push holds in its first send
        ws.send_text("go")
        await anyio.wait_all_tasks_blocked()
        during = await scrape(app)
        assert delta(before, during, "asgi_ws_app_tasks") == 1
        ws.send_gate.set()
        assert [await ws.receive_text() for _ in range(300)][-1] == "300"
        await anyio.wait_all_tasks_blocked()
        assert delta(before, await scrape(app), "asgi_ws_app_tasks") == 0  # the pusher ended with its queue
        ws.send_text("go")
        assert await ws.receive_text() == "1"
        ws.disconnect(1001)  # the second push is cancelled mid-way
        await ws.wait_app_done()
    assert delta(before, await scrape(app), "asgi_ws_app_tasks") == 0


async def test_app_tasks_count_a_fan_out_sender_while_its_session_lasts(app: App) -> None:
    before = await scrape(app)
    async with connect(app, "/ws/chat/tasks") as a, connect(app, "/ws_broadcast") as b:
        a.send_text("hi")
        assert await a.receive_text() == "hi"
        assert delta(before, await scrape(app), "asgi_ws_app_tasks") == 2  # one sender each
        b.disconnect(1000)
        await b.wait_app_done()
        assert delta(before, await scrape(app), "asgi_ws_app_tasks") == 1
    assert delta(before, await scrape(app), "asgi_ws_app_tasks") == 0


async def test_waiting_pushes_show_and_a_refused_one_is_counted_by_its_reason(app: App) -> None:
    before = await scrape(app)
    async with connect(app, "/stream", query_string=b"count=2") as ws:
        ws.send_gate = anyio.Event()
        for _ in range(5):  # one runs, four wait
            ws.send_text("go")
        await anyio.wait_all_tasks_blocked()
        assert (await scrape(app)).value("asgi_ws_pushes_waiting") == 4
        ws.send_text("go")  # one too many
        await anyio.wait_all_tasks_blocked()
        ws.send_gate.set()
        assert await ws.receive_close() == (4429, "too many requests")
        await ws.wait_app_done()
    after = await scrape(app)
    assert after.value("asgi_ws_pushes_waiting") == 0
    assert (
        delta(
            before, after, "asgi_ws_closes_total", endpoint="stream", code="4429", by="app", reason="too_many_requests"
        )
        == 1
    )
    assert (
        delta(before, after, "asgi_ws_closes_total", endpoint="stream", code="4429", by="app", reason="rate_limited")
        == 0
    )
