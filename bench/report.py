"""What ``python -m bench`` writes: the goal table (contract §6), every figure, the feed's, and a chart.

``bench/RESULTS.md`` is generated, except for the part between the
``ANALYSIS`` markers, which is written by hand (what a profile showed, what was
tried) and carried over from the previous file on every run.  So is the
README's summary of the results, between its ``bench-summary`` markers.

Everything a page says comes from ``bench/results.json``: the runs, and what
the run stood on (:class:`Run`: package versions, Python, redis-server, the
machine, the CPU pinning, the sizes), which :func:`observe` reads from the
environment once, when the run ends, and nothing reads again.  So
``python -m bench --render`` rewrites the pages later, from the JSON, and gets
the same text; the one thing it compares with the present is ``uv.lock``, so
that a page measured with versions the lock no longer pins says so (contract §12).

This module does not run anything or know the arms' definitions: :mod:`bench.run`
measures, and rebuilds the arms when it renders from the JSON.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import re
import shutil
import statistics
import subprocess
import textwrap
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.published import replace_block
from conformance.versions import LOCK, disagreements, installed, locked

from .loadgen import Measured
from .results import Arm, Results, Sizes, figure_text

ANALYSIS_START = "<!-- ANALYSIS: written by hand, kept across runs -->"
ANALYSIS_END = "<!-- /ANALYSIS -->"
README_BLOCK = "bench-summary"  # the README's summary of the results, rewritten with RESULTS.md
SERVERS = ("uvicorn", "hypercorn", "granian")  # where asgi-ws is compared with its peers
# A ratio varies by about this much from one full run to the next on a quiet machine: a median
# closer than this to its goal is called "within noise" rather than met or missed.
NOISE = 0.03
SATURATED = 0.9  # the load generator's CPU share from which a figure may be its limit, not the server's
BROKERS = {"asgi-ws": "memory", "asgi-ws-redis": "Redis"}  # the feed's peers: the app on each broker
P10 = ("p10-echo-10", "p10-stream", "p10-fan-out-100")  # the server comparison's workloads, as its columns
C100K = "c100k.json"  # P8's figures, written by ``python -m bench --only c100k`` into the same directory


# What a run stood on


@dataclass(frozen=True, slots=True)
class Run:
    """How a run was made and what it stood on, as it recorded them in results.json.

    Every field is read once, by :func:`observe` at the end of the run (or transcribed
    by hand for a run that did not record it), and only ever read back after that.
    """

    command: str  # the command line, e.g. "python -m bench --only p10"
    date: str  # the day it ran, YYYY-MM-DD
    seconds: float  # how long it took
    sizes: Sizes  # its rounds, and how long and big each workload was
    server_cpus: list[int]  # the CPUs the servers were pinned to
    client_cpus: list[int]  # the CPUs the load generator was pinned to
    cpu_model: str  # /proc/cpuinfo's model name
    cpu_count: int  # the CPUs the run had, both sets together
    system: str  # the kernel, e.g. "Linux 6.18.44-fc-v657"
    python: str  # the interpreter's version, e.g. "3.11.7"
    redis_server: str  # redis-server --version's v=, "?" where it could not say
    versions: dict[str, str]  # distribution -> version: what was measured and everything it requires
    transcribed: str = ""  # for a record written after the run, by hand: from what

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "command": self.command,
            "date": self.date,
            "seconds": self.seconds,
            "sizes": dataclasses.asdict(self.sizes),
            "pinning": {"servers": self.server_cpus, "load generator": self.client_cpus},
            "machine": {"cpu model": self.cpu_model, "cpus": self.cpu_count, "system": self.system},
            "python": self.python,
            "redis-server": self.redis_server,
            "versions": self.versions,
        }
        if self.transcribed:
            found["transcribed"] = self.transcribed
        return found

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Run:
        sizes = dict(raw["sizes"])
        if "fan_out_messages" in sizes:  # JSON made its integer keys strings
            sizes["fan_out_messages"] = {int(key): value for key, value in sizes["fan_out_messages"].items()}
        machine = raw["machine"]
        return cls(
            command=raw["command"],
            date=raw["date"],
            seconds=raw["seconds"],
            # A size the record does not name is the default of a full run: the run of 2026-11-29,
            # recorded afterwards, names its rounds only.
            sizes=Sizes(**sizes),
            server_cpus=list(raw["pinning"]["servers"]),
            client_cpus=list(raw["pinning"]["load generator"]),
            cpu_model=machine["cpu model"],
            cpu_count=machine["cpus"],
            system=machine["system"],
            python=raw["python"],
            redis_server=raw["redis-server"],
            versions=dict(raw["versions"]),
            transcribed=raw.get("transcribed", ""),
        )


def observe(command: str, seconds: float, sizes: Sizes, cpus: tuple[set[int], set[int]], roots: Iterable[str]) -> Run:
    """What this run stood on, read from this machine and this environment: the one place that reads them.

    ``roots`` are the distributions measured (the servers, the peers, the load generator,
    the app); their versions are recorded with those of everything they require.
    """
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.MULTILINE)
        model = found.group(1) if found else model
    redis_version = "?"
    if shutil.which("redis-server"):
        words = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()
        redis_version = next((word.split("=")[1] for word in words if word.startswith("v=")), "?")
    return Run(
        command=command,
        date=time.strftime("%Y-%m-%d"),
        seconds=seconds,
        sizes=sizes,
        server_cpus=sorted(cpus[0]),
        client_cpus=sorted(cpus[1]),
        cpu_model=model,
        cpu_count=len(cpus[0] | cpus[1]),
        system=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        redis_server=redis_version,
        versions=installed(roots),
    )


def lock_text(versions: Mapping[str, str], lock: Path) -> str:
    """Whether the recorded versions are the ones ``lock`` pins, in a sentence; each that is not, with both."""
    if not versions:
        return "This run recorded no package versions to compare with uv.lock."
    if not lock.exists():
        return f"No uv.lock at `{lock.name}` to compare these versions with."
    differ = disagreements(versions, locked(lock))
    if not differ:
        return "Every version above is the one uv.lock pins."
    return (
        "Measured with versions that uv.lock no longer pins: "
        f"{', '.join(f'{name} {found}' for name, found in differ.items())}; "
        "the next full run (`python -m bench`) from the lock replaces these figures."
    )


# The goals


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


@dataclass(frozen=True, slots=True)
class Conformance:
    """One server's line of the committed conformance report: what a client sees, and Autobahn."""

    identical: int  # scenarios whose client-visible behaviour is the reference's
    scenarios: int
    autobahn_ok: int
    autobahn_failed: int
    autobahn_cases: int

    @property
    def identical_text(self) -> str:
        return f"{self.identical} of {self.scenarios}"

    @property
    def autobahn_text(self) -> str:
        return f"{self.autobahn_ok}/{self.autobahn_cases} OK, {self.autobahn_failed} failed"

    @property
    def rank(self) -> tuple[int, int]:
        """Higher is more conformant: fewer client-visible differences first, then fewer Autobahn failures."""
        return (self.identical - self.scenarios, -self.autobahn_failed)


