"""Judge outcomes: same as expected, differs, known server divergence, or error (SPEC §5).

Every check has an **expected transcript** in ``conformance/expected/<name>.json``.
For scenarios it is what SPEC §1 and §3 say the app does, as seen through
uvicorn (websockets-sansio), the reference server.  For probes it is simply
uvicorn's behaviour: probes record how servers differ from each other, and
uvicorn is the one they are all compared with.  The files are recorded with
``python -m conformance --update-expected uvicorn`` and reviewed like code.

A server whose transcript differs from the expected one is a **known server
divergence** when ``conformance/divergences.toml`` has an entry for that check
and server, with a one-sentence explanation and a source (the server's file
and behaviour, or an issue URL).  Otherwise it **differs**, and the run fails.

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
    "Cell",
    "Divergence",
    "DivergenceFileError",
    "ReferenceNote",
    "Verdict",
    "judge",
    "load_divergences",
    "load_expected",
    "load_reference_notes",
    "save_expected",
    "unexplained",
]

HERE = Path(__file__).resolve().parent
EXPECTED_DIR = HERE / "expected"
DIVERGENCES = HERE / "divergences.toml"

Verdict = Literal["same", "differs", "known", "error", "no baseline"]
FAILING: frozenset[Verdict] = frozenset({"differs", "error", "no baseline"})


class DivergenceFileError(ValueError):
    """``divergences.toml`` is malformed.  The message names the entry and the problem."""


@dataclass(frozen=True, slots=True)
class Divergence:
    """A server behaviour that differs from the expected transcript, explained."""

    checks: tuple[str, ...]  # check names, or fnmatch patterns such as "autobahn:6.4.*"
    servers: tuple[str, ...]  # the servers it applies to
    why: str  # one sentence
    source: str  # server file and behaviour, or an issue URL

    @property
    def check(self) -> str:
        """The checks, as one label."""
        return ", ".join(self.checks)

    def covers(self, check: str, server: str) -> bool:
        return server in self.servers and any(fnmatch.fnmatchcase(check, pattern) for pattern in self.checks)


@dataclass(frozen=True, slots=True)
class ReferenceNote:
    """Where the reference itself departs from RFC 6455, so that "same" is not read as "correct"."""

    checks: tuple[str, ...]  # the checks whose expected transcripts carry the departure
    why: str  # one sentence: what the reference does, and what the RFC says
    source: str  # the reference's file and function


@dataclass(frozen=True, slots=True)
class Cell:
    """The verdict for one check under one server: a cell of the report's matrix."""

    check: str
    server: str
    verdict: Verdict
    diff: str | None = None  # unified diff expected -> observed, when they differ
    divergence: Divergence | None = None  # the explanation, when known
    error: str | None = None  # why the check could not finish

    @property
    def failing(self) -> bool:
        return self.verdict in FAILING


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
        missing = [key for key in ("servers", "why", "source") if not raw.get(key)]
        if not checks:
            missing.insert(0, "check")
        if missing:
            raise DivergenceFileError(f"{where}: missing {', '.join(missing)}")
        servers = tuple(raw["servers"])
        if known_servers is not None and (unknown := set(servers) - set(known_servers)):
            raise DivergenceFileError(f"{where}: unknown servers {sorted(unknown)}")
        entries.append(Divergence(tuple(checks), servers, " ".join(raw["why"].split()), raw["source"]))
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
    """The verdict for one outcome."""
    divergence = next((entry for entry in divergences if entry.covers(outcome.check, outcome.server)), None)
    if outcome.error is not None or outcome.transcript is None:
        if divergence is not None:
            return Cell(outcome.check, outcome.server, "known", divergence=divergence, error=outcome.error)
        return Cell(outcome.check, outcome.server, "error", error=outcome.error)
    if expected is None:
        return Cell(outcome.check, outcome.server, "no baseline")
    if outcome.transcript == expected:
        return Cell(outcome.check, outcome.server, "same")
    diff = transcript_diff(expected, outcome.transcript, outcome.server)
    if divergence is not None:
        return Cell(outcome.check, outcome.server, "known", diff=diff, divergence=divergence)
    return Cell(outcome.check, outcome.server, "differs", diff=diff)


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
    used = {id(cell.divergence) for cell in cells if cell.divergence is not None}
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
