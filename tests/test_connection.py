"""asgi_ws.connection: the one place that sends, with the state it keeps and the close as values."""

from __future__ import annotations

import re
from typing import Any

import anyio
import pytest

from asgi_ws.close_codes import Close
from asgi_ws.connection import Connection, Disconnect
from asgi_ws.lifecycle import ProtocolError, State

pytestmark = pytest.mark.anyio


class Server:
    """A server's two callables, recording what the app sent; ``fail`` makes send() raise."""

    def __init__(self, *events: dict[str, Any]) -> None:
        self.events = list(events)  # what receive() gives, in order
        self.sent: list[dict[str, Any]] = []
        self.fail: Exception | None = None
        self.stall = False  # send() never returns

    async def receive(self) -> dict[str, Any]:
        return self.events.pop(0)

    async def send(self, event: dict[str, Any]) -> None:
        if self.fail is not None:
            raise self.fail
        if self.stall:
            await anyio.sleep_forever()
        self.sent.append(event)


def connection(server: Server) -> Connection:
    return Connection(server.receive, server.send)  # type: ignore[arg-type]


async def test_accept_send_close_and_drain() -> None:
    server = Server(
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": "x"},
        {"type": "websocket.disconnect", "code": 1000, "reason": "bye"},
    )
    conn = connection(server)
    assert (await conn.receive())["type"] == "websocket.connect"
    assert await conn.accept()
    assert conn.state is State.ACCEPTED
    assert await conn.send({"type": "websocket.send", "text": "hi", "bytes": None})
    assert await conn.close(Close(4000, "done"), within=1)
    assert conn.state is State.CLOSING
    assert conn.close_sent == Close(4000, "done")
    await conn.drain(within=1)
    assert conn.state is State.CLOSED
    assert conn.close_rcvd == Disconnect(1000, "bye")
    assert [event["type"] for event in server.sent] == ["websocket.accept", "websocket.send", "websocket.close"]


async def test_a_failed_send_means_the_client_is_gone() -> None:
    server = Server()
    conn = connection(server)
    await conn.accept()
    server.fail = OSError("connection reset")
    assert not await conn.send({"type": "websocket.send", "text": "hi", "bytes": None})
    assert conn.state is State.CLOSED
    assert conn.close_rcvd == Disconnect(None, "send raised OSError")
    with pytest.raises(ProtocolError, match="in state closed"):
        await conn.send({"type": "websocket.send", "text": "again", "bytes": None})


async def test_an_illegal_send_raises_before_reaching_the_server() -> None:
    server = Server()
    conn = connection(server)
    with pytest.raises(ProtocolError, match=re.escape('Cannot send "websocket.send" in state connecting')):
        await conn.send({"type": "websocket.send", "text": "too early", "bytes": None})
    assert server.sent == []


async def test_receive_after_the_disconnect_is_refused() -> None:
    conn = connection(Server({"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1001}))
    await conn.receive()
    await conn.receive()
    assert conn.state is State.CLOSED
    assert conn.close_rcvd == Disconnect(1001, "")
    with pytest.raises(ProtocolError, match='Cannot call "receive"'):
        await conn.receive()


async def test_a_close_the_server_does_not_take_in_time_is_given_up() -> None:
    server = Server()
    conn = connection(server)
    await conn.accept()
    server.stall = True
    assert not await conn.close(Close(4503, "slow consumer"), within=0.05)
    assert conn.state is State.ACCEPTED  # never sent: no drain follows
    assert conn.close_sent is None


async def test_a_disconnect_during_a_send_is_not_undone_by_it() -> None:
    # The sender's send() is in the server when the receive loop takes the disconnect.
    gate = anyio.Event()
    server = Server({"type": "websocket.disconnect", "code": 1000})
    conn = connection(server)
    await conn.accept()

    async def slow_send(event: dict[str, Any]) -> None:
        await gate.wait()

    conn.server_send = slow_send  # type: ignore[assignment]
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(conn.send, {"type": "websocket.send", "text": "hi", "bytes": None})
        await anyio.wait_all_tasks_blocked()
        await conn.receive()
        gate.set()
    assert conn.state is State.CLOSED


async def test_the_hot_loops_hand_back_what_moves_the_state() -> None:
    server = Server({"type": "websocket.disconnect", "code": 1000})
    conn = connection(server)
    await conn.accept()
    assert (conn.server_receive, conn.server_send) == (server.receive, server.send)  # the server's own
    conn.received(await conn.server_receive())  # the hot loop's receive, handing back the disconnect
    assert conn.state is State.CLOSED
    assert conn.close_rcvd == Disconnect(1000, "")
    conn.send_failed(RuntimeError("after the disconnect"))  # a late send of another task: still closed
    assert conn.close_rcvd == Disconnect(1000, "")
    with pytest.raises(ProtocolError, match='Cannot call "receive"'):
        await conn.receive()


async def test_a_failed_send_closes_for_a_server_error_and_raises_the_apps_own_again() -> None:
    conn = connection(Server())
    await conn.accept()
    with pytest.raises(ProtocolError):
        conn.send_failed(ProtocolError("a bug in the app"))
    assert conn.state is State.ACCEPTED
    conn.send_failed(RuntimeError("Unexpected ASGI message after close"))
    assert conn.state is State.CLOSED
    assert conn.close_rcvd == Disconnect(None, "send raised RuntimeError")
