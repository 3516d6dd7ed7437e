"""The feed loses nothing, under real servers: every client's offsets read by the checker (contract §8).

Each scenario runs feed clients (:class:`conformance.feedclient.FeedClient`)
against real server processes while some of them publish, then hands what
every connection received to :func:`conformance.feedcheck.check`, asserts
that no client saw a gap, a duplicate, a resume that started in the wrong
place or data that another client saw otherwise, and prints the checker's
``feed-check <scenario> under <server>: ...`` line (``pytest -s`` shows it).

- **random resumes**: clients that drop their connection at random (a close or
  a TCP abort) and resume, while others publish;
- **stalled client**: a client that stops reading is closed with 4503, reads
  what it was sent, resumes, and has everything;
- **Redis killed and restarted** mid-traffic, two processes of the server on
  one Redis: with an fsync'd append-only file, one epoch and nothing lost;
  without one, a new epoch starts, and the clients that were away get
  ``recovered: false`` (printed, and asserted as such);
- **two servers, one room**: a uvicorn and a hypercorn process on one Redis,
  publishers and resuming clients on both;
- **history overflow**: a client away for longer than the history gets
  ``recovered: false``, then live messages with no gap.

Publishers pace themselves under the default rate limit.  Every publisher is
also a reader, checked like the others.  A run ends with one last message
(:data:`DONE`), sent once every publisher has read its own last message back;
every client reads until it.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import anyio
import pytest
from websockets.frames import Opcode

from asgi_ws.servers import SERVERS
from asgi_ws.topics import feed_room
from conformance.feedcheck import FeedCheck, check
from conformance.feedclient import FeedClient, UrlOf, Wandering
from conformance.launcher import HOST, RunningServer, StartServer
from conformance.rawclient import RawClient
from conformance.redis_server import RedisServer

from .test_hostile import SMALL_RCVBUF, close_of, metric
from .test_scale_out import Deployment, deploy

pytestmark = [pytest.mark.server, pytest.mark.anyio]

PATIENCE = 60.0  # seconds for any one wait; only a hung server takes that long
PACE = 1 / 60  # seconds between two messages of one publisher: under the default 100/s rate limit
DONE = "done"  # the last message of every scenario


def feed_path(room: str) -> str:
    return f"/ws/feed/{room}"


def assert_clean(result: FeedCheck, scenario: str, server_name: str) -> None:
    """Print the checker's line, then fail with every problem it wrote down, if any."""
    print(result.line(f"{scenario} under {server_name}"))
    assert result.clean, result.report()


def assert_clean_but_plain_resends(result: FeedCheck, scenario: str, server_name: str) -> None:
    """:func:`assert_clean`, except that a plain publish may be numbered twice across a Redis outage.

    A batch on its way when Redis went away is sent again after the reconnect, since it may or may
    not have run: its plain texts can then appear under two offsets (contract §8, "When Redis goes
    away"; publish ids, §8.1, are what prevents it, tests/integration/test_exactly_once.py).  No
    offset may be skipped or given twice, and every client must agree on each offset.
    """
    print(result.line(f"{scenario} under {server_name}"))
    problems = ("gaps", "duplicates", "bad_resumes", "malformed")
    assert [result.total(kind) for kind in problems] == [0] * len(problems), result.report()
    assert result.disagreements == 0, result.report()


def span(client: FeedClient) -> str:
    """Which offsets of each epoch a client received: "first-last (count)" per epoch, in order."""
    offsets: dict[str, list[int]] = {}
    for connection in client.connections:
        for text in connection.texts:
            value = json.loads(text)
            if "data" in value:
                offsets.setdefault(value["epoch"], []).append(value["offset"])
    return ", ".join(f"{min(seen)}-{max(seen)} ({len(seen)})" for seen in offsets.values())


def checked(clients: Sequence[FeedClient]) -> FeedCheck:
    return check({client.name: client.connections for client in clients})


