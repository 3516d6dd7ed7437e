"""What a server holds, and whether a test's load left any of it behind.

- :func:`settled`: the app's connections, rooms, tasks and waiting pushes, and
  the server's RSS, once the server has wound every connection down.
- :func:`watched`: a ``with`` block of hostile load, with a well-behaved client
  served all through it and the peaks of memory, tasks, connections and
  waiting pushes sampled while it lasts.  On leaving, the app must be back
  where it started and the peak memory growth under the block's bound; one line
  starting ``hostile:`` says what was measured.

Memory is the whole server's: its process and every process of its group
(:meth:`conformance.launcher.RunningServer.rss`), so that a server that serves
from a worker process is measured too.  It cannot be expected to go back to the
operating system after a load, so what is bounded is the peak growth, and the
growth left afterwards is printed beside it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
from websockets.asyncio.client import ClientConnection, connect

from conformance.launcher import RunningServer

from .client import still_serves

__all__ = ["Footprint", "settled", "watched"]

PATIENCE = 120.0  # seconds for a server to settle; only a hung server takes that long
SERVER_TASKS_SLACK = 10  # the server's own tasks count as settled this close to their baseline
SERVER_STEADY = 2.0  # ... or once their count has not fallen for this many seconds
SERVER_SETTLE = 15.0  # seconds to wait for either at most
SAMPLE_EVERY = 0.25  # seconds between two round trips of the well-behaved client, and two samples
MIB = 1024 * 1024


async def settled(server: RunningServer, baseline: dict[str, float] | None = None) -> dict[str, float]:
    """Connections, rooms, app tasks, waiting pushes and RSS, once the server has wound every connection down.

    With a ``baseline``, also wait a while (SERVER_SETTLE seconds at most) for the server's own
    tasks to come back near it, or to stop falling, so that the memory figures compare steady
    states.  They are the server's business, so they are waited for and printed, not asserted on.
    Returns the last reading even if the app never settles within PATIENCE: the caller's
    assertions say what was left.

    "Stop falling" is for gunicorn 27's ASGI worker, which runs every connection, the /healthz and
    /metrics requests of this polling included, in a task of its own (``gunicorn/asgi/protocol.py``,
    ``ASGIProtocol.connection_made``), and whose task count stays above its idle baseline while
    it is polled (measured: 5 idle, 6-9 with a request a second), so that it never came within
    SERVER_TASKS_SLACK and every call waited the whole SERVER_SETTLE.
    """
    state: dict[str, float] = {}
    server_deadline = anyio.current_time() + SERVER_SETTLE
    fewest_tasks, fewest_since = float("inf"), anyio.current_time()
    with anyio.move_on_after(PATIENCE):
        while True:
            health = await anyio.to_thread.run_sync(server.health)
            metrics = await anyio.to_thread.run_sync(server.metrics)
            state = {
                "connections": health["connections"],
                "rooms": health["rooms"],
                "tasks": metrics.value("asgi_ws_app_tasks"),
                "all tasks": metrics.value("asgi_ws_event_loop_tasks"),
                "waiting": metrics.value("asgi_ws_pushes_waiting"),
                "rss": await anyio.to_thread.run_sync(server.rss),
            }
            now = anyio.current_time()
            if state["all tasks"] < fewest_tasks:
                fewest_tasks, fewest_since = state["all tasks"], now
            server_settled = (
                baseline is None
                or state["all tasks"] <= baseline["all tasks"] + SERVER_TASKS_SLACK
                or now - fewest_since > SERVER_STEADY
                or now > server_deadline
            )
            if (
                state["connections"] == 0
                and state["rooms"] == 0
                and state["waiting"] == 0
                and metrics.total("asgi_ws_connections") == 0
                and server_settled
            ):
                # Give tasks that are finishing (a close handshake's last steps) a moment, then read again.
                await anyio.sleep(1.0)
                again = await anyio.to_thread.run_sync(server.metrics)
                if again.value("asgi_ws_app_tasks") == state["tasks"]:
                    state["rss"] = await anyio.to_thread.run_sync(server.rss)
                    return state
            await anyio.sleep(0.2)
    return state


@dataclass
class Footprint:
    """What a hostile load did to the server: the state before and after, and the peaks in between."""

    scenario: str
    rss_bound: int  # bytes the server's RSS may grow by at its peak
    baseline: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)
    peak: dict[str, float] = field(default_factory=dict)  # rss, tasks, connections, waiting
    round_trips: int = 0  # answers the well-behaved client got during the load

    def sample(self, state: dict[str, float]) -> None:
        for key, value in state.items():
            self.peak[key] = max(self.peak.get(key, value), value)

    def summary(self, server: str) -> str:
        base, after, peak = self.baseline, self.after, self.peak
        return (
            f"hostile: {self.scenario} under {server}: "
            f"RSS +{(peak['rss'] - base['rss']) / MIB:.1f} MiB (bound {self.rss_bound / MIB:.0f} MiB), "
            f"+{(after['rss'] - base['rss']) / MIB:.1f} MiB after, "
            f"app tasks {base['tasks']:.0f} -> {after['tasks']:.0f} (peak {peak['tasks']:.0f}), "
            f"connections {base['connections']:.0f} -> {after['connections']:.0f} (peak {peak['connections']:.0f}), "
            f"pushes waiting {base['waiting']:.0f} -> {after['waiting']:.0f} (peak {peak['waiting']:.0f}), "
            f"healthy round trips {self.round_trips}"
        )


@asynccontextmanager
async def watched(server: RunningServer, scenario: str, rss_bound: int) -> AsyncIterator[Footprint]:
    """Run the block's load while a well-behaved echo client is served; then check that nothing is left.

    The well-behaved client's every round trip must be answered during the load
    and once after it.  Afterwards the app's connections, rooms, tasks and
    waiting pushes are back at their baseline, and the peak RSS growth is under
    ``rss_bound``.
    """
    footprint = Footprint(scenario, rss_bound)
    footprint.baseline = await settled(server)
    footprint.sample(footprint.baseline)
    async with connect(server.url("/echo"), compression=None) as healthy, anyio.create_task_group() as tasks:
        tasks.start_soon(_keep_serving, server, healthy, footprint)
        yield footprint
        tasks.cancel_scope.cancel()
    await still_serves(server)
    footprint.after = await settled(server, footprint.baseline)
    footprint.sample({"rss": footprint.after["rss"]})
    print(f"\n{footprint.summary(server.name)}")
    base, after = footprint.baseline, footprint.after
    for key in ("connections", "rooms", "tasks", "waiting"):
        assert after[key] == base[key], f"{scenario}: {key} {base[key]} before, {after[key]} after"
    assert footprint.round_trips > 0, f"{scenario}: the well-behaved client got no answer during the load"
    growth = footprint.peak["rss"] - base["rss"]
    assert growth < rss_bound, f"{scenario}: RSS grew by {growth / MIB:.1f} MiB, bound {rss_bound / MIB:.0f} MiB"


async def _keep_serving(server: RunningServer, healthy: ClientConnection, footprint: Footprint) -> None:
    """Echo round trips every SAMPLE_EVERY seconds, each answered, and a sample of the server's state."""
    while True:
        text = f"healthy {footprint.round_trips}"
        await healthy.send(text)
        with anyio.fail_after(PATIENCE):
            assert await healthy.recv() == text
        footprint.round_trips += 1
        health = await anyio.to_thread.run_sync(server.health)
        metrics = await anyio.to_thread.run_sync(server.metrics)
        footprint.sample(
            {
                "connections": health["connections"],
                "tasks": metrics.value("asgi_ws_app_tasks"),
                "waiting": metrics.value("asgi_ws_pushes_waiting"),
                "rss": await anyio.to_thread.run_sync(server.rss),
            }
        )
        await anyio.sleep(SAMPLE_EVERY)
