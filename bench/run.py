"""``python -m bench``: asgi_ws against its peers, and under every server, side by side in one run (goals P1-P10).

    python -m bench              # the full run, about 35 minutes (printed at the start); writes bench/RESULTS.md,
                                 # results.png and p10.png
    python -m bench --quick      # every workload once, short, in about 3 minutes; writes nothing unless --out
    python -m bench --only p10   # the server comparison alone: asgi-ws under every server configuration
    python -m bench --only feed  # the feed's groups alone (P9)
    python -m bench --only c100k # P8, 100,000 connections: never part of a full run (bench/c100k.py)
    python -m bench --render     # runs nothing: RESULTS.md, the README's summary and docs/choosing-a-server.md
                                 # again, from results.json and docs/server-summary.json

A run that writes to ``bench/`` (a full run) rewrites the README's summary of the
results and ``docs/choosing-a-server.md`` too.  Every page is rendered from what the run recorded in
``results.json`` (:mod:`bench.report`), so ``--render`` after a lock refresh,
a new conformance report or ``--only c100k`` gives the page the run would have.

A full run, group by group (``groups``): under each of uvicorn, hypercorn and
granian, echo on 10 and on 50 connections and the stream with asgi-ws, FastAPI
and the raw floor (and the ``websockets`` server beside them under uvicorn),
JSON echo and chat fan-out to 100 and to 1000 with asgi-ws and FastAPI (P1-P4;
under uvicorn the fan-outs also with one client that never reads, P5); idle
memory under uvicorn (P6); the server comparison (P10): asgi-ws alone under all
ten configurations of :mod:`asgi_ws.servers`, echo on 10 connections, the
stream and fan-out to 100, the servers alternated like peers; the feed (P9);
and cross-process latency through Redis (P7).

Theory of operation
-------------------
An **arm** is one thing measured: a peer (an app) under a server, doing a
workload.  A **group** is the arms that are compared with each other.  Every
group runs its arms in turn, A B C, then C B A, and so on, ``--rounds`` times,
so that a machine that gets slower or faster during the run favours nobody; the
figure of an arm is the median of its rounds, and a goal's ratio is the ratio of
two medians.  Groups whose server cannot be reused between runs (a naive
broadcast loop stuck on a stalled client, a memory reading) start a new server
process for every run.

The servers are pinned to one CPU and this process, which is the load
generator (:mod:`bench.loadgen`), to another, with ``sched_setaffinity`` (what
``taskset`` does).  Every figure comes with the load generator's CPU share
during the measurement; at 0.9 and above the figure is marked, because it may be
the client's limit rather than the server's.  hypercorn runs with glibc's malloc
thresholds fixed (:data:`FIXED_MALLOC`), so that no arm pays an mmap per socket
read that another arm escapes by the accident of its imports.

The peers (:mod:`bench.peers`): the raw ASGI floor, FastAPI written the usual
way, and the ``websockets`` library's own server.  asgi_ws runs with every
policy on and the rate limit raised so that it never throttles (P2); P1 uses
the same settings, so that P1 and P2 measure one build of the app.

The feed (P9) is measured against the app itself: the same fan-out on
``/ws/feed/{room}`` (published plain, and with ids and acks) and on
``/ws/chat/{room}``, one server, alternated, once on
the memory broker and once on Redis (a ``redis-server`` this run starts, not
pinned, as a Redis on another machine would not share the server's CPU); and
the time a client that resumes 1000 messages behind takes to get them all.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path

import uvloop

from asgi_ws.servers import SERVERS
from conformance.launcher import HOST, RunningServer, free_port, run_server, spawn, stop_process, wait_until_ready
from conformance.redis_server import RedisServer
from conformance.versions import LOCK

from . import c100k, choosing, cross_process, deflate, loadgen, record, report
from .loadgen import Measured
from .machine import raise_fd_limit, split_cpus
from .results import Arm, Group, Measure, Peer, Results, Sizes, Workload, figure_text

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
README = REPO_ROOT / "README.md"  # its bench-summary block is rewritten by a run that writes to BENCH_DIR
CHOOSING = choosing.PAGE  # so is this page, which puts P10 beside the conformance summary

# Every policy on, the rate limit out of the way (contract §6 P2).  The connection
# cap is raised for the 5000 idle connections of P6 plus the clients of others.
POLICIES_ON = {"ASGI_WS_RATE_LIMIT": "1000000", "ASGI_WS_RATE_BURST": "1000000", "ASGI_WS_MAX_CONNECTIONS": "20000"}
ECHO_PAYLOAD = b"0123456789abcdef0123456789abcdef"  # 32 B
JSON_PAYLOAD = b'{"user": "ada", "text": "hello", "n": 1}'
# Chat messages of 1 KiB: large enough that a client which never reads fills
# its socket buffers and the server's write buffer within the run (P5).
CHAT_PAYLOAD = b"x" * 1024
# Chat messages the publisher keeps in flight.  Enough that the server, not the
# round trip through the load generator, limits the rate: see the server CPU
# column of RESULTS.md, which should be near 100 %.
FAN_OUT_WINDOW = 32
# hypercorn's asyncio worker reads every socket through asyncio's selector transport,
# which calls sock.recv(256 KiB) (CPython 3.11 asyncio/selector_events.py,
# _SelectorSocketTransport._read_ready__data_received, max_size): a new 256 KiB
# block per read.  glibc serves it with mmap whenever it is above the mmap
# threshold and the heap's top has no room: the threshold starts at 128 KiB and
# only rises when a block above it is freed, which some imports happen to do.  So
# whether each read costs mmap + mremap + munmap and two page faults depended on
# the app's imports and the heap's layout, not on the app's work: the 10-line floor
# paid it on every read, asgi-ws only with 50 connections, FastAPI never
# (python/cpython#85451, open).  Fixed thresholds put every arm on the heap; the
# trim threshold too, or the heap would grow and shrink by brk on every read.
# uvicorn (uvloop) and granian read into buffers of their own and keep glibc's defaults.
FIXED_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(1024 * 1024), "MALLOC_TRIM_THRESHOLD_": str(4 * 1024 * 1024)}
SERVER_ENV = {"hypercorn": FIXED_MALLOC}
BENCH_SERVERS = ("uvicorn", "hypercorn", "granian")  # asgi-ws against its peers under each; idle and P5 under uvicorn
P10_TAG = "p10"  # --only p10: asgi-ws alone under every server configuration
P10_WORKLOADS = ("echo-10", "stream", "fan-out-100")
SERVER_START = 2.0  # seconds to start and stop a server, about, for the estimate
SATURATED = 0.9  # load-generator CPU share from which a figure is marked
HEALTHY_LIMIT = 120.0  # seconds a fan-out run without a stalled client may take
FEED_LISTENERS = 100  # members of the room in the feed-vs-chat fan-out (P9), as in P4's smaller size
REPLAYED = 1000  # messages a resuming feed client missed (P9), the default history_size
# The distributions whose versions a run records besides its servers' (each server's packages): the
# app, the peers, the load generator and its loop, the Redis client; with everything they require.
MEASURED_PACKAGES = ("asgi-ws", "fastapi", "websockets", "picows", "uvloop", "redis")


OURS = Peer("asgi-ws", "asgi-ws", "asgi_ws.app:app", POLICIES_ON)
FLOOR = Peer("floor", "raw ASGI floor", "bench.peers.raw_asgi:app")
OURS_REDIS = Peer("asgi-ws-redis", "asgi-ws, Redis broker", "asgi_ws.app:app", POLICIES_ON, redis=True)
FASTAPI = Peer("fastapi", "FastAPI", "bench.peers.fastapi_app:app")
WEBSOCKETS = Peer("websockets", "websockets server", None)


# Workloads: what each one measures, and about how long a run of it takes


def echo_measure(sizes: Sizes, connections: int, payload: bytes, path: str) -> Measure:
    """Round trips/s of ``connections`` clients echoing ``payload`` on ``path`` for ``sizes.echo_seconds``."""
    return lambda server: loadgen.echo(
        server.url(path), connections, sizes.echo_seconds, payload, server=group_of(server)
    )


def fan_out_measure(
    sizes: Sizes, listeners: int, stalled: bool, path: str = "/ws/chat/bench", *, ids: bool = False
) -> Measure:
    """Deliveries/s of a chat fan-out to ``listeners``, one of them never reading if ``stalled``.

    ``ids``: a feed room's publisher publishes with ids and gets an ack for each message.
    """
    messages = sizes.fan_out_messages[listeners]

    async def measure(server: RunningServer) -> Measured:
        url, before = server.url(path), server.rss()
        run = await loadgen.fan_out(
            url,
            listeners,
            messages,
            CHAT_PAYLOAD,
            window=FAN_OUT_WINDOW,
            stalled=stalled,
            ids=ids,
            server=group_of(server),
            # A stalled run may stop at the time limit (a server that waits for
            # the stalled client); a healthy one has all the time it needs.
            limit=sizes.stall_timeout if stalled else HEALTHY_LIMIT,
        )
        return dataclasses.replace(run, server_growth=float(server.rss() - before))

    return measure


def stream_measure(sizes: Sizes) -> Measure:
    """Messages/s of one ``/stream`` of ``sizes.stream_count`` messages, ``sizes.stream_repeats`` times."""

    async def measure(server: RunningServer) -> Measured:
        url = server.url(f"/stream?count={sizes.stream_count}")
        return await loadgen.stream(url, sizes.stream_count, sizes.stream_repeats, server=group_of(server))

    return measure


def idle_measure(sizes: Sizes) -> Measure:
    """Bytes of server memory per connection, with ``sizes.idle_connections`` open and silent."""

    async def measure(server: RunningServer) -> Measured:
        before = server.rss()  # the server's process and its workers (RunningServer.rss)
        after = await loadgen.idle(server.url("/echo"), sizes.idle_connections, server.rss)
        return Measured((after - before) / sizes.idle_connections, 0.0)

    return measure


async def resume_measure(server: RunningServer) -> Measured:
    """Milliseconds for a feed client that missed :data:`REPLAYED` messages to get them all."""
    url = server.url("/ws/feed/replay")
    # The room's history first (once per server: later runs find it there), then one resume.
    epoch, top = await loadgen.feed_top(url, REPLAYED + 1, CHAT_PAYLOAD)
    return await loadgen.replay(url, f"{epoch}:{top - REPLAYED}", REPLAYED, server=group_of(server))


# About how long one run takes (for the estimate printed at the start), from the rates of
# earlier full runs on this 2-CPU machine: about 1 s of connecting and warming up an echo,
# streams at 40,000 messages/s, fan-outs at 60,000 deliveries/s plus 2 ms a member to join.


def echo_seconds(sizes: Sizes) -> float:
    return sizes.echo_seconds + 1.0


def stream_seconds(sizes: Sizes) -> float:
    return sizes.stream_count * (sizes.stream_repeats + 1) / 40_000 + 0.3


def fan_out_seconds(sizes: Sizes, listeners: int, stalled: bool = False) -> float:
    healthy = sizes.fan_out_messages[listeners] * (listeners + 1) / 60_000 + listeners * 0.002
    # Stalled, FastAPI's loop waits out the time limit and asgi-ws does not: half each.
    return (healthy + sizes.stall_timeout) / 2 if stalled else healthy


def echo_workloads(sizes: Sizes) -> list[Workload]:
    """Echo on 10 and on 50 connections, JSON echo, and the stream (P1-P3)."""
    seconds = echo_seconds(sizes)
    return [
        Workload(
            "echo-10",
            "echo 32 B, 10 connections",
            "round trips/s",
            "/echo",
            echo_measure(sizes, 10, ECHO_PAYLOAD, "/echo"),
            seconds=seconds,
        ),
        Workload(
            "echo-50",
            "echo 32 B, 50 connections",
            "round trips/s",
            "/echo",
            echo_measure(sizes, 50, ECHO_PAYLOAD, "/echo"),
            seconds=seconds,
        ),
        Workload(
            "json",
            "JSON echo, 10 connections",
            "round trips/s",
            "/ws_json",
            echo_measure(sizes, 10, JSON_PAYLOAD, "/ws_json"),
            seconds=seconds,
        ),
        Workload(
            "stream",
            f"stream of {sizes.stream_count:,} messages",
            "messages/s",
            "/stream",
            stream_measure(sizes),
            seconds=stream_seconds(sizes),
        ),
    ]


def fan_out_workloads(sizes: Sizes) -> list[Workload]:
    """Chat fan-out to 100 and to 1000, each healthy and with one client that never reads (P1, P4, P5)."""
    return [
        Workload(
            f"fan-out-{n}{'-stalled' if stalled else ''}",
            f"chat fan-out to {n}{', one client never reads' if stalled else ''}",
            "deliveries/s",
            "/ws/chat/bench",
            fan_out_measure(sizes, n, stalled),
            seconds=fan_out_seconds(sizes, n, stalled),
        )
        for n in (100, 1000)
        for stalled in (False, True)
    ]


def memory_and_feed_workloads(sizes: Sizes) -> list[Workload]:
    """Idle memory (P6), and the feed's fan-out beside the chat's and its resume (P9)."""
    feed_seconds = fan_out_seconds(sizes, FEED_LISTENERS)
    return [
        Workload(
            "idle",
            f"{sizes.idle_connections:,} idle connections",
            "bytes/connection",
            "/echo",
            idle_measure(sizes),
            higher_is_better=False,
            seconds=sizes.idle_connections / 1000 + 1.0,
        ),
        Workload(
            "feed-chat",
            f"chat fan-out to {FEED_LISTENERS} (beside the feed)",
            "deliveries/s",
            "/ws/chat/bench",
            fan_out_measure(sizes, FEED_LISTENERS, False),
            seconds=feed_seconds,
        ),
        Workload(
            "feed",
            f"feed fan-out to {FEED_LISTENERS}",
            "deliveries/s",
            "/ws/feed/bench",
            fan_out_measure(sizes, FEED_LISTENERS, False, "/ws/feed/bench"),
            seconds=feed_seconds,
        ),
        Workload(
            "feed-ids",
            f"feed fan-out to {FEED_LISTENERS}, published with ids",
            "deliveries/s",
            "/ws/feed/bench",
            fan_out_measure(sizes, FEED_LISTENERS, False, "/ws/feed/bench", ids=True),
            seconds=feed_seconds,
        ),
        Workload(
            "feed-replay",
            f"feed resume, {REPLAYED:,} messages missed",
            "ms",
            "/ws/feed/replay",
            resume_measure,
            higher_is_better=False,
            seconds=0.3,
        ),
    ]


def workloads(sizes: Sizes) -> dict[str, Workload]:
    """Every workload of a run of these sizes, by key."""
    found = [*echo_workloads(sizes), *fan_out_workloads(sizes), *memory_and_feed_workloads(sizes)]
    return {workload.key: workload for workload in found}


# Groups: the arms compared with each other, in the order a full run measures them


def peer_groups(w: dict[str, Workload], server: str) -> list[Group]:
    """asgi-ws against FastAPI and the floor under ``server`` (P1-P4), and with a stalled client under uvicorn (P5)."""
    found = []
    # P1, P2, P3: asgi-ws, FastAPI and the floor (the websockets server beside them under uvicorn).
    for key in ("echo-10", "echo-50", "stream"):
        arms = [Arm(peer, server, w[key]) for peer in (OURS, FASTAPI, FLOOR)]
        if server == "uvicorn":
            arms.append(Arm(WEBSOCKETS, "websockets", w[key]))
        found.append(Group(f"{w[key].title} · {server}", arms))
    found.append(Group(f"{w['json'].title} · {server}", [Arm(peer, server, w["json"]) for peer in (OURS, FASTAPI)]))
    # P1 and P4: fan-out against FastAPI's naive loop; under uvicorn with a stalled client too (P5).
    for n in (100, 1000):
        healthy, stalled = w[f"fan-out-{n}"], w[f"fan-out-{n}-stalled"]
        if server == "uvicorn":
            arms = [Arm(peer, server, workload) for workload in (healthy, stalled) for peer in (OURS, FASTAPI)]
            # The naive loop stays stuck on the stalled client, so every run gets a new server.
            found.append(Group(f"{healthy.title}, healthy and with one stalled client · {server}", arms, True))
        else:
            found.append(Group(f"{healthy.title} · {server}", [Arm(peer, server, healthy) for peer in (OURS, FASTAPI)]))
    return found


def server_comparison_groups(w: dict[str, Workload]) -> list[Group]:
    """P10: asgi-ws alone under every server configuration, the servers alternated like peers."""
    found = []
    for key in P10_WORKLOADS:
        workload = dataclasses.replace(w[key], key=f"{P10_TAG}-{key}")
        arms = [Arm(OURS, server, workload) for server in SERVERS]
        found.append(Group(f"{workload.title} · every server", arms, tag=P10_TAG, tolerant=True))
    return found


def feed_groups(w: dict[str, Workload], server: str, sizes: Sizes) -> list[Group]:
    """P9 under ``server``: the feed's fan-out, plain and with ids, beside the chat's on each broker; the resume."""
    found = []
    for peer in (OURS, OURS_REDIS):
        broker = "Redis" if peer.redis else "memory"
        arms = [Arm(peer, server, w[key]) for key in ("feed-chat", "feed", "feed-ids")]
        found.append(Group(f"feed vs chat · {server}, {broker} broker", arms, warm_up=True, tag="feed"))
    arms = [Arm(peer, server, w["feed-replay"]) for peer in (OURS, OURS_REDIS)]
    found.append(Group(f"{w['feed-replay'].title} · {server}", arms, rounds=sizes.replay_rounds, tag="feed"))
    return found


def groups(sizes: Sizes, feed_servers: Sequence[str] = ("uvicorn",)) -> list[Group]:
    """Every group of a full run, in the order they run."""
    w = workloads(sizes)
    idle = Group(f"{w['idle'].title} · uvicorn", [Arm(peer, "uvicorn", w["idle"]) for peer in (OURS, FLOOR)], True)
    return [
        *(group for server in BENCH_SERVERS for group in peer_groups(w, server)),
        idle,
        *server_comparison_groups(w),
        *(group for server in feed_servers for group in feed_groups(w, server, sizes)),
    ]


# Servers


def group_of(server: RunningServer) -> int:
    """The server's process group: every server here is started in a session of its own."""
    assert server.process is not None
    return server.process.pid


