"""The load generator: WebSocket clients cheap enough that the server, not they, sets the pace.

Every client is a :mod:`picows` connection (the protocol in Cython) on uvloop,
driven by callbacks rather than coroutines: a reply arriving sends the next
message from inside ``on_ws_frame``, with no task switch on the client side.
The benchmark process runs all of them on one CPU of its own, and each
measurement reports the share of that CPU it used (``client_cpu``): near 1.0
means the load generator was the bottleneck and the figure is not the server's.

The workloads (contract §6):

- :func:`echo` round trips per second on N connections, each with one message
  in flight;
- :func:`stream`: one request, then the time until all ``count`` messages of
  the stream are in;
- :func:`fan_out`: listeners in one chat (or feed) room and a publisher that keeps a
  fixed number of messages in flight, deliveries per second; optionally with
  one more member that never reads (:func:`maybe_stalled`), or, in a feed
  room, the publisher publishing with ids and counting its acks apart
  (:class:`Publisher`);
- :func:`idle`: many open connections that do nothing, for memory per connection;
- :func:`replay`: a feed client that resumes ``messages`` behind the newest
  message of a room, the time until the last one it missed is in
  (:func:`feed_top` first gives the room that much history).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from conformance.rawclient import RawClient

__all__ = [
    "Measured",
    "Publisher",
    "Tally",
    "echo",
    "fan_out",
    "feed_top",
    "idle",
    "replay",
    "stream",
]

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")  # units of utime and stime in /proc/PID/stat
CONNECTS_AT_ONCE = 100  # handshakes in flight while opening many connections
FRAME_LIMIT = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Measured:
    """What one run of a workload gave: a rate, and how busy the load generator was."""

    rate: float  # round trips, messages or deliveries per second
    client_cpu: float  # CPU seconds the load generator used per wall second (1.0 = saturated)
    done: bool = True  # False if the workload ran out of time before it finished
    server_growth: float = 0.0  # bytes the server's resident memory grew by during the run, where measured
    server_cpu: float = 0.0  # CPU seconds the server used per wall second (1.0 = one CPU busy), where measured


class Tally:
    """A count shared by many connections, with a wake-up when it reaches a mark."""

    __slots__ = ("count", "mark", "reached")

    def __init__(self) -> None:
        self.count = 0
        self.mark = 0  # wake whoever waits once count >= mark
        self.reached = asyncio.Event()

    def add(self) -> None:
        self.count += 1
        if self.count >= self.mark:
            self.reached.set()

    async def wait_for(self, mark: int, seconds: float) -> bool:
        """Wait until ``count >= mark``; False if ``seconds`` pass first."""
        if self.count >= mark:
            return True
        self.mark = mark
        self.reached.clear()
        try:
            await asyncio.wait_for(self.reached.wait(), seconds)
        except TimeoutError:
            return False
        return True


class Client(WSListener):
    """One connection.  Counts data frames into a :class:`Tally`; ``reply`` makes it an echo client."""

    def __init__(self, tally: Tally, reply: bytes | None = None, *, keep: bool = False) -> None:
        super().__init__()
        self.tally = tally
        self.reply = reply  # sent back on every data frame while ``replying``
        self.replying = False
        self.transport: WSTransport | None = None
        self.first = ""  # the first data frame's text, where ``keep`` asks for it
        self.last = ""  # the latest data frame's text, where ``keep`` asks for it
        self.keep = keep  # decode and keep ``first`` and ``last`` (the feed workloads read offsets)

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
            if self.keep:
                self.last = frame.get_payload_as_utf8_text()
                self.first = self.first or self.last
            self.tally.add()
            if self.replying:
                transport.send(WSMsgType.TEXT, self.reply)
        elif kind is WSMsgType.CLOSE:  # answer the server's close, as RFC 6455 asks
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def send(self, payload: bytes) -> None:
        assert self.transport is not None
        self.transport.send(WSMsgType.TEXT, payload)


class Publisher(Client):
    """A feed publisher that publishes with ids (contract §8.1): its acks go to ``acks``, not to the deliveries."""

    def __init__(self, tally: Tally, acks: Tally) -> None:
        super().__init__(tally)
        self.acks = acks

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is WSMsgType.TEXT and frame.get_payload_as_bytes().startswith(b'{"ack"'):
            self.acks.add()
            return
        super().on_ws_frame(transport, frame)


@asynccontextmanager
async def connections(
    url: str, count: int, tally: Tally, reply: bytes | None = None, first: Callable[[], Client] | None = None
) -> AsyncIterator[list[Client]]:
    """Open ``count`` clients to ``url`` (at most CONNECTS_AT_ONCE handshakes at a time), close them after.

    ``first`` makes the first of them, where it is to be another kind of client.
    """
    gate = asyncio.Semaphore(CONNECTS_AT_ONCE)

    def make() -> Client:
        return Client(tally, reply)

    async def open_one(factory: Callable[[], Client]) -> Client:
        async with gate:
            _, client = await ws_connect(factory, url, max_frame_size=FRAME_LIMIT, websocket_handshake_timeout=30)
            assert isinstance(client, Client)
            return client

    tasks = [asyncio.ensure_future(open_one(first if number == 0 and first else make)) for number in range(count)]
    try:
        clients = await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is None:
                task.result().transport.disconnect()  # type: ignore[union-attr]
        raise
    try:
        yield clients
    finally:
        for client in clients:
            if client.transport is not None and not client.transport.is_disconnected:
                client.transport.send_close()
                client.transport.disconnect()
        await asyncio.gather(*(c.transport.wait_disconnected() for c in clients if c.transport is not None))


def group_cpu_seconds(group: int) -> float:
    """CPU seconds used so far by every process of process group ``group`` (a server and its workers)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # what follows "pid (comm)"
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[2]) == group:  # fields: state ppid pgrp ... utime(11) stime(12)
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


