"""What anyio costs this app: echo and fan-out in process, the primitives alone, and over the wire.

The app uses anyio (task groups, CancelScope, Event, sleep, Lock) rather than
plain asyncio so that one code base runs on asyncio and on trio (hypercorn
``-k trio``, contract §0).  This script measures the price of that choice.  The
decision and the figures are in ``docs/concurrency.md``.

1. **Echo, in process.**  ``asgi_ws`` and the floor (:mod:`floor_echo`) driven
   with in-memory ``receive``/``send`` on one ``/echo`` connection, on anyio's
   asyncio and trio backends.  The harness's ``receive`` yields to the event
   loop once per message, as a server's does while it waits for a frame, so the
   floor is "one scheduler pass per message" and the rest is the app.  Also
   connection churn: connect, one echo, disconnect, thousands in a row.
2. **Fan-out, in process.**  One publisher and N listeners in one chat room.
   Each broadcast reaches every member before the next is sent, so every
   delivery wakes a sender task: the worst case for the Outbox's Event.
3. **Primitives.**  :class:`asgi_ws.outbox.Outbox` (anyio.Event) against a copy
   built on asyncio.Event, and a session's task group + CancelScope against
   asyncio.TaskGroup.  The difference is what anyio costs over plain asyncio.
4. **Over the wire.**  uvicorn (``--ws websockets-sansio``) serving ``asgi_ws``
   (every policy on, rate limit raised) and the floor, pinned to one CPU; the
   ``websockets`` client pinned to another; A and B alternated.  Echo round
   trips/s on 10 connections, then connect + one echo + close on 4 clients.
   Besides the rates, the server's own CPU time per round trip and per
   connection (from ``/proc``), which holds whether the client or the server
   is the bottleneck.

Every figure is the median of ``--rounds`` runs.  Run from the repository root::

    python bench/concurrency.py        # about 80 s; or: python -m bench.concurrency
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import itertools
import math
import os
import signal
import statistics
import tempfile
import time
from collections import defaultdict, deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import anyio
import sniffio
import trio
from websockets.asyncio.client import ClientConnection, connect

from asgi_ws.app import create_app
from asgi_ws.outbox import Outbox
from asgi_ws.settings import Settings
from asgi_ws.topics import chat_room
from conformance.launcher import APP, run_server

try:
    from bench.loadgen import group_cpu_seconds
    from bench.machine import split_cpus
    from bench.peers.raw_asgi import app as floor_echo
    from bench.scope import websocket_scope
except ModuleNotFoundError:  # run as a script: bench/ is on sys.path, the repository root is not
    from loadgen import group_cpu_seconds  # type: ignore[import-not-found,no-redef]
    from machine import split_cpus  # type: ignore[import-not-found,no-redef]
    from peers.raw_asgi import app as floor_echo  # type: ignore[import-not-found,no-redef]
    from scope import websocket_scope  # type: ignore[import-not-found,no-redef]

Event = dict[str, Any]
Receive = Callable[[], Awaitable[Event]]
Send = Callable[[Event], Awaitable[None]]
App = Callable[[Any, Any, Any], Coroutine[Any, Any, None]]  # asgi_ws's App and the floor type events differently
T = TypeVar("T")

# Policies off: the raw cost.  Policies on: every check runs, but the rate
# limit is raised so that it never throttles (contract §6, P2).
POLICIES_OFF = Settings(rate_limit=0, idle_timeout=0)
POLICIES_ON = Settings(rate_limit=1e9, rate_burst=10**9)

ROOM = "bench"
CONNECT: Event = {"type": "websocket.connect"}
DISCONNECT: Event = {"type": "websocket.disconnect", "code": 1000}
PAYLOAD = "hello, asgi-ws"


@dataclass(frozen=True)
class InProcessSizes:
    """How much work each in-process measurement does, per round."""

    echo_messages: int = 30_000
    connections: int = 3_000  # one after another, one echo each
    broadcasts: int = 100
    wake_ups: int = 100_000  # outbox items, one wake-up each
    burst_items: int = 1_000_000  # outbox items, 1000 per wake-up
    sessions: int = 10_000  # task group + cancel scope set-ups


class Samples:
    """Figures per (section, row, column) of the report's tables: printed as they arrive, summarised as medians."""

    def __init__(self) -> None:
        self.cells: dict[tuple[str, str, str], list[float]] = defaultdict(list)  # raw values per cell

    def add(self, section: str, row: str, column: str, value: float) -> None:
        self.cells[section, row, column].append(value)
        print(f"  {column:<24} {section:<40} {row:<40} {value:10.2f}", flush=True)

    def table(self, section: str, rows: list[str], columns: list[str]) -> dict[str, dict[str, float]]:
        """Medians of ``section`` as {row: {column: value}}; cells with no sample are left out."""
        cells = self.cells
        return {
            row: {
                column: statistics.median(cells[section, row, column])
                for column in columns
                if cells[section, row, column]
            }
            for row in rows
        }