@contextlib.contextmanager
def serve(arm: Arm, log_dir: Path, cpus: set[int], redis_url: str | None = None) -> Iterator[RunningServer]:
    """The arm's server, pinned to ``cpus``, for the ``with`` block; on ``redis_url`` if its peer wants Redis."""
    if arm.peer.app is not None:
        settings = arm.peer.settings
        if arm.peer.redis:
            if redis_url is None:
                raise RuntimeError(f"{arm.key}: runs on Redis, and no redis-server was started")
            settings = {**settings, "ASGI_WS_BROKER": redis_url}
        env = SERVER_ENV.get(arm.server)
        with run_server(arm.server, log_dir, settings, app=arm.peer.app, extra_env=env, cpus=cpus) as server:
            if arm.peer.redis:
                server.wait_for_health(lambda document: document["broker"]["connected"], 30)
            yield server
        return
    with websockets_server(log_dir, cpus) as server:
        yield server


@contextlib.contextmanager
def websockets_server(log_dir: Path, cpus: set[int]) -> Iterator[RunningServer]:
    """:mod:`bench.peers.websockets_server` in a process of its own, stopped by its PID."""
    port = free_port()
    server = RunningServer("websockets", port, log_dir / f"websockets-{port}.log")
    log_dir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "bench.peers.websockets_server", str(port)]
    server.process = spawn(argv, server.log_path, os.environ, cpus)
    try:
        wait_until_ready(server, "/")  # the websockets server answers a plain GET with 426
        yield server
    finally:
        stop_process(server.process)


