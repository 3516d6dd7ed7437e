"""The answers a reader wants first: is the behaviour identical, and how do the servers compare?

Two summaries are computed here from the judged cells, for the report, the
command's last lines and the JSON report alike:

- the **headline** per server: how many of the app's scenarios look exactly the
  same to a client as under the reference (uvicorn with websockets-sansio), and
  which do not, each with the few words of the divergence entry that explains
  it;
- the **counts** per server, kept apart where they cannot be added up: the app's
  scenarios and the server probes, each side on its own, and Autobahn's cases.

This module is pure: cells in, values out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .checks import HTTP1, kind_of, split_column
from .verdicts import Cell, Side

__all__ = ["REFERENCE", "Counts", "Departure", "Headline", "autobahn_passed", "counts", "headlines"]

REFERENCE = "uvicorn"  # the server whose transcripts are the expected ones


@dataclass(frozen=True, slots=True)
class Departure:
    """A scenario whose client side differs under a server, and why in a few words."""

    check: str
    reason: str  # the explaining entry's label, or the verdict when unexplained


@dataclass(frozen=True, slots=True)
class Headline:
    """One server's answer to "does asgi-ws behave the same here?"."""

    server: str
    identical: int  # scenarios whose client side is the same as under the reference
    scenarios: int  # scenarios run under this server
    exceptions: tuple[Departure, ...]  # the others

    @property
    def line(self) -> str:
        """The headline as one sentence, the same in the Markdown, the JSON and the command's output.

        A column of a server over HTTP/2 says so, and is compared with the reference over HTTP/1.1.
        """
        server, transport = split_column(self.server)
        if transport == HTTP1:
            text = f"{server}: client-visible behaviour of asgi-ws: identical to {REFERENCE}"
        else:
            text = f"{server}: over HTTP/2 ({transport}): identical to {REFERENCE} over HTTP/1.1"
        text += f" in {self.identical} of {self.scenarios} scenarios"
        if self.exceptions:
            by_reason: dict[str, list[str]] = {}
            for item in self.exceptions:
                by_reason.setdefault(item.reason, []).append(item.check)
            text += "; except " + "; ".join(
                f"{reason}: {'every one' if len(checks) == self.scenarios > 1 else ', '.join(checks)}"
                for reason, checks in by_reason.items()
            )
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "identical": self.identical,
            "scenarios": self.scenarios,
            "exceptions": [{"check": item.check, "reason": item.reason} for item in self.exceptions],
        }


def headlines(cells: Iterable[Cell], servers: Sequence[str]) -> dict[str, Headline]:
    """The headline of every server in ``servers``, from its scenario cells."""
    by_server: dict[str, list[Cell]] = {server: [] for server in servers}
    for cell in cells:
        if cell.server in by_server and kind_of(cell.check) == "scenario":
            by_server[cell.server].append(cell)
    result = {}
    for server, scenario_cells in by_server.items():
        exceptions = tuple(Departure(cell.check, _reason(cell)) for cell in scenario_cells if cell.client != "same")
        result[server] = Headline(server, len(scenario_cells) - len(exceptions), len(scenario_cells), exceptions)
    return result


@dataclass(frozen=True, slots=True)
class Counts:
    """How one server's cells came out, by kind and side.  Each pair is (same, run)."""

    scenarios_client: tuple[int, int]
    scenarios_app: tuple[int, int]
    probes_client: tuple[int, int]
    probes_app: tuple[int, int]
    unexplained: int  # cells that fail the run


def counts(cells: Iterable[Cell], server: str) -> Counts:
    """``server``'s counts; Autobahn's cases are counted by Autobahn's own summary, not here."""
    mine = [cell for cell in cells if cell.server == server]

    def tally(kind: str, side: Side) -> tuple[int, int]:
        of_kind = [cell for cell in mine if kind_of(cell.check) == kind]
        return sum(cell.side(side) == "same" for cell in of_kind), len(of_kind)

    return Counts(
        tally("scenario", "client"),
        tally("scenario", "app"),
        tally("probe", "client"),
        tally("probe", "app"),
        sum(cell.failing for cell in mine),
    )


def autobahn_passed(autobahn: Mapping[str, Any], server: str) -> tuple[int, int] | None:
    """(cases OK, cases run) for ``server``, or None when Autobahn did not run there."""
    result = autobahn.get("servers", {}).get(server)
    if not isinstance(result, Mapping):
        return None
    summary: Mapping[str, int] = result.get("summary", {})
    return summary.get("OK", 0), sum(summary.values())


def _reason(cell: Cell) -> str:
    entry = cell.explanation("client")
    if entry is not None:
        return entry.label
    return {"error": "error", "differs": "unexplained", "no baseline": "no baseline"}.get(cell.client, cell.client)
