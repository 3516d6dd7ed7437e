"""bench.peers.fanout_floor: P12's floors deliver a broadcast to every connection, and answer like /healthz."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest

from asgi_ws.wakeups import WAKE_BATCH
from bench.peers import fanout_floor
from tests.asgi_driver import call_http, connect

pytestmark = pytest.mark.anyio

LISTENERS = 3 * WAKE_BATCH + 5  # several batches and a part of one


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the floors are asyncio apps, as uvicorn runs them


def test_the_floors_yield_as_often_as_the_app_wakes_its_senders() -> None:
    assert fanout_floor.BATCH == WAKE_BATCH


@pytest.mark.parametrize("app", [fanout_floor.app, fanout_floor.app_with_senders], ids=["one task", "a sender each"])
async def test_a_fan_out_reaches_every_connection_once(app: Any) -> None:
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(connect(app, "/c100k")) for _ in range(LISTENERS)]
        status, _, body = await call_http(app, "/healthz")
        assert (status, json.loads(body)) == (200, {"broker": {"connected": True}, "connections": LISTENERS})
        status, _, body = await call_http(app, "/fanout")
        assert json.loads(body)["connections"] == LISTENERS
        assert [await client.receive_text() for client in clients] == ["broadcast"] * LISTENERS
        assert all(client.unread() == 0 for client in clients)
    status, _, body = await call_http(app, "/healthz")
    assert json.loads(body)["connections"] == 0  # every connection that left is forgotten