# Running


class Progress:
    """One line per measurement, numbered, with the time so far."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.started = total, 0, time.monotonic()

    def line(self, text: str) -> None:
        self.done += 1
        print(f"[{self.done:>3}/{self.total} {time.monotonic() - self.started:5.0f}s] {text}", flush=True)


def where(arm: Arm) -> str:
    return f"{arm.peer.label} on {arm.server}" if arm.server != "websockets" else arm.peer.label


def describe(arm: Arm, round_: int, rounds: int, run: Measured) -> str:
    figure = f"{figure_text(run.rate)} {arm.workload.unit}"
    notes = [f"server CPU {run.server_cpu:.0%}"] if run.server_cpu else []
    notes += [f"client CPU {run.client_cpu:.0%}"] if run.client_cpu else []
    if run.client_cpu >= SATURATED:
        notes.append("load generator saturated")
    if not run.done:
        notes.append("did not finish")
    return f"{arm.workload.title:<42} {where(arm):<30} round {round_}/{rounds}: {figure:>26}  ({', '.join(notes)})"


class ServerPool:
    """Servers kept running from one group to the next while the groups run under the same servers.

    Stopping a server can take seconds (hypercorn waits for its connections),
    so the uvicorn servers of the echo groups also serve the stream group, and
    the ten servers of the server comparison serve all three of its groups.
    """

    def __init__(self, log_dir: Path, cpus: set[int], redis_url: str | None = None) -> None:
        self.log_dir, self.cpus, self.redis_url = log_dir, cpus, redis_url
        self._servers: dict[tuple[str, str], tuple[RunningServer, contextlib.ExitStack]] = {}
        self._names: set[str] = set()  # the servers of the groups served so far ("websockets" aside)

    def begin(self, group: Group) -> None:
        """Stop the servers unless ``group`` runs under the same ones as the groups before it."""
        names = {arm.server for arm in group.arms} - {"websockets"}
        if group.fresh_server or names != self._names:
            self.close()
        self._names = names

    def get(self, arm: Arm) -> RunningServer:
        key = (arm.server, arm.peer.key)
        if key not in self._servers:
            stack = contextlib.ExitStack()  # empty if the server fails to start: nothing to stop then
            self._servers[key] = (stack.enter_context(serve(arm, self.log_dir, self.cpus, self.redis_url)), stack)
        return self._servers[key][0]

    def discard(self, arm: Arm) -> None:
        """Stop the arm's server, if it runs (one that failed a workload is not trusted with the next)."""
        if found := self._servers.pop((arm.server, arm.peer.key), None):
            found[1].close()

    def close(self) -> None:
        for _, stack in self._servers.values():
            stack.close()
        self._servers.clear()
        self._names = set()