# The in-memory harness: the server's side of the ASGI calls.


def text_message(text: str) -> Event:
    return {"type": "websocket.receive", "text": text, "bytes": None}


def native_yield() -> Callable[[], Awaitable[None]]:
    """The running loop's own "let the others run", with no anyio in between: harness cost only."""
    if sniffio.current_async_library() == "trio":
        return trio.lowlevel.checkpoint
    return functools.partial(asyncio.sleep, 0)


async def echo_connection(app: App, messages: int, pause: Callable[[], Awaitable[None]]) -> None:
    """One ``/echo`` connection from connect to disconnect, with ``messages`` messages."""
    incoming = itertools.chain([CONNECT], itertools.repeat(text_message(PAYLOAD), messages), [DISCONNECT])
    replies = 0

    async def receive() -> Event:
        await pause()
        return next(incoming)

    async def send(event: Event) -> None:
        nonlocal replies
        replies += event["type"] == "websocket.send"

    await app(websocket_scope("/echo"), receive, send)
    if replies != messages:
        raise RuntimeError(f"echo: {replies} replies to {messages} messages")


async def echo_cost(app: App, messages: int) -> float:
    """µs per message for ``messages`` echoes on one connection."""
    start = time.perf_counter()
    await echo_connection(app, messages, native_yield())
    return (time.perf_counter() - start) / messages * 1e6


async def churn_cost(app: App, connections: int) -> float:
    """µs per connection for ``connections`` connections in a row, one echo each."""
    pause = native_yield()
    start = time.perf_counter()
    for _ in range(connections):
        await echo_connection(app, 1, pause)
    return (time.perf_counter() - start) / connections * 1e6


class ChatRoom:
    """The clients of one room: every member counts what it is sent; one of them also publishes."""

    def __init__(self, members: int, broadcasts: int) -> None:
        self.members = members  # listeners + the publisher, who hears itself (contract §1)
        self.broadcasts = broadcasts  # messages the publisher sends
        self.delivered = 0  # websocket.send events seen, all members together
        self.joined = 0  # members whose app has asked for the event after websocket.connect
        self.all_joined = anyio.Event()  # every member is in the room
        self.go = anyio.Event()  # start publishing
        self.round_done = anyio.Event()  # every member has the current broadcast
        self.all_done = anyio.Event()  # every member has every broadcast
        self.leave = anyio.Event()  # everyone disconnects

    async def send(self, event: Event) -> None:
        if event["type"] == "websocket.send":
            self.delivered += 1
            if self.delivered % self.members == 0:
                self.round_done.set()

    def _count_joined(self) -> None:
        # Session.serve joins the room after accept and before its first receive(),
        # so a member asking for its second event is in the room.
        self.joined += 1
        if self.joined == self.members:
            self.all_joined.set()

    async def listener(self) -> AsyncGenerator[Event, None]:
        yield CONNECT
        self._count_joined()
        await self.leave.wait()
        yield DISCONNECT

    async def publisher(self) -> AsyncGenerator[Event, None]:
        yield CONNECT
        self._count_joined()
        await self.go.wait()
        for number in range(self.broadcasts):
            self.round_done = anyio.Event()
            yield text_message(f"{PAYLOAD} {number}")
            await self.round_done.wait()  # one broadcast in flight at a time
        self.all_done.set()
        await self.leave.wait()
        yield DISCONNECT