class Publishers:
    """Clients that each send ``count`` paced messages on one connection, reading all the while.

    Once every one has read its own last message back, the first sends
    :data:`DONE`; each reads on until it.
    """

    def __init__(self, room: str, url_ofs: Sequence[UrlOf], count: int, milestone: int = 0) -> None:
        self.clients = [FeedClient(f"publisher-{number}", feed_path(room)) for number in range(len(url_ofs))]
        self.url_ofs = url_ofs  # where each one connects
        self.count = count  # messages per publisher
        self.started = anyio.Event()  # every publisher is connected
        self.sent = 0  # messages sent so far, by all of them
        self.milestone = milestone  # how many messages, in all, set reached_milestone
        self.reached_milestone = anyio.Event()
        self._connected = 0
        self._published = 0
        self._all_published = anyio.Event()

    async def run(self) -> None:
        async with anyio.create_task_group() as tasks:
            for client, url_of in zip(self.clients, self.url_ofs, strict=True):
                tasks.start_soon(self._publish, client, url_of)

    async def _publish(self, client: FeedClient, url_of: UrlOf) -> None:
        texts = [f"{client.name}:{number}" for number in range(self.count)]
        async with client.connect(url_of) as (ws, connection):
            self._connected += 1
            if self._connected == len(self.clients):
                self.started.set()

            async def send() -> None:
                for text in texts:
                    await ws.send(text)
                    self.sent += 1
                    if self.sent == self.milestone:
                        self.reached_milestone.set()
                    await anyio.sleep(PACE)

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(send)
                await client.read_until(ws, connection, texts[-1])
            self._published += 1
            if self._published == len(self.clients):
                self._all_published.set()
            await self._all_published.wait()
            if client is self.clients[0]:
                await ws.send(DONE)
            await client.read_until(ws, connection, DONE)


# Random resumes, memory broker


WANDERERS = 26
PUBLISHED = 250  # per publisher; 4 publishers: 1000 messages, all inside the default history


async def test_random_resumes(server_name: str, server: RunningServer) -> None:
    clients = await publish_among_wanderers("random-resumes", [server.url] * 4, PUBLISHED, [server.url], WANDERERS)
    assert_all_served(checked(clients), "random-resumes", server_name, WANDERERS)


async def publish_among_wanderers(
    room: str,
    publish_to: Sequence[UrlOf],
    published: int,
    wander_over: list[UrlOf],
    wanderers: int,
    joined: Callable[[], Awaitable[None]] | None = None,
) -> list[FeedClient]:
    """Publishers on ``publish_to`` and wanderers among ``wander_over``, until every one has read DONE.

    ``joined`` is awaited once the publishers are connected, before the wanderers start.
    """
    publishers = Publishers(room, publish_to, published)
    restless = [FeedClient(f"wanderer-{number}", feed_path(room)) for number in range(wanderers)]
    generator = random.Random(room)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(publishers.run)
        with anyio.fail_after(PATIENCE):
            await publishers.started.wait()
            if joined is not None:
                await joined()
        for wanderer in restless:
            tasks.start_soon(wanderer.wander, wander_over, DONE, random.Random(generator.random()), Wandering())
    return publishers.clients + restless


def assert_all_served(result: FeedCheck, scenario: str, servers: str, wanderers: int) -> None:
    """Clean, every wanderer resumed and every resume was served, and every client ended at the same message."""
    assert_clean(result, scenario, servers)
    assert result.total("resumes") >= wanderers
    assert result.total("not_recovered") == 0  # every resume was inside the history
    assert len({tally.last for tally in result.clients.values()}) == 1


# A stalled client closed with 4503, memory broker


# A small outbox and big messages: the stalled client is closed after the socket buffers fill.
STALL_SETTINGS = {
    "ASGI_WS_OUTBOX_SIZE": "16",
    "ASGI_WS_OUTBOX_BYTES": "65536",
    "ASGI_WS_HISTORY_SIZE": "5000",
    "ASGI_WS_RATE_LIMIT": "0",  # the talker sends as fast as it reads its own messages back
}
STALL_MESSAGE = 16 * 1024  # characters
STALL_MAX_MESSAGES = 4000  # 64 MiB: if no 4503 came by then, the app never closes a stalled feed client


