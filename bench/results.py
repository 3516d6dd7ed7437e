"""What a benchmark run is made of and what it yields: peers, workloads, arms, groups, and the results.

Plain data, shared by :mod:`bench.run`, which measures, and
:mod:`bench.report`, which writes the figures down; neither imports the other
for it.  The peers themselves and the workloads' settings are in
:mod:`bench.run`.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from conformance.launcher import RunningServer

from .loadgen import Measured

__all__ = ["Arm", "Group", "Measure", "Peer", "Results", "Sizes", "Workload", "arm_key", "figure_text"]

# What a workload does to a running server, and the figure it gives.
Measure = Callable[[RunningServer], Coroutine[Any, Any, Measured]]


@dataclass(frozen=True, slots=True)
class Peer:
    key: str  # short name, used in arm keys
    label: str  # as shown in the tables
    app: str | None  # "module:attr" of an ASGI app; None: the websockets server, which is no ASGI app
    settings: dict[str, str] = field(default_factory=dict)
    redis: bool = False  # the app runs on the Redis broker, a redis-server the run starts


@dataclass(frozen=True, slots=True)
class Sizes:
    """How long and how big each workload is; --quick shrinks them."""

    rounds: int = 5
    echo_seconds: float = 3.0
    stream_count: int = 10_000
    stream_repeats: int = 5
    fan_out_messages: dict[int, int] = field(default_factory=lambda: {100: 2000, 1000: 500})
    stall_timeout: float = 15.0
    idle_connections: int = 5000
    latency_messages: int = 2000
    replay_rounds: int = 20  # resumes timed per broker, alternated

    @classmethod
    def quick(cls) -> Sizes:
        return cls(  # CI's smoke run: each figure exists and is sane, none is a measurement worth quoting
            rounds=1,
            echo_seconds=0.3,
            stream_repeats=2,
            fan_out_messages={100: 200, 1000: 100},
            stall_timeout=3.0,
            idle_connections=1000,
            latency_messages=300,
            replay_rounds=2,
        )


@dataclass(frozen=True, slots=True)
class Workload:
    key: str  # e.g. "echo-10"
    title: str  # e.g. "echo, 10 connections"
    unit: str  # what Measured.rate counts per second
    path: str  # the endpoint it drives
    measure: Measure
    higher_is_better: bool = True
    seconds: float = 5.0  # about how long one run takes on this 2-CPU machine, for the estimate printed at the start


@dataclass(frozen=True, slots=True)
class Arm:
    peer: Peer
    server: str  # a key of asgi_ws.servers.SERVERS, or "websockets" for the websockets peer
    workload: Workload

    @property
    def key(self) -> str:
        return arm_key(self.workload.key, self.server, self.peer.key)


def arm_key(workload: str, server: str, peer: str = "asgi-ws") -> str:
    """The key an arm is filed under in the results, results.json and the goals: "echo-10|uvicorn|fastapi"."""
    return f"{workload}|{server}|{peer}"


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    arms: list[Arm]
    fresh_server: bool = False  # a new server process for every run of every arm
    rounds: int | None = None  # alternations, where the group has its own count (default: Sizes.rounds)
    warm_up: bool = False  # one run of every arm first, not recorded (servers kept between runs only)
    tag: str = ""  # a name that selects the group with --only, besides its workloads' keys
    # An arm whose server fails to start or to run the workload is recorded as unable, with the
    # reason, and the group goes on (the server comparison, where some servers may not cope);
    # elsewhere such a failure ends the run.
    tolerant: bool = False


@dataclass
class Results:
    sizes: Sizes
    runs: dict[str, list[Measured]] = field(default_factory=dict)  # arm key -> one Measured per round
    arms: dict[str, Arm] = field(default_factory=dict)
    latency: dict[str, float] = field(default_factory=dict)  # P7 figures, ms and requests/s
    failures: list[str] = field(default_factory=list)  # what did not complete
    unable: dict[str, str] = field(default_factory=dict)  # arm key -> why it could not run (tolerant groups)

    def median(self, key: str) -> float:
        return statistics.median(run.rate for run in self.runs[key])

    def client_cpu(self, key: str) -> float:
        """The load generator's CPU share over the arm's runs, median."""
        return statistics.median(run.client_cpu for run in self.runs[key])


def figure_text(value: float) -> str:
    """A figure as the tables show it: whole numbers with separators, one decimal below 100 (milliseconds)."""
    return f"{value:.1f}" if value < 100 else f"{value:,.0f}"
