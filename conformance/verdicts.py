"""Judge outcomes: same as expected, differs, known server divergence, or error (contract §5).

Every check has an **expected transcript** in ``conformance/expected/<name>.json``.
For scenarios it is what contract §1 and §3 say the app does, as seen through
uvicorn (websockets-sansio), the reference server.  For probes it is simply
uvicorn's behaviour: probes record how servers differ from each other, and
uvicorn is the one they are all compared with.  The files are recorded with
``python -m conformance --update-expected uvicorn`` and reviewed like code.

Every transcript has two **sides**, judged apart (:func:`split_sides`):

- the **client side**: what a client saw on the wire (the handshake status and
  headers, the frames, the close code and reason, how TCP ended) and what the
  server process did (its exit code);
- the **app side**: what the app saw through ASGI, recorded by
  :mod:`conformance.observer` or the probe app, under keys named ``app`` or
  starting with ``app`` (``"app (stalled)"``, ``"app saw"``) at any depth.

A side that differs from the expected one is a **known server divergence**
when ``conformance/divergences.toml`` has an entry for that check and server
whose ``side`` covers it, with a one-sentence explanation and a source (the
server's file and function, and the upstream issue where one exists).
Otherwise it **differs**, and the run fails.  So an entry that explains what
the app is told cannot hide a difference on the wire.

This module is pure: outcomes and files in, :class:`Cell` values out.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .checks import Transcript
from .runner import Outcome

__all__ = [
    "DIVERGENCES",
    "EXPECTED_DIR",
    "SIDES",
    "Cell",
    "Covers",
    "Divergence",
    "DivergenceFileError",
    "ReferenceNote",
    "Side",
    "Verdict",
    "judge",
    "load_divergences",
    "load_expected",
    "load_reference_notes",
    "save_expected",
    "split_sides",
    "unexplained",
]

HERE = Path(__file__).resolve().parent
EXPECTED_DIR = HERE / "expected"
DIVERGENCES = HERE / "divergences.toml"

Verdict = Literal["same", "differs", "known", "error", "no baseline"]
FAILING: frozenset[Verdict] = frozenset({"differs", "error", "no baseline"})
# From best to worst: a cell's overall verdict is the worse of its two sides'.
_RANK: dict[Verdict, int] = {"same": 0, "known": 1, "differs": 2, "no baseline": 3, "error": 4}

Side = Literal["client", "app"]
SIDES: tuple[Side, ...] = ("client", "app")
Covers = Literal["client", "app", "both"]  # the sides a divergence entry explains
APP_KEY = "app"  # a transcript key equal to this, or starting with it, holds what the app saw


class DivergenceFileError(ValueError):
    """``divergences.toml`` is malformed.  The message names the entry and the problem."""


@dataclass(frozen=True, slots=True)
class Divergence:
    """A server behaviour that differs from the expected transcript, explained."""

    checks: tuple[str, ...]  # check names, or fnmatch patterns such as "autobahn:6.4.*"
    servers: tuple[str, ...]  # the servers it applies to
    why: str  # one sentence
    source: str  # the server's version, file and function
    side: Covers = "both"  # which side of the transcript it explains
    label: str = ""  # about three words for the headline, e.g. "SIGTERM close code"
    upstream: tuple[str, ...] = ()  # upstream issues or pull requests, each "URL (state)"

    @property
    def check(self) -> str:
        """The checks, as one label."""
        return ", ".join(self.checks)

    @property
    def anchor(self) -> str:
        """The id of this entry's section in the Markdown report, for links from the matrices."""
        return "d-" + "".join(char if char.isalnum() else "-" for char in f"{self.checks[0]}-{self.servers[0]}")

    def covers(self, check: str, server: str, side: Side | None = None) -> bool:
        """Whether the entry explains ``check`` under ``server`` (on ``side``, when given)."""
        if side is not None and self.side not in (side, "both"):
            return False
        return server in self.servers and any(fnmatch.fnmatchcase(check, pattern) for pattern in self.checks)