async def test_a_stalled_client_closed_4503_resumes_and_gets_everything(
    server_name: str, start_server: StartServer
) -> None:
    if server_name == "daphne":
        # conformance/divergences.toml, slow-consumer-4503: daphne 4.2.3 buffers every write in Twisted
        # (daphne/ws_protocol.py, WebSocketProtocol.serverSend), so a send never waits, the outbox never
        # fills and no client of it is ever closed 4503.
        pytest.skip("daphne has no backpressure to the app, so it never closes a stalled client with 4503")
    server = start_server(STALL_SETTINGS)
    room = "stalled"
    talker, stalled = FeedClient("talker", feed_path(room)), FeedClient("stalled", feed_path(room))
    filler = "x" * STALL_MESSAGE
    async with (
        RawClient(HOST, server.port, feed_path(room), socket_options=SMALL_RCVBUF) as raw,
        talker.connect(server.url) as (ws, connection),
    ):
        sent = 0
        with anyio.fail_after(PATIENCE):
            while await metric(server, "asgi_ws_slow_consumer_drops_total") == 0:
                assert sent < STALL_MAX_MESSAGES, "the stalled feed client was never closed"
                await ws.send(f"{sent}:{filler}")
                sent += 1
                await talker.read_until(ws, connection, f"{sent - 1}:{filler}")  # the talker is never the slow one
        received = await raw.read_until_closed(within=PATIENCE)
    assert all(frame.fin for frame in received.frames)
    texts = [bytes(frame.data).decode() for frame in received.frames if frame.opcode is Opcode.TEXT]
    assert close_of(received.frames) == (4503, "slow consumer")
    stalled.record(None, texts)
    async with talker.connect(server.url) as (ws, connection), stalled.connect(server.url) as (ws2, connection2):
        await ws.send(DONE)
        await talker.read_until(ws, connection, DONE)
        await stalled.read_until(ws2, connection2, DONE)
    result = checked([talker, stalled])
    assert_clean(result, "stalled-4503", server_name)
    assert stalled.connections[0].texts, "the stalled client read nothing before its close"
    assert result.clients["stalled"].resumes == 1
    assert result.total("not_recovered") == 0
    print(f"feed-check stalled-4503 under {server_name}: {sent} messages of 16 KiB before the close")


# A client away for longer than the history, memory broker


HISTORY = 50


