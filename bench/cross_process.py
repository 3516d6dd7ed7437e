"""Chat delivery latency within one process and across two processes through Redis (contract §4, §6 P7).

    python -m bench.cross_process [--servers uvicorn,hypercorn] [--messages 2000] [--rate 500]

Starts a ``redis-server`` and two app processes on it (``a`` and ``b``, by
default one uvicorn and one hypercorn), with three clients in one chat room:
the sender and a receiver on ``a``, a receiver on ``b``.  The sender stamps
each message with the time it sent it, at a steady rate well below capacity,
so that what is measured is latency, not queueing.  Both receivers run in this
process, so the stamps and the arrival times come from one clock.

The receiver on ``a`` is the local path (hub to outbox to socket); the one on
``b`` adds the publish to Redis, Redis itself and process b's subscriber.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect

from conformance.launcher import run_server
from conformance.redis_server import RedisServer

WARMUP = 200  # messages sent and not counted: connections, caches and the JIT-less interpreter settle


async def measure(a_url: str, b_url: str, messages: int, rate: float) -> dict[str, list[float]]:
    """Latencies in milliseconds, per receiver."""
    total = WARMUP + messages
    latencies: dict[str, list[float]] = {"same process": [], "across Redis": []}
    async with connect(a_url) as sender, connect(a_url) as local, connect(b_url) as remote:
        await _until_both_subscribed(sender, remote)

        async def receive(name: str, ws: ClientConnection) -> None:
            while len(latencies[name]) < total:
                message = await ws.recv()
                number, _, stamp = str(message).partition(" ")
                if number.isdigit():
                    latencies[name].append((time.perf_counter_ns() - int(stamp)) / 1e6)

        async def drain_own() -> None:  # the sender is in the room too: read its copies so it never stalls
            for _ in range(total):
                await sender.recv()

        readers = [
            asyncio.create_task(receive(name, ws)) for name, ws in (("same process", local), ("across Redis", remote))
        ]
        readers.append(asyncio.create_task(drain_own()))
        interval = 1 / rate
        start = time.perf_counter()
        for number in range(total):
            await asyncio.sleep(max(0.0, start + number * interval - time.perf_counter()))
            await sender.send(f"{number} {time.perf_counter_ns()}")
        await asyncio.wait_for(asyncio.gather(*readers), timeout=60)
    return {name: values[WARMUP:] for name, values in latencies.items()}


async def _until_both_subscribed(sender: ClientConnection, remote: ClientConnection) -> None:
    """Ping through the room until the remote process gets one: its subscription is live."""
    for attempt in range(200):
        await sender.send(f"hello-{attempt}")
        try:
            while True:
                message = await asyncio.wait_for(remote.recv(), timeout=0.05)
                if str(message).startswith("hello-"):
                    return
        except TimeoutError:
            continue
    raise RuntimeError("process b never received the room's messages: is its broker connected?")


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cross_process", description=__doc__.split("\n")[0])
    parser.add_argument("--servers", default="uvicorn,hypercorn", help="process a and process b (default %(default)s)")
    parser.add_argument("--messages", type=int, default=2000, help="messages measured (default %(default)s)")
    parser.add_argument("--rate", type=float, default=500.0, help="messages per second (default %(default)s)")
    args = parser.parse_args(argv)
    first, _, second = args.servers.partition(",")
    with tempfile.TemporaryDirectory() as scratch, ExitStack() as stack:
        redis = RedisServer(Path(scratch))
        redis.start()
        stack.callback(redis.stop)
        settings = {"ASGI_WS_BROKER": redis.url, "ASGI_WS_RATE_LIMIT": "0"}
        print(f"redis-server on {redis.url}; starting {first} and {second or first}")
        a = stack.enter_context(run_server(first, Path(scratch) / "a", settings))
        b = stack.enter_context(run_server(second or first, Path(scratch) / "b", settings))
        for server in (a, b):
            server.wait_for_health(lambda document: document["broker"]["connected"], 30)
        print(f"sending {WARMUP} + {args.messages} messages at {args.rate:g}/s ...")
        room = "/ws/chat/latency"
        results = asyncio.run(measure(a.url(room), b.url(room), args.messages, args.rate))
    print(f"\n{'receiver':<14} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'mean ms':>8}")
    for name, values in results.items():
        print(
            f"{name:<14} {percentile(values, 0.5):8.2f} {percentile(values, 0.99):8.2f} "
            f"{max(values):8.2f} {statistics.fmean(values):8.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