@dataclass(frozen=True, slots=True)
class ReferenceNote:
    """Where the reference itself departs from RFC 6455, so that "same" is not read as "correct"."""

    checks: tuple[str, ...]  # the checks whose expected transcripts carry the departure
    why: str  # one sentence: what the reference does, and what the RFC says
    source: str  # the reference's file and function


@dataclass(frozen=True, slots=True)
class Cell:
    """The verdicts for one check under one server: a cell of the report's matrices."""

    check: str
    server: str
    client: Verdict  # the client side: what was seen on the wire
    app: Verdict  # the app side: what the app saw through ASGI
    diff: str | None = None  # unified diff expected -> observed, when they differ
    divergences: tuple[Divergence, ...] = ()  # the explanations, when known (one per side at most)
    error: str | None = None  # why the check could not finish
    observed: Transcript | None = None  # the transcript, for the outcomes table

    @property
    def verdict(self) -> Verdict:
        """The worse of the two sides."""
        return max(self.client, self.app, key=_RANK.__getitem__)

    @property
    def failing(self) -> bool:
        return self.verdict in FAILING

    @property
    def divergence(self) -> Divergence | None:
        """The first explanation, where there is one."""
        return self.divergences[0] if self.divergences else None

    def side(self, side: Side) -> Verdict:
        return self.client if side == "client" else self.app

    def explanation(self, side: Side) -> Divergence | None:
        """The entry that explains ``side``, where it is known."""
        if self.side(side) != "known":
            return None
        return next((entry for entry in self.divergences if entry.side in (side, "both")), None)


def load_expected(name: str, directory: Path = EXPECTED_DIR) -> Transcript | None:
    path = directory / f"{_file_name(name)}.json"
    if not path.exists():
        return None
    transcript: Transcript = json.loads(path.read_text())
    return transcript


def save_expected(name: str, transcript: Transcript, directory: Path = EXPECTED_DIR) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{_file_name(name)}.json"
    path.write_text(_pretty(transcript) + "\n")
    return path


def load_divergences(path: Path = DIVERGENCES, known_servers: Iterable[str] | None = None) -> list[Divergence]:
    """Read and validate the known-divergence entries."""
    if not path.exists():
        return []
    data = tomllib.loads(path.read_text())
    entries = []
    for number, raw in enumerate(data.get("divergence", []), start=1):
        checks = raw.get("checks", [raw["check"]] if "check" in raw else [])
        where = f"{path.name} entry {number} ({', '.join(checks) or '?'})"
        missing = [key for key in ("servers", "why", "source", "side", "label") if not raw.get(key)]
        if not checks:
            missing.insert(0, "check")
        if missing:
            raise DivergenceFileError(f"{where}: missing {', '.join(missing)}")
        if raw["side"] not in ("client", "app", "both"):
            raise DivergenceFileError(f"{where}: side must be client, app or both, not {raw['side']!r}")
        servers = tuple(raw["servers"])
        if known_servers is not None and (unknown := set(servers) - set(known_servers)):
            raise DivergenceFileError(f"{where}: unknown servers {sorted(unknown)}")
        upstream = tuple(" ".join(link.split()) for link in raw.get("upstream", []))
        entries.append(
            Divergence(
                tuple(checks),
                servers,
                " ".join(raw["why"].split()),
                " ".join(raw["source"].split()),
                raw["side"],
                raw["label"],
                upstream,
            )
        )
    return entries


def load_reference_notes(path: Path = DIVERGENCES) -> list[ReferenceNote]:
    """Read the ``[[reference]]`` entries: what the expected transcripts get wrong, and why they stay."""
    if not path.exists():
        return []
    notes = []
    for number, raw in enumerate(tomllib.loads(path.read_text()).get("reference", []), start=1):
        missing = [key for key in ("checks", "why", "source") if not raw.get(key)]
        if missing:
            raise DivergenceFileError(f"{path.name} reference note {number}: missing {', '.join(missing)}")
        notes.append(ReferenceNote(tuple(raw["checks"]), " ".join(raw["why"].split()), raw["source"]))
    return notes