def run_group(group: Group, results: Results, pool: ServerPool, progress: Progress) -> None:
    rounds = group.rounds or results.sizes.rounds
    pool.begin(group)
    for arm in group.arms:
        results.arms[arm.key] = arm
        if group.tolerant and (missing := SERVERS[arm.server].missing()):
            results.unable[arm.key] = f"not installed: {', '.join(missing)}"
    if group.warm_up:  # the first run on a new server is the slowest: it would favour the arm that runs second
        for arm in group.arms:
            uvloop.run(arm.workload.measure(pool.get(arm)))
    for round_ in range(1, rounds + 1):
        order = group.arms if round_ % 2 else group.arms[::-1]  # A B C, then C B A
        for arm in order:
            if arm.key in results.unable:
                progress.line(f"{arm.workload.title:<42} {where(arm):<30} round {round_}/{rounds}: not run")
                continue
            try:
                with contextlib.ExitStack() as per_run:
                    if group.fresh_server:
                        server = per_run.enter_context(serve(arm, pool.log_dir, pool.cpus, pool.redis_url))
                    else:
                        server = pool.get(arm)
                    run = uvloop.run(arm.workload.measure(server))
            except Exception as exc:
                if not group.tolerant:
                    raise
                # This server cannot run this workload: say why once, and do not try it again.
                results.unable[arm.key] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                pool.discard(arm)
                progress.line(f"{arm.workload.title:<42} {where(arm):<30} failed: {results.unable[arm.key]}")
                continue
            if group.tolerant and not run.done:
                results.unable[arm.key] = f"did not finish within {HEALTHY_LIMIT:.0f} s"
            results.runs.setdefault(arm.key, []).append(run)
            if not run.done and arm.peer is OURS and not group.tolerant:
                results.failures.append(f"{arm.key} round {round_} did not finish")
            progress.line(describe(arm, round_, rounds, run))


