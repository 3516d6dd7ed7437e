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

SERVERS = ("uvicorn", "hypercorn", "granian")  # where asgi-ws is compared with its peers
# A ratio varies by about this much from one full run to the next on a quiet machine: a median
# closer than this to its goal is called "within noise" rather than met or missed.
NOISE = 0.03
BROKERS = {"asgi-ws": "memory", "asgi-ws-redis": "Redis"}  # the feed's peers: the app on each broker


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
    found = []
    for server in SERVERS:
        for key, what in (("echo-10", "echo, 10 conns"), ("echo-50", "echo, 50 conns"), ("json", "JSON echo")):
            found.append(
                Goal("P1", f"{what} vs FastAPI · {server}", f"{key}|{server}|asgi-ws", f"{key}|{server}|fastapi", 1.0)
            )
        found.append(
            Goal("P1", f"stream vs FastAPI · {server}", f"stream|{server}|asgi-ws", f"stream|{server}|fastapi", 1.0)
        )
        for n in (100, 1000):
            found.append(
                Goal(
                    "P1, P4",
                    f"fan-out to {n} vs FastAPI's loop · {server}",
                    f"fan-out-{n}|{server}|asgi-ws",
                    f"fan-out-{n}|{server}|fastapi",
                    1.0,
                )
            )
    for server in SERVERS:
        for n in (10, 50):
            found.append(
                Goal(
                    "P2",
                    f"echo, {n} conns, all policies vs raw floor · {server}",
                    f"echo-{n}|{server}|asgi-ws",
                    f"echo-{n}|{server}|floor",
                    0.95,
                )
            )
    for server in SERVERS:
        found.append(
            Goal("P3", f"stream vs raw floor · {server}", f"stream|{server}|asgi-ws", f"stream|{server}|floor", 0.95)
        )
    for n in (100, 1000):
        found.append(
            Goal(
                "P5",
                f"fan-out to {n}, one stalled vs all healthy · uvicorn",
                f"fan-out-{n}-stalled|uvicorn|asgi-ws",
                f"fan-out-{n}|uvicorn|asgi-ws",
                0.9,
            )
        )
    found.append(
        Goal(
            "P6",
            "memory per idle connection vs raw floor · uvicorn",
            "idle|uvicorn|asgi-ws",
            "idle|uvicorn|floor",
            1.10,
            at_most=True,
        )
    )
    for server in SERVERS:
        for peer, broker in BROKERS.items():
            found.append(
                Goal(
                    "P9",
                    f"feed vs chat, fan-out to 100 · {server}, {broker} broker",
                    f"feed|{server}|{peer}",
                    f"feed-chat|{server}|{peer}",
                    0.8,
                )
            )
    return found
