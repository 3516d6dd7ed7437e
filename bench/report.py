"""What ``python -m bench`` writes: the goal table (contract §6), every figure, the feed's, and a chart.

``bench/RESULTS.md`` is generated, except for the part between the
``ANALYSIS`` markers, which is written by hand (what a profile showed, what was
tried) and carried over from the previous file on every run.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import re
import statistics
import subprocess
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from .loadgen import Measured
from .results import Arm, Results, figure_text

ANALYSIS_START = "<!-- ANALYSIS: written by hand, kept across runs -->"
ANALYSIS_END = "<!-- /ANALYSIS -->"
SERVERS = ("uvicorn", "hypercorn", "granian")  # where the goals are looked for
# The feed's ratio to chat varies by about this much from one full run to the next on a quiet
# machine; a median closer than this to the goal is called "within noise" rather than met or missed.
FEED_NOISE = 0.03
BROKERS = {"asgi-ws": "memory", "asgi-ws-redis": "Redis"}  # the feed's peers: the app on each broker
VERSIONS = (
    *("uvicorn", "websockets", "hypercorn", "granian", "fastapi", "starlette"),
    *("anyio", "picows", "uvloop", "redis"),
)


@dataclass(frozen=True, slots=True)
class Goal:
    id: str  # P1 ... P7
    measure: str  # what is compared, in words
    numerator: str  # arm key
    denominator: str  # arm key
    target: float
    at_most: bool = False  # the ratio must be <= target (memory) rather than >=
    noise: float = 0.0  # a ratio this close to target is "within noise", and shown with its per-round range

    def met(self, ratio: float) -> bool:
        return ratio <= self.target if self.at_most else ratio >= self.target

    def verdict(self, ratio: float) -> str:
        if abs(ratio - self.target) <= self.noise:
            return f"within noise ({'pass' if self.met(ratio) else 'miss'})"
        return "pass" if self.met(ratio) else "**miss**"

    @property
    def goal_text(self) -> str:
        return f"{'≤' if self.at_most else '≥'} {self.target:.2f}x"


def goals() -> list[Goal]:
    found = []
    for server in ("uvicorn", "hypercorn", "granian"):
        for n in (10, 50):
            found.append(
                Goal(
                    "P1",
                    f"echo, {n} conns, vs FastAPI · {server}",
                    f"echo-{n}|{server}|asgi-ws",
                    f"echo-{n}|{server}|fastapi",
                    1.25,
                )
            )
    for server in ("uvicorn", "hypercorn", "granian"):
        for n in (10, 50):
            found.append(
                Goal(
                    "P2",
                    f"echo, {n} conns, all policies vs raw floor · {server}",
                    f"echo-{n}|{server}|asgi-ws",
                    f"echo-{n}|{server}|floor",
                    0.90,
                )
            )
    for server in ("uvicorn", "hypercorn", "granian"):
        found.append(
            Goal("P3", f"stream vs raw floor · {server}", f"stream|{server}|asgi-ws", f"stream|{server}|floor", 0.95)
        )
    for n in (100, 1000):
        found.append(
            Goal(
                "P4",
                f"fan-out to {n} vs FastAPI's loop · uvicorn",
                f"fan-out-{n}|uvicorn|asgi-ws",
                f"fan-out-{n}|uvicorn|fastapi",
                1.0,
            )
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
                    noise=FEED_NOISE,
                )
            )
    return found


class Report:
    def __init__(self, results: Results, cpus: tuple[set[int], set[int]], command: str, seconds: float) -> None:
        self.results = results
        self.cpus = cpus
        self.command = command
        self.seconds = seconds
        self.date = time.strftime("%Y-%m-%d")

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

    def goal_table(self) -> str:
        lines = ["| goal | measure | target | ratio | |", "|---|---|---:|---:|---|"]
        for goal in goals():
            ratio = self.ratio(goal)
            if ratio is None:
                continue
            # Three decimals, so that a ratio just under its goal does not print as the goal.
            text = f"{ratio:.3f}x"
            if goal.noise and (spread := self.round_ratios(goal)):
                text += f" ({min(spread):.2f} - {max(spread):.2f})"
            lines.append(f"| {goal.id} | {goal.measure} | {goal.goal_text} | {text} | {goal.verdict(ratio)} |")
        for arm, runs in self.replays():
            times = [run.rate for run in runs]
            lines.append(
                f"| P9 | {arm.workload.title}, median (min - max) · {arm.server}, {BROKERS[arm.peer.key]} broker "
                f"| reported | {statistics.median(times):.1f} ms ({min(times):.1f} - {max(times):.1f}) "
                f"| load generator CPU {statistics.median(run.client_cpu for run in runs):.0%} |"
            )
        latency = self.results.latency
        if latency:
            lines.append(
                f"| P7 | cross-process chat through Redis, p99 (p50) | reported | "
                f"{latency['across Redis p99 ms']:.2f} ms ({latency['across Redis p50 ms']:.2f} ms) | "
                f"Redis PUBLISH alone: p99 {latency['PUBLISH p99 ms']:.3f} ms |"
            )
        return "\n".join(lines)

    def replays(self) -> list[tuple[Arm, list[Measured]]]:
        """The feed's resume arms and their runs, in the order they ran."""
        arms = self.results.arms
        return [(arms[key], runs) for key, runs in self.results.runs.items() if arms[key].workload.key == "feed-replay"]

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
        model = "unknown CPU"
        cpuinfo = Path("/proc/cpuinfo")
        if cpuinfo.exists():
            found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.MULTILINE)
            model = found.group(1) if found else model
        versions = []
        for name in VERSIONS:
            try:
                versions.append(f"{name} {metadata.version(name)}")
            except metadata.PackageNotFoundError:
                continue
        redis = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()
        redis_version = next((part.split("=")[1] for part in redis if part.startswith("v=")), "?")
        return (
            f"- machine: {model}, {len(self.cpus[0] | self.cpus[1])} CPUs, {platform.system()} {platform.release()}\n"
            f"- pinning: servers on CPU {sorted(self.cpus[0])}, load generator on CPU {sorted(self.cpus[1])}\n"
            f"- Python {platform.python_version()}; {', '.join(versions)}; redis-server {redis_version}\n"
            f"- {self.results.sizes.rounds} rounds, alternated (A B C, then C B A); figures are medians\n"
            f"- `{self.command}`, on {self.date}, {self.seconds / 60:.1f} minutes"
        )


