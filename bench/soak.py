"""Soak: 10,000 connections in one chat room on one server process, a broadcast every 100 ms (contract §7).

    python -m bench.soak [--connections 10000] [--interval 0.1] [--duration 60] [--server uvicorn]

One broadcaster and N listeners join ``/ws/chat/soak`` on a single server
process.  The broadcaster sends the numbers 1, 2, 3 ... one every ``interval``
seconds for ``duration`` seconds; every listener must receive every number,
in order.  The command reports what was delivered, what was missing, how far
behind the slowest listener fell, and the server's RSS (from ``/metrics``)
before, with everyone connected, and at the end.  ``--write`` adds the result
to ``bench/SOAK.md``.

The listeners are not the ``websockets`` client: at 100,000 messages a second
a full client library per connection would be the bottleneck, not the server.
Each is a small asyncio protocol that does the handshake by hand and then only
parses frame headers and the number in each text frame.  The file-descriptor
limit is raised to its hard limit in this process, which the server process
inherits.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import platform
import resource
import struct
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from websockets.asyncio.client import connect

from conformance.launcher import HOST, RunningServer, run_server

ROOM = "/ws/chat/soak"
HANDSHAKES_AT_ONCE = 200
RESULTS = Path(__file__).resolve().parent / "SOAK.md"


@dataclass
class Listener(asyncio.Protocol):
    """One listening connection: the handshake by hand, then frame headers and numbers only."""

    path: str
    opened: asyncio.Future[None]
    expected: int = 1  # the next number it should receive
    out_of_order: int = 0  # numbers that did not come next
    closed_by_server: int | None = None  # the close code, if the server closed it
    last_at: float = 0.0  # time.monotonic() of the last number
    _buffer: bytes = b""
    _upgraded: bool = False
    transport: asyncio.Transport | None = field(default=None, repr=False)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            f"GET {self.path} HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._upgraded:
            head, separator, rest = self._buffer.partition(b"\r\n\r\n")
            if not separator:
                return
            if not head.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(ConnectionError(head.split(b"\r\n")[0].decode()))
                return
            self._upgraded = True
            self._buffer = rest
            self.opened.set_result(None)
        self._frames()

    def _frames(self) -> None:
        buffer, offset, size = self._buffer, 0, len(self._buffer)
        while size - offset >= 2:
            opcode, length = buffer[offset] & 0x0F, buffer[offset + 1] & 0x7F
            header = 2
            if length == 126:
                if size - offset < 4:
                    break
                (length,) = struct.unpack_from("!H", buffer, offset + 2)
                header = 4
            elif length == 127:
                if size - offset < 10:
                    break
                (length,) = struct.unpack_from("!Q", buffer, offset + 2)
                header = 10
            if size - offset < header + length:
                break
            payload = buffer[offset + header : offset + header + length]
            offset += header + length
            if opcode == 0x1:
                if int(payload) != self.expected:
                    self.out_of_order += 1
                self.expected = int(payload) + 1
                self.last_at = time.monotonic()
            elif opcode == 0x8:
                self.closed_by_server = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            elif opcode == 0x9 and self.transport is not None:  # ping: answer with a masked pong
                self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
        self._buffer = buffer[offset:]


async def soak(server: RunningServer, connections: int, interval: float, duration: float) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    rss_before = rss(server)
    listeners: list[Listener] = []
    handshakes = asyncio.Semaphore(HANDSHAKES_AT_ONCE)
    started = time.monotonic()

    async def open_one() -> None:
        async with handshakes:
            listener = Listener(ROOM, loop.create_future())
            await loop.create_connection(lambda: listener, HOST, server.port)
            await asyncio.wait_for(listener.opened, 60)
            listeners.append(listener)

    await asyncio.gather(*(open_one() for _ in range(connections)))
    connect_seconds = time.monotonic() - started
    print(f"{connections} listeners connected in {connect_seconds:.1f} s", flush=True)
    rss_connected = rss(server)

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
    rss_end = rss(server)
    complete = sum(1 for listener in listeners if listener.expected == messages + 1 and not listener.out_of_order)
    received = sum(listener.expected - 1 for listener in listeners)
    for listener in listeners:
        if listener.transport is not None:
            listener.transport.close()
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


def rss(server: RunningServer) -> float:
    return server.metrics().value("process_resident_memory_bytes")


def raise_fd_limit(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed <= hard or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        raise SystemExit(
            f"bench.soak: needs {needed} file descriptors, the hard limit is {soft}: raise it (ulimit -Hn)"
        )
    return soft


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