def read_conformance(path: Path) -> dict[str, Conformance]:
    """Per server, the conformance report's headline and Autobahn summary; nothing if there is no report."""
    if not path.exists():
        return {}
    document = json.loads(path.read_text())
    autobahn = document.get("autobahn", {}).get("servers", {})
    found = {}
    for server, headline in document.get("headline", {}).items():
        summary = autobahn.get(server, {}).get("summary", {})
        found[server] = Conformance(
            headline["identical"],
            headline["scenarios"],
            summary.get("OK", 0),
            summary.get("FAILED", 0),
            sum(summary.values()),
        )
    return found


@dataclass(frozen=True, slots=True)
class ServerSpeed:
    """One server of the comparison: its figure per workload (None where it could not run), and why not."""

    server: str
    figures: dict[str, list[float] | None]  # workload key -> the rates of its rounds
    unable: dict[str, str]  # workload key -> the reason it could not run
    client_cpu: float  # the load generator's CPU, the highest median of the server's arms
    conformance: Conformance | None

    def median(self, key: str) -> float | None:
        rates = self.figures.get(key)
        return statistics.median(rates) if rates else None


@dataclass(frozen=True, slots=True)
class Ranking:
    """P10's choice: the pick, the fastest, and every complete server's speed relative to the pick."""

    pick: ServerSpeed
    fastest: ServerSpeed
    relative: dict[str, float]  # server -> its speed over the pick's, for the servers that ran everything


def rank_servers(speeds: list[ServerSpeed]) -> Ranking | None:
    """Which server to choose, from the figures and the conformance report; None if no server ran everything.

    A server's speed is the geometric mean of its three figures, each divided by the best
    server's; the pick is the fastest of the servers that ran everything and are the most
    conformant (most scenarios identical to the reference, then fewest Autobahn failures).
    """
    complete = [speed for speed in speeds if all(speed.median(key) for key in P10)]
    if not complete:
        return None
    best = {key: max(speed.median(key) or 0.0 for speed in complete) for key in P10}

    def score(speed: ServerSpeed) -> float:
        return statistics.geometric_mean([(speed.median(key) or 0.0) / best[key] for key in P10])

    def rank(speed: ServerSpeed) -> tuple[int, int]:
        return speed.conformance.rank if speed.conformance else (-(10**6), 0)

    most = max(rank(speed) for speed in complete)
    pick = max((speed for speed in complete if rank(speed) == most), key=score)
    fastest = max(complete, key=score)
    return Ranking(pick, fastest, {speed.server: score(speed) / score(pick) for speed in complete})


def caveats(conformance: Conformance | None, *, nouns: bool = False) -> list[str]:
    """How a server's conformance falls short of the reference's, in words: nothing if it does not.

    The P10 table's cells are terse ("differs from the reference in 3"); with ``nouns``, a
    sentence's ("differs from the reference in 3 scenarios").
    """
    differs = []
    if conformance and conformance.identical < conformance.scenarios:
        count = conformance.scenarios - conformance.identical
        noun = f" scenario{'s' if count > 1 else ''}" if nouns else ""
        differs.append(f"differs from the reference in {count}{noun}")
    if conformance and conformance.autobahn_failed:
        count = conformance.autobahn_failed
        noun = f" case{'s' if count > 1 else ''}" if nouns else ""
        differs.append(f"{count} Autobahn{noun} failed")
    return differs


