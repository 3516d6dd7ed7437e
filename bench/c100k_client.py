"""One load-generator process of ``python -m bench --only c100k``: many idle WebSocket clients, held cheaply.

A process may hold at most 20,000 file descriptors on the benchmark machine,
so the 100,000 clients of P8 are spread over several of these processes.  Each
client is a :class:`bench.listening_client.ListeningClient` on uvloop, a bare
:class:`asyncio.Protocol` with no task per connection, about 2 KiB each: it
reads the 101, answers the server's pings, so that keepalive never closes it,
and notes when its first text frame arrives.

The parent (:mod:`bench.c100k`) talks to this process through stdin and
stdout, one JSON object per line:

- on start, it connects ``--count`` clients, each offering ``--offer`` as its
  ``Sec-WebSocket-Extensions`` if given (a browser's offer, :mod:`bench.browser`),
  and reports progress, then
  ``{"connected": n, "failed": f, "seconds": s}``; after ``--give-up-after``
  failed handshakes it stops offering more (the servers are full);
- on the line ``arm``, it forgets what its clients have received, and reports
  ``{"received": n, "last": t}`` once every client has received a message
  (``t``: the ``time.monotonic()`` of the last arrival, which on Linux is the
  same clock in every process), or what it has after ``--wait`` seconds;
- on ``quit`` or the end of stdin, it closes everything and exits.

Clients connect from the ``--sources`` addresses in turn: one source address
has about 28,000 ephemeral ports, so 100,000 connections need several of
127.0.0.0/8.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Sequence

import uvloop

from .listening_client import ListeningClient, handshake

__all__ = ["main"]

CONNECTS_AT_ONCE = 200  # handshakes in flight
PROGRESS_EVERY = 5000  # connections between progress lines


class Client(ListeningClient):
    """One WebSocket client that counts its first message into the hub, and leaves when the server closes it."""

    __slots__ = ("hub",)

    def __init__(self, hub: Hub, request: bytes) -> None:
        super().__init__(request)
        self.hub = hub  # what this process's clients have received

    def on_text(self, payload: bytes) -> None:
        self.hub.arrived(self)

    def on_close(self, code: int) -> None:
        self.hub.lost += 1
        self.close()


class Hub:
    """What the clients of this process have received since the last ``arm``."""

    def __init__(self) -> None:
        self.reached: set[int] = set()  # ids of the clients that received a message
        self.last = 0.0  # monotonic time of the latest first arrival
        self.lost = 0  # clients the server closed
        self.all_reached: asyncio.Event = asyncio.Event()
        self.expected = 0

    def arrived(self, client: Client) -> None:
        key = id(client)
        if key not in self.reached:
            self.reached.add(key)
            self.last = time.monotonic()
            if len(self.reached) >= self.expected:
                self.all_reached.set()

    def arm(self, expected: int) -> None:
        self.reached.clear()
        self.expected = expected
        self.all_reached = asyncio.Event()


def report(**document: object) -> None:
    print(json.dumps(document), flush=True)


async def run(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    hub = Hub()
    clients: list[Client] = []
    ports = [int(port) for port in args.ports.split(",")]
    sources = args.sources.split(",")
    started, failed = time.monotonic(), 0
    gate = asyncio.Semaphore(CONNECTS_AT_ONCE)

    async def connect(index: int) -> None:
        nonlocal failed
        # Client i is on worker i mod W, in room (i div W) mod R: every room spans every worker.
        port, room = ports[index % len(ports)], (index // len(ports)) % args.rooms
        request = handshake(f"/ws/chat/c100k-{room}", f"127.0.0.1:{port}", args.offer or None)
        async with gate:
            if failed >= args.give_up_after:
                return  # the servers are full: stop offering, and report what they hold
            try:
                _, client = await loop.create_connection(
                    lambda: Client(hub, request), "127.0.0.1", port, local_addr=(sources[index % len(sources)], 0)
                )
                await asyncio.wait_for(client.opened, args.handshake_wait)
            except (OSError, TimeoutError):  # refused (ConnectionError is an OSError), or no answer
                failed += 1
                return
            clients.append(client)
            if len(clients) % PROGRESS_EVERY == 0:
                report(progress=len(clients), seconds=round(time.monotonic() - started, 2))

    await asyncio.gather(*(connect(args.first + number) for number in range(args.count)))
    report(connected=len(clients), failed=failed, seconds=round(time.monotonic() - started, 3))

    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().strip():
        if line == "quit":
            break
        if line == "arm":
            hub.arm(len(clients))
            report(armed=len(clients))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(hub.all_reached.wait(), args.wait)
            report(received=len(hub.reached), last=hub.last, lost=hub.lost)
    for client in clients:
        client.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.c100k_client", description=__doc__)
    parser.add_argument("--ports", required=True, help="comma-separated ports of the server processes")
    parser.add_argument("--rooms", type=int, required=True, help="chat rooms c100k-0 ... spread over the clients")
    parser.add_argument("--count", type=int, required=True, help="clients to open")
    parser.add_argument("--first", type=int, default=0, help="the global index of this process's first client")
    parser.add_argument("--sources", required=True, help="comma-separated 127.0.0.0/8 addresses to connect from")
    parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait for a broadcast to reach all")
    parser.add_argument("--handshake-wait", type=float, default=10.0, help="seconds to wait for one handshake")
    parser.add_argument("--give-up-after", type=int, default=100, help="failed handshakes before it stops offering")
    parser.add_argument("--offer", default="", help="a Sec-WebSocket-Extensions line to offer (default: none)")
    args = parser.parse_args(argv)
    uvloop.run(run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