def estimate(chosen: Sequence[Group], sizes: Sizes, latency: bool) -> float:
    """Seconds the chosen groups should take, about: every run, plus starting their servers."""
    total = 0.0
    names: set[str] = set()
    for group in chosen:
        rounds = (group.rounds or sizes.rounds) + group.warm_up
        total += rounds * sum(arm.workload.seconds for arm in group.arms)
        runs = rounds * len(group.arms)
        servers = {arm.server for arm in group.arms} - {"websockets"}
        if group.fresh_server:
            total += runs * SERVER_START
        elif servers != names:
            total += len({(arm.server, arm.peer.key) for arm in group.arms}) * SERVER_START
        names = set() if group.fresh_server else servers
    if latency:
        total += sizes.latency_messages / 500 + 2 * SERVER_START + 5
    return total


def run_latency(results: Results, scratch: Path, cpus: tuple[set[int], set[int]], progress: Progress) -> None:
    """P7: chat between two uvicorn processes through one redis-server, and Redis's own PUBLISH beside it."""
    redis = RedisServer(scratch)
    redis.start()
    try:
        settings = {**POLICIES_ON, "ASGI_WS_BROKER": redis.url}
        with (
            run_server("uvicorn", scratch / "logs", settings, cpus=cpus[0]) as a,
            run_server("uvicorn", scratch / "logs", settings, cpus=cpus[0]) as b,
        ):
            for server in (a, b):
                server.wait_for_health(lambda document: document["broker"]["connected"], 30)
            room = "/ws/chat/latency"
            measure = cross_process.measure(a.url(room), b.url(room), results.sizes.latency_messages, 500)
            latencies = asyncio.run(measure)
        for name, values in latencies.items():
            results.latency[f"{name} p50 ms"] = cross_process.percentile(values, 0.5)
            results.latency[f"{name} p99 ms"] = cross_process.percentile(values, 0.99)
        progress.line(
            "cross-process chat through Redis, 500 messages/s: "
            f"p50 {results.latency['across Redis p50 ms']:.2f} ms, p99 {results.latency['across Redis p99 ms']:.2f} ms"
        )
        results.latency.update(redis_publish(redis.port, 20_000 if results.sizes.rounds > 1 else 5_000))
        progress.line(
            f"redis-benchmark PUBLISH, 1 client: p50 {results.latency['PUBLISH p50 ms']:.3f} ms, "
            f"p99 {results.latency['PUBLISH p99 ms']:.3f} ms, {results.latency['PUBLISH requests/s']:,.0f} requests/s"
        )
    finally:
        redis.stop()


