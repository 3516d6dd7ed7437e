"""Chat and broadcast across two server processes that share one Redis (contract §4).

Each test starts a real ``redis-server`` and two app processes on it.  When the
test run covers both uvicorn and hypercorn (the default), the two processes are
one uvicorn and one hypercorn: the cross-server case.  A run limited to one
family (``tox -e py311-uvicorn``) uses two processes of that server.
hypercorn's trio worker cannot run the Redis broker (redis-py is asyncio-only;
``tests/test_redis_broker.py`` checks that it refuses), so it is never picked.

Before a test sends anything across, it waits until Redis counts both
processes as subscribed to the room's channel: a subscription is asynchronous,
and pub/sub delivers only to the subscribers of the moment (at most once).

Where a client must *not* receive something, the test proves it by order: it
sends a later message and checks that the client's next message is that one.
"""

from __future__ import annotations

import base64
import contextlib
import random
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.frames import Close, Opcode

from asgi_ws.redis_wire import channel
from asgi_ws.servers import SERVERS
from asgi_ws.topics import BROADCAST, Topic, chat_room
from conformance.launcher import HOST, RunningServer, run_server
from conformance.rawclient import RawClient
from conformance.redis_server import RedisServer

from ..conftest import requested_servers

pytestmark = [pytest.mark.server, pytest.mark.anyio]

PATIENCE = 60.0  # seconds for any one wait; only a broken deployment takes that long
ROOM = "across"
SENDERS_PER_PROCESS = 2
MESSAGES_PER_SENDER = 50


def usable_servers(config: pytest.Config) -> list[str]:
    """The servers of this run that can run the Redis broker."""
    usable = [name for name in requested_servers(config) if SERVERS[name].no_redis is None]
    if not usable:
        pytest.skip(f"none of the requested servers {requested_servers(config)} can run the Redis broker")
    return usable


def pair_of_servers(config: pytest.Config) -> tuple[str, str]:
    """Which two servers to run: a uvicorn and a hypercorn if both were asked for, else two of one kind."""
    usable = usable_servers(config)
    uvicorns = [name for name in usable if SERVERS[name].module == "uvicorn"]
    hypercorns = [name for name in usable if SERVERS[name].module == "hypercorn"]
    if uvicorns and hypercorns:
        return uvicorns[0], hypercorns[0]
    return usable[0], usable[-1]


