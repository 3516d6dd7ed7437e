"""P8 and P12: 100,000 open WebSocket connections on one machine, and a broadcast to all (``--only c100k``).

    python -m bench --only c100k                         # every phase and the floors, about 9 minutes
    python -m bench --only c100k --c100k-connections 20000 --c100k-workers 2   # a smaller rehearsal
    python -m bench --only c100k --c100k-broadcast-only --c100k-connections 16667 --c100k-workers 1 \
        --c100k-generators 2       # one P8 worker's share, and the floors', in about 3 minutes; not kept

A process may hold at most 20,000 file descriptors on the benchmark machine,
a hard limit that root cannot raise, so 100,000 connections take several
processes on each side:

- **the servers**: ``--c100k-workers`` uvicorn processes, each on its own port,
  sharing chat rooms through one ``redis-server`` (the Redis broker of contract
  §4), each with a connection cap of 20,000, and logging warnings only: not
  uvicorn's two INFO lines per handshake (:data:`SERVER_LOGS`);
- **the clients**: ``--c100k-generators`` processes of :mod:`bench.c100k_client`,
  each holding its share of the connections as bare asyncio protocols, and
  connecting from addresses of 127.0.0.0/8 of their own, since one source
  address has only about 28,000 ports.  Each offers permessage-deflate as a
  browser does (:data:`bench.browser.BROWSER_OFFER`), and the servers run with
  the launcher's choice, which declines it (``docs/deflate.md``); what the
  servers accepted is in the figures' notes.

Client ``i`` is on worker ``i mod W`` and in room ``(i div W) mod R``, so every
room spans every worker.  The run measures, in this order:

1. **one process**: a single worker, and clients until it refuses them: the most
   one process holds (its descriptors, less the few it has open for itself);
2. **all of them**: the time to open every connection, the servers' resident
   memory per connection (their RSS after, less before, over the connections),
   and the load generators' CPU while they connect;
3. **a broadcast**: one message into every room at once (one publisher per
   room), timed from the first send to the last client's first arrival, while
   ``/healthz`` of every worker is asked in a loop.  P12's figures come from
   that window: the workers' CPU seconds over the deliveries, and the p99 of
   ``/healthz`` per worker, which says whether each stayed responsive.  The
   handshakes per second of step 2 are P12's third figure;
4. **the floors** (:mod:`bench.peers.fanout_floor`): steps 2 and 3 again, on
   the same workers serving a raw ASGI app of a few lines instead, which sends
   the broadcast from one task, and then one with a sender task per connection.
   Nothing can be cheaper than the first; the second is the least that keeps a
   client that stops reading from holding up the others (P5).  Where a floor
   misses a goal of P12 too, no app can meet it on this machine.

Everything is started on 127.0.0.1 and stopped by its own PID when the run
ends, failed or not.  The run stops by itself: every wait has a time limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.launcher import HOST, RunningServer, run_server
from conformance.redis_server import RedisServer

from .browser import BROWSER_OFFER, connect, negotiated
from .loadgen import group_cpu_seconds

__all__ = ["C100k", "run"]

PER_PROCESS_FDS = 20_000  # the hard RLIMIT_NOFILE of the benchmark machine
SERVER_CAP = "20000"  # ASGI_WS_MAX_CONNECTIONS of every worker: the descriptors decide, not the app
CONNECT_WAIT = 600.0  # seconds for every client of one phase to connect
BROADCAST_WAIT = 120.0  # seconds for a broadcast to reach everyone
HEALTH_TIMEOUT = 10.0  # one /healthz request
HANDSHAKE_WAIT = 10.0  # one client's handshake: a server out of descriptors leaves the rest waiting
CPU_SAMPLE = 0.05  # seconds between readings of the workers' CPU during a broadcast
# The floors of step 4, by the name their figures are kept under: ASGI apps of bench.peers.fanout_floor.
FLOORS = {
    "floor, one task": "bench.peers.fanout_floor:app",
    "floor, a sender each": "bench.peers.fanout_floor:app_with_senders",
}


@dataclass
class C100k:
    """The P8 figures."""

    connections: int = 100_000
    workers: int = 6
    generators: int = 6
    rooms: int = 100
    offer: str = BROWSER_OFFER  # what every client offers in Sec-WebSocket-Extensions: a browser's, by default
    phase_one: bool = True  # phase 1 too; False: without it, a rehearsal of the broadcast
    figures: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def run(config: C100k, scratch: Path, say: Any = print) -> C100k:
    """Every phase, or all but the first unless ``config.phase_one``; fills ``config.figures``."""
    redis = RedisServer(scratch)
    redis.start()
    try:
        settings = {
            "ASGI_WS_BROKER": redis.url,
            "ASGI_WS_MAX_CONNECTIONS": SERVER_CAP,
            "ASGI_WS_IDLE_TIMEOUT": "0",  # the clients stay quiet for minutes on purpose
            "ASGI_WS_LOG_LEVEL": "warning",
        }
        if config.phase_one:
            single = PER_PROCESS_FDS + 100  # more than one process can hold: it shows where it stops
            say(f"c100k: phase 1, one uvicorn process, {single:,} clients offered")
            with servers(1, scratch, settings) as (worker,):
                held = asyncio.run(_open(config, [worker], single, generators=2, rooms=config.rooms, say=say))
                config.figures["one process: connections held"] = held["connected"]
                config.figures["one process: RSS per connection, KiB"] = held["rss_per_connection"] / 1024
        say(f"c100k: phase 2, {config.connections:,} clients on {config.workers} uvicorn processes through Redis")
        with servers(config.workers, scratch, settings) as workers:
            accepted = asyncio.run(_accepted(workers[0], config.offer))
            say(f"c100k: the clients offer {config.offer or 'nothing'!r}; the server accepts {accepted or 'nothing'!r}")
            config.notes.append(f"clients offer: {config.offer or 'nothing'}; server accepts: {accepted or 'nothing'}")
            total = _everyone(config, workers, say)
        config.figures.update({f"all: {name}": value for name, value in total.items()})
        for floor, app in FLOORS.items():
            say(f"c100k: phase 3, {floor}: {config.connections:,} clients on {config.workers} uvicorn processes")
            with servers(config.workers, scratch, {}, app=app) as workers:
                total = _everyone(config, workers, say, floor=True)
            config.figures.update({f"{floor}: {name}": value for name, value in total.items()})
    finally:
        redis.stop()
    return config


def _everyone(config: C100k, workers: tuple[RunningServer, ...], say: Any, floor: bool = False) -> dict[str, float]:
    """Every client of ``config`` on ``workers``, and the broadcast to them all: :func:`_open`'s figures."""
    return asyncio.run(
        _open(
            config,
            list(workers),
            config.connections,
            generators=config.generators,
            rooms=config.rooms,
            say=say,
            broadcast=True,
            floor=floor,
        )
    )