def redis_publish(port: int, requests: int) -> dict[str, float]:
    """``redis-benchmark`` PUBLISH of 32 B from one client: Redis's own cost per publish."""
    argv = ["redis-benchmark", "-h", HOST, "-p", str(port), "-c", "1", "-n", str(requests), "--csv"]
    completed = subprocess.run([*argv, "PUBLISH", "bench", ECHO_PAYLOAD.decode()], capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"redis-benchmark failed: {completed.stderr.strip()}")
    header, values = (line.replace('"', "").split(",") for line in completed.stdout.strip().splitlines()[-2:])
    row = dict(zip(header, values, strict=True))
    return {
        "PUBLISH requests/s": float(row["rps"]),
        "PUBLISH p50 ms": float(row["p50_latency_ms"]),
        "PUBLISH p99 ms": float(row["p99_latency_ms"]),
    }


def measured_packages(results: Results) -> list[str]:
    """The distributions a run's versions are recorded from: :data:`MEASURED_PACKAGES` and its servers' packages."""
    servers = {arm.server for arm in results.arms.values()}
    return [*MEASURED_PACKAGES, *(name for server in SERVERS if server in servers for name in SERVERS[server].packages)]


def arms_by_key(sizes: Sizes) -> dict[str, Arm]:
    """Every arm a run of these sizes can have, by key, in the order its groups run (the feed's under every server)."""
    return {arm.key: arm for group in groups(sizes, BENCH_SERVERS) for arm in group.arms}


def load(out: Path = BENCH_DIR, *, conformance: Path | None = None, lock: Path = LOCK) -> report.Report:
    """The report of the run recorded in ``out/results.json``, rebuilt without running anything."""
    raw = json.loads((out / "results.json").read_text())
    recorded = record.Run.from_json(raw)
    results = report.results_from_json(raw, recorded.sizes, arms_by_key(recorded.sizes))
    return report.Report(results, recorded, out=out, conformance=conformance, lock=lock)


def render(out: Path, conformance: Path | None) -> list[Path]:
    """``--render``: the pages and the charts again from results.json; what was written."""
    in_bench = out.resolve() == BENCH_DIR
    document = load(out, conformance=conformance)
    pages = report.write_pages(document, out, README if in_bench else None, CHOOSING if in_bench else None)
    return [*pages, *report.write_charts(document, out)]


def selectable(sizes: Sizes) -> list[str]:
    """What --only takes: every workload's key, the groups' tags, and "latency" (P7)."""
    found = groups(sizes)
    keys = [arm.workload.key for group in found for arm in group.arms]
    return list(dict.fromkeys([*keys, *(group.tag for group in found if group.tag), "latency"]))


# The command