class Report:
    """One run's pages: its results and what it stood on, beside the conformance report, P8's figures and the lock."""

    def __init__(
        self,
        results: Results,
        run: Run,
        *,
        out: Path | None = None,
        conformance: Path | None = None,
        lock: Path = LOCK,
    ) -> None:
        self.results = results
        self.run = run  # what the run recorded about itself; nothing here reads the live environment
        c100k = out / C100K if out is not None else None
        self.c100k: dict[str, float] = json.loads(c100k.read_text()) if c100k and c100k.exists() else {}
        self.conformance_path = conformance
        self.conformance = read_conformance(conformance) if conformance is not None else {}
        self.lock = lock  # the uv.lock the recorded versions are compared with

    @property
    def date(self) -> str:
        return self.run.date

    def measured(self, *ids: str) -> list[tuple[Goal, float]]:
        """The goals of ``ids`` that this run measured, each with its ratio, in the goal table's order."""
        return [(goal, ratio) for goal in goals() if goal.id in ids and (ratio := self.ratio(goal)) is not None]

    def ratio(self, goal: Goal) -> float | None:
        runs = self.results.runs
        if goal.numerator not in runs or goal.denominator not in runs:
            return None
        return self.results.median(goal.numerator) / self.results.median(goal.denominator)

    def round_ratios(self, goal: Goal) -> list[float]:
        """The goal's ratio in each round: the two arms ran one after the other within a round."""
        runs = self.results.runs
        pairs = zip(runs.get(goal.numerator, []), runs.get(goal.denominator, []), strict=False)
        return [a.rate / b.rate for a, b in pairs if b.rate]

    def client_cpu(self, *keys: str) -> float:
        """The load generator's CPU share: the highest median of the arms ``keys``."""
        return max((self.results.client_cpu(key) for key in keys if key in self.results.runs), default=0.0)

    def goal_table(self) -> str:
        lines = [
            "| goal | measure | target | ratio, median | min - max per round | load generator CPU | verdict |",
            "|---|---|---:|---:|---:|---:|---|",
        ]
        for goal in goals():
            ratio = self.ratio(goal)
            if ratio is None:
                continue
            spread = self.round_ratios(goal)
            cpu = self.client_cpu(goal.numerator, goal.denominator)
            verdict = goal.verdict(ratio)
            if cpu >= SATURATED:
                verdict += "; limited by the load generator"
            # Three decimals, so that a ratio just under its goal does not print as the goal.
            lines.append(
                f"| {goal.id} | {goal.measure} | {goal.goal_text} | {ratio:.3f}x "
                f"| {f'{min(spread):.2f} - {max(spread):.2f}' if spread else '-'} | {cpu:.0%} | {verdict} |"
            )
        for arm, runs in self.replays():
            times = [run.rate for run in runs]
            lines.append(
                f"| P9 | {arm.workload.title} · {arm.server}, {BROKERS[arm.peer.key]} broker "
                f"| reported | {statistics.median(times):.1f} ms | {min(times):.1f} - {max(times):.1f} ms "
                f"| {self.client_cpu(arm.key):.0%} | reported |"
            )
        latency = self.results.latency
        if latency:
            lines.append(
                f"| P7 | cross-process chat through Redis, p99 (p50); Redis PUBLISH alone p99 "
                f"{latency['PUBLISH p99 ms']:.3f} ms | reported | {latency['across Redis p99 ms']:.2f} ms "
                f"({latency['across Redis p50 ms']:.2f} ms) | - | - | reported |"
            )
        lines.append(f"| P8 | 100,000 connections, uvicorn workers through Redis | reported | {self.c100k_text()} |")
        if self.speeds():
            lines.append(
                f"| P10 | echo, stream and fan-out under {len(self.speeds())} server configurations "
                "| published | see the server comparison below | | | reported |"
            )
        return "\n".join(lines)

    def c100k_text(self) -> str:
        """P8's figures in one table cell (and the three after it), or how to get them."""
        figures = self.c100k
        if not figures:
            return "not run: `python -m bench --only c100k` | | | not run"
        return (
            f"{figures.get('all: connected', 0):,.0f} connected in {figures.get('all: accept_seconds', 0):.0f} s, "
            f"{figures.get('all: rss_per_connection', 0) / 1024:.1f} KiB RSS each; a broadcast reached "
            f"{figures.get('all: broadcast_reached', 0):,.0f} in {figures.get('all: broadcast_seconds', 0):.2f} s; "
            f"healthz p99 {figures.get('all: healthz_p99_ms', 0):.0f} ms; one process held "
            f"{figures.get('one process: connections held', 0):,.0f} "
            f"| | {figures.get('all: load_generator_cpu', 0):.0%} | reported"
        )

    def replays(self) -> list[tuple[Arm, list[Measured]]]:
        """The feed's resume arms and their runs, in the order they ran."""
        arms = self.results.arms
        return [(arms[key], runs) for key, runs in self.results.runs.items() if arms[key].workload.key == "feed-replay"]

    def speeds(self) -> list[ServerSpeed]:
        """The server comparison (P10): one entry per server it ran under, in the order of the run."""
        servers: dict[str, ServerSpeed] = {}
        for key, arm in self.results.arms.items():
            if arm.workload.key not in P10:
                continue
            speed = servers.setdefault(
                arm.server, ServerSpeed(arm.server, {}, {}, 0.0, self.conformance.get(arm.server))
            )
            runs = self.results.runs.get(key, [])
            speed.figures[arm.workload.key] = [run.rate for run in runs] or None
            if key in self.results.unable:
                speed.unable[arm.workload.key] = self.results.unable[key]
        return [
            dataclasses.replace(speed, client_cpu=self.client_cpu(*(f"{key}|{speed.server}|asgi-ws" for key in P10)))
            for speed in servers.values()
        ]

    def recommendations(self, speeds: list[ServerSpeed]) -> dict[str, str]:
        """A line per server, from :func:`rank_servers`: which one to choose, and why not the others."""
        ranking = rank_servers(speeds)
        if ranking is None:
            return {}
        found = {}
        for speed in speeds:
            if speed.server not in ranking.relative:
                reasons = "; ".join(f"{key.removeprefix('p10-')}: {why}" for key, why in speed.unable.items())
                found[speed.server] = f"could not run everything ({reasons or 'no figure'})"
                continue
            differs = caveats(speed.conformance)
            caveat = f" ({', '.join(differs)})" if differs else ""
            relative = ranking.relative[speed.server]
            if speed is ranking.pick:
                kind = "conformant" if speed.conformance else "no conformance report:"
                found[speed.server] = f"**choose**: the fastest of the most {kind} servers{caveat}"
            elif speed is ranking.fastest:
                found[speed.server] = f"fastest overall, {relative:.2f}x the pick{caveat}"
            else:
                found[speed.server] = f"{relative:.2f}x the pick's speed{caveat}"
        return found

    def p10_table(self) -> str:
        """P10: one row per server, its three figures, its conformance summary, and a recommendation."""
        speeds = self.speeds()
        if not speeds:
            return ""
        advice = self.recommendations(speeds)
        lines = [
            "| server | echo, round trips/s: median (min - max) | stream, messages/s | fan-out to 100, deliveries/s "
            "| load generator CPU | client-visible identical | Autobahn | recommendation |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for speed in speeds:
            cells = []
            for key in P10:
                rates = speed.figures.get(key)
                if key in speed.unable and not rates:
                    cells.append(f"could not run: {speed.unable[key]}")
                elif rates:
                    cells.append(
                        f"{figure_text(statistics.median(rates))} "
                        f"({figure_text(min(rates))} - {figure_text(max(rates))})"
                    )
                else:
                    cells.append("not run")
            cpu = f"{speed.client_cpu:.0%}" + (
                " (limited by the load generator)" if speed.client_cpu >= SATURATED else ""
            )
            conformance = speed.conformance
            lines.append(
                f"| {speed.server} | {' | '.join(cells)} | {cpu} "
                f"| {conformance.identical_text if conformance else 'no report'} "
                f"| {conformance.autobahn_text if conformance else 'no report'} | {advice.get(speed.server, '')} |"
            )
        return "\n".join(lines)

    def conformance_source(self) -> str:
        """Where the conformance columns come from, in a sentence."""
        path = self.conformance_path
        if path is None or not self.conformance:
            return (
                f"No conformance report was found{f' at `{path.name}`' if path else ''}: "
                "`python -m conformance --out .` writes it, and the next bench run reads it."
            )
        document = json.loads(path.read_text())
        # The published summary does not repeat its command; a full report names its own.
        command, ran_on = document.get("command", "python -m conformance --publish"), document.get("ran_on", "?")
        return f"The conformance columns are from `{path.name}` (`{command}`, {ran_on})."

    def feed_table(self) -> str:
        """P9 per server and broker: chat and feed deliveries/s, their ratio, and the resume time."""
        lines = [
            "| server | broker | chat deliveries/s | feed deliveries/s | feed ÷ chat (min - max per round) "
            "| resume of 1,000: median (min - max) | load generator CPU, highest median |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        runs, arms = self.results.runs, self.results.arms
        for goal in goals():
            ratio = self.ratio(goal) if goal.id == "P9" else None
            if ratio is None:
                continue
            arm = arms[goal.numerator]
            resume = runs.get(f"feed-replay|{arm.server}|{arm.peer.key}", [])
            keys = [goal.denominator, goal.numerator, f"feed-replay|{arm.server}|{arm.peer.key}"]
            cpu = max(statistics.median(run.client_cpu for run in runs[key]) for key in keys if key in runs)
            spread = self.round_ratios(goal)
            times = [run.rate for run in resume]
            resume_text = (
                f"{statistics.median(times):.1f} ms ({min(times):.1f} - {max(times):.1f})" if times else "not run"
            )
            lines.append(
                f"| {arm.server} | {BROKERS[arm.peer.key]} | {self.results.median(goal.denominator):,.0f} "
                f"| {self.results.median(goal.numerator):,.0f} "
                f"| {ratio:.3f}x ({min(spread):.2f} - {max(spread):.2f}) | {resume_text} | {cpu:.0%} |"
            )
        return "\n".join(lines) if len(lines) > 2 else ""

    def figures_table(self) -> str:
        lines = [
            "| workload | server | peer | median | min - max | server CPU | load generator CPU "
            "| server memory growth |",
            "|---|---|---|---:|---:|---:|---:|---:|",
        ]
        for key, runs in self.results.runs.items():
            arm = self.results.arms[key]
            rates = [run.rate for run in runs]
            unit = arm.workload.unit
            cpu = statistics.median(run.client_cpu for run in runs)
            server_cpu = statistics.median(run.server_cpu for run in runs)
            growth = statistics.median(run.server_growth for run in runs)
            unfinished = sum(not run.done for run in runs)
            note = f" ({unfinished}/{len(runs)} stopped at the time limit)" if unfinished else ""
            growth_text = f"{growth / 2**20:.1f} MiB" if unit == "deliveries/s" else ""
            lines.append(
                f"| {arm.workload.title} | {arm.server} | {arm.peer.label} | "
                f"{figure_text(statistics.median(rates))} {unit}{note} | "
                f"{figure_text(min(rates))} - {figure_text(max(rates))} | "
                f"{f'{server_cpu:.0%}' if server_cpu else '-'} | {f'{cpu:.0%}' if cpu else '-'} | {growth_text} |"
            )
        for key, reason in self.results.unable.items():
            if not self.results.runs.get(key):
                arm = self.results.arms[key]
                lines.append(
                    f"| {arm.workload.title} | {arm.server} | {arm.peer.label} | could not run: {reason} | | | | |"
                )
        return "\n".join(lines)

    def latency_table(self) -> str:
        latency = self.results.latency
        if not latency:
            return ""
        return "\n".join(
            [
                "| path | p50 | p99 |",
                "|---|---:|---:|",
                f"| chat, same process (hub → outbox → socket) | {latency['same process p50 ms']:.2f} ms | "
                f"{latency['same process p99 ms']:.2f} ms |",
                f"| chat, across Redis (uvicorn → Redis → uvicorn) | {latency['across Redis p50 ms']:.2f} ms | "
                f"{latency['across Redis p99 ms']:.2f} ms |",
                f"| redis-benchmark PUBLISH 32 B, 1 client ({latency['PUBLISH requests/s']:,.0f} requests/s) | "
                f"{latency['PUBLISH p50 ms']:.3f} ms | {latency['PUBLISH p99 ms']:.3f} ms |",
            ]
        )

    def machine(self) -> str:
        """The page's header: the machine, the pinning, the versions (against uv.lock), the sizes and the command."""
        run = self.run
        versions = [f"{name} {version}" for name, version in run.versions.items()]
        return (
            f"- machine: {run.cpu_model}, {run.cpu_count} CPUs, {run.system}\n"
            f"- pinning: servers on CPU {run.server_cpus}, load generator on CPU {run.client_cpus}\n"
            f"- Python {'; '.join([run.python, *([', '.join(versions)] if versions else [])])}; "
            f"redis-server {run.redis_server}\n"
            f"- {lock_text(run.versions, self.lock)}\n"
            f"- {run.sizes.rounds} round{'s' if run.sizes.rounds != 1 else ''}, alternated (A B C, then C B A); "
            "figures are medians\n"
            f"- `{run.command}`, on {run.date}, {run.seconds / 60:.1f} minutes"
        )


def markdown(document: Report, analysis: str) -> str:
    return f"""# Benchmark results

asgi_ws against the peers users would pick instead, side by side in one run (contract §6).
Generated by `python -m bench` (see `bench/run.py` for how); the analysis section is written by
hand.

{document.machine()}

## Goals

{GOALS_EXPLAINED}

{document.goal_table()}

![ratios to goal](results.png)

## P10: which server to choose for WebSockets

{P10_EXPLAINED}

{document.conformance_source()}

{document.p10_table() or "The server comparison was not run: `python -m bench --only p10`."}

{"![asgi-ws under every server](p10.png)" if document.speeds() else ""}

## Every figure

{document.figures_table()}

## P7: cross-process chat through Redis, 500 messages/s

{document.latency_table()}

## P9: the feed against plain chat, and a resume of 1,000 missed messages

{FEED_EXPLAINED}

{document.feed_table()}

{ANALYSIS_START}
{analysis.strip()}
{ANALYSIS_END}
"""


GOALS_EXPLAINED = f"""\
Each ratio is asgi-ws's median over the peer's (medians of the alternated rounds); beside it, the
lowest and highest ratio of the two arms within one round, and the load generator's CPU share (the
higher median of the two arms). A median within ±{NOISE} of its goal is "within noise": full runs
on a quiet machine move that much. At {SATURATED:.0%} load-generator CPU and above, the figure may be
the client's limit rather than the server's, and says so."""

P10_EXPLAINED = """\
asgi-ws alone, with every policy on, under each server configuration of `asgi_ws/servers.py`, the
servers alternated within each workload like the peers of the other groups (echo of 32 B on 10
connections; a stream of 10,000 messages; chat fan-out to 100 members, 1 KiB messages, 32 in
flight). Each server runs with one worker, pinned to the same CPU. The conformance columns: the
scenarios in which what a client sees under that server is identical to the reference (uvicorn with
websockets' sans-I/O protocol), and the Autobahn cases passed (OK) and failed. The recommendation:
a server's speed is the geometric mean of its three figures over the best server's; the pick is the
fastest of the servers that ran everything and differ from the reference in the fewest scenarios,
then fail the fewest Autobahn cases."""

FEED_EXPLAINED = """\
The same fan-out as P4 (100 members and the publisher in one room, 1 KiB messages, 32 in flight) on
`/ws/feed/bench` and on `/ws/chat/bench`, one server, alternated round by round; once with the memory
broker and once with both arms on Redis. A feed message reaches its members as
`{"offset": n, "epoch": "e", "data": t}`, numbered by the broker: on Redis it goes to Redis and comes
back through pub/sub before anyone gets it, where a chat message is delivered locally at once. The
resume: a room with more than 1,000 messages of 1 KiB, a client connecting with
`?since=EPOCH:OFFSET` 1,000 behind; the time from the start of its connection to the last replayed
message, each resume a round. A ratio within ±0.03 of the goal is within the noise of this machine."""


def kept_analysis(path: Path) -> str:
    if not path.exists():
        return "## Analysis\n\n(none yet)"
    text = path.read_text()
    start, end = text.find(ANALYSIS_START), text.find(ANALYSIS_END)
    if start < 0 or end < 0:
        return "## Analysis\n\n(none yet)"
    return text[start + len(ANALYSIS_START) : end]


# The README's summary


def readme_summary(document: Report) -> str:
    """The README's summary of a run: a bullet per family of goals, each figure as RESULTS.md prints it."""
    bullets = (
        _against_fastapi(document),
        _against_the_floor(document),
        _latency(document),
        _many_connections(document),
        _feed(document),
        _which_server(document),
    )
    return "\n".join(
        textwrap.fill(text, 100, initial_indent="- ", subsequent_indent="  ", break_on_hyphens=False)
        for text in bullets
        if text
    )


# The summary writes a ratio with a multiplication sign and a range with an en dash, as the README always has.
TIMES, TO = "\N{MULTIPLICATION SIGN}", "\N{EN DASH}"


def _ratio(value: float) -> str:
    # Three decimals, as the goal table prints them: a ratio just under its goal does not print as the goal.
    return f"{value:.3f}{TIMES}"


def _goal(goal: Goal) -> str:
    return f"goal {'≤' if goal.at_most else '≥'} {goal.target:.2f}{TIMES}"


def _span(values: list[float]) -> str:
    low, high = min(values), max(values)
    return _ratio(low) if low == high else f"{low:.3f}{TO}{_ratio(high)}"


def _words(items: list[str]) -> str:
    """Items joined as prose: "a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _tally(rows: list[tuple[Goal, float]]) -> str:
    """How the rows fared: "13 of 18 met, 3 within noise, 2 missed"; for one row, its verdict."""
    words = {"pass": "met", "within noise": "within noise", "**miss**": "missed"}
    verdicts = [words[goal.verdict(ratio)] for goal, ratio in rows]
    if len(rows) == 1:
        return verdicts[0]
    counts = [f"{verdicts.count(word)} {word}" for word in words.values() if word in verdicts]
    counts[0] = counts[0].replace(" ", f" of {len(rows)} ", 1)
    return ", ".join(counts)


def _against_fastapi(document: Report) -> str:
    """P1 (with P4's fan-outs) per server, what missed, and P5 beside FastAPI's loop."""
    rows = document.measured("P1", "P1, P4")
    if not rows:
        return ""
    arms = document.results.arms
    per_server: dict[str, list[float]] = {}
    for goal, ratio in rows:
        per_server.setdefault(arms[goal.numerator].server, []).append(ratio)
    misses = [
        f"{arms[goal.numerator].workload.title} under {arms[goal.numerator].server}, {_ratio(ratio)}"
        for goal, ratio in rows
        if goal.verdict(ratio) == "**miss**"
    ]
    text = (
        f"**Against FastAPI** (P1, with P4's fan-outs; {_goal(rows[0][0])}): asgi-ws's rate over FastAPI's on "
        "echo, JSON echo, the stream and chat fan-out is "
        f"{_words([f'{_span(ratios)} under {server}' for server, ratios in per_server.items()])}; "
        f"{_tally(rows)}{' (' + '; '.join(misses) + ')' if misses else ''}."
    )
    stalled = document.measured("P5")
    if stalled:
        kept = [f"{_ratio(ratio)} in the {arms[goal.denominator].workload.title}" for goal, ratio in stalled]
        kept[0] = kept[0].replace(" in the ", " of their rate in the ", 1)
        text += (
            f" With one client that never reads, the others keep {_words(kept)} "
            f"(P5, {_goal(stalled[0][0])}: {_tally(stalled)})"
        )
        naive = [document.results.runs.get(goal.numerator.replace("|asgi-ws", "|fastapi")) for goal, _ in stalled]
        if all(runs and not any(run.done for run in runs) for runs in naive):
            rates = [figure_text(statistics.median(run.rate for run in runs or [])) for runs in naive]
            text += f", while FastAPI's loop stopped at the time limit in every run ({_words(rates)} deliveries/s)"
        text += "."
    return text


def _against_the_floor(document: Report) -> str:
    """P2, P3 and P6: asgi-ws with every policy on against the raw 10-line app."""
    echo, stream, idle = document.measured("P2"), document.measured("P3"), document.measured("P6")
    arms = document.results.arms
    parts = []
    if echo:
        parts.append(
            f"the echo with every policy on is {_span([ratio for _, ratio in echo])} the floor's rate "
            f"(P2, {_goal(echo[0][0])}: {_tally(echo)})"
        )
    if stream:
        each = [f"{_ratio(ratio)} under {arms[goal.numerator].server}" for goal, ratio in stream]
        parts.append(f"the stream {_words(each)} (P3, {_goal(stream[0][0])}: {_tally(stream)})")
    if idle:
        each = [f"{_ratio(ratio)} the floor's memory under {arms[goal.numerator].server}" for goal, ratio in idle]
        parts.append(f"an idle connection takes {_words(each)} (P6, {_goal(idle[0][0])}: {_tally(idle)})")
    return f"**Against the raw 10-line floor**: {'; '.join(parts)}." if parts else ""


def _latency(document: Report) -> str:
    """P7, as the latency table gives it."""
    latency = document.results.latency
    if not latency:
        return ""
    return (
        "**Latency** (P7, chat at 500 messages/s): from a client of one uvicorn process through Redis to a "
        f"client of another, {latency['across Redis p50 ms']:.2f} ms at p50 and "
        f"{latency['across Redis p99 ms']:.2f} ms at p99, against {latency['same process p50 ms']:.2f} ms and "
        f"{latency['same process p99 ms']:.2f} ms within one process; Redis's own PUBLISH takes "
        f"{latency['PUBLISH p99 ms']:.3f} ms at p99."
    )


def _many_connections(document: Report) -> str:
    """P8, from c100k.json, as the goal table's P8 row gives it."""
    figures = document.c100k
    if not figures:
        return ""
    failed = figures.get("all: failed", 0)
    return (
        f"**{figures.get('all: connected', 0):,.0f} connections** (P8, `python -m bench --only c100k`): "
        f"uvicorn workers through one Redis held them in {figures.get('all: rss_per_connection', 0) / 1024:.1f} KiB "
        f"of RSS each, all connected in {figures.get('all: accept_seconds', 0):.0f} s"
        f"{f' ({failed:,.0f} failed)' if failed else ''}; a broadcast reached "
        f"{figures.get('all: broadcast_reached', 0):,.0f} in {figures.get('all: broadcast_seconds', 0):.2f} s, "
        f"with `/healthz` at p99 {figures.get('all: healthz_p99_ms', 0):.0f} ms meanwhile; one process held "
        f"{figures.get('one process: connections held', 0):,.0f}."
    )


def _feed(document: Report) -> str:
    """P9 per server and broker, and the resume's median time, as the feed table gives them."""
    rows = document.measured("P9")
    if not rows:
        return ""
    arms, runs = document.results.arms, document.results.runs
    per_server: dict[str, list[str]] = {}
    resumes = []
    for goal, ratio in rows:
        arm = arms[goal.numerator]
        broker = f"on the {BROKERS[arm.peer.key]} broker"
        per_server.setdefault(arm.server, []).append(f"{_ratio(ratio)} {broker}")
        replay = runs.get(f"feed-replay|{arm.server}|{arm.peer.key}")
        if replay:
            where = f" under {arm.server}" if len({arms[goal.numerator].server for goal, _ in rows}) > 1 else ""
            resumes.append(f"{statistics.median(run.rate for run in replay):.1f} ms {broker}{where}")
    text = (
        f"**The feed** (P9, {_goal(rows[0][0])} plain chat's deliveries): "
        f"{'; '.join(f'under {server}, {_words(each)}' for server, each in per_server.items())} "
        f"({_tally(rows)})"
    )
    if resumes:
        text += f"; a client that missed 1,000 messages has them all in {_words(resumes)} (medians)"
    return text + "."


def _which_server(document: Report) -> str:
    """P10: the pick, and every other server's speed relative to it, from the P10 table's ranking."""
    speeds = document.speeds()
    ranking = rank_servers(speeds)
    if ranking is None:
        return ""
    pick, fastest = ranking.pick, ranking.fastest
    kind = "most conformant servers" if pick.conformance else "servers (no conformance report)"
    differs = ", ".join(caveats(pick.conformance, nouns=True))
    text = f"**Which server** (P10): **{pick.server}**, the fastest of the {kind}{f' ({differs})' if differs else ''}"
    if fastest is not pick:
        differs = ", ".join(caveats(fastest.conformance, nouns=True))
        text += (
            f"; {fastest.server} is the fastest overall, {ranking.relative[fastest.server]:.2f}{TIMES} the pick's speed"
            f"{f', but {differs}' if differs else ''}"
        )
    others = sorted(
        (speed for speed in speeds if speed.server in ranking.relative and speed not in (pick, fastest)),
        key=lambda speed: -ranking.relative[speed.server],
    )
    if others:
        each = [f"{speed.server} {ranking.relative[speed.server]:.2f}{TIMES}" for speed in others]
        text += f"; the others, relative to the pick: {_words(each)}"
    unable = [speed.server for speed in speeds if speed.server not in ranking.relative]
    if unable:
        text += f"; {_words(unable)} could not run everything"
    return text + ". Each server's figures and conformance are in [bench/RESULTS.md](bench/RESULTS.md)."


# Reading and writing


def goal_record(document: Report) -> dict[str, dict[str, Any]]:
    """results.json's "goals": each goal's ratio and its ratio per round, as the goal table computes them."""
    return {
        f"{goal.id} {goal.measure}": {"ratio": ratio, "per round": document.round_ratios(goal)}
        for goal in goals()
        if (ratio := document.ratio(goal)) is not None
    }


def results_from_json(raw: Mapping[str, Any], sizes: Sizes, arms: Mapping[str, Arm]) -> Results:
    """results.json's runs back into :class:`Results`, with the arms (which the JSON names by key) from ``arms``."""
    recorded = [*raw["runs"], *raw["unable"]]
    unknown = [key for key in recorded if key not in arms]
    if unknown:
        raise ValueError(f"results.json names arms that bench/run.py no longer defines: {', '.join(unknown)}")
    return Results(
        sizes,
        runs={key: [Measured(**run) for run in runs] for key, runs in raw["runs"].items()},
        # In the order they ran, which is the order of the groups: the P10 table's rows follow it.
        arms={key: arm for key, arm in arms.items() if key in recorded},
        latency=dict(raw["latency"]),
        unable=dict(raw["unable"]),
    )


def write_pages(document: Report, out: Path, readme: Path | None = None) -> list[Path]:
    """RESULTS.md, with its analysis carried over, and the README's summary if ``readme``: what was written."""
    out.mkdir(parents=True, exist_ok=True)
    results = out / "RESULTS.md"
    results.write_text(markdown(document, kept_analysis(results)))
    written = [results]
    if readme is not None:
        readme.write_text(replace_block(readme.read_text(), README_BLOCK, readme_summary(document)))
        written.append(readme)
    return written


def write(document: Report, out: Path, readme: Path | None = None) -> list[Path]:
    """The pages, results.png (and p10.png), and results.json: every run of every arm and what the run stood on."""
    written = write_pages(document, out, readme)
    chart(document, out / "results.png")
    written.append(out / "results.png")
    if document.speeds():
        p10_chart(document, out / "p10.png")
        written.append(out / "p10.png")
    raw = {
        **document.run.to_json(),
        "runs": {key: [dataclasses.asdict(run) for run in runs] for key, runs in document.results.runs.items()},
        "latency": document.results.latency,
        "unable": document.results.unable,
        "goals": goal_record(document),
    }
    (out / "results.json").write_text(json.dumps(raw, indent=1) + "\n")
    written.append(out / "results.json")
    return written


def chart(document: Report, path: Path) -> None:
    """One bar per goal row: the measured ratio, with the goal as a tick on the bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(goal, ratio) for goal in goals() if (ratio := document.ratio(goal)) is not None]
    figure, axes = plt.subplots(figsize=(10, 0.38 * len(rows) + 1.6))
    labels = [f"{goal.id} {goal.measure}" for goal, _ in rows]
    colours = [
        "#f9a825" if goal.verdict(ratio) == "within noise" else "#2e7d32" if goal.met(ratio) else "#c62828"
        for goal, ratio in rows
    ]
    positions = range(len(rows))
    axes.barh(positions, [ratio for _, ratio in rows], color=colours)
    axes.scatter([goal.target for goal, _ in rows], positions, marker="|", s=300, color="black", zorder=3, label="goal")
    for position, (_, ratio) in zip(positions, rows, strict=True):
        axes.text(ratio, position, f" {ratio:.2f}x", va="center", fontsize=8)
    axes.set_yticks(list(positions), labels, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel("asgi-ws ÷ peer (medians); green meets the goal, red misses it, amber is within noise")
    axes.set_title(f"asgi-ws vs its peers, {document.date}")
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def p10_chart(document: Report, path: Path) -> None:
    """P10: per server, a bar per workload, each the server's median over the best server's, min - max as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    speeds = document.speeds()
    best = {key: max((speed.median(key) or 0.0 for speed in speeds), default=0.0) or 1.0 for key in P10}
    titles = {arm.workload.key: arm.workload.title for arm in document.results.arms.values()}
    figure, axes = plt.subplots(figsize=(max(8.0, 1.1 * len(speeds) + 2), 4.8))
    width = 0.8 / len(P10)
    top = 1.0
    for index, (key, colour) in enumerate(zip(P10, ("#1565c0", "#2e7d32", "#ef6c00"), strict=True)):
        positions = [number + (index - (len(P10) - 1) / 2) * width for number in range(len(speeds))]
        heights = [(speed.median(key) or 0.0) / best[key] for speed in speeds]
        low = [
            height - min(speed.figures.get(key) or [0.0]) / best[key]
            for speed, height in zip(speeds, heights, strict=True)
        ]
        high = [
            max(speed.figures.get(key) or [0.0]) / best[key] - height
            for speed, height in zip(speeds, heights, strict=True)
        ]
        axes.bar(positions, heights, width, color=colour, label=titles.get(key, key), yerr=[low, high], capsize=2)
        top = max([top, *(height + above for height, above in zip(heights, high, strict=True))])
        for position, speed, height in zip(positions, speeds, heights, strict=True):
            if key in speed.unable and not speed.figures.get(key):
                axes.text(position, 0.02, "could not run", rotation=90, fontsize=7, ha="center", va="bottom")
            elif height:  # the figure itself, inside the bar at its foot, clear of the min - max line
                text = figure_text(speed.median(key) or 0.0)
                axes.text(position, 0.02, text, rotation=90, fontsize=6, ha="center", va="bottom", color="white")
    labels = [
        f"{speed.server}\n{found.identical_text}\nAutobahn {found.autobahn_ok}/{found.autobahn_cases}"
        if (found := speed.conformance)
        else f"{speed.server}\n(no conformance report)"
        for speed in speeds
    ]
    axes.set_xticks(list(range(len(speeds))), labels, fontsize=7)
    axes.set_ylim(0, top + 0.3)  # room for the legend
    axes.set_ylabel("median ÷ the fastest server's (lines: min - max over rounds)")
    axes.set_title(f"asgi-ws under every server: which to choose for WebSockets, {document.date}")
    axes.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
