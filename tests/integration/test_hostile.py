"""Hostile clients that stay inside every per-message limit, under real servers (contract §3, §4, §7).

Each scenario keeps to the size and rate limits and still tries to make the
server hold on to something: pushes it never reads, a room it never reads,
connections it resets by the thousand, handshakes it never finishes, JSON that
is expensive to parse, rooms by the thousand, pings instead of messages.  Each
runs for a few seconds inside :func:`tests.integration.footprint.watched`, which
asserts for every scenario that

- a well-behaved echo client is answered all through the load and after it;
- the app's connections, rooms, tasks (``asgi_ws_app_tasks``) and waiting
  pushes (``asgi_ws_pushes_waiting``) come back to where they started;
- the server's RSS (its process and its workers) grows by less than the
  scenario's bound at its peak.  The bounds are ceilings, generous for a loaded
  machine; each says what an unbounded structure would have cost instead.

and prints one ``hostile: <scenario> under <server>: ...`` line with what it
measured.  What the app does not decide (what a server does with a handshake
that never ends) is printed, not asserted.  Nothing here asserts on timing.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus
from websockets.frames import Close, Frame, Opcode

from asgi_ws.settings import Settings
from conformance.launcher import HOST, RunningServer, StartServer
from conformance.rawclient import RawClient

from .client import refused_as
from .footprint import MIB, watched

pytestmark = [pytest.mark.server, pytest.mark.anyio]

DEFAULTS = Settings()
PATIENCE = 60.0  # seconds for any one step; only a hung server takes that long
# A receive buffer of 4 KiB (the kernel doubles it) makes a client that stops reading
# look stalled to the server after a few KiB instead of megabytes.
SMALL_RCVBUF = [(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)]
PACE = 1 / 75  # seconds between two messages of one client: 75/s, under the default rate limit of 100/s
MAX_MESSAGE = "x" * DEFAULTS.max_message_size  # the largest message every limit allows


def close_of(frames: list[Frame]) -> tuple[int, str] | None:
    """The code and reason of the close frame among ``frames``, if any."""
    for frame in frames:
        if frame.opcode is Opcode.CLOSE:
            close = Close.parse(frame.data)
            return close.code, close.reason
    return None


async def metric(server: RunningServer, name: str) -> float:
    """One metric's total over its label sets, read from the server's /metrics."""
    metrics = await anyio.to_thread.run_sync(server.metrics)
    return metrics.total(name)


# 1. /stream requests that are never read


STREAM_CLIENTS = 10
STREAM_DURATION = 3.0  # seconds during which each client keeps reconnecting and asking
# A label makes every push message about 1 KiB, so that the few MiB the socket buffers hold are
# a few thousand frames to read through, not hundreds of thousands; each waiting request holds it.
STREAM_REQUEST = json.dumps({"message": "y" * 1000})
# What could grow: requests held as texts, at most max_pending_pushes per connection, and one
# running push per connection, which holds one message at a time.  The bound allows 4 MiB per client
# for the server's buffers; a task or an unsent push kept per request would pass it within seconds.
STREAM_RSS_BOUND = 40 * MIB


async def test_stream_requests_never_read(server_name: str, start_server: StartServer) -> None:
    server = start_server({})
    closes: list[tuple[int, str] | None] = []

    async def hoarder(deadline: float) -> None:
        while anyio.current_time() < deadline:
            async with RawClient(HOST, server.port, "/stream?count=1000000", socket_options=SMALL_RCVBUF) as raw:
                # The first request starts a push, max_pending_pushes more wait, the next one is refused.
                for _ in range(DEFAULTS.max_pending_pushes + 2):
                    await raw.send_text(STREAM_REQUEST)
                    await anyio.sleep(PACE)
                received = await raw.read_until_closed(within=PATIENCE)
            numbers = [json.loads(frame.data)["number"] for frame in received.frames if frame.opcode is Opcode.TEXT]
            assert numbers == list(range(1, len(numbers) + 1)), "the push is out of order"
            closes.append(close_of(received.frames))

    async with watched(server, "stream requests never read", STREAM_RSS_BOUND) as footprint:
        deadline = anyio.current_time() + STREAM_DURATION
        async with anyio.create_task_group() as clients:
            for _ in range(STREAM_CLIENTS):
                clients.start_soon(hoarder, deadline)
    assert closes
    assert set(closes) == {(4429, "too many requests")}, closes
    assert footprint.peak["waiting"] <= STREAM_CLIENTS * DEFAULTS.max_pending_pushes
    print(f"hostile: stream requests never read under {server_name}: {len(closes)} connections closed 4429")


# 2. A room whose members never read


ROOM_MEMBERS = 50
ROOM = "/ws/chat/stalled"
# Before the byte bound, 100 members that did not read held 56 MB more under hypercorn: every
# outbox held up to 1024 messages of 64 KiB, 64 MiB of payload (shared by the outboxes, which
# queue the same event).  Now an outbox holds at most 1 MiB before its member is closed 4503, and
# the rest is the server's own buffers (a few hundred KiB per member), so half of the unbounded
# payload is a ceiling that still catches its return.
ROOM_RSS_BOUND = 32 * MIB


async def test_room_members_that_never_read(server_name: str, start_server: StartServer) -> None:
    server = start_server({})
    drops_before = await metric(server, "asgi_ws_slow_consumer_drops_total")
    async with (
        watched(server, "room members never read", ROOM_RSS_BOUND),
        contextlib.AsyncExitStack() as stack,
    ):
        members = [
            await stack.enter_async_context(RawClient(HOST, server.port, ROOM, socket_options=SMALL_RCVBUF))
            for _ in range(ROOM_MEMBERS)
        ]
        talker = await stack.enter_async_context(connect(server.url(ROOM), max_size=None, compression=None))
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(drain, talker)
            sent = 0
            with anyio.fail_after(PATIENCE):
                while await metric(server, "asgi_ws_slow_consumer_drops_total") < drops_before + ROOM_MEMBERS:
                    for _ in range(10):
                        await talker.send(MAX_MESSAGE)
                        sent += 1
                        await anyio.sleep(PACE)
            # A member that reads again gets the backlog the server still held, then the 4503.
            ends = [close_of((await member.read_until_closed(within=PATIENCE)).frames) for member in members]
            tasks.cancel_scope.cancel()
    assert set(ends) == {(4503, "slow consumer")}, ends
    print(f"hostile: room members never read under {server_name}: {sent} messages of 64 KiB sent")


async def drain(ws: ClientConnection) -> None:
    """Read and drop everything, so that this client is never a slow consumer."""
    while True:
        await ws.recv()


# 3. Connection churn with resets


CHURN = 2000
CHURN_AT_ONCE = 20  # under hypercorn's listen backlog (100)
CHURN_PATHS = ["/echo", "/ws/chat/churn", "/stream?count=1000", "/ws_broadcast"]
# The app holds nothing once a reset connection is gone (the counts prove it).  hypercorn 0.18
# (asyncio worker) does: a closed connection's tasks and buffers stay until its keepalive ping task
# next wakes (hypercorn/protocol/ws_stream.py, WSStream._send_pings; the launcher's interval is
# 20 s), so 2000 resets in a few seconds held +46 MiB there, against +4 MiB under uvicorn and
# hypercorn's trio worker, which does not ping.  No upstream issue found.  anycorn 0.20 (hypercorn's
# fork) held +58 MiB, gunicorn 27 +38 MiB.  The ceiling lets those through and still catches
# 48 KiB left behind per connection.
CHURN_RSS_BOUND = 96 * MIB


async def test_connection_churn_with_resets(server_name: str, start_server: StartServer) -> None:
    server = start_server({})
    slots = anyio.Semaphore(CHURN_AT_ONCE)
    accepted = 0

    async def connect_and_reset(number: int) -> None:
        nonlocal accepted
        async with slots:
            raw = RawClient(HOST, server.port, CHURN_PATHS[number % len(CHURN_PATHS)])
            handshake = await raw.open()
            accepted += handshake.status == 101
            if number % 2:  # half of them say something first: a message, a post, a push request
                await raw.send_text(f"churn {number}")
            raw.reset()

    async with watched(server, "connection churn with resets", CHURN_RSS_BOUND):
        with anyio.fail_after(PATIENCE):
            async with anyio.create_task_group() as clients:
                for number in range(CHURN):
                    clients.start_soon(connect_and_reset, number)
    assert accepted == CHURN
    print(f"hostile: connection churn with resets under {server_name}: {accepted} connections reset")


# 4. Handshakes that never finish, up to the connection cap


CAP = 50
STALL = 6.0  # seconds the unfinished handshakes are held: past hypercorn's 5 s keep-alive timeout
HANDSHAKE_RSS_BOUND = 16 * MIB


async def test_handshakes_that_never_finish(server_name: str, start_server: StartServer) -> None:
    server = start_server({"ASGI_WS_MAX_CONNECTIONS": str(CAP)})
    async with watched(server, "handshakes never finished", HANDSHAKE_RSS_BOUND):
        stalled = [socket.create_connection((HOST, server.port), timeout=PATIENCE) for _ in range(CAP)]
        try:
            for sock in stalled:
                sock.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
                sock.setblocking(False)
            # An unfinished handshake never reaches the app, so it takes no place under the cap:
            # a new client is served, and then the cap, counted by the app, applies as usual.
            async with contextlib.AsyncExitStack() as stack:
                health = await anyio.to_thread.run_sync(server.health)
                opened = [
                    await stack.enter_async_context(connect(server.url("/ws")))
                    for _ in range(CAP - health["connections"])
                ]
                await opened[-1].send("served")
                assert await opened[-1].recv() == "Message text was: served"
                with pytest.raises(InvalidStatus) as refused:
                    async with connect(server.url("/ws")):
                        pass
                status = refused.value.response.status_code
                assert (status, bytes(refused.value.response.body)) == refused_as(
                    server_name, 503, b"too many connections"
                )
            await anyio.sleep(STALL)
            ended = sum(server_ended(sock) for sock in stalled)
        finally:
            for sock in stalled:
                sock.close()
    # The server's business, recorded.  hypercorn 0.18 ends them after its keep_alive_timeout of 5 s
    # (hypercorn/asyncio/tcp_server.py, TCPServer._idle_timeout; the trio worker alike).  uvicorn
    # 0.54 waits: its keep-alive timer is stopped by the first byte of a request
    # (protocols/http/httptools_impl.py, HttpToolsProtocol.data_received) and no timeout covers
    # headers that never end (a request-start timeout was proposed in Kludex/uvicorn#157, closed).
    print(f"hostile: handshakes never finished under {server_name}: {ended} of {CAP} ended by the server")


def server_ended(sock: socket.socket) -> bool:
    """True if the server has answered or closed this connection (a 408, FIN, RST); False if it waits on."""
    try:
        sock.recv(65536)  # b"" at FIN; an answer such as a 408 comes before the FIN
    except BlockingIOError:
        return False
    except OSError:
        pass
    return True


# 5. JSON bombs on /ws_json, within the size limit


BOMB_REPEATS = 8
JSON_RSS_BOUND = 24 * MIB  # the largest reply is about 100 KiB; a parse that kept anything would pass it


def invalid(detail: str = "") -> Callable[[Any], bool]:
    return lambda reply: reply.get("error") == "invalid_json" and detail in reply["detail"]


def echoed(value: Any) -> Callable[[Any], bool]:
    return lambda reply: reply == {"message": "Received JSON data", "data": value}


BOMBS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "30000 open brackets": ("[" * 30_000, invalid("recursion")),
    "30000 nested arrays": ("[" * 30_000 + "]" * 30_000, invalid("recursion")),
    "10000 nested objects": ('{"a":' * 10_000 + "1" + "}" * 10_000, invalid("recursion")),
    "a 60000-digit integer": ("1" * 60_000, invalid("digits")),
    "a 30000-digit float": ("1" * 30_000 + ".5", invalid("")),
    "5000 keys": (
        "{" + ",".join(f'"k{i}":{i}' for i in range(5000)) + "}",
        echoed({f"k{i}": i for i in range(5000)}),
    ),
    "30000 zeros": ("[" + "0," * 30_000 + "0]", echoed([0] * 30_001)),
    "10000 escaped NULs": ('"' + "\\u0000" * 10_000 + '"', echoed("\x00" * 10_000)),
}


async def test_json_bombs(server_name: str, start_server: StartServer) -> None:
    server = start_server({})
    async with (
        watched(server, "JSON bombs", JSON_RSS_BOUND),
        connect(server.url("/ws_json"), max_size=None, compression=None) as ws,
    ):
        for _ in range(BOMB_REPEATS):
            for name, (bomb, expected) in BOMBS.items():
                assert len(bomb.encode()) <= DEFAULTS.max_message_size, name
                await ws.send(bomb)
                with anyio.fail_after(PATIENCE):
                    reply = json.loads(await ws.recv())
                assert expected(reply), f"{name}: {str(reply)[:200]}"
                await anyio.sleep(PACE)
    print(f"hostile: JSON bombs under {server_name}: {BOMB_REPEATS * len(BOMBS)} answered, connection kept")


# 6. Many rooms, one client each


ROOMS = 2000
ROOMS_AT_ONCE = 50  # handshakes in flight, under hypercorn's listen backlog (100)
# Every open connection costs the server something, whatever the app does: measured with 2000
# connections, uvicorn 0.54 (websockets-sansio) holds about 65 KiB per /echo connection, and a room
# adds about 8 KiB (the app's session, outbox and sender task); hypercorn 0.18 about 134 KiB per
# room connection, on asyncio and on trio.  So the peak is bounded per connection, above both.
# What a wave leaves behind is the allocator's and the server's, and it shrinks from wave to wave:
# after five waves of 2000 plain /echo connections (no room, no task of the app) uvicorn stood at
# +128, +160, +180, +183, +184 MiB, and hypercorn (pinging every 2 s, so that it lets go of closed
# connections) at +247, +383, +476, +556, +607 MiB, the same as with a room each.  So the second
# wave must leave less than the first: a leak of the app's would add the same amount every wave.
# The app's own leftovers are caught exactly by the counts coming back to 0.
ROOMS_RSS_BOUND = ROOMS * 192 * 1024


async def test_many_rooms_one_client_each(server_name: str, start_server: StartServer) -> None:
    server = start_server({})
    footprints = []
    for wave in (1, 2):
        async with watched(server, f"many rooms, wave {wave}", ROOMS_RSS_BOUND) as footprint:
            await join_rooms(server)
        assert footprint.peak["connections"] >= ROOMS
        footprints.append(footprint)
    first, second = (footprint.after["rss"] - footprint.baseline["rss"] for footprint in footprints)
    print(
        f"hostile: many rooms under {server_name}: waves of {ROOMS} rooms left +{first / MIB:.1f} MiB, "
        f"then +{second / MIB:.1f} MiB"
    )
    assert second < first


async def join_rooms(server: RunningServer) -> None:
    """ROOMS clients, each alone in a room of its own and answered there; all leave at the end."""
    slots = anyio.Semaphore(ROOMS_AT_ONCE)
    async with contextlib.AsyncExitStack() as stack:

        async def join(number: int) -> None:
            async with slots:
                ws = await stack.enter_async_context(connect(server.url(f"/ws/chat/room-{number}")))
                await ws.send(f"hello {number}")
                assert await ws.recv() == f"hello {number}"

        with anyio.fail_after(PATIENCE):
            async with anyio.create_task_group() as joining:
                for number in range(ROOMS):
                    joining.start_soon(join, number)
        health = await anyio.to_thread.run_sync(server.health)
        assert health["rooms"] == ROOMS
        await anyio.sleep(1.0)  # time for a sample of the server's state with every room open


# 7. Pings and pongs only


IDLE = 2.0  # seconds of idle timeout, so that the close comes within the test's few seconds
CONTROL_PAYLOAD = b"p" * 125  # the largest a control frame carries
PING_PONG_RSS_BOUND = 24 * MIB


async def test_pings_and_pongs_only(server_name: str, start_server: StartServer) -> None:
    """The idle timeout counts messages only: a client that sends nothing but pings or pongs is idle."""
    server = start_server({"ASGI_WS_IDLE_TIMEOUT": str(IDLE)})
    ends: dict[str, tuple[int, str] | None] = {}
    sent: dict[str, int] = {}

    async def control_only(opcode: Opcode) -> None:
        async with RawClient(HOST, server.port, "/ws") as raw:
            sent[opcode.name] = 0
            with anyio.move_on_after(2 * IDLE):  # not reading: the pongs pile up in the server's buffers
                while True:
                    await raw.send_frame(Frame(opcode, CONTROL_PAYLOAD))
                    sent[opcode.name] += 1
                    await anyio.sleep(0.001)
            ends[opcode.name] = close_of((await raw.read_until_closed(within=PATIENCE)).frames)

    async with (
        watched(server, "pings and pongs only", PING_PONG_RSS_BOUND),
        anyio.create_task_group() as clients,
    ):
        clients.start_soon(control_only, Opcode.PING)
        clients.start_soon(control_only, Opcode.PONG)
    assert ends == {"PING": (4408, "idle timeout"), "PONG": (4408, "idle timeout")}
    print(f"hostile: pings and pongs only under {server_name}: sent {sent}, both closed 4408")