async def fanout_cost(settings: Settings, listeners: int, broadcasts: int) -> float:
    """µs per delivery for one publisher and ``listeners`` in one room, the clock running from the first broadcast."""
    app = create_app(settings)
    serve: App = app
    room = ChatRoom(listeners + 1, broadcasts)
    scope = websocket_scope(f"/ws/chat/{ROOM}")
    clients = [room.publisher()] + [room.listener() for _ in range(listeners)]
    async with anyio.create_task_group() as task_group:
        for client in clients:
            task_group.start_soon(serve, scope, client.__anext__, room.send)
        await room.all_joined.wait()
        if len(app.hub.members(chat_room(ROOM))) != room.members:
            raise RuntimeError("fan-out: not every member is in the room")
        start = time.perf_counter()
        room.go.set()
        await room.all_done.wait()
        delivery = (time.perf_counter() - start) / (broadcasts * room.members) * 1e6
        room.leave.set()
    for client in clients:
        await client.aclose()
    if room.delivered != broadcasts * room.members or app.hub.connections != 0:
        raise RuntimeError(f"fan-out: {room.delivered} deliveries, {app.hub.connections} connections left")
    return delivery


# The primitives on their own.


class AsyncioOutbox(Generic[T]):
    """COMPARISON ONLY, not used by the app: asgi_ws.outbox.Outbox as it waited on an anyio.Event, with asyncio.Event.

    Line for line that outbox otherwise, so the measured difference is the
    Event (and the task that waits on it) alone.  The outbox now waits on the
    asyncio loop's own Future instead (``docs/concurrency.md``, "Broadcasting to
    16,667 listeners").
    """

    __slots__ = ("_capacity", "_items", "_wakeup")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity  # items held before offer() refuses
        self._items: deque[T] = deque()  # queued, oldest first
        self._wakeup: asyncio.Event | None = None  # set when an item arrives for a waiting get()

    def __len__(self) -> int:
        return len(self._items)

    def offer(self, item: T) -> bool:
        if len(self._items) >= self._capacity:
            return False
        self._items.append(item)
        if self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = None
        return True

    async def get(self) -> T:
        while not self._items:
            self._wakeup = asyncio.Event()
            await self._wakeup.wait()
        return self._items.popleft()


async def _drain(outbox: Outbox[int] | AsyncioOutbox[int], items: int) -> None:
    for _ in range(items):
        await outbox.get()


async def _produce(outbox: Outbox[int] | AsyncioOutbox[int], items: int, batch: int) -> float:
    """Offer ``batch`` items, yield until the consumer has taken them all, repeat.  µs per item."""
    pause = native_yield()
    start = time.perf_counter()
    for number in range(1, items + 1):
        outbox.offer(number)
        if number % batch == 0:
            while len(outbox):
                await pause()
    return (time.perf_counter() - start) / items * 1e6


async def outbox_cost(outbox: Outbox[int] | AsyncioOutbox[int], items: int, batch: int) -> float:
    """µs per item through ``outbox`` to a consumer task, ``batch`` items per wake-up."""
    if isinstance(outbox, AsyncioOutbox):
        async with asyncio.TaskGroup() as asyncio_group:
            asyncio_group.create_task(_drain(outbox, items))
            cost = await _produce(outbox, items, batch)
    else:
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(_drain, outbox, items)
            cost = await _produce(outbox, items, batch)
    return cost