def add_what_to_run(parser: argparse.ArgumentParser) -> None:
    """The arguments that choose what a run measures, and how long."""
    parser.add_argument("--quick", action="store_true", help="every workload once and short (about 3 minutes)")
    parser.add_argument("--rounds", type=int, help="A/B alternations (default 5, 1 with --quick)")
    parser.add_argument(
        "--only",
        help=f"comma-separated workloads to run, of: {', '.join([*selectable(Sizes()), 'c100k', 'p11'])} "
        "(default: all but c100k and p11)",
    )
    parser.add_argument("--c100k-connections", type=int, default=100_000, help="c100k: connections (default 100000)")
    parser.add_argument("--c100k-workers", type=int, default=6, help="c100k: uvicorn processes (default 6)")
    parser.add_argument("--c100k-generators", type=int, default=6, help="c100k: load-generator processes (default 6)")
    parser.add_argument(
        "--c100k-broadcast-only",
        action="store_true",
        help="c100k: all but phase 1 (connect, broadcast, the floors), a rehearsal: figures printed, not kept",
    )
    parser.add_argument(
        "--servers",
        help="comma-separated servers to run under (default: every one; asgi-ws against its peers under "
        f"{', '.join(BENCH_SERVERS)}, idle and the stalled fan-out under uvicorn, the server comparison (p10) "
        "under all of asgi_ws.servers, the feed under uvicorn unless servers are named)",
    )


def add_where_it_goes(parser: argparse.ArgumentParser) -> None:
    """The arguments that say what the pages are written from, and where."""
    parser.add_argument(
        "--conformance",
        type=Path,
        default=REPO_ROOT / "docs" / "server-summary.json",
        help="the conformance summary put beside each server's speed (default: docs/server-summary.json, "
        "written by python -m conformance --publish; a conformance-report.json also works)",
    )
    parser.add_argument(
        "--out", type=Path, help="where RESULTS.md and results.png go (default bench/, not written with --quick)"
    )
    parser.add_argument(
        "--render",
        action="store_true",
        help="run nothing: rewrite RESULTS.md (and, in bench/, the README's summary and docs/choosing-a-server.md) "
        "from the results.json in --out, the conformance summary and uv.lock",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="asgi_ws against its peers, and under every server, side by side in one run (P1-P7, P9, P10).",
    )
    add_what_to_run(parser)
    add_where_it_goes(parser)
    return parser


def render_command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``--render``: refuse the arguments that would measure, then redraw from results.json."""
    measuring = [f"--{name}" for name in ("quick", "rounds", "only", "servers") if getattr(args, name)]
    if measuring:
        parser.error(f"--render runs nothing, so {', '.join(measuring)} would do nothing")
    for path in render(args.out or BENCH_DIR, args.conformance):
        print(f"wrote {path}")
    return 0


def parse_only(parser: argparse.ArgumentParser, only: str | None, sizes: Sizes) -> set[str] | None:
    """``--only`` as a set of workloads, tags and "latency" (None: all but c100k and p11); unknown names stop here."""
    if only is None:
        return None
    chosen, known = set(only.split(",")), {*selectable(sizes), "c100k", "p11"}
    if chosen - known:
        parser.error(
            f"--only: unknown workload(s) {', '.join(sorted(chosen - known))}; known: {', '.join(sorted(known))}"
        )
    return chosen


def parse_servers(parser: argparse.ArgumentParser, servers: str | None) -> set[str] | None:
    """``--servers`` as a set, the websockets peer's own server always with it (None: every server)."""
    if servers is None:
        return None
    chosen = set(servers.split(",")) | {"websockets"}
    if chosen - {*SERVERS, "websockets"}:
        parser.error(f"--servers: choose among {', '.join(SERVERS)}")
    return chosen


def run_c100k(args: argparse.Namespace, out: Path | None) -> None:
    """``--only c100k`` (P8): run it, print its figures, and keep them in ``out/c100k.json`` for the page."""
    config = c100k.C100k(args.c100k_connections, args.c100k_workers, args.c100k_generators)
    config.phase_one = not args.c100k_broadcast_only
    with tempfile.TemporaryDirectory(prefix="asgi-ws-c100k-") as scratch:
        c100k.run(config, Path(scratch))
    document = {**config.figures, "notes": config.notes}
    print(json.dumps(document, indent=2))
    if out is not None and config.phase_one:  # a rehearsal of the broadcast alone never replaces P8's figures
        out.mkdir(parents=True, exist_ok=True)
        (out / "c100k.json").write_text(json.dumps(document, indent=2) + "\n")
        print(f"wrote {out / 'c100k.json'}; `python -m bench --render` puts it into RESULTS.md")


