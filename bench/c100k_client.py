"""One load-generator process of ``python -m bench --only c100k``: many idle WebSocket clients, held cheaply.

A process may hold at most 20,000 file descriptors on the benchmark machine,
so the 100,000 clients of P8 are spread over several of these processes.  Each
client is a bare :class:`asyncio.Protocol` on uvloop: no task and no buffer
per connection once the handshake is done, about 2 KiB each.  It understands
just enough of RFC 6455 for the job: it reads the 101, counts the text frames
it receives, and answers the server's pings, so that keepalive never closes it.
A client never sends data frames, so it never needs to mask anything but its
pongs.

The parent (:mod:`bench.c100k`) talks to this process through stdin and
stdout, one JSON object per line:

- on start, it connects ``--count`` clients and reports progress, then
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
import struct
import sys
import time
from collections.abc import Sequence
from typing import cast

import uvloop

__all__ = ["main"]

CONNECTS_AT_ONCE = 200  # handshakes in flight
PROGRESS_EVERY = 5000  # connections between progress lines
KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455's sample key: the server's answer is not checked


class Client(asyncio.Protocol):
    """One WebSocket client that reads and counts, and answers pings."""

    __slots__ = ("buffer", "hub", "opened", "request", "transport", "upgraded")

    def __init__(self, hub: Hub, request: bytes) -> None:
        self.hub = hub
        self.request = request  # the handshake to send
        self.transport: asyncio.Transport | None = None
        self.buffer = b""  # bytes not yet parsed: the handshake, or a partial frame
        self.upgraded = False
        self.opened: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # uvloop's TCPTransport, not a subclass
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            head, found, rest = self.buffer.partition(b"\r\n\r\n")
            if not found:
                return
            self.upgraded = head.startswith(b"HTTP/1.1 101")
            self.buffer = rest
            if not self.opened.done():
                self.opened.set_result(self.upgraded)
            if not self.upgraded:
                self.close()
                return
        self._frames()

    def _frames(self) -> None:
        buffer = self.buffer
        while len(buffer) >= 2:
            opcode, length = buffer[0] & 0x0F, buffer[1] & 0x7F
            start = 2
            if length == 126:
                if len(buffer) < 4:
                    break
                (length,) = struct.unpack_from("!H", buffer, 2)
                start = 4
            elif length == 127:
                if len(buffer) < 10:
                    break
                (length,) = struct.unpack_from("!Q", buffer, 2)
                start = 10
            if len(buffer) < start + length:
                break
            payload = buffer[start : start + length]
            buffer = buffer[start + length :]
            if opcode == 0x1:
                self.hub.arrived(self)
            elif opcode == 0x9 and self.transport is not None:  # ping: a masked pong (a zero mask) with its payload
                self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
            elif opcode == 0x8:
                self.hub.lost += 1
                self.close()
        self.buffer = buffer

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_result(False)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


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
        path = f"/ws/chat/c100k-{room}"
        request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        async with gate:
            if failed >= args.give_up_after:
                return  # the servers are full: stop offering, and report what they hold
            try:
                _, client = await loop.create_connection(
                    lambda: Client(hub, request), "127.0.0.1", port, local_addr=(sources[index % len(sources)], 0)
                )
                if await asyncio.wait_for(client.opened, args.handshake_wait):
                    clients.append(client)
                    if len(clients) % PROGRESS_EVERY == 0:
                        report(progress=len(clients), seconds=round(time.monotonic() - started, 2))
                    return
            except (OSError, TimeoutError):
                pass
            failed += 1

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
    args = parser.parse_args(argv)
    uvloop.run(run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