def judge(outcome: Outcome, expected: Transcript | None, divergences: Sequence[Divergence]) -> Cell:
    """The verdicts for one outcome: each side compared with the expected one, and explained where known."""
    check, server = outcome.check, outcome.server
    if outcome.error is not None or outcome.transcript is None:
        # A check that could not finish says nothing about either side; an entry may still expect that.
        entry = next((entry for entry in divergences if entry.covers(check, server)), None)
        verdict: Verdict = "known" if entry is not None else "error"
        return Cell(check, server, verdict, verdict, divergences=_present(entry), error=outcome.error)
    if expected is None:
        return Cell(check, server, "no baseline", "no baseline", observed=outcome.transcript)
    if outcome.transcript == expected:
        return Cell(check, server, "same", "same", observed=outcome.transcript)
    verdicts: dict[Side, Verdict] = {}
    explanations: list[Divergence] = []
    observed_sides, expected_sides = split_sides(outcome.transcript), split_sides(expected)
    for side, seen, wanted in zip(SIDES, observed_sides, expected_sides, strict=True):
        if seen == wanted:
            verdicts[side] = "same"
            continue
        entry = next((entry for entry in divergences if entry.covers(check, server, side)), None)
        verdicts[side] = "differs" if entry is None else "known"
        if entry is not None and entry not in explanations:
            explanations.append(entry)
    return Cell(
        check,
        server,
        verdicts["client"],
        verdicts["app"],
        diff=transcript_diff(expected, outcome.transcript, server),
        divergences=tuple(explanations),
        observed=outcome.transcript,
    )


def split_sides(transcript: Transcript) -> tuple[Transcript, Transcript]:
    """The transcript's client side and app side, each with the other's keys taken out.

    A key named ``app`` or starting with ``app`` holds what the app saw, at any
    depth; everything else is the client's.  Each side keeps the path to what it
    holds, so ``{"text": {"app": A, "close": C}}`` splits into
    ``{"text": {"close": C}}`` and ``{"text": {"app": A}}``.
    """
    client: Transcript = {}
    app: Transcript = {}
    for key, value in transcript.items():
        if key.startswith(APP_KEY):
            app[key] = value
        elif isinstance(value, dict):
            client_part, app_part = split_sides(value)
            client[key] = client_part
            if app_part:
                app[key] = app_part
        else:
            client[key] = value
    return client, app


def _present(entry: Divergence | None) -> tuple[Divergence, ...]:
    return () if entry is None else (entry,)


def transcript_diff(expected: Transcript, observed: Transcript, server: str) -> str:
    """A unified diff of the two transcripts as sorted, indented JSON."""
    lines = difflib.unified_diff(
        _pretty(expected).splitlines(),
        _pretty(observed).splitlines(),
        fromfile="expected",
        tofile=server,
        lineterm="",
        n=2,
    )
    return "\n".join(lines)


def unexplained(cells: Iterable[Cell]) -> list[Cell]:
    """The cells that make the run fail."""
    return [cell for cell in cells if cell.failing]


def stale(divergences: Sequence[Divergence], cells: Iterable[Cell]) -> list[Divergence]:
    """Entries that explained nothing in this run: the server may have changed."""
    used = {id(entry) for cell in cells for entry in cell.divergences}
    return [entry for entry in divergences if id(entry) not in used]


def cells_by_check(cells: Iterable[Cell]) -> Mapping[str, dict[str, Cell]]:
    table: dict[str, dict[str, Cell]] = {}
    for cell in cells:
        table.setdefault(cell.check, {})[cell.server] = cell
    return table


def _pretty(transcript: Transcript) -> str:
    return json.dumps(transcript, indent=2, sort_keys=True, ensure_ascii=False)


def _file_name(check: str) -> str:
    return check.replace(":", "--").replace("/", "_")