class CpuMeter:
    """Wall time, this process's CPU time, and the server's, over a window."""

    def __init__(self, server: int | None) -> None:
        self.server = server  # the server's process group, or None not to measure it
        self.wall = time.perf_counter()
        self.cpu = time.process_time()
        self.server_cpu = group_cpu_seconds(server) if server else 0.0

    def measured(self, count: int, finished: bool = True) -> Measured:
        """``count`` round trips, messages or deliveries since the meter started, as a rate."""
        wall = time.perf_counter() - self.wall
        client = (time.process_time() - self.cpu) / wall
        server = (group_cpu_seconds(self.server) - self.server_cpu) / wall if self.server else 0.0
        return Measured(count / wall, client, finished, server_cpu=server)


async def echo(
    url: str, connections_: int, seconds: float, payload: bytes, *, server: int | None = None, warmup: float = 0.5
) -> Measured:
    """Round trips per second: every connection keeps one message in flight for ``seconds``."""
    tally = Tally()
    async with connections(url, connections_, tally, reply=payload) as clients:
        for client in clients:
            client.replying = True
            client.send(payload)
        await asyncio.sleep(warmup)
        start, meter = tally.count, CpuMeter(server)
        await asyncio.sleep(seconds)
        result = meter.measured(tally.count - start)
        for client in clients:
            client.replying = False
        # Let the last replies in before closing, so that no server logs a broken send.
        await tally.wait_for(tally.count + 1, 1.0)
    return result


async def stream(url: str, count: int, repeats: int, *, server: int | None = None, limit: float = 120.0) -> Measured:
    """Messages per second of ``repeats`` streams of ``count``, one after the other on one connection."""
    tally = Tally()
    async with connections(url, 1, tally) as (client,):
        # One stream first, not counted: the connection and the server's code paths warm up.
        client.send(b"go")
        if not await tally.wait_for(count, limit):
            return Measured(0.0, 0.0, done=False)
        meter, start = CpuMeter(server), tally.count
        for round_ in range(1, repeats + 1):
            client.send(b"go")
            if not await tally.wait_for(start + round_ * count, limit):
                return Measured(0.0, 0.0, done=False)
        return meter.measured(count * repeats)


async def fan_out(
    url: str,
    listeners: int,
    messages: int,
    payload: bytes,
    *,
    window: int = 8,
    stalled: bool = False,
    ids: bool = False,
    server: int | None = None,
    limit: float = 60.0,
) -> Measured:
    """Deliveries per second to ``listeners`` members of one room, the publisher ``window`` messages ahead.

    The publisher is a member too (chat sends to everyone, the sender
    included), so each message makes ``listeners + 1`` deliveries.  It sends
    message *i* only once message *i - window* has reached everyone.  With
    ``stalled``, one more member joins first and never reads; its deliveries
    are not counted, and a server that waits for it stops the run after
    ``limit`` seconds, which then counts what arrived until then (``done`` False).
    With ``ids`` (a feed room), message *i* is ``{"id": "RUN-i", "data": payload}``,
    ``RUN`` new for each run: the room gets ``payload`` numbered, and the
    publisher an ack besides, which is not a delivery.
    """
    tally, acks = Tally(), Tally()
    members = listeners + 1
    make_publisher = (lambda: Publisher(tally, acks)) if ids else None
    run_id = os.urandom(6).hex().encode()  # ids unique to this run: a room remembers them for its dedupe window
    if ids and any(escaped in payload for escaped in (b'"', b"\\")):
        raise ValueError("fan_out(ids=True): the payload goes into a JSON string as it is, so it must need no escape")
    async with maybe_stalled(url, stalled), connections(url, members, tally, first=make_publisher) as clients:
        publisher = clients[0]
        await _until_in_room(publisher, tally, members)
        meter, start = CpuMeter(server), tally.count
        deadline = time.monotonic() + limit
        done = True
        for number in range(messages):
            if number >= window:
                mark = start + (number - window + 1) * members
                if not await tally.wait_for(mark, max(0.0, deadline - time.monotonic())):
                    done = False
                    break
            publisher.send(b'{"id": "%s-%d", "data": "%s"}' % (run_id, number, payload) if ids else payload)
        if done:
            done = await tally.wait_for(start + messages * members, max(0.0, deadline - time.monotonic()))
        return meter.measured(tally.count - start, done)