async def anyio_session_cost(sessions: int) -> float:
    """µs per session shape, as in ``Session.serve``: scope, task group, one helper, cancel."""
    pause = native_yield()
    start = time.perf_counter()
    for _ in range(sessions):
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(anyio.sleep_forever)  # the sender or the watchdog
                await pause()  # let it start, as the receive loop would
                scope.cancel()
    return (time.perf_counter() - start) / sessions * 1e6


async def asyncio_session_cost(sessions: int) -> float:
    """The same shape in plain asyncio: TaskGroup, one helper task, cancel it."""
    start = time.perf_counter()
    for _ in range(sessions):
        async with asyncio.TaskGroup() as task_group:
            helper = task_group.create_task(asyncio.sleep(math.inf))
            await asyncio.sleep(0)
            helper.cancel()
    return (time.perf_counter() - start) / sessions * 1e6


# One in-process round on the current backend.

ECHO_APPS: dict[str, Callable[[], App]] = {
    "floor (minimal raw echo)": lambda: floor_echo,
    "asgi_ws, policies off": lambda: create_app(POLICIES_OFF),
    "asgi_ws, policies on": lambda: create_app(POLICIES_ON),
}
FANOUT_CASES = {
    f"{listeners} listeners, policies {policies}": (listeners, POLICIES_ON if policies == "on" else POLICIES_OFF)
    for listeners in (100, 1000)
    for policies in ("off", "on")
}
ECHO = "echo, µs/message"
CHURN = "connect + 1 echo + close, µs/connection"
FANOUT = "fan-out, µs/delivery"
PRIMITIVES = "primitives"
EVENT = "create one Event, µs"
OUTBOX_PING = "Outbox, 1 wake-up per item, µs/item"
OUTBOX_BURST = "Outbox, 1000 items per wake-up, µs/item"
SESSION = "task group + scope + 1 task, cancel, µs"


async def event_cost(make_event: Callable[[], object], events: int = 200_000) -> float:
    """µs to create one event (async only because anyio.Event needs a running loop)."""
    start = time.perf_counter()
    for _ in range(events):
        make_event()
    return (time.perf_counter() - start) / events * 1e6


async def in_process_round(samples: Samples, sizes: InProcessSizes) -> None:
    backend = sniffio.current_async_library()
    for label, make_app in ECHO_APPS.items():
        samples.add(ECHO, label, backend, await echo_cost(make_app(), sizes.echo_messages))
        samples.add(CHURN, label, backend, await churn_cost(make_app(), sizes.connections))
    for label, (listeners, settings) in FANOUT_CASES.items():
        samples.add(FANOUT, label, backend, await fanout_cost(settings, listeners, sizes.broadcasts))
    column = f"anyio on {backend}"
    samples.add(PRIMITIVES, EVENT, column, await event_cost(anyio.Event))
    samples.add(PRIMITIVES, OUTBOX_PING, column, await outbox_cost(Outbox(1024), sizes.wake_ups, 1))
    samples.add(PRIMITIVES, OUTBOX_BURST, column, await outbox_cost(Outbox(1024), sizes.burst_items, 1000))
    samples.add(PRIMITIVES, SESSION, column, await anyio_session_cost(sizes.sessions))
    if backend == "asyncio":
        column = "plain asyncio"
        samples.add(PRIMITIVES, EVENT, column, await event_cost(asyncio.Event))
        samples.add(PRIMITIVES, OUTBOX_PING, column, await outbox_cost(AsyncioOutbox(1024), sizes.wake_ups, 1))
        samples.add(PRIMITIVES, OUTBOX_BURST, column, await outbox_cost(AsyncioOutbox(1024), sizes.burst_items, 1000))
        samples.add(PRIMITIVES, SESSION, column, await asyncio_session_cost(sizes.sessions))


# Over the wire: uvicorn as a real process, the websockets client here.

