"""The goals of contract §6 that a ratio is held against (P1-P6, P9), and the verdict on a ratio.

A :class:`Goal` names two arms by key, asgi-ws's and its peer's, and the
target of the ratio of their medians; :func:`goals` lists them in the order of
the goal table.  A ratio within :data:`NOISE` of its target is "within noise"
rather than met or missed.

This module does not compute a ratio from the runs (:class:`bench.report.Report`
does, for every page and chart), nor hold what is reported without a goal:
P7's latency, P8's 100,000 connections and P10's server comparison
(:mod:`bench.server_choice`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .results import arm_key

SERVERS = ("uvicorn", "hypercorn", "granian")  # where asgi-ws is compared with its peers
# A ratio varies by about this much from one full run to the next on a quiet machine: a median
# closer than this to its goal is called "within noise" rather than met or missed.
NOISE = 0.03
BROKERS = {"asgi-ws": "memory", "asgi-ws-redis": "Redis"}  # the feed's peers: the app on each broker
# The P1 workloads compared one to one, and how the goal table names them.
ECHO_AND_STREAM = (
    ("echo-10", "echo, 10 conns"),
    ("echo-50", "echo, 50 conns"),
    ("json", "JSON echo"),
    ("stream", "stream"),
)


@dataclass(frozen=True, slots=True)
class Goal:
    id: str  # P1 ... P9
    measure: str  # what is compared, in words
    numerator: str  # arm key
    denominator: str  # arm key
    target: float
    at_most: bool = False  # the ratio must be <= target (memory) rather than >=

    def met(self, ratio: float) -> bool:
        return ratio <= self.target if self.at_most else ratio >= self.target

    def verdict(self, ratio: float) -> str:
        if abs(ratio - self.target) <= NOISE:
            return "within noise"
        return "pass" if self.met(ratio) else "**miss**"

    @property
    def goal_text(self) -> str:
        return f"{'≤' if self.at_most else '≥'} {self.target:.2f}x"


def goals() -> list[Goal]:
    """Every goal, in the order of the goal table: against FastAPI, against the floor, then P5, P6 and P9."""
    return [*fastapi_goals(), *floor_goals(), *stall_goals(), MEMORY, *feed_goals()]


def versus(goal_id: str, measure: str, workload: str, server: str, peer: str, target: float) -> Goal:
    """asgi-ws's median over ``peer``'s, both doing ``workload`` under ``server``."""
    return Goal(goal_id, measure, arm_key(workload, server), arm_key(workload, server, peer), target)


def fastapi_goals() -> list[Goal]:
    """P1 and P4, per server: asgi-ws at least as fast as FastAPI written the usual way, fan-out included."""
    found = []
    for server in SERVERS:
        for key, what in ECHO_AND_STREAM:
            found.append(versus("P1", f"{what} vs FastAPI · {server}", key, server, "fastapi", 1.0))
        for n in (100, 1000):
            measure = f"fan-out to {n} vs FastAPI's loop · {server}"
            found.append(versus("P1, P4", measure, f"fan-out-{n}", server, "fastapi", 1.0))
    return found


def floor_goals() -> list[Goal]:
    """P2 and P3, per server: with every policy on, asgi-ws within 5 % of the raw ASGI floor."""
    echo = [
        versus("P2", f"echo, {n} conns, all policies vs raw floor · {server}", f"echo-{n}", server, "floor", 0.95)
        for server in SERVERS
        for n in (10, 50)
    ]
    stream = [versus("P3", f"stream vs raw floor · {server}", "stream", server, "floor", 0.95) for server in SERVERS]
    return [*echo, *stream]


def stall_goals() -> list[Goal]:
    """P5, under uvicorn: a client that never reads costs the others at most 10 %."""
    return [
        Goal(
            "P5",
            f"fan-out to {n}, one stalled vs all healthy · uvicorn",
            arm_key(f"fan-out-{n}-stalled", "uvicorn"),
            arm_key(f"fan-out-{n}", "uvicorn"),
            0.9,
        )
        for n in (100, 1000)
    ]


# P6, under uvicorn: an idle connection takes at most 10 % more memory than the floor's.
MEMORY = Goal(
    "P6",
    "memory per idle connection vs raw floor · uvicorn",
    arm_key("idle", "uvicorn"),
    arm_key("idle", "uvicorn", "floor"),
    1.10,
    at_most=True,
)


# The feed's fan-outs held against the chat's (P9), and how the goal table names them.
FEEDS = (("feed", "feed"), ("feed-ids", "feed with ids"))


def feed_goals() -> list[Goal]:
    """P9, per server and broker: the feed's fan-out, plain and published with ids, at least 80 % of the chat's."""
    return [
        Goal(
            "P9",
            f"{what} vs chat, fan-out to 100 · {server}, {broker} broker",
            arm_key(key, server, peer),
            arm_key("feed-chat", server, peer),
            0.8,
        )
        for server in SERVERS
        for peer, broker in BROKERS.items()
        for key, what in FEEDS
    ]