@dataclass
class Deployment:
    """Two app processes, ``a`` and ``b``, and the Redis they share."""

    redis: RedisServer
    a: RunningServer
    b: RunningServer

    @property
    def processes(self) -> tuple[RunningServer, RunningServer]:
        return self.a, self.b

    @contextlib.asynccontextmanager
    async def clients(self, path: str, *names: str) -> AsyncIterator[dict[str, ClientConnection]]:
        """A client of ``path`` for each name, on the process the name starts with: ``a1`` on ``a``."""
        processes = {"a": self.a, "b": self.b}
        async with contextlib.AsyncExitStack() as stack:
            yield {name: await stack.enter_async_context(connect(processes[name[0]].url(path))) for name in names}

    async def wait_until_subscribed(self, topic: Topic) -> None:
        await wait_for(lambda: subscribers(self.redis, topic) == 2, f"both processes subscribed to {topic}")

    async def wait_for_health(self, condition: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """Wait until both processes' /healthz documents satisfy ``condition``; the two documents."""
        documents = []
        for process in self.processes:
            documents.append(await anyio.to_thread.run_sync(process.wait_for_health, condition, PATIENCE))
        return documents


async def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = anyio.current_time() + PATIENCE
    while True:  # polling another process's state: there is no event to wait on
        if await anyio.to_thread.run_sync(condition):
            return
        if anyio.current_time() > deadline:
            raise AssertionError(f"still waiting after {PATIENCE} s for {what}")
        await anyio.sleep(0.05)


def deploy(
    request: pytest.FixtureRequest,
    redis_server: RedisServer,
    tmp_path: Path,
    names: tuple[str, str] | None = None,
    **settings: str,
) -> Iterator[Deployment]:
    """Two processes on ``redis_server``: ``names``, or :func:`pair_of_servers` when not given."""
    first, second = names or pair_of_servers(request.config)
    env = {"ASGI_WS_BROKER": redis_server.url, **{f"ASGI_WS_{key.upper()}": value for key, value in settings.items()}}
    with ExitStack() as stack:
        a = stack.enter_context(run_server(first, tmp_path / "a", env))
        b = stack.enter_context(run_server(second, tmp_path / "b", env))
        for process in (a, b):
            process.wait_for_health(lambda document: document["broker"]["connected"], PATIENCE)
        yield Deployment(redis_server, a, b)


@pytest.fixture
def deployment(request: pytest.FixtureRequest, redis_server: RedisServer, tmp_path: Path) -> Iterator[Deployment]:
    yield from deploy(request, redis_server, tmp_path)


async def receive_texts(ws: ClientConnection, count: int) -> list[str]:
    texts = []
    with anyio.fail_after(PATIENCE):
        for _ in range(count):
            message = await ws.recv()
            assert isinstance(message, str)
            texts.append(message)
    return texts


async def test_chat_crosses_servers_in_order_with_no_loss_and_no_duplicates(deployment: Deployment) -> None:
    async with deployment.clients(f"/ws/chat/{ROOM}", "a1", "a2", "b1", "b2") as clients:
        await deployment.wait_until_subscribed(chat_room(ROOM))
        total = len(clients) * MESSAGES_PER_SENDER
        received: dict[str, list[str]] = {}

        async def send_all(name: str, ws: ClientConnection) -> None:
            for number in range(MESSAGES_PER_SENDER):
                await ws.send(f"{name}:{number}")

        async def read_all(name: str, ws: ClientConnection) -> None:
            received[name] = await receive_texts(ws, total)

        async with anyio.create_task_group() as tasks:
            for name, ws in clients.items():
                tasks.start_soon(read_all, name, ws)
                tasks.start_soon(send_all, name, ws)

    for name, texts in received.items():
        assert len(set(texts)) == total, f"{name} got duplicates or missed messages"
        for sender in clients:
            from_sender = [text for text in texts if text.startswith(f"{sender}:")]
            assert from_sender == [f"{sender}:{number}" for number in range(MESSAGES_PER_SENDER)], (name, sender)
    for process in deployment.processes:
        assert process.health()["broker"]["dropped"] == 0


async def test_broadcast_crosses_servers_and_skips_the_sender(deployment: Deployment) -> None:
    async with deployment.clients("/ws_broadcast", "a1", "a2", "b1", "b2") as clients:
        await deployment.wait_until_subscribed(BROADCAST)
        for name, ws in clients.items():
            await ws.send(name)
            for other_name, other in clients.items():
                if other is not ws:
                    assert await receive_texts(other, 1) == [f"New message: {name}"], other_name
        # The senders got nothing of their own: each client's next message is this one from b2's side.
        await clients["b2"].send("last")
        for other_name, other in clients.items():
            if other_name != "b2":
                assert await receive_texts(other, 1) == ["New message: last"], other_name


async def test_redis_killed_and_restarted_under_live_chat(deployment: Deployment) -> None:
    async with deployment.clients(f"/ws/chat/{ROOM}", "a1", "a2", "b1") as clients:
        a1, a2, b1 = clients.values()
        await deployment.wait_until_subscribed(chat_room(ROOM))
        await a1.send("before")
        for ws in (a1, a2, b1):
            assert await receive_texts(ws, 1) == ["before"]

        deployment.redis.kill()
        down = await deployment.wait_for_health(lambda document: document["status"] == "degraded")
        assert all(document["broker"]["connected"] is False for document in down)
        assert [process.get("/healthz").status for process in deployment.processes] == [503, 503]

        # Local delivery goes on without Redis.
        await a1.send("during the outage")
        assert await receive_texts(a1, 1) == ["during the outage"]
        assert await receive_texts(a2, 1) == ["during the outage"]

        deployment.redis.start()  # same port, empty: no subscriptions until the brokers resubscribe
        up = await deployment.wait_for_health(
            lambda document: document["status"] == "ok" and document["broker"]["reconnects"] >= 1
        )
        assert all(document["broker"]["reconnects"] == 1 for document in up)
        assert [process.get("/healthz").status for process in deployment.processes] == [200, 200]
        metrics = deployment.a.get("/metrics").body.decode()
        assert 'asgi_ws_broker_reconnects_total{kind="redis"} 1.0' in metrics
        assert 'asgi_ws_broker_connected{kind="redis"} 1.0' in metrics
        await deployment.wait_until_subscribed(chat_room(ROOM))

        # Across processes again, without restarting either.  b1's next message is this one:
        # the message sent during the outage was lost to b (at most once), never delivered late.
        await a1.send("after")
        assert await receive_texts(b1, 1) == ["after"]
        await b1.send("and back")
        assert await receive_texts(a2, 2) == ["after", "and back"]
        assert await receive_texts(b1, 1) == ["and back"]


SLOW_SETTINGS = {"outbox_size": "64", "rate_limit": "0"}
FLOOD_MESSAGES = 500
FLOOD_MESSAGE_SIZE = 32_000  # characters: 16 MB in all, far more than the socket buffers of the stalled client
FLOOD_WINDOW = 2  # messages the flooder may be ahead of the slower of the two readers


@pytest.fixture
def slow_deployment(request: pytest.FixtureRequest, redis_server: RedisServer, tmp_path: Path) -> Iterator[Deployment]:
    yield from deploy(request, redis_server, tmp_path, **SLOW_SETTINGS)


async def test_a_stalled_client_is_closed_4503_and_everyone_else_on_both_servers_gets_everything(
    slow_deployment: Deployment,
) -> None:
    deployment = slow_deployment
    generator = random.Random(4503)
    flood = [
        f"{number}:" + base64.b64encode(generator.randbytes(FLOOD_MESSAGE_SIZE * 3 // 4)).decode()
        for number in range(FLOOD_MESSAGES)
    ]
    expected = [f"New message: {text}" for text in flood]
    received: dict[str, list[str]] = {"a": [], "b": []}
    async with RawClient(HOST, deployment.b.port, "/ws_broadcast") as stalled:  # on b; it never reads until the end
        assert stalled.handshake is not None
        assert stalled.handshake.status == 101
        async with (
            connect(deployment.a.url("/ws_broadcast"), compression=None) as flooder,
            connect(deployment.a.url("/ws_broadcast"), compression=None, max_size=None) as reader_a,
            connect(deployment.b.url("/ws_broadcast"), compression=None, max_size=None) as reader_b,
        ):
            await deployment.wait_until_subscribed(BROADCAST)

            async def read(name: str, ws: ClientConnection) -> None:
                while len(received[name]) < len(expected):
                    received[name] += await receive_texts(ws, 1)

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(read, "a", reader_a)
                tasks.start_soon(read, "b", reader_b)
                for number, text in enumerate(flood):
                    with anyio.fail_after(PATIENCE):
                        while True:  # keep pace with the slower reader, as a well-behaved client would
                            if min(len(texts) for texts in received.values()) >= number - FLOOD_WINDOW:
                                break
                            await anyio.sleep(0.001)
                    await flooder.send(text)

        assert received["a"] == expected
        assert received["b"] == expected
        assert await read_until_close(stalled) == "closed 4503 slow consumer"


async def read_until_close(stalled: RawClient) -> str:
    """Read what the stalled client was sent until its close frame shows up: its code and reason; or how it ended."""
    try:
        while (frame := await stalled.next_frame()) is not None:
            if frame.opcode is Opcode.CLOSE:
                close = Close.parse(frame.data)
                return f"closed {close.code} {close.reason}"
    except TimeoutError:
        return "no close frame before a timeout"
    return "no close frame before the end of TCP"


async def test_asgi_ws_serve_with_two_workers_shares_rooms_through_redis(
    request: pytest.FixtureRequest, redis_server: RedisServer, tmp_path: Path
) -> None:
    """docs/operating.md, "Scaling out: Redis": ``asgi-ws serve --workers 2 --broker redis://...``,
    under every server of this run that can use Redis.  The kernel spreads connections over the two
    workers; clients are opened until both workers hold one, then they chat."""
    for name in usable_servers(request.config):
        room = chat_room(f"workers-{name}")
        flags = ["--workers", "2", "--broker", redis_server.url]
        with run_server(name, tmp_path / name, via_cli=flags) as server:
            async with contextlib.AsyncExitStack() as stack:
                clients = []
                for _ in range(MAX_CLIENTS_TO_REACH_BOTH_WORKERS):
                    clients.append(await stack.enter_async_context(connect(server.url(f"/ws/chat/{room.name}"))))
                    await anyio.sleep(0.1)  # let the new client's worker subscribe if it is its first
                    if subscribers(redis_server, room) == 2:
                        break
                else:
                    pytest.fail(f"{name}: {MAX_CLIENTS_TO_REACH_BOTH_WORKERS} connections all went to one worker")
                await clients[0].send("hello, every worker")
                for ws in clients:
                    assert await receive_texts(ws, 1) == ["hello, every worker"]
                await clients[-1].send("and back")
                for ws in clients:
                    assert await receive_texts(ws, 1) == ["and back"]


MAX_CLIENTS_TO_REACH_BOTH_WORKERS = 200  # a new one every 0.1 s: 20 s for the second worker to start


def subscribers(server: RedisServer, topic: Topic) -> int:
    """How many connections (processes, workers) Redis has subscribed to ``topic``'s channel."""
    return server.subscribers(channel(topic))