def markdown(document: Report, analysis: str) -> str:
    return f"""# Benchmark results

asgi_ws against the peers users would pick instead, side by side in one run (contract §6).
Generated by `python -m bench` (see `bench/run.py` for how); the analysis section is written by
hand.

{document.machine()}

## Goals

{document.goal_table()}

![ratios to goal](results.png)

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


def write(document: Report, out: Path) -> None:
    """RESULTS.md, results.png, and results.json: every run of every arm, for a later look."""
    out.mkdir(parents=True, exist_ok=True)
    results = out / "RESULTS.md"
    results.write_text(markdown(document, kept_analysis(results)))
    chart(document, out / "results.png")
    raw = {
        "command": document.command,
        "date": document.date,
        "runs": {key: [dataclasses.asdict(run) for run in runs] for key, runs in document.results.runs.items()},
        "latency": document.results.latency,
        "goals": {
            f"{goal.id} {goal.measure}": {"ratio": ratio, "per round": document.round_ratios(goal)}
            for goal in goals()
            if (ratio := document.ratio(goal)) is not None
        },
    }
    (out / "results.json").write_text(json.dumps(raw, indent=1) + "\n")


def chart(document: Report, path: Path) -> None:
    """One bar per goal row: the measured ratio, with the goal as a tick on the bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(goal, ratio) for goal in goals() if (ratio := document.ratio(goal)) is not None]
    figure, axes = plt.subplots(figsize=(10, 0.38 * len(rows) + 1.6))
    labels = [f"{goal.id} {goal.measure}" for goal, _ in rows]
    colours = ["#2e7d32" if goal.met(ratio) else "#c62828" for goal, ratio in rows]
    positions = range(len(rows))
    axes.barh(positions, [ratio for _, ratio in rows], color=colours)
    axes.scatter([goal.target for goal, _ in rows], positions, marker="|", s=300, color="black", zorder=3, label="goal")
    for position, (_, ratio) in zip(positions, rows, strict=True):
        axes.text(ratio, position, f" {ratio:.2f}x", va="center", fontsize=8)
    axes.set_yticks(list(positions), labels, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel("asgi-ws ÷ peer (medians); green meets the goal, red misses it")
    axes.set_title(f"asgi-ws vs its peers, {document.date}")
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
