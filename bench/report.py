"""What ``python -m bench`` writes: the goal table (contract §6), every figure, the feed's, and a chart.

``bench/RESULTS.md`` is generated, except for the part between the
``ANALYSIS`` markers, which is written by hand (what a profile showed, what was
tried) and carried over from the previous file on every run.  So is the
README's summary of the results, between its ``bench-summary`` markers, and
``docs/choosing-a-server.md`` (:mod:`bench.choosing`).

Everything a page says comes from ``bench/results.json``: the runs, and what
the run stood on (:class:`bench.record.Run`), read from the environment once,
when the run ends.  So ``python -m bench --render`` rewrites the pages later,
from the JSON, and gets the same text.

This module owns :class:`Report`, which turns one run's results into the
page's tables; the page itself (:func:`markdown`); and the files a run writes,
results.json's round trip among them.  It does not own what a run stood on
(:mod:`bench.record`), the goals and their verdicts (:mod:`bench.goals`), the
choice of a server (:mod:`bench.server_choice`), the README's summary
(:mod:`bench.summary`), the page on choosing a server (:mod:`bench.choosing`)
or the charts (:mod:`bench.charts`).  Nor does it run
anything or know the arms' definitions: :mod:`bench.run` measures, and rebuilds
the arms when it renders from the JSON.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from conformance.published import replace_block
from conformance.versions import LOCK

from . import deflate
from .c100k import FLOORS
from .charts import chart, p10_chart
from .choosing import choosing_page
from .goals import BROKERS, NOISE, Goal, goals
from .loadgen import Measured
from .record import Run, lock_text
from .results import Arm, Results, Sizes, arm_key, figure_text
from .server_choice import P10, ServerSpeed, read_conformance, recommendations
from .summary import readme_summary

ANALYSIS_START = "<!-- ANALYSIS: written by hand, kept across runs -->"
ANALYSIS_END = "<!-- /ANALYSIS -->"
README_BLOCK = "bench-summary"  # the README's summary of the results, rewritten with RESULTS.md
SATURATED = 0.9  # the load generator's CPU share from which a figure may be its limit, not the server's
C100K = "c100k.json"  # P8's figures, written by ``python -m bench --only c100k`` into the same directory


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
        self.c100k: dict[str, Any] = json.loads(c100k.read_text()) if c100k and c100k.exists() else {}
        p11 = out / deflate.P11 if out is not None else None
        self.p11: dict[str, Any] = json.loads(p11.read_text()) if p11 and p11.exists() else {}
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
        lines += self.p12_rows()
        if servers := self.p11.get("servers"):
            lines.append(
                f"| P11 | permessage-deflate offered as browsers do, under {len(servers)} server configurations "
                "| a table per server, a default each | see P11 below | | | reported |"
            )
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

    def warm_fan_out_cpu_us(self) -> float | None:
        """P4's warm fan-out to 1000 under uvicorn: the server's CPU per delivery, in µs (median of the rounds)."""
        runs = self.results.runs.get(arm_key("fan-out-1000", "uvicorn", "asgi-ws"), [])
        per_delivery = [run.server_cpu / run.rate * 1e6 for run in runs if run.rate and run.server_cpu]
        return statistics.median(per_delivery) if per_delivery else None

    def p12_rows(self) -> list[str]:
        """P12's three goals, from P8's broadcast (c100k.json) and P4's warm fan-out; none if P8 has no such figures.

        Each row also names the figure of each floor that ran beside it (``bench.c100k.FLOORS``) and
        whether it meets the same goal: where every floor misses, no app can meet it on this machine.
        """
        figures = self.c100k
        cpu, warm = figures.get("all: cpu_us_per_delivery"), self.warm_fan_out_cpu_us()
        if cpu is None or warm is None:
            return []
        floors = [name for name in FLOORS if f"{name}: cpu_us_per_delivery" in figures]
        checks: list[tuple[str, str, str, Callable[[float], str], Callable[[float], bool]]] = [
            (
                "server CPU per delivery, 100,000-client broadcast over P4's warm fan-out to 1000 (uvicorn), "
                f"{cpu:.1f} µs over {warm:.1f} µs",
                "cpu_us_per_delivery",
                "≤ 3.0x",
                lambda value: f"{value / warm:.2f}x",
                lambda value: value / warm <= 3.0,
            ),
            (
                "/healthz p99 of the worst worker during the broadcast"
                + (
                    f" ({figures['all: full_collections']:.0f} full garbage collections meanwhile, all workers)"
                    if "all: full_collections" in figures
                    else ""
                ),
                "healthz_worst_worker_p99_ms",
                "≤ 100 ms",
                lambda value: f"{value:.0f} ms",
                lambda value: value <= 100,
            ),
            (
                "handshakes per second across the workers",
                "accepts_per_second",
                "≥ 2,500/s",
                lambda value: f"{value:,.0f}/s",
                lambda value: value >= 2500,
            ),
        ]
        rows = []
        for measure, key, target, shown, met in checks:
            value = figures[f"all: {key}"]
            verdict = "pass" if met(value) else "**miss**"
            if floors:
                each = [(name.removeprefix("floor, "), figures[f"{name}: {key}"]) for name in floors]
                measure += "; the floors: " + ", ".join(f"{name} {shown(figure)}" for name, figure in each)
                verdict += "; the floors: " + ", ".join(
                    f"{name} {'pass' if met(figure) else 'miss'}" for name, figure in each
                )
            rows.append(f"| P12 | {measure} | {target} | {shown(value)} | | | {verdict} |")
        return rows

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
            dataclasses.replace(speed, client_cpu=self.client_cpu(*(arm_key(key, speed.server) for key in P10)))
            for speed in servers.values()
        ]

    def p10_table(self) -> str:
        """P10: one row per server, its three figures, its conformance summary, and a recommendation."""
        speeds = self.speeds()
        if not speeds:
            return ""
        advice = recommendations(speeds)
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
        """P9 per server and broker: chat and feed deliveries/s, plain and with ids, their ratios, the resume time."""
        lines = [
            "| server | broker | chat deliveries/s | feed deliveries/s | feed ÷ chat (min - max per round) "
            "| feed with ids, deliveries/s | with ids ÷ chat (min - max per round) "
            "| resume of 1,000: median (min - max) | load generator CPU, highest median |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        runs, arms = self.results.runs, self.results.arms
        measured = self.measured("P9")
        for goal, ratio in measured:
            arm = arms[goal.numerator]
            if arm.workload.key != "feed":
                continue
            beside = [(other, value) for other, value in measured if other.denominator == goal.denominator]
            with_ids = next(((other, value) for other, value in beside if other != goal), None)
            replay = arm_key("feed-replay", arm.server, arm.peer.key)
            times = [run.rate for run in runs.get(replay, [])]
            resume = f"{statistics.median(times):.1f} ms ({min(times):.1f} - {max(times):.1f})" if times else "not run"
            keys = [goal.denominator, goal.numerator, replay, *([with_ids[0].numerator] if with_ids else [])]
            cpu = max(statistics.median(run.client_cpu for run in runs[key]) for key in keys if key in runs)
            lines.append(
                f"| {arm.server} | {BROKERS[arm.peer.key]} | {self.results.median(goal.denominator):,.0f} "
                f"| {self.results.median(goal.numerator):,.0f} | {self._ratio_with_spread(goal, ratio)} "
                + (
                    f"| {self.results.median(with_ids[0].numerator):,.0f} | {self._ratio_with_spread(*with_ids)} "
                    if with_ids
                    else "| not run | - "
                )
                + f"| {resume} | {cpu:.0%} |"
            )
        return "\n".join(lines) if len(lines) > 2 else ""

    def _ratio_with_spread(self, goal: Goal, ratio: float) -> str:
        spread = self.round_ratios(goal)
        return f"{ratio:.3f}x ({min(spread):.2f} - {max(spread):.2f})"

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

## P11: what a browser costs each server

{P11_EXPLAINED}

{deflate.markdown(document.p11)}

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

P11_EXPLAINED = f"""\
Every browser offers permessage-deflate (`permessage-deflate; client_max_window_bits`, as Chromium
156 sends it), so each server configuration is measured with the `websockets` client offering
exactly that line, and with the same client offering nothing, which is what every other figure here
uses (`bench/deflate.py`, `python -m bench --only p11`). Each server runs with its own deflate
default, on wherever it has a switch. Memory: {deflate.CONNECTIONS:,} chat clients in {deflate.ROOMS}
rooms, the server's RSS (with its children) per connection while idle, and after one chat line into
each room. CPU: the server's CPU seconds over {deflate.ECHO_CONNECTIONS * deflate.ECHOES:,} JSON echoes
on {deflate.ECHO_CONNECTIONS} connections. Bytes: the mean over {deflate.SAMPLES} messages of each kind,
frame header included. The launcher's default: deflate on only where a connection that has received
a message stays within {deflate.BUDGET_KIB:.0f} KiB, so that 100,000 browsers fit in 4 GiB
(`docs/deflate.md`)."""

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
feed is measured twice: published as plain text, and published with ids (`{"id": "RUN-N", "data": t}`),
where the broker also checks and keeps each id and the publisher gets an ack besides (not counted as
a delivery). The
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


def write_pages(document: Report, out: Path, readme: Path | None = None, choosing: Path | None = None) -> list[Path]:
    """RESULTS.md, with its analysis carried over, the README's summary if ``readme``, and the page on choosing
    a server if ``choosing``: what was written."""
    out.mkdir(parents=True, exist_ok=True)
    results = out / "RESULTS.md"
    results.write_text(markdown(document, kept_analysis(results)))
    written = [results]
    if readme is not None:
        readme.write_text(replace_block(readme.read_text(), README_BLOCK, readme_summary(document)))
        written.append(readme)
    if choosing is not None:
        choosing.write_text(choosing_page(document))
        written.append(choosing)
    return written


def write_charts(document: Report, out: Path) -> list[Path]:
    """results.png, and p10.png when the run compared servers (its labels carry the conformance summary)."""
    chart(document, out / "results.png")
    written = [out / "results.png"]
    if document.speeds():
        p10_chart(document, out / "p10.png")
        written.append(out / "p10.png")
    return written


def write(document: Report, out: Path, readme: Path | None = None, choosing: Path | None = None) -> list[Path]:
    """The pages, the charts, and results.json: every run of every arm and what the run stood on."""
    written = [*write_pages(document, out, readme, choosing), *write_charts(document, out)]
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