WIRE_APPS = {
    "floor (minimal raw echo)": ("bench.peers.raw_asgi:app", {}),
    "asgi_ws, policies on": (APP, POLICIES_ON.to_env()),
}
WIRE = "uvicorn --ws websockets-sansio"
WIRE_SERVER = "uvicorn"  # the launcher's name for it
ROUND_TRIPS = "round trips/s"
CPU_PER_ROUND_TRIP = "server CPU µs/round trip"
CONNECTIONS = "connections/s"
CPU_PER_CONNECTION = "server CPU µs/connection"
WIRE_COLUMNS = [ROUND_TRIPS, CPU_PER_ROUND_TRIP, CONNECTIONS, CPU_PER_CONNECTION]


async def ping_pong(websocket: ClientConnection, until: float) -> int:
    count = 0
    while time.monotonic() < until:
        await websocket.send(PAYLOAD)
        await websocket.recv()
        count += 1
    return count


async def wire_echo(url: str, group: int, connections: int, seconds: float) -> tuple[float, float]:
    """(round trips/s, server CPU µs per round trip) with ``connections`` clients echoing at once."""
    # compression=None: measure the app and the server, not zlib at both ends.
    websockets = [await connect(url, compression=None) for _ in range(connections)]
    try:
        await asyncio.gather(*(ping_pong(ws, time.monotonic() + 0.5) for ws in websockets))  # warm-up
        cpu_before, start = group_cpu_seconds(group), time.perf_counter()
        counts = await asyncio.gather(*(ping_pong(ws, time.monotonic() + seconds) for ws in websockets))
        elapsed, cpu = time.perf_counter() - start, group_cpu_seconds(group) - cpu_before
    finally:
        for ws in websockets:
            await ws.close()
    return sum(counts) / elapsed, cpu / sum(counts) * 1e6


async def wire_churn(url: str, group: int, clients: int, seconds: float) -> tuple[float, float]:
    """(connections/s, server CPU µs per connection): connect, one echo, close, again."""

    async def one_after_another(until: float) -> int:
        count = 0
        while time.monotonic() < until:
            async with connect(url, compression=None) as websocket:
                await websocket.send(PAYLOAD)
                await websocket.recv()
            count += 1
        return count

    cpu_before, start = group_cpu_seconds(group), time.perf_counter()
    counts = await asyncio.gather(*(one_after_another(time.monotonic() + seconds) for _ in range(clients)))
    elapsed, cpu = time.perf_counter() - start, group_cpu_seconds(group) - cpu_before
    return sum(counts) / elapsed, cpu / sum(counts) * 1e6


