"""Soak: 10,000 connections in one chat room on one server process, a broadcast every 100 ms (contract §7).

    python -m bench.soak [--connections 10000] [--interval 0.1] [--duration 60] [--server uvicorn]

One broadcaster and N listeners join ``/ws/chat/soak`` on a single server
process.  The broadcaster sends the numbers 1, 2, 3 ... one every ``interval``
seconds for ``duration`` seconds; every listener must receive every number,
in order.  The command reports what was delivered, what was missing, how far
behind the slowest listener fell, and the server's RSS (its process and every
process in its group, :meth:`conformance.launcher.RunningServer.rss`) before,
with everyone connected, and at the end.  ``--write`` adds the result to
``bench/SOAK.md``.

The listeners are not the ``websockets`` client: at 100,000 messages a second
a full client library per connection would be the bottleneck, not the server.
Each is a :class:`bench.listening_client.ListeningClient`, which reads the
number in each text frame and nothing more.  The file-descriptor limit is
raised in this process (:func:`bench.machine.raise_fd_limit`), and the server
process inherits it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from websockets.asyncio.client import connect

from conformance.launcher import HOST, RunningServer, run_server

from .listening_client import ListeningClient, handshake
from .machine import raise_fd_limit

ROOM = "/ws/chat/soak"
HANDSHAKES_AT_ONCE = 200
RESULTS = Path(__file__).resolve().parent / "SOAK.md"


class Listener(ListeningClient):
    """One listening connection: checks that the numbers come in order, and notes a close by the server."""

    __slots__ = ("closed_by_server", "expected", "last_at", "out_of_order")

    def __init__(self, path: str) -> None:
        super().__init__(handshake(path, HOST))
        self.expected = 1  # the next number it should receive
        self.out_of_order = 0  # numbers that did not come next
        self.closed_by_server: int | None = None  # the close code, if the server closed it
        self.last_at = 0.0  # time.monotonic() of the last number

    def on_text(self, payload: bytes) -> None:
        if int(payload) != self.expected:
            self.out_of_order += 1
        self.expected = int(payload) + 1
        self.last_at = time.monotonic()

    def on_close(self, code: int) -> None:
        self.closed_by_server = code


async def soak(server: RunningServer, connections: int, interval: float, duration: float) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    rss_before = server.rss()
    listeners: list[Listener] = []
    handshakes = asyncio.Semaphore(HANDSHAKES_AT_ONCE)
    started = time.monotonic()

    async def open_one() -> None:
        async with handshakes:
            listener = Listener(ROOM)
            await loop.create_connection(lambda: listener, HOST, server.port)
            await asyncio.wait_for(listener.opened, 60)
            listeners.append(listener)

    await asyncio.gather(*(open_one() for _ in range(connections)))
    connect_seconds = time.monotonic() - started
    print(f"{connections} listeners connected in {connect_seconds:.1f} s", flush=True)
    rss_connected = server.rss()

    messages = int(duration / interval)
    async with connect(server.url(ROOM), max_queue=None) as broadcaster:
        drain = asyncio.create_task(_drain(broadcaster))
        start = time.monotonic()
        for number in range(1, messages + 1):
            await asyncio.sleep(max(0.0, start + number * interval - time.monotonic()))
            await broadcaster.send(str(number))
            if number % int(10 / interval) == 0:
                behind = sum(1 for listener in listeners if listener.expected <= number - int(1 / interval))
                print(f"  {number * interval:4.0f} s: sent {number}, {behind} listeners over 1 s behind", flush=True)
        sent_at = time.monotonic()
        deadline = sent_at + 60
        while time.monotonic() < deadline:  # polling: the listeners are callbacks, not tasks to wait on
            if all(listener.expected > messages or listener.closed_by_server is not None for listener in listeners):
                break
            await asyncio.sleep(0.1)
        drain.cancel()
    rss_end = server.rss()
    complete = sum(1 for listener in listeners if listener.expected == messages + 1 and not listener.out_of_order)
    received = sum(listener.expected - 1 for listener in listeners)
    for listener in listeners:
        listener.close()
    return {
        "connections": connections,
        "messages": messages,
        "deliveries expected": messages * connections,
        "deliveries received": received,
        "listeners with every message in order": complete,
        "listeners closed by the server": sum(1 for listener in listeners if listener.closed_by_server is not None),
        "slowest listener done after the last send (s)": round(
            max(listener.last_at for listener in listeners) - sent_at, 2
        ),
        "connect time (s)": round(connect_seconds, 1),
        "server RSS before (MiB)": round(rss_before / 2**20, 1),
        "server RSS connected (MiB)": round(rss_connected / 2**20, 1),
        "server RSS at the end (MiB)": round(rss_end / 2**20, 1),
    }


async def _drain(broadcaster: object) -> None:
    """The broadcaster is in the room too: read its copies so that it is never a slow consumer."""
    while True:
        await broadcaster.recv()  # type: ignore[attr-defined]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between broadcasts (default 0.1)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of broadcasting (default 60)")
    parser.add_argument("--server", default="uvicorn")
    parser.add_argument("--write", action="store_true", help="add the result to bench/SOAK.md")
    args = parser.parse_args(argv)
    limit = raise_fd_limit(args.connections + 1000)
    print(f"file descriptors: {limit}; starting {args.server}", flush=True)
    settings = {"ASGI_WS_MAX_CONNECTIONS": str(args.connections + 100)}
    with tempfile.TemporaryDirectory() as scratch, run_server(args.server, Path(scratch), settings) as server:
        result = asyncio.run(soak(server, args.connections, args.interval, args.duration))
    width = max(len(key) for key in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    if args.write:
        write_results(args, result)
    ok = result["listeners with every message in order"] == args.connections
    return 0 if ok else 1


def write_results(args: argparse.Namespace, result: dict[str, object]) -> None:
    lines = [
        f"## Soak: {args.connections:,} connections, one room, a broadcast every {args.interval * 1000:g} ms "
        f"for {args.duration:g} s",
        "",
        f"`python -m bench.soak --connections {args.connections} --interval {args.interval:g} "
        f"--duration {args.duration:g} --server {args.server} --write`, on {time.strftime('%Y-%m-%d')}, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, server {args.server}.",
        "",
        "| | |",
        "|---|---:|",
        *(f"| {key} | {value} |" for key, value in result.items()),
        "",
    ]
    existing = RESULTS.read_text() if RESULTS.exists() else "# Soak results\n\n"
    RESULTS.write_text(existing.rstrip() + "\n\n" + "\n".join(lines))
    print(f"wrote {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