async def test_a_resume_older_than_the_history_is_not_recovered_then_live_without_gap(
    server_name: str, start_server: StartServer
) -> None:
    server = start_server({"ASGI_WS_HISTORY_SIZE": str(HISTORY), "ASGI_WS_RATE_LIMIT": "0"})
    room = "overflow"
    talker, late, near = (FeedClient(name, feed_path(room)) for name in ("talker", "late", "near"))
    async with talker.connect(server.url) as (ws, connection):

        async def say(count: int, label: str) -> None:
            for number in range(count):
                await ws.send(f"{label}:{number}")
                await talker.read_until(ws, connection, f"{label}:{number}")

        async def visit(client: FeedClient, label: str) -> None:
            async with client.connect(server.url) as (their_ws, their_connection):
                await say(5, label)
                await client.read_until(their_ws, their_connection, f"{label}:4")

        await visit(late, "late-was-here")
        await say(HISTORY * 3, "late-is-away")
        await visit(near, "near-was-here")
        await say(HISTORY // 2, "near-is-away")
        async with (
            late.connect(server.url) as (late_ws, late_connection),
            near.connect(server.url) as (near_ws, near_connection),
        ):
            await say(20, "both-are-back")
            await ws.send(DONE)
            await talker.read_until(ws, connection, DONE)
            await late.read_until(late_ws, late_connection, DONE)
            await near.read_until(near_ws, near_connection, DONE)
    result = checked([talker, late, near])
    assert_clean(result, "history-overflow", server_name)
    assert (result.clients["late"].resumes, result.clients["late"].not_recovered) == (1, 1)
    assert (result.clients["near"].resumes, result.clients["near"].not_recovered) == (1, 0)


# Redis killed and restarted mid-traffic, two processes of one server


def skip_without_redis(server_name: str) -> None:
    """Skip where the server cannot run the Redis broker: a limit asgi_ws.servers documents, not a missing tool."""
    reason = SERVERS[server_name].no_redis
    if reason is not None:
        pytest.skip(f"{server_name} cannot run the Redis broker by design: {reason}")


KILL_PUBLISHED = 300  # per publisher, one on each process: 5 s at the publishers' pace
KILL_AT = 150  # messages sent, in all, when Redis is killed
OUTAGE = 1.0  # seconds Redis stays down while the publishers go on


@dataclass
class KillRun:
    """The clients of :func:`redis_kill_and_restart`, by what they did."""

    staying: list[FeedClient]  # connected all along, publishers included
    away: list[FeedClient]  # left before the kill, resumed after the restart on the other process
    moved: list[FeedClient]  # moved to the other process during the outage: a resume Redis cannot serve

    @property
    def clients(self) -> list[FeedClient]:
        return self.staying + self.away + self.moved


async def redis_kill_and_restart(deployment: Deployment, room: str) -> KillRun:
    """Kill Redis mid-traffic and start it again, publishers on both processes going on through the outage.

    Clients stay on both processes; two leave before the kill and resume after the restart on the
    other process; two move to the other process during the outage.
    """
    a, b = deployment.a.url, deployment.b.url
    readers = [FeedClient(f"stay-{name}", feed_path(room)) for name in ("a1", "a2", "b1", "b2")]
    publishers = Publishers(room, [a, b], KILL_PUBLISHED, milestone=KILL_AT)
    run = KillRun(
        readers + publishers.clients,
        [FeedClient(f"away-{name}", feed_path(room)) for name in ("a", "b")],
        [FeedClient(f"moved-{name}", feed_path(room)) for name in ("a", "b")],
    )
    outage, returning = anyio.Event(), anyio.Event()

    async def stay(client: FeedClient, url_of: UrlOf, joined: anyio.Event) -> None:
        async with client.connect(url_of) as (ws, connection):
            joined.set()
            await client.read_until(ws, connection, DONE)

    async def leave_and_return(client: FeedClient, there: UrlOf, back: UrlOf) -> None:
        async with client.connect(there) as (ws, connection):
            for _ in range(5):
                await client.read(ws, connection)
        await returning.wait()
        async with client.connect(back) as (ws, connection):
            await client.read_until(ws, connection, DONE)

    async def move(client: FeedClient, there: UrlOf, back: UrlOf) -> None:
        async with client.connect(there) as (ws, connection), anyio.create_task_group() as reading:
            reading.start_soon(client.read_until, ws, connection, DONE)
            await outage.wait()
            reading.cancel_scope.cancel()  # websockets' recv() loses nothing when cancelled
        async with client.connect(back) as (ws, connection):
            await client.read_until(ws, connection, DONE)

    with anyio.fail_after(PATIENCE):
        async with anyio.create_task_group() as tasks:
            for client, url_of in zip(readers, [a, a, b, b], strict=True):
                joined = anyio.Event()
                tasks.start_soon(stay, client, url_of, joined)
                await joined.wait()
            await deployment.wait_until_subscribed(feed_room(room))
            tasks.start_soon(publishers.run)
            for there, back, away, moved in zip((a, b), (b, a), run.away, run.moved, strict=True):
                tasks.start_soon(leave_and_return, away, there, back)
                tasks.start_soon(move, moved, there, back)
            await publishers.reached_milestone.wait()
            deployment.redis.kill()
            await deployment.wait_for_health(lambda document: document["status"] == "degraded")
            outage.set()
            await anyio.sleep(OUTAGE)
            deployment.redis.start()
            await deployment.wait_for_health(
                lambda document: document["status"] == "ok" and document["broker"]["reconnects"] >= 1
            )
            returning.set()
    return run


@pytest.fixture
def killable(request: pytest.FixtureRequest, server_name: str, tmp_path: Path) -> Iterator[Deployment]:
    """Two processes of ``server_name`` on a Redis with persistence (param "persistent") or without ("volatile")."""
    skip_without_redis(server_name)
    redis_fixture = {"persistent": "persistent_redis", "volatile": "redis_server"}[request.param]
    redis: RedisServer = request.getfixturevalue(redis_fixture)
    yield from deploy(request, redis, tmp_path, (server_name, server_name))


@pytest.mark.parametrize("killable", ["persistent"], indirect=True)
async def test_redis_killed_with_persistence_loses_nothing(server_name: str, killable: Deployment) -> None:
    """One epoch throughout, and every resume is served: those made while Redis was down wait for
    it to come back (up to the broker's ``RESUME_WAIT``, longer than this outage)."""
    run = await redis_kill_and_restart(killable, "redis-kill")
    result = checked(run.clients)
    assert_clean_but_plain_resends(result, "redis-kill-persistent", server_name)
    assert [result.clients[client.name].not_recovered for client in run.away + run.moved] == [0, 0, 0, 0]
    assert {len(tally.epochs) for tally in result.clients.values()} == {1}
    assert len({tally.last for tally in result.clients.values()}) == 1
    print_skipped(result, run.moved)


@pytest.mark.parametrize("killable", ["volatile"], indirect=True)
async def test_redis_killed_without_persistence_starts_a_new_epoch(server_name: str, killable: Deployment) -> None:
    """The history is gone with Redis: the next message starts a new epoch at offset 1, and no resume
    across the outage can be served.  No client sees a gap or a duplicate within an epoch."""
    run = await redis_kill_and_restart(killable, "redis-kill")
    result = checked(run.clients)
    assert_clean_but_plain_resends(result, "redis-kill-volatile", server_name)
    assert [result.clients[client.name].not_recovered for client in run.away + run.moved] == [1, 1, 1, 1]
    for client in run.staying:
        assert len(result.clients[client.name].epochs) == 2, client.name
    print_skipped(result, run.moved)
    for client in run.clients:
        print(f"  {client.name}: {span(client)}")


def print_skipped(result: FeedCheck, clients: list[FeedClient]) -> None:
    """How many offsets each client passed over after its resume was not recovered: the contract allows it."""
    print(
        "  skipped after a resume not recovered: "
        + ", ".join(f"{c.name} {result.clients[c.name].skipped}" for c in clients)
    )


# A uvicorn and a hypercorn process sharing one room through one Redis


PAIR_WANDERERS = 20
PAIR_PUBLISHED = 200  # per publisher, two on each process: 800 messages


async def test_two_servers_share_a_room_through_redis(
    request: pytest.FixtureRequest, redis_server: RedisServer, tmp_path: Path
) -> None:
    """Not run per server: the two processes are a uvicorn and a hypercorn when the run covers both
    (see tests/integration/test_scale_out.py), publishers and wandering clients on both."""
    with contextlib.contextmanager(deploy)(request, redis_server, tmp_path) as deployment:
        room = "two-servers"
        a, b = deployment.a.url, deployment.b.url
        clients = await publish_among_wanderers(
            room,
            [a, b, a, b],
            PAIR_PUBLISHED,
            [a, b],
            PAIR_WANDERERS,
            partial(deployment.wait_until_subscribed, feed_room(room)),
        )
        names = " and ".join(process.name for process in deployment.processes)
    assert_all_served(checked(clients), "two-servers", names, PAIR_WANDERERS)