# uvicorn logs two INFO lines per handshake on uvicorn.error (its own "[accepted]" and websockets'
# "connection open"): 90 µs of the 720 a worker spent on each of 16,667 handshakes (docs/concurrency.md,
# "Broadcasting to 16,667 listeners").  Warnings and errors are still logged.
SERVER_LOGS = {"UVICORN_LOG_LEVEL": "warning"}


@contextlib.contextmanager
def servers(
    count: int, scratch: Path, settings: dict[str, str], app: str = "asgi_ws.app:app"
) -> Iterator[tuple[RunningServer, ...]]:
    with contextlib.ExitStack() as stack:
        yield tuple(
            stack.enter_context(run_server("uvicorn", scratch / "logs", settings, app=app, extra_env=SERVER_LOGS))
            for _ in range(count)
        )


async def _start_generators(
    processes: list[asyncio.subprocess.Process], ports: str, connections: int, generators: int, rooms: int, offer: str
) -> None:
    """Start ``generators`` load generators sharing ``connections`` clients, into ``processes`` as each starts.

    Each is added as soon as it runs, so that the caller stops every one that started, even if a later one fails.
    """
    share = -(-connections // generators)
    for index in range(generators):
        count = min(share, connections - index * share)
        sources = ",".join(f"127.{index + 1}.{host // 250}.{host % 250 + 2}" for host in range(8))
        argv = [
            sys.executable,
            "-m",
            "bench.c100k_client",
            f"--ports={ports}",
            f"--rooms={rooms}",
            f"--count={count}",
            f"--first={index * share}",
            f"--sources={sources}",
            f"--wait={BROADCAST_WAIT}",
            f"--handshake-wait={HANDSHAKE_WAIT}",
            f"--offer={offer}",
        ]
        processes.append(
            await asyncio.create_subprocess_exec(
                *argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True
            )
        )


async def _stop_generators(processes: list[asyncio.subprocess.Process]) -> None:
    """Ask every load generator to quit, and kill by its PID any that has not within 30 s."""
    for process in processes:
        with contextlib.suppress(ProcessLookupError, BrokenPipeError, ConnectionResetError):
            assert process.stdin is not None
            process.stdin.write(b"quit\n")
    for process in processes:
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()  # by its PID


async def _open(
    config: C100k,
    workers: list[RunningServer],
    connections: int,
    *,
    generators: int,
    rooms: int,
    say: Any,
    broadcast: bool = False,
    floor: bool = False,
) -> dict[str, float]:
    """Open ``connections`` clients on ``workers``; with ``broadcast``, time one message into every room.

    ``floor``: the workers serve a floor of :data:`FLOORS`, which has no rooms: the broadcast is asked
    of each worker with ``GET /fanout``, and there is no broker to report on.
    """
    for worker in workers:
        worker.wait_for_health(lambda document: document["broker"]["connected"], 30)
    before = [worker.rss() for worker in workers]
    ports = ",".join(str(worker.port) for worker in workers)
    processes: list[asyncio.subprocess.Process] = []
    figures: dict[str, float] = {}
    try:
        started = time.monotonic()
        await _start_generators(processes, ports, connections, generators, rooms, config.offer)
        cpu_before = sum(group_cpu_seconds(process.pid) for process in processes)
        connected = failed = 0
        for process in processes:
            done = await _until(process, "connected", CONNECT_WAIT, say)
            connected += done["connected"]
            failed += done["failed"]
        accept_seconds = time.monotonic() - started
        client_cpu = (sum(group_cpu_seconds(process.pid) for process in processes) - cpu_before) / accept_seconds
        after = [worker.rss() for worker in workers]
        health = [_health(worker) for worker in workers]
        figures.update(
            connected=connected,
            failed=failed,
            accept_seconds=accept_seconds,
            accepts_per_second=connected / accept_seconds,
            rss_per_connection=(sum(after) - sum(before)) / max(connected, 1),
            server_rss_mib=sum(after) / 2**20,
            load_generator_cpu=client_cpu / generators,
            app_connections=sum(document["connections"] for document in health if document is not None),
            healthz_refused=sum(document is None for document in health),
        )
        refused = figures["healthz_refused"]
        say(
            f"c100k: {connected:,} connected ({failed:,} refused) in {accept_seconds:.1f} s; "
            f"RSS {figures['rss_per_connection'] / 1024:.1f} KiB per connection; "
            f"load generators at {figures['load_generator_cpu']:.0%} CPU each"
            f"{f'; /healthz refused by {refused:.0f} (no descriptor left)' if refused else ''}"
        )
        if broadcast:
            trigger = _fan_out_requests(workers) if floor else _room_publishers(workers, rooms)
            async with trigger as send:
                figures.update(await _broadcast(workers, processes, send, say, count_collections=not floor))
        if broadcast and not floor:
            for index, worker in enumerate(workers):
                broker = (_health(worker) or {}).get("broker", {})
                counts = ", ".join(f"{name} {broker.get(name)}" for name in ("received", "dropped", "reconnects"))
                config.notes.append(f"worker {index} broker: {counts}, last error {broker.get('last_error')}")
    finally:
        await _stop_generators(processes)
    return figures


async def _accepted(worker: RunningServer, offer: str) -> str:
    """What ``worker`` accepts of ``offer``, asked with one connection that offers the same."""
    async with connect(worker.url("/ws/chat/c100k-probe"), deflate=bool(offer)) as ws:
        return negotiated(ws)


def _health(worker: RunningServer) -> dict[str, Any] | None:
    """The worker's /healthz, or None if it had no descriptor left to accept the request with."""
    try:
        return worker.health()
    except OSError:
        return None


@contextlib.asynccontextmanager
async def _room_publishers(workers: list[RunningServer], rooms: int) -> AsyncIterator[Callable[[], Awaitable[Any]]]:
    """A publisher in every room, spread over the workers; yields what sends one message from each at once."""
    import websockets  # the publishers and the parent's own clients: a handful, no need to be cheap

    publishers = [
        await websockets.connect(workers[room % len(workers)].url(f"/ws/chat/c100k-{room}"), max_size=None)
        for room in range(rooms)
    ]
    try:
        yield lambda: asyncio.gather(*(publisher.send("broadcast") for publisher in publishers))
    finally:
        for publisher in publishers:
            await publisher.close()


@contextlib.asynccontextmanager
async def _fan_out_requests(workers: list[RunningServer]) -> AsyncIterator[Callable[[], Awaitable[Any]]]:
    """A connection to every floor worker; yields what asks each for its ``/fanout`` at once."""
    connections = [await asyncio.open_connection(HOST, worker.port) for worker in workers]

    async def send() -> None:
        for _, writer in connections:
            writer.write(b"GET /fanout HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")

    try:
        yield send
    finally:
        for _, writer in connections:
            writer.close()


async def _broadcast(
    workers: list[RunningServer],
    processes: list[asyncio.subprocess.Process],
    send: Callable[[], Awaitable[Any]],
    say: Any,
    *,
    count_collections: bool,
) -> dict[str, Any]:
    """One message to every client, started by ``send``: the time until all have it, and what happened meanwhile.

    Meanwhile, from the first send to the last client's first arrival: the
    workers' CPU seconds over the deliveries (P12's CPU per delivery), and the
    p99 of ``/healthz``, asked of each worker in a loop, per worker (P12:
    whether each stayed responsive) (:func:`_open` notes each worker's broker
    counts afterwards, so that a message lost between processes shows where).  With
    ``count_collections``, each worker's full garbage collections meanwhile,
    from its ``/metrics``: each stops that worker's event loop for as long as
    it walks every object of the process.
    """
    for process in processes:
        assert process.stdin is not None
        process.stdin.write(b"arm\n")
    for process in processes:
        await _until(process, "armed", 30, say)
    requests: list[list[tuple[float, float]]] = [[] for _ in workers]  # per worker: (started, seconds)
    cpu_samples: list[tuple[float, float]] = []  # (time, the workers' CPU seconds so far)
    stop = asyncio.Event()
    watchers = [asyncio.create_task(_poll_health(w, mine, stop)) for w, mine in zip(workers, requests, strict=True)]
    watchers.append(asyncio.create_task(_sample_cpu(workers, cpu_samples, stop)))
    await asyncio.sleep(1.0)  # /healthz before the broadcast too, for comparison
    collections_before = await asyncio.to_thread(_full_collections, workers) if count_collections else []
    sent = time.monotonic()
    cpu_before = _cpu_seconds(workers)
    await send()
    reached, last, lost = 0, sent, 0
    for process in processes:
        done = await _until(process, "received", BROADCAST_WAIT + 30, say)
        reached += done["received"]
        last = max(last, done["last"])
        lost += done["lost"]
    stop.set()
    await asyncio.gather(*watchers)
    collections = (
        [after - before for before, after in zip(collections_before, _full_collections(workers), strict=True)]
        if count_collections
        else []
    )
    cpu = next((cpu for at, cpu in cpu_samples if at >= last), _cpu_seconds(workers)) - cpu_before
    during = [[seconds for started, seconds in mine if sent <= started <= last] for mine in requests]
    p99s = [_p99(times) * 1000 for times in during]
    say(
        f"c100k: the broadcast reached {reached:,} clients in {last - sent:.2f} s; "
        f"{cpu / max(reached, 1) * 1e6:.1f} µs of worker CPU per delivery; /healthz p99 per worker meanwhile "
        f"{', '.join(f'{p99:.0f}' for p99 in p99s)} ms"
        + (f"; full garbage collections {', '.join(f'{count:.0f}' for count in collections)}" if collections else "")
    )
    return {
        "broadcast_reached": reached,
        "broadcast_seconds": last - sent,
        "cpu_us_per_delivery": cpu / max(reached, 1) * 1e6,
        "healthz_p99_ms": _p99([time for times in during for time in times]) * 1000,
        "healthz_worst_worker_p99_ms": max(p99s),
        **{f"healthz_p99_ms_worker_{index}": p99 for index, p99 in enumerate(p99s)},
        "healthz_requests": sum(len(times) for times in during),
        "closed_by_server": lost,
        **({"full_collections": sum(collections)} if collections else {}),
        **{f"full_collections_worker_{index}": count for index, count in enumerate(collections)},
    }


async def _sample_cpu(workers: list[RunningServer], samples: list[tuple[float, float]], stop: asyncio.Event) -> None:
    """The workers' CPU seconds every ``CPU_SAMPLE`` seconds until ``stop``, each with its time."""
    while not stop.is_set():
        samples.append((time.monotonic(), _cpu_seconds(workers)))
        await asyncio.sleep(CPU_SAMPLE)


def _full_collections(workers: list[RunningServer]) -> list[float]:
    """Each worker's full garbage collections so far (``python_gc_collections_total``, generation 2)."""
    return [worker.metrics().value("python_gc_collections_total", generation="2") for worker in workers]


def _cpu_seconds(workers: list[RunningServer]) -> float:
    return sum(group_cpu_seconds(_pid(worker)) for worker in workers)


def _p99(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else float("nan")


def _pid(worker: RunningServer) -> int:
    """The worker's PID, which is also its process group's."""
    assert worker.process is not None
    return worker.process.pid


async def _poll_health(worker: RunningServer, requests: list[tuple[float, float]], stop: asyncio.Event) -> None:
    """GET /healthz on ``worker`` again and again until ``stop``: when each request started, and how long it took."""
    while not stop.is_set():
        started = time.monotonic()
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, worker.port), HEALTH_TIMEOUT)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        await asyncio.wait_for(reader.read(), HEALTH_TIMEOUT)
        requests.append((started, time.monotonic() - started))
        writer.close()
        await asyncio.sleep(0.05)


async def _until(process: asyncio.subprocess.Process, key: str, within: float, say: Any) -> dict[str, Any]:
    """The generator's next report holding ``key``; progress reports are passed on to ``say``."""
    assert process.stdout is not None
    deadline = time.monotonic() + within
    while True:
        line = await asyncio.wait_for(process.stdout.readline(), max(deadline - time.monotonic(), 0.1))
        if not line:
            raise RuntimeError(f"load generator {process.pid} ended before reporting {key!r}")
        document: dict[str, Any] = json.loads(line)
        if key in document:
            return document
        if "progress" in document:
            say(f"  generator {process.pid}: {document['progress']:,} connected after {document['seconds']:.0f} s")
