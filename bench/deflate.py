"""P11: what a browser costs each server (``python -m bench --only p11``).

Every browser offers permessage-deflate (:mod:`bench.browser`), and a server
that accepts keeps a compressor, and maybe an inflater, for every connection.
This run measures, under every server configuration of ``asgi_ws.servers``,
each once with clients that offer deflate as Chromium does and once with the
same client offering nothing:

- **what the server accepted**: its ``Sec-WebSocket-Extensions``, or nothing;
- **memory per idle connection**: the server's RSS (the process and its
  children) after ``CONNECTIONS`` chat clients opened, less before, over the
  connections (P6's method);
- **memory per connection after one message each**: one chat line into each
  of the ``ROOMS`` rooms, so that every client has received one compressed
  message and the server's compressors are in use;
- **server CPU per message**: CPU seconds of the server's processes over
  ``ECHO_CONNECTIONS`` clients sending ``ECHOES`` JSON messages each to
  ``/ws_json``, one at a time, over the replies;
- **bytes on the wire** for the app's own messages, frame headers included:
  a chat line, a feed envelope, a ``/stream`` push and a JSON echo, each the
  mean over ``SAMPLES`` messages, beside the payload's own size.

Every server runs as the launcher starts it, with deflate left on where the
server has a switch (``Listen.deflate=True``), which is every switch's own
default: the figures are what each server costs by default, from which the
launcher's choice per server (``Server.deflate_default``) is made.  The
figures go to ``bench/p11.json``; ``python -m bench --render`` puts them into
``bench/RESULTS.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from asgi_ws.policy import message_size
from asgi_ws.servers import SERVERS
from conformance.launcher import RunningServer, run_server

from .browser import CountingConnection, connect, negotiated
from .loadgen import group_cpu_seconds

__all__ = ["P11", "Cost", "run"]

P11 = "p11.json"  # where ``python -m bench --only p11`` keeps the figures, beside results.json

CONNECTIONS = 1000  # chat clients held for the memory figures
ROOMS = 10  # chat rooms they are spread over
ECHO_CONNECTIONS = 10  # clients of the CPU figure, as in the JSON echo benchmark
ECHOES = 1000  # JSON messages each of them sends, one at a time
SAMPLES = 20  # messages of each kind for the bytes on the wire
SETTLE = 1.0  # seconds before reading RSS, for the server to finish what the last client started
CONNECTS_AT_ONCE = 50  # handshakes in flight while opening the connections
SETTINGS = {
    "ASGI_WS_IDLE_TIMEOUT": "0",  # the clients stay quiet between the steps
    "ASGI_WS_RATE_LIMIT": "1000000",  # the echo clients send as fast as the replies come
    "ASGI_WS_RATE_BURST": "1000000",
    "ASGI_WS_MAX_CONNECTIONS": "20000",
    "ASGI_WS_LOG_LEVEL": "warning",
}

# The app's own messages, as a chat, a game or a dashboard sends them: different each time, alike in shape.
CHAT_LINES = [
    f"{name}: {line}"
    for name, line in zip(
        ["ada", "grace", "linus", "barbara", "ken", "margaret", "dennis", "radia", "tim", "frances"] * 2,
        [
            "good morning, everyone",
            "has anyone seen the build from last night?",
            "it passed on my machine, the flaky test again",
            "I'll look at it after the stand-up",
            "the stand-up is moved to half past ten",
            "thanks, see you there",
            "the new dashboard is live, have a look",
            "the latency graph looks much better now",
            "did we change the cache settings?",
            "yes, the TTL went from 60 to 300 seconds",
        ]
        * 2,
        strict=True,
    )
]
JSON_MESSAGES = [
    json.dumps({"type": "move", "player": f"player-{n % 7}", "x": 12.5 * n, "y": 300 - 7.25 * n, "seq": n})
    for n in range(SAMPLES)
]


@dataclass
class Cost:
    """One server, with deflate offered or not."""

    negotiated: str  # the server's Sec-WebSocket-Extensions, "" if it accepted nothing
    idle_kib: float  # server RSS per idle connection
    after_message_kib: float  # server RSS per connection once each has received one message
    cpu_us_per_echo: float  # server CPU per JSON echo
    wire_bytes: dict[str, float]  # bytes on the wire per message, frame headers included, by kind
    payload_bytes: dict[str, float]  # the same messages' payloads, uncompressed


def run(
    names: Iterable[str], scratch: Path, cpus: Collection[int] = (), say: Callable[[str], None] = print
) -> dict[str, Any]:
    """Each server of ``names``, on ``cpus``, deflate offered and not: ``{"servers": {name: {"off", "on"}}}``."""
    date = time.strftime("%Y-%m-%d", time.gmtime())
    results: dict[str, Any] = {"date": date, "servers": {}, "versions": {}, "failed": {}}
    for name in names:
        server = SERVERS[name]
        results["versions"][name] = {package: _version(package) for package in server.packages}
        costs = {}
        try:
            for deflate in (False, True):
                with run_server(name, scratch / "logs", SETTINGS, listen={"deflate": True}, cpus=cpus) as running:
                    cost = asyncio.run(measure(running, deflate))
                costs["on" if deflate else "off"] = asdict(cost)
                say(_line(name, deflate, cost))
        except Exception as exc:  # one server that fails must not lose the others' figures
            results["failed"][name] = f"{type(exc).__name__}: {exc}"
            say(f"p11: {name} failed: {results['failed'][name]}")
            continue
        results["servers"][name] = costs
    return results


async def measure(server: RunningServer, deflate: bool) -> Cost:
    """All four figures for one server, with clients that offer deflate or not."""
    idle, after, accepted = await _memory(server, deflate)
    return Cost(
        negotiated=accepted,
        idle_kib=idle / 1024,
        after_message_kib=after / 1024,
        cpu_us_per_echo=await _cpu_per_echo(server, deflate) * 1e6,
        **await _wire(server, deflate),
    )


async def _memory(server: RunningServer, deflate: bool) -> tuple[float, float, str]:
    """Bytes of server RSS per connection, idle and after one message each, and what the server accepted."""
    async with contextlib.AsyncExitStack() as stack:
        # The publishers offer nothing and open before the first reading: only the measured clients count.
        publishers = [
            await stack.enter_async_context(connect(server.url(f"/ws/chat/p11-{room}"), deflate=False))
            for room in range(ROOMS)
        ]
        await asyncio.sleep(SETTLE)
        before = server.rss()
        gate = asyncio.Semaphore(CONNECTS_AT_ONCE)

        async def client(index: int) -> CountingConnection:
            async with gate:
                return await stack.enter_async_context(
                    connect(server.url(f"/ws/chat/p11-{index % ROOMS}"), deflate=deflate)
                )

        clients = await asyncio.gather(*(client(index) for index in range(CONNECTIONS)))
        await asyncio.sleep(SETTLE)
        idle = server.rss()
        for room, publisher in enumerate(publishers):
            await publisher.send(CHAT_LINES[room])
        await asyncio.gather(*(ws.recv() for ws in clients))
        await asyncio.sleep(SETTLE)
        after = server.rss()
        return (idle - before) / CONNECTIONS, (after - before) / CONNECTIONS, negotiated(clients[0])


async def _cpu_per_echo(server: RunningServer, deflate: bool) -> float:
    """Server CPU seconds per JSON echo, over ``ECHO_CONNECTIONS`` clients sending one message at a time."""
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(connect(server.url("/ws_json"), deflate=deflate))
            for _ in range(ECHO_CONNECTIONS)
        ]

        async def echoes(ws: CountingConnection) -> None:
            for number in range(ECHOES):
                await ws.send(JSON_MESSAGES[number % SAMPLES])
                await ws.recv()

        started = group_cpu_seconds(_pid(server))
        await asyncio.gather(*(echoes(ws) for ws in clients))
        return (group_cpu_seconds(_pid(server)) - started) / (ECHO_CONNECTIONS * ECHOES)


async def _wire(server: RunningServer, deflate: bool) -> dict[str, dict[str, float]]:
    """Bytes on the wire and payload bytes per message, for each of the app's kinds of message."""
    wire, payload = {}, {}
    for kind, path, send in [
        ("chat line", "/ws/chat/p11-wire", CHAT_LINES),
        ("feed envelope", "/ws/feed/p11-wire", CHAT_LINES),
        ("JSON echo", "/ws_json", JSON_MESSAGES),
    ]:
        async with connect(server.url(path), deflate=deflate) as ws:
            counted, sizes = 0, 0
            for text in send[:SAMPLES]:
                before = ws.bytes_received
                await ws.send(text)
                reply = await ws.recv()
                counted += ws.bytes_received - before
                sizes += _payload(reply)
            wire[kind], payload[kind] = counted / SAMPLES, sizes / SAMPLES
    async with connect(server.url(f"/stream?count={SAMPLES}"), deflate=deflate) as ws:
        before = ws.bytes_received
        await ws.send("go")
        pushes = [await ws.recv() for _ in range(SAMPLES)]
        wire["stream push"] = (ws.bytes_received - before) / SAMPLES
        payload["stream push"] = sum(_payload(push) for push in pushes) / SAMPLES
    return {"wire_bytes": wire, "payload_bytes": payload}