def run_p11(servers: set[str] | None, out: Path | None) -> None:
    """``--only p11``: what a browser costs under each server (None: all), kept in ``out/p11.json`` for the page."""
    chosen = [name for name in SERVERS if (servers is None or name in servers) and SERVERS[name].installed()]
    print(f"p11: {len(chosen)} servers, deflate offered and not, about {len(chosen) * 0.7:.0f} minutes", flush=True)
    raise_fd_limit(deflate.CONNECTIONS * 2 + 1024)
    cpus = split_cpus()
    os.sched_setaffinity(0, cpus[1])
    with tempfile.TemporaryDirectory(prefix="asgi-ws-p11-") as scratch:
        figures = deflate.run(chosen, Path(scratch), cpus[0])
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / deflate.P11).write_text(json.dumps(figures, indent=2) + "\n")
        print(f"wrote {out / deflate.P11}; `python -m bench --render` puts it into RESULTS.md")


def choose_groups(sizes: Sizes, only: set[str] | None, servers: set[str] | None) -> list[Group]:
    """The groups ``--only`` and ``--servers`` leave; the server comparison keeps the servers named."""
    feed_servers = [name for name in BENCH_SERVERS if servers is not None and name in servers] or ["uvicorn"]
    chosen = []
    for group in groups(sizes, feed_servers):
        if only is not None and group.tag not in only and not any(arm.workload.key in only for arm in group.arms):
            continue
        if servers is not None and group.tolerant:  # the server comparison: the servers named, of its ten
            group = dataclasses.replace(group, arms=[arm for arm in group.arms if arm.server in servers])
        if group.arms and (servers is None or all(arm.server in servers for arm in group.arms)):
            chosen.append(group)
    return chosen


def run_chosen(chosen: Sequence[Group], sizes: Sizes, cpus: tuple[set[int], set[int]], latency: bool) -> Results:
    """Every chosen group in turn, then P7 if ``latency``, with one redis-server for the arms that want it."""
    measurements = sum(len(g.arms) * (g.rounds or sizes.rounds) for g in chosen) + (2 if latency else 0)
    print(
        f"bench: {len(chosen)} groups, {measurements} measurements, about "
        f"{estimate(chosen, sizes, latency) / 60:.1f} minutes; servers on CPU {sorted(cpus[0])}, "
        f"load generator on CPU {sorted(cpus[1])}",
        flush=True,
    )
    results, progress = Results(sizes), Progress(measurements)
    with tempfile.TemporaryDirectory(prefix="asgi-ws-bench-") as scratch, contextlib.ExitStack() as stack:
        redis_url = None
        if any(arm.peer.redis for group in chosen for arm in group.arms):
            redis = RedisServer(Path(scratch))
            redis.start()
            stack.callback(redis.stop)
            redis_url = redis.url
        pool = ServerPool(Path(scratch) / "logs", cpus[0], redis_url)
        try:
            for group in chosen:
                run_group(group, results, pool, progress)
        finally:
            pool.close()
        if latency:
            run_latency(results, Path(scratch), cpus, progress)
    return results


def write_report(document: report.Report, out: Path | None) -> None:
    """The goal table on stdout; the pages, the charts and results.json in ``out`` unless it is None."""
    print()
    print(document.goal_table())
    if out is not None:
        in_bench = out.resolve() == BENCH_DIR
        written = report.write(document, out, README if in_bench else None, CHOOSING if in_bench else None)
        print(f"\nwrote {', '.join(str(path) for path in written)}")


def problems(results: Results, chosen: Sequence[Group]) -> list[str]:
    """What makes the run fail: runs that did not finish, arms with no figure, figures of 0."""
    ran = [arm.key for group in chosen for arm in group.arms]
    missing = [key for key in ran if not results.runs.get(key) and key not in results.unable]
    zero = [key for key, runs in results.runs.items() if any(run.rate <= 0 for run in runs)]
    return results.failures + [f"{key}: no figure" for key in missing] + [f"{key}: a figure of 0" for key in zero]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.render:
        return render_command(parser, args)
    sizes = Sizes.quick() if args.quick else Sizes()
    if args.rounds:
        sizes = dataclasses.replace(sizes, rounds=args.rounds)
    out = args.out if args.out or args.quick else BENCH_DIR
    only = parse_only(parser, args.only, sizes)
    servers = parse_servers(parser, args.servers)  # an unknown name is an error, before anything runs
    for name, run_alone in (("c100k", partial(run_c100k, args, out)), ("p11", partial(run_p11, servers, out))):
        if only is not None and name in only:
            run_alone()
            only.discard(name)
            if not only:
                return 0
    raise_fd_limit(sizes.idle_connections * 2 + 4096)
    cpus = split_cpus()
    os.sched_setaffinity(0, cpus[1])
    chosen = choose_groups(sizes, only, servers)
    started = time.monotonic()
    results = run_chosen(chosen, sizes, cpus, latency=only is None or "latency" in only)
    command = " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])])
    stood_on = record.observe(command, time.monotonic() - started, sizes, cpus, measured_packages(results))
    write_report(report.Report(results, stood_on, out=out, conformance=args.conformance), out)
    for key, reason in results.unable.items():
        print(f"bench: {key} could not run: {reason}", file=sys.stderr)
    failed = problems(results, chosen)
    for problem in failed:
        print(f"bench: {problem}", file=sys.stderr)
    return 1 if failed else 0
