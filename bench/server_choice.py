"""P10, which server to choose for WebSockets: each server's speed beside its conformance, and the pick.

The figures are asgi-ws's alone, with every policy on, under each server
configuration (:class:`ServerSpeed`); beside them, that server's line of the
committed conformance summary (:class:`Conformance`, :func:`read_conformance`).
:func:`rank_servers` picks the fastest of the most conformant servers that ran
everything, :func:`caveats` says how a server falls short of the reference,
and :func:`recommendations` puts both in a line per server.

This module does not measure the servers (:mod:`bench.run`), gather their
figures from a run (:meth:`bench.report.Report.speeds`), nor draw or write the
comparison (:mod:`bench.report`, :mod:`bench.charts`, :mod:`bench.summary`,
:mod:`bench.choosing`).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.published import summary_of

P10 = ("p10-echo-10", "p10-stream", "p10-fan-out-100")  # the server comparison's workloads, as its columns


@dataclass(frozen=True, slots=True)
class Conformance:
    """One server's line of the committed conformance report: what a client sees, and Autobahn."""

    identical: int  # scenarios whose client-visible behaviour is the reference's
    scenarios: int
    autobahn_ok: int
    autobahn_failed: int
    autobahn_cases: int
    shutdown: str | None = None  # what a client sees at SIGTERM, in the matrix's words; None: not in the report

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


def read_summary(path: Path) -> dict[str, Any]:
    """The conformance summary at ``path`` (``docs/server-summary.json``), or the summary of the full report there
    (a ``conformance-report.json``); empty if there is neither."""
    if not path.exists():
        return {}
    document: dict[str, Any] = json.loads(path.read_text())
    return summary_of(document) if "cells" in document else document


def read_conformance(path: Path) -> dict[str, Conformance]:
    """Per server, the conformance report's headline, Autobahn counts and SIGTERM words; nothing without a report."""
    document = read_summary(path)
    autobahn = document.get("autobahn", {}).get("servers", {})
    shutdown = document.get("shutdown", {}).get("servers", {})
    found = {}
    for server, headline in document.get("headline", {}).items():
        summary = autobahn.get(server, {}).get("summary", {})
        found[server] = Conformance(
            headline["identical"],
            headline["scenarios"],
            summary.get("OK", 0),
            summary.get("FAILED", 0),
            sum(summary.values()),
            shutdown.get(server),
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


def recommendations(speeds: list[ServerSpeed]) -> dict[str, str]:
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
