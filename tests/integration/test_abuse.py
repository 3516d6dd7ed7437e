"""Clients that misbehave, under real servers: each gets the answer of contract §3, and nobody else notices (§7).

The flood past the rate limit is in ``test_policies.py`` (4429).  Here:

- one client opening 1000 connections against ``max_connections`` 500;
- a slowloris client that starts a handshake and never finishes it;
- room-name injection attempts, and a giant ``count``;
- a text frame that is not UTF-8;
- a 10 MiB message.

After each, the server still answers a well-behaved client, and ``/healthz``
shows no connection left over.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus
from websockets.frames import Frame, Opcode

from conformance.launcher import HOST, RunningServer, run_server
from conformance.rawclient import RawClient

from .client import refusal, server_close, still_serves

pytestmark = [pytest.mark.server, pytest.mark.anyio]

CAP = 500
ATTEMPTS = 1000
HANDSHAKES_AT_ONCE = 50  # under hypercorn's listen backlog (100)
PATIENCE = 60.0


@pytest.fixture
def capped_server(server_name: str, tmp_path: Path) -> Iterator[RunningServer]:
    with run_server(server_name, tmp_path, {"ASGI_WS_MAX_CONNECTIONS": str(CAP)}) as server:
        yield server


async def test_1000_connections_from_one_client_against_a_cap_of_500(capped_server: RunningServer) -> None:
    server = capped_server
    accepted: list[ClientConnection] = []
    refused: list[int] = []
    handshakes = anyio.Semaphore(HANDSHAKES_AT_ONCE)

    async def attempt() -> None:
        async with handshakes:
            try:
                accepted.append(await connect(server.url("/ws")))
            except InvalidStatus as exc:
                refused.append(exc.response.status_code)

    with anyio.fail_after(PATIENCE):
        async with anyio.create_task_group() as tasks:
            for _ in range(ATTEMPTS):
                tasks.start_soon(attempt)
    try:
        assert len(accepted) == CAP
        assert len(refused) == ATTEMPTS - CAP
        assert set(refused) <= {503, 403}  # 503 with the denial extension, 403 where the server lacks it
        health = await anyio.to_thread.run_sync(server.health)
        assert health["connections"] == CAP
        await accepted[0].send("the accepted ones work")
        assert await accepted[0].recv() == "Message text was: the accepted ones work"
    finally:
        for ws in accepted:
            await ws.close()
    await still_serves(server)


async def test_a_slowloris_handshake_does_not_hold_up_anyone_else(server: RunningServer) -> None:
    """Headers trickle in and never end.  Timing it out is the server's job (the conformance
    report shows what each server does); the app never sees it, and everyone else is served."""
    with socket.create_connection((HOST, server.port), timeout=5) as slow:
        slow.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
        for _ in range(3):
            await anyio.sleep(0.2)
            slow.sendall(b"X-Slow: 1\r\n")
        await still_serves(server)
        health = await anyio.to_thread.run_sync(server.health)
        assert health["connections"] == 0  # an unfinished handshake never reaches the app


@pytest.mark.parametrize(
    "path",
    [
        "/ws/chat/../admin",
        "/ws/chat/lobby%2F..%2Fadmin",
        "/ws/chat/lobby%00",
        "/ws/chat/lobby%0D%0AX-Injected:%20yes",
        "/ws/chat/%3Cscript%3E",
        "/ws/chat/lobby;drop",
        "/ws/chat/" + "a" * 2_000,  # servers cap the request line themselves (websockets: 8 KiB)
    ],
)
async def test_room_name_injection_is_refused(server: RunningServer, path: str) -> None:
    status, _ = await refusal(server.url(path))
    assert status in (400, 403)  # 403 where the server lacks the denial extension


@pytest.mark.parametrize("count", ["99999999999999999999999999", "1" * 2_000, "1e9", "0x10"])
async def test_a_giant_or_odd_count_is_refused(server: RunningServer, count: str) -> None:
    status, _ = await refusal(server.url(f"/stream?count={count}"))
    assert status in (400, 403)


async def test_a_text_frame_that_is_not_utf8_ends_only_that_connection(server: RunningServer) -> None:
    async with RawClient(HOST, server.port, "/echo") as raw:
        await raw.send_frame(Frame(Opcode.TEXT, b"\xff\xfe not utf-8"))
        ended = await raw.read_to_end()
    assert ended  # the server ends it, with 1007 or without a close frame: its protocol layer decides
    await still_serves(server)


async def test_a_10_mib_message_is_closed_4413(server: RunningServer) -> None:
    async with connect(server.url("/echo"), max_size=None, compression=None) as ws:
        await ws.send("x" * (10 * 1024 * 1024))
        code, reason = await server_close(ws)
    assert (code, reason) == (4413, "message too big")
    await still_serves(server)