def _payload(message: str | bytes) -> int:
    """A message's payload bytes, counted as the app counts them (``/metrics``, the size limit)."""
    return message_size(message, None) if isinstance(message, str) else message_size(None, message)


def _line(name: str, deflate: bool, cost: Cost) -> str:
    """One progress line: a server's figures with deflate offered or not."""
    wire = ", ".join(f"{kind} {size:.0f} B" for kind, size in cost.wire_bytes.items())
    return (
        f"p11: {name:<18} deflate {'offered' if deflate else 'not offered':<11} "
        f"accepted {cost.negotiated or 'nothing'!r}; idle {cost.idle_kib:.1f} KiB, after a message "
        f"{cost.after_message_kib:.1f} KiB per connection; {cost.cpu_us_per_echo:.1f} µs CPU per echo; {wire}"
    )


def _pid(server: RunningServer) -> int:
    """The server's PID, which is also its process group's: it runs in a session of its own."""
    assert server.process is not None
    return server.process.pid


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


# The page

BUDGET_KIB = 40.0  # RSS per connection that lets 100,000 fit in 4 GiB with the processes' own memory besides
KINDS = ("chat line", "feed envelope", "stream push", "JSON echo")


def choice(costs: Mapping[str, Any]) -> bool:
    """The default the figures call for: on only if a connection that has received a message fits the budget.

    ``asgi_ws.servers`` sets each server's ``deflate_default`` to this; a test checks that they agree.
    """
    return bool(costs["on"]["negotiated"]) and costs["on"]["after_message_kib"] <= BUDGET_KIB


