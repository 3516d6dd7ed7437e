"""The README's summary of a run: a bullet per family of goals, each figure as RESULTS.md prints it.

:func:`readme_summary` is the text between the README's ``bench-summary``
markers: against FastAPI (P1, P4, P5), against the raw floor (P2, P3, P6),
latency (P7), many connections (P8), the feed (P9) and which server (P10).
Every figure in it is one the page prints too, to the same decimals, and
``tests/test_bench_report.py`` checks that they agree.

This module does not compute a figure (:class:`bench.report.Report` does, for
the page and for this summary alike), nor write the README
(:func:`bench.report.write_pages` does).
"""

from __future__ import annotations

import statistics
import textwrap
from typing import TYPE_CHECKING, Any

from .goals import BROKERS, Goal
from .results import arm_key, figure_text
from .server_choice import caveats, rank_servers

if TYPE_CHECKING:
    from .report import Report


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
        f"**{figures.get('all: connected', 0):,.0f} connections** (P8, `python -m bench --only c100k`"
        f"{', clients offering deflate as browsers do' if _browser_like(figures) else ''}): "
        f"uvicorn workers through one Redis held them in {figures.get('all: rss_per_connection', 0) / 1024:.1f} KiB "
        f"of RSS each, all connected in {figures.get('all: accept_seconds', 0):.0f} s"
        f"{f' ({failed:,.0f} failed)' if failed else ''}; a broadcast reached "
        f"{figures.get('all: broadcast_reached', 0):,.0f} in {figures.get('all: broadcast_seconds', 0):.2f} s, "
        f"with `/healthz` at p99 {figures.get('all: healthz_p99_ms', 0):.0f} ms meanwhile; one process held "
        f"{figures.get('one process: connections held', 0):,.0f}."
    )


def _browser_like(figures: dict[str, Any]) -> bool:
    """Whether P8's clients offered permessage-deflate, as its notes say."""
    return any(note.startswith("clients offer: permessage-deflate") for note in figures.get("notes", []))


def _feed(document: Report) -> str:
    """P9 per server and broker, plain and with ids, and the resume's median time, as the feed table gives them."""
    rows = document.measured("P9")
    if not rows:
        return ""
    arms, runs = document.results.arms, document.results.runs
    per_server: dict[str, list[str]] = {}
    resumes = []
    several = len({arms[goal.numerator].server for goal, _ in rows}) > 1
    for goal, ratio in rows:
        arm = arms[goal.numerator]
        broker = f"on the {BROKERS[arm.peer.key]} broker"
        if arm.workload.key != "feed":
            per_server[arm.server][-1] += f" ({_ratio(ratio)} published with ids)"
            continue
        per_server.setdefault(arm.server, []).append(f"{_ratio(ratio)} {broker}")
        replay = runs.get(arm_key("feed-replay", arm.server, arm.peer.key))
        if replay:
            where = f" under {arm.server}" if several else ""
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