async def _until_in_room(publisher: Client, tally: Tally, members: int) -> None:
    """Send "hello" until one reaches every member: all have joined the room."""
    for _ in range(100):
        before = tally.count
        publisher.send(b"hello")
        if await tally.wait_for(before + members, 0.2):
            return
    raise RuntimeError(f"{members} members never all received one message: did they all join the room?")


# A client across a real network, as the server sees it: a small receive buffer,
# and Ethernet-sized segments instead of loopback's 64 KiB ones, which is what
# the kernel sizes the server's send buffer by.  Without them, loopback lets the
# server write about a megabyte to a client that never reads before anything in
# the server notices.
STALLED_SOCKET = (
    (socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),
    (socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1460),
)


@asynccontextmanager
async def maybe_stalled(url: str, stalled: bool) -> AsyncIterator[None]:
    """With ``stalled``: a member that completes the handshake and then never reads, for the ``with`` block."""
    if not stalled:
        yield
        return
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    async with RawClient(parts.hostname, parts.port, path, socket_options=STALLED_SOCKET) as client:
        assert client.handshake is not None
        if client.handshake.status != 101:
            raise ConnectionError(f"{url}: the stalled client was refused with {client.handshake.status}")
        yield


async def feed_top(url: str, at_least: int, payload: bytes, *, window: int = 32) -> tuple[str, int]:
    """The epoch and newest offset of the feed room at ``url``, after sending messages until it is ``at_least``.

    One "hello" first tells where the room stands; the publisher is a member,
    so each message it sends comes back to it, numbered, and it keeps
    ``window`` of them in flight.
    """
    tally = Tally()
    async with connections(url, 1, tally) as (client,):
        client.keep = True
        client.send(b"hello")
        if not await tally.wait_for(1, 30.0):
            raise RuntimeError(f"{url}: no answer to a feed message")
        top = json.loads(client.last)["offset"]
        missing = max(0, at_least - top)
        for number in range(missing):
            if number >= window and not await tally.wait_for(2 + number - window, 30.0):
                raise RuntimeError(f"{url}: the feed stopped answering after {tally.count} messages")
            client.send(payload)
        if not await tally.wait_for(1 + missing, 30.0):
            raise RuntimeError(f"{url}: the feed stopped answering after {tally.count} messages")
        last = json.loads(client.last)
    return last["epoch"], last["offset"]


async def replay(url: str, since: str, messages: int, *, server: int | None = None, limit: float = 60.0) -> Measured:
    """Milliseconds from the start of the connection to the last of ``messages`` replayed from ``?since=``.

    The rate of the result is that time, in ms, not a rate: one resume is one
    figure.  The control message must say ``recovered``, and the last message
    must be the newest the control message announced, or the figure would be
    of something else; either failing raises.
    """
    tally = Tally()
    meter = CpuMeter(server)
    started = time.perf_counter()
    _, client = await ws_connect(
        lambda: Client(tally, keep=True),
        f"{url}?since={since}",
        max_frame_size=FRAME_LIMIT,
        websocket_handshake_timeout=30,
    )
    assert isinstance(client, Client)
    try:
        done = await tally.wait_for(1 + messages, limit)
        elapsed = time.perf_counter() - started
        measured = meter.measured(1)
    finally:
        assert client.transport is not None
        client.transport.send_close()
        client.transport.disconnect()
        await client.transport.wait_disconnected()
    control, newest = json.loads(client.first), json.loads(client.last) if done else {}
    if control.get("recovered") is not True:
        raise RuntimeError(f"{url}?since={since}: the resume was refused: {client.first}")
    if done and newest.get("offset") != control["offset"]:
        raise RuntimeError(f"{url}?since={since}: the replay ended at {newest}, not at {control['offset']}")
    return Measured(elapsed * 1000, measured.client_cpu, done, server_cpu=measured.server_cpu)


async def idle(url: str, count: int, measure: Callable[[], float], settle: float = 1.0) -> float:
    """Open ``count`` connections that stay silent, wait ``settle`` s, and return ``measure()`` meanwhile."""
    async with connections(url, count, Tally()):
        await asyncio.sleep(settle)
        return measure()
