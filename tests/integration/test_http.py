"""Plain HTTP under every server (contract §2): the demo page, ``/healthz``, ``/metrics``, and 404 for the rest."""

from __future__ import annotations

import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from conformance.launcher import RunningServer
from tests.test_broker import IDLE_MEMORY_BROKER

pytestmark = pytest.mark.server


def test_healthz_has_the_spec_keys(server: RunningServer) -> None:
    response = server.get("/healthz")
    assert response.status == 200
    assert response.content_type == "application/json"
    health = json.loads(response.body)
    assert health.keys() == {"status", "connections", "rooms", "broker"}
    assert health["status"] == "ok"
    assert isinstance(health["connections"], int)
    assert isinstance(health["rooms"], int)
    broker = health["broker"]
    assert broker.keys() == IDLE_MEMORY_BROKER.keys()
    assert (broker["kind"], broker["connected"]) == ("memory", True)
    # The server is shared by the session's tests: feed rooms may have been used before this one.
    assert isinstance(broker["feed_rooms"], int)
    assert isinstance(broker["feed_history_bytes"], int)
    assert broker["feed_rooms"] >= 0
    assert broker["feed_history_bytes"] >= 0


@pytest.mark.parametrize("path", ["/nope", "/healthz/", "/ws"])
def test_unknown_http_path_is_404(server: RunningServer, path: str) -> None:
    assert server.get(path).status == 404


def test_the_demo_page_is_served(server: RunningServer) -> None:
    response = server.get("/")
    assert response.status == 200
    assert response.content_type == "text/html; charset=utf-8"
    assert b"<title>asgi-ws demo</title>" in response.body
    assert b'<script src="/feed.js"></script>' in response.body


def test_the_feed_client_is_served(server: RunningServer) -> None:
    response = server.get("/feed.js")
    assert response.status == 200
    assert response.content_type == "text/javascript; charset=utf-8"
    assert b"class FeedClient" in response.body


@pytest.mark.anyio
async def test_metrics_count_a_known_workload(server: RunningServer) -> None:
    """Scrape, run a workload, scrape again: the deltas are the workload (contract §2)."""
    before = server.metrics()
    async with connect(server.url("/ws_json")) as ws:
        for number in range(5):
            await ws.send(json.dumps({"n": number}))
            assert json.loads(await ws.recv())["data"] == {"n": number}
        await ws.send(b"binary is refused here")
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    async with connect(server.url("/ws/chat/metrics")) as a, connect(server.url("/ws/chat/metrics")) as b:
        await a.send("hello")
        assert await a.recv() == await b.recv() == "hello"
    with pytest.raises(InvalidStatus):
        async with connect(server.url("/nope")):
            pass
    after = server.metrics()

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert delta("asgi_ws_messages_received_total", endpoint="ws_json") == 6
    assert delta("asgi_ws_messages_sent_total", endpoint="ws_json") == 5
    assert delta("asgi_ws_received_bytes_total", endpoint="ws_json") == 5 * len('{"n": 0}') + 22
    assert delta("asgi_ws_closes_total", endpoint="ws_json", code="4400", by="app", reason="unsupported_data") == 1
    assert delta("asgi_ws_messages_received_total", endpoint="chat") == 1
    assert delta("asgi_ws_messages_sent_total", endpoint="chat") == 2
    assert delta("asgi_ws_rejections_total", endpoint="unknown", reason="not_found") == 1
    # Every connection of the workload has ended, whichever side closed it.
    assert delta("asgi_ws_connections", endpoint="ws_json") == 0
    assert delta("asgi_ws_connections", endpoint="chat") == 0