def run_client(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run the client on uvloop where it is installed, as uvicorn runs the server."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def wire_rounds(samples: Samples, rounds: int, seconds: float, cpus: set[int]) -> None:
    """Both servers up at once, measured in turn (A, B, A, B, ...), stopped by the launcher whatever happens."""
    with tempfile.TemporaryDirectory() as logs, contextlib.ExitStack() as stack:
        servers = {
            label: stack.enter_context(run_server(WIRE_SERVER, Path(logs), settings, app=target, cpus=cpus))
            for label, (target, settings) in WIRE_APPS.items()
        }
        for number in range(1, rounds + 1):
            print(f"over the wire, round {number}/{rounds}", flush=True)
            for label, server in servers.items():
                assert server.process is not None
                # run_server starts the server in a session of its own: its process group is its PID.
                url, group = server.url("/echo"), server.process.pid
                rate, cpu = run_client(wire_echo(url, group, connections=10, seconds=seconds))
                samples.add(WIRE, label, ROUND_TRIPS, rate)
                samples.add(WIRE, label, CPU_PER_ROUND_TRIP, cpu)
                rate, cpu = run_client(wire_churn(url, group, clients=4, seconds=seconds / 2))
                samples.add(WIRE, label, CONNECTIONS, rate)
                samples.add(WIRE, label, CPU_PER_CONNECTION, cpu)


# The report.


def markdown_table(columns: list[str], rows: dict[str, dict[str, float]]) -> str:
    lines = [f"| | {' | '.join(columns)} |", "|---" + "|---:" * len(columns) + "|"]
    for row, cells in rows.items():
        values = [f"{cells[column]:,.2f}" if column in cells else "n/a" for column in columns]
        lines.append(f"| {row} | {' | '.join(values)} |")
    return "\n".join(lines)


def report(samples: Samples, sizes: InProcessSizes, wire: bool) -> None:
    """The medians as Markdown tables, and the two numbers the decision rests on."""
    backends = ["asyncio", "trio"]
    echo = samples.table(ECHO, list(ECHO_APPS), backends)
    floor, app = echo["floor (minimal raw echo)"], echo["asgi_ws, policies on"]
    echo["asgi_ws (policies on) minus floor"] = {b: app[b] - floor[b] for b in backends}
    print(f"\n### Echo in process: one connection, {sizes.echo_messages:,} messages, µs per message\n")
    print(markdown_table(backends, echo))
    print(f"\n### Connections in process: {sizes.connections:,} in a row, µs per connection\n")
    print(markdown_table(backends, samples.table(CHURN, list(ECHO_APPS), backends)))
    print(f"\n### Fan-out in process: {sizes.broadcasts} broadcasts, one in flight, µs per delivery\n")
    print(markdown_table(backends, samples.table(FANOUT, list(FANOUT_CASES), backends)))

    columns = ["plain asyncio", "anyio on asyncio", "anyio on trio"]
    primitives = samples.table(PRIMITIVES, [EVENT, OUTBOX_PING, OUTBOX_BURST, SESSION], columns)
    print("\n### Primitives\n")
    print(markdown_table(columns, primitives))
    wake_up = primitives[OUTBOX_PING]["anyio on asyncio"] - primitives[OUTBOX_PING]["plain asyncio"]
    session = primitives[SESSION]["anyio on asyncio"] - primitives[SESSION]["plain asyncio"]
    print(f"\nanyio over plain asyncio: {wake_up:+.2f} µs per Outbox wake-up, {session:+.2f} µs per session")
    if not wire:
        return

    table = samples.table(WIRE, list(WIRE_APPS), WIRE_COLUMNS)
    floor, app = table["floor (minimal raw echo)"], table["asgi_ws, policies on"]
    table["ratio asgi_ws / floor"] = {column: app[column] / floor[column] for column in WIRE_COLUMNS}
    print(f"\n### Over the wire: {WIRE}, 10 echo connections; 4 clients reconnecting\n")
    print(markdown_table(WIRE_COLUMNS, table))
    print(
        f"\nanyio's Outbox wake-up overhead is {wake_up / app[CPU_PER_ROUND_TRIP]:.1%} of the server's CPU"
        f" per echo round trip; its session overhead is {session / app[CPU_PER_CONNECTION]:.1%}"
        " of the server's CPU per connection"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs per figure; the median is reported")
    parser.add_argument("--wire-seconds", type=float, default=5.0, help="length of one over-the-wire run")
    parser.add_argument("--no-wire", action="store_true", help="skip the uvicorn runs")
    args = parser.parse_args()
    # SIGTERM ends the run as Ctrl-C does, so the finally blocks still stop the servers.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    server_cpus, client_cpus = split_cpus()
    os.sched_setaffinity(0, client_cpus)
    print(f"server on CPU {sorted(server_cpus)}, harness and client on CPU {sorted(client_cpus)}", flush=True)
    sizes, samples = InProcessSizes(), Samples()
    for number in range(1, args.rounds + 1):
        for backend in ("asyncio", "trio"):  # alternated, so drift hits both alike
            print(f"in-process round {number}/{args.rounds} on {backend}", flush=True)
            anyio.run(in_process_round, samples, sizes, backend=backend)
    if not args.no_wire:
        wire_rounds(samples, args.rounds, args.wire_seconds, server_cpus)
    report(samples, sizes, wire=not args.no_wire)


if __name__ == "__main__":
    main()