def reason(name: str, costs: Mapping[str, Any]) -> str:
    """Why the launcher's default for ``name`` is what it is, in the figures' own words."""
    on, off = costs["on"], costs["off"]
    if not on["negotiated"]:
        return "declines every offer: nothing to choose"
    growth = on["after_message_kib"] - off["after_message_kib"]
    saved = 1 - on["wire_bytes"]["chat line"] / off["wire_bytes"]["chat line"]
    cost = (
        f"deflate costs {growth:+.1f} KiB per connection after one message "
        f"({on['after_message_kib']:.1f} KiB, budget {BUDGET_KIB:.0f}) and saves {saved:.0%} of a chat line"
    )
    if not SERVERS[name].deflate_switch:
        return f"no switch: {cost}; 100,000 browsers hold {on['after_message_kib'] * 100_000 / 2**20:.1f} GiB"
    return cost


def markdown(figures: Mapping[str, Any]) -> str:
    """P11's section of RESULTS.md: the table, each server's default and why, and the versions measured."""
    servers: Mapping[str, Any] = figures.get("servers", {})
    if not servers:
        return "P11 was not run: `python -m bench --only p11`."
    lines = [
        "| server | client | server accepted | RSS per idle connection | after one message "
        f"| CPU per JSON echo | {' | '.join(KINDS)} |",
        "|---|---|---|---:|---:|---:|" + "---:|" * len(KINDS),
    ]
    for name, costs in servers.items():
        for offer in ("off", "on"):
            cost = costs[offer]
            wire = " | ".join(f"{cost['wire_bytes'][kind]:.0f} B" for kind in KINDS)
            lines.append(
                f"| {name} | {'offers deflate' if offer == 'on' else 'offers nothing'} "
                f"| {cost['negotiated'] or 'nothing'} | {cost['idle_kib']:.1f} KiB "
                f"| {cost['after_message_kib']:.1f} KiB | {cost['cpu_us_per_echo']:.1f} µs | {wire} |"
            )
    payload = next(iter(servers.values()))["off"]["payload_bytes"]
    lines += [
        "",
        "The payloads themselves, uncompressed: "
        + ", ".join(f"{kind} {payload[kind]:.0f} B" for kind in KINDS)
        + ". Bytes on the wire include the frame's header.",
        "",
        "| server | switch | the launcher's default | why |",
        "|---|---|---|---|",
    ]
    for name, costs in servers.items():
        server = SERVERS[name]
        switch = f"`{server.deflate_off}`" if server.deflate_switch else "none"
        default = {None: "(the server's own)", True: "on", False: "off"}[server.deflate_default]
        lines.append(
            f"| {name} | {switch} | {default if server.deflate_switch else '(none)'} | {reason(name, costs)} |"
        )
    found = figures.get("versions", {}).values()
    packages = {package: version for versions in found for package, version in versions.items()}
    versions = ", ".join(f"{package} {version}" for package, version in sorted(packages.items()))
    lines += ["", f"Measured on {figures.get('date', '?')} with {versions}."]
    if figures.get("failed"):
        lines.append("Failed: " + "; ".join(f"{name}: {why}" for name, why in figures["failed"].items()) + ".")
    return "\n".join(lines)
