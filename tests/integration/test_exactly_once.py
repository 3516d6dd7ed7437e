"""Nothing doubled, under real servers: senders cut off between send and ack, and every message once (contract §8.1).

Senders (:class:`conformance.feedclient.Sender`) publish with ids and are cut
off at random right after a send: a TCP abort, sometimes at once, sometimes
after they stopped reading a while, so that the server numbered the message
and its ack is lost.  They reconnect, resume the room with ``since`` and send
everything unacked again, with the same ids.  Readers wander in and out of
the room meanwhile.  Once every sender has an ack for every message, one
last message (:data:`DONE`) closes the run, and
:func:`conformance.feedcheck.check` reads every client's history with the
senders' acks: each message once in every reader's sequence (no gap, no
offset twice, no data at two offsets) and at the offset its ack named.

- **resets**: one process, the memory broker; the cut-offs are the senders'
  own aborts;
- **server SIGKILL**: two processes on one Redis; halfway, process ``a`` is
  killed with SIGKILL and started again, and its senders lose their
  connections with messages in flight;
- **Redis restart**: two processes on one Redis with an fsync'd append-only
  file; halfway, Redis is killed and started again, while the senders go on.

The Redis scenarios run with two processes of each server, and once with a
uvicorn and a hypercorn on one Redis (the mixed pair).  Each prints
``exactly-once <scenario> under <servers>: senders=.. messages=.. cut-offs=..
resent=.. suppressed=.. duplicates=0 doubled=0 gaps=0`` (``pytest -s``).
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from conformance.feedcheck import FeedCheck, check
from conformance.feedclient import Cutting, FeedClient, Sender, UrlOf, Wandering
from conformance.launcher import RunningServer
from conformance.redis_server import RedisServer

from .feed_restart import RestartablePair, restartable_pair
from .test_feed import DONE, feed_path, skip_without_redis
from .test_scale_out import pair_of_servers

pytestmark = [pytest.mark.server, pytest.mark.anyio]

PATIENCE = 60.0  # seconds for any one wait; only a hung server takes that long
SENDERS = 4
MESSAGES = 150  # per sender: 2.5 s at the senders' pace, more with the cut-offs
READERS = 8  # wandering readers, besides the senders, who read the room too
CUTTING = Cutting()


@dataclass
class Run:
    """The clients of one scenario, and what the servers counted."""

    senders: list[Sender]
    readers: list[FeedClient]  # the wanderers, and the client that sent DONE
    suppressed: int = 0  # publishes acked without a new number (feed_duplicates), as the live processes counted them

    def checked(self) -> FeedCheck:
        clients = [*self.senders, *self.readers]
        acks = {data: number for sender in self.senders for data, number in sender.acks.items()}
        return check({client.name: client.connections for client in clients}, acks)


Midway = Callable[[], Awaitable[None]]  # what happens to the deployment once half the messages are sent


async def send_among_readers(room: str, url_ofs: list[UrlOf], midway: Midway | None = None) -> Run:
    """Senders and wandering readers on ``url_ofs``; ``midway`` once each sender sent half; then DONE.

    DONE goes to the last of ``url_ofs``, which no scenario kills.
    """
    generator = random.Random(room)
    path = feed_path(room)
    run = Run(
        [Sender(f"sender{number}", path, count=MESSAGES) for number in range(SENDERS)],
        [FeedClient(f"reader-{number}", path) for number in range(READERS)],
    )
    closer = FeedClient("closer", path)
    with anyio.fail_after(PATIENCE * 2):
        async with anyio.create_task_group() as tasks:
            for sender in run.senders:
                tasks.start_soon(sender.publish, url_ofs, DONE, random.Random(generator.random()), CUTTING)
            for reader in run.readers:
                tasks.start_soon(reader.wander, url_ofs, DONE, random.Random(generator.random()), Wandering())
            if midway is not None:
                for sender in run.senders:
                    await sender.halfway.wait()
                await midway()
            for sender in run.senders:
                await sender.all_acked.wait()
            async with closer.connect(url_ofs[-1]) as (ws, connection):
                await ws.send(DONE)
                await closer.read_until(ws, connection, DONE)
    run.readers.append(closer)
    return run


def assert_exactly_once(run: Run, scenario: str, servers: str) -> None:
    """Every sender acked for every message, consistently; the checker clean; print the figures."""
    result = run.checked()
    senders = run.senders
    print(
        f"exactly-once {scenario} under {servers}: senders={len(senders)} "
        f"messages={sum(sender.sent for sender in senders)} cut-offs={sum(sender.cutoffs for sender in senders)} "
        f"resent={sum(sender.resent for sender in senders)} suppressed={run.suppressed} "
        f"readers={len(run.readers)} duplicates={result.total('duplicates')} doubled={result.total('doubled')} "
        f"gaps={result.total('gaps')} wrong_acks={result.wrong_acks}"
    )
    print(f"  {result.line(scenario)}")
    assert result.clean, result.report()
    for sender in senders:
        assert (sender.pending, len(sender.acks), sender.conflicting_acks) == ({}, MESSAGES, 0), sender.name
    assert sum(sender.cutoffs for sender in senders) > 0  # the seeded generator cuts some off: else nothing was shown
    assert len({tally.last for tally in result.clients.values()}) == 1  # every client ended at DONE


def suppressed(*servers: RunningServer) -> int:
    return sum(int(server.health()["broker"]["feed_duplicates"]) for server in servers)


# Resets, memory broker


async def test_senders_cut_off_by_resets(server_name: str, server: RunningServer) -> None:
    before = suppressed(server)
    run = await send_among_readers("exactly-once-resets", [server.url])
    run.suppressed = suppressed(server) - before
    assert_exactly_once(run, "resets", server_name)


# A SIGKILL of a server, and a Redis restart: two processes on one Redis


@pytest.fixture(params=["same", "mixed"])
def pair(
    request: pytest.FixtureRequest, server_name: str, redis_server: RedisServer, tmp_path: Path
) -> Iterator[RestartablePair]:
    """Two processes of ``server_name`` ("same"), or the pair of :func:`pair_of_servers` ("mixed": a
    uvicorn and a hypercorn when the run has both; run once, with the first) on one Redis."""
    skip_without_redis(server_name)
    names = (server_name, server_name)
    if request.param == "mixed":
        names = pair_of_servers(request.config)
        if names[0] == names[1]:
            pytest.skip(f"a mixed pair needs two servers that run the Redis broker in this run, not only {names[0]}")
        if server_name != names[0]:
            pytest.skip(f"the mixed pair {names[0]} and {names[1]} runs once, with {names[0]}")
    with ExitStack() as stack:
        yield stack.enter_context(restartable_pair(names[0], redis_server, tmp_path, names[1]))


def servers_of(pair: RestartablePair) -> str:
    return " and ".join(dict.fromkeys(pair.names.values()))


async def test_senders_cut_off_by_a_sigkill_of_their_server(pair: RestartablePair) -> None:
    room = "exactly-once-sigkill"

    async def kill_and_restart_a() -> None:
        pair.kill_a()
        await anyio.to_thread.run_sync(pair.restart_a)

    run = await send_among_readers(room, [pair.a.url, pair.b.url], kill_and_restart_a)
    run.suppressed = suppressed(pair.a, pair.b)
    assert_exactly_once(run, "server-sigkill", servers_of(pair))


OUTAGE = 1.0  # seconds Redis stays down while the senders go on


async def test_senders_cut_off_by_a_redis_restart(pair: RestartablePair) -> None:
    """Redis is killed with publishes in flight: the processes hold them and number them after the restart;
    a batch sent again after the reconnect is acked, not numbered twice, as the id keys were fsync'd."""
    processes = [pair.a, pair.b]

    async def wait_for_health(condition: Callable[[dict[str, object]], bool]) -> None:
        for process in processes:
            await anyio.to_thread.run_sync(process.wait_for_health, condition, PATIENCE)

    async def restart_redis() -> None:
        pair.redis.kill()
        await wait_for_health(lambda document: document["status"] == "degraded")
        await anyio.sleep(OUTAGE)
        pair.redis.start()
        await wait_for_health(lambda document: document["status"] == "ok")

    run = await send_among_readers("exactly-once-redis", [pair.a.url, pair.b.url], restart_redis)
    run.suppressed = suppressed(pair.a, pair.b)
    assert_exactly_once(run, "redis-restart", servers_of(pair))


@pytest.fixture
def redis_server(persistent_redis: RedisServer) -> RedisServer:
    """Every Redis of this module keeps its acknowledged writes across a restart (appendfsync always)."""
    return persistent_redis
