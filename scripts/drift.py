"""The drift check: what would change if a user installed the newest release of everything today?

uv.lock proves one set of versions (the tests and the published matrix ran with them); a user who runs
``pip install asgi-ws`` gets whatever pyproject.toml's ranges allow on the day. This script builds both
in environments of its own and compares them:

1. ``<out>/locked``: ``scripts/uv sync --locked --extra dev``, exactly the lock;
   ``<out>/newest``: a fresh venv with ``scripts/uv pip install --refresh -e '.[dev]'``, the highest
   versions the ranges allow, the lock ignored;
2. which packages moved, read from each environment (``uv pip list``), not from the lock;
3. the tests in both (``pytest --junitxml``): which test ids changed outcome;
4. the conformance harness in both, without Autobahn: which (check, server) cells changed side.

The report goes to the terminal and to ``<out>/report.md``. Exit status: 0 when no test and no cell
changed (packages that moved alone are not a failure), 1 when one did, 2 when the check itself could not
run (uv failed, a report file is missing).

Run it from anywhere, with the standard library alone (it runs before any venv exists)::

    python3 scripts/drift.py                                   # everything: about 40 minutes
    python3 scripts/drift.py --pytest-args 'tests/test_app.py -x' --scenarios 'echo-*'
    python3 scripts/drift.py --skip-tests --servers uvicorn
    tox -e drift -- --skip-conformance

What it is not: a CI gate (a new release upstream would turn CI red on a day nothing here changed),
nor a source of the published matrix, which ``python -m conformance --publish`` writes from the lock.
It changes nothing in the repository besides ``<out>`` (and the harness's ``.conformance-cache/``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Literal, TypeVar

REPO_ROOT = Path(__file__).resolve().parent.parent
UV = REPO_ROOT / "scripts" / "uv"
PROJECT = "asgi-ws"  # the project itself is in both environments, editable: not a package that moves
ENVS = ("locked", "newest")
DEFAULT_SERVERS = "uvicorn,hypercorn"
DIFF_LINES = 6  # of a changed cell's diff in the report; the whole diff is in the newest conformance report

# Rough durations for the plan printed at the start, measured on a 2-core machine: the whole test suite
# takes about 10 minutes per environment under two servers, conformance without Autobahn a few per server.
INSTALL_MINUTES = 3
TEST_MINUTES_PER_SERVER = 5
CONFORMANCE_MINUTES_PER_SERVER = 3
SELECTION_MINUTES = 1  # a run narrowed by --pytest-args or --scenarios, per environment

Outcome = Literal["passed", "failed", "error", "skipped"]
OUTCOMES: tuple[Outcome, ...] = ("passed", "failed", "error", "skipped")
Say = Callable[[str], None]


class DriftError(Exception):
    """The check itself could not run: one line for stderr."""


# What changed: the same question about packages, tests and cells

Key = TypeVar("Key", str, tuple[str, str])
Value = TypeVar("Value")


@dataclass(frozen=True, slots=True)
class Change(Generic[Key, Value]):
    """A key whose value differs between the environments; ``None`` on the side that lacks it."""

    key: Key
    locked: Value | None
    newest: Value | None


def changes(locked: Mapping[Key, Value], newest: Mapping[Key, Value]) -> list[Change[Key, Value]]:
    """Every key whose value differs (by ``==``) or that one side lacks, in key order."""
    keys = sorted(set(locked) | set(newest))
    return [Change(key, locked.get(key), newest.get(key)) for key in keys if locked.get(key) != newest.get(key)]


# Packages


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares them: lowercase, runs of ``-_.`` as one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_pip_list(text: str) -> dict[str, str]:
    """``uv pip list --format json`` as normalised name -> version, without the project itself."""
    packages = {normalise(entry["name"]): str(entry["version"]) for entry in json.loads(text)}
    packages.pop(PROJECT, None)
    return packages


MovedPackage = Change[str, str]  # name -> version: moved, new (locked is None) or gone (newest is None)


# Tests


# A <testcase>'s child element -> the outcome it records, the first one present winning.
_JUNIT_TAGS: tuple[tuple[str, Outcome], ...] = (("failure", "failed"), ("error", "error"), ("skipped", "skipped"))


def parse_junit(text: str) -> dict[str, Outcome]:
    """pytest's junit XML as test id (``classname::name``) -> outcome.

    pytest adds a teardown error to the test's own ``<testcase>``, so one test can carry a ``<failure>``
    and an ``<error>``: the failure wins, since it is what the test itself found.
    """
    outcomes: dict[str, Outcome] = {}
    for case in ElementTree.fromstring(text).iter("testcase"):
        test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
        tags = {child.tag for child in case}
        outcomes[test_id] = next((outcome for tag, outcome in _JUNIT_TAGS if tag in tags), "passed")
    return outcomes


def read_junit(path: Path) -> dict[str, Outcome]:
    if not path.exists():
        raise DriftError(f"pytest wrote no {path}; its output above says why")
    return parse_junit(path.read_text())


ChangedTest = Change[str, Outcome]  # test id -> outcome; None where it did not run


def tally(outcomes: Mapping[str, Outcome]) -> str:
    """``"120 passed, 3 skipped"``: passed and skipped always, failed and error when there are some."""
    counts = Counter(outcomes.values())
    return ", ".join(
        f"{counts[outcome]} {outcome}" for outcome in OUTCOMES if counts[outcome] or outcome in ("passed", "skipped")
    )


# Conformance cells


@dataclass(frozen=True, slots=True)
class CellResult:
    """One (check, server) cell of a conformance report (``conformance/report.py``, ``_cell_json``).

    Two cells are equal when their sides are: a new diff with the same sides is not a change.
    """

    check: str
    server: str
    client: str  # what the client saw on the wire, against the reference
    app: str  # what the app saw through ASGI, against the reference
    verdict: str = field(compare=False)  # the worse of the two sides
    detail: str = field(compare=False)  # the diff, else the error, else ""


@dataclass(frozen=True, slots=True)
class ConformanceRun:
    """What drift reads of one ``conformance-report.json``."""

    cells: dict[tuple[str, str], CellResult]  # (server, check) -> cell: a report groups them by server
    versions: dict[str, str]  # server -> "package x.y.z, ..."


def parse_conformance(text: str) -> ConformanceRun:
    document = json.loads(text)
    cells = {}
    for cell in document["cells"]:
        result = CellResult(
            check=cell["check"],
            server=cell["server"],
            client=cell["client"],
            app=cell["app"],
            verdict=cell["verdict"],
            detail=cell.get("diff") or cell.get("error") or "",
        )
        cells[result.server, result.check] = result
    return ConformanceRun(cells, dict(document.get("versions", {})))


ChangedCell = Change[tuple[str, str], CellResult]  # (server, check) -> cell; None where it did not run


def shorten(text: str, limit: int = DIFF_LINES) -> list[str]:
    lines = text.splitlines()
    if len(lines) <= limit:
        return lines
    return [*lines[:limit], f"... {len(lines) - limit} more lines"]


# The report


@dataclass(slots=True)
class Findings:
    """Everything one drift run found, for the report and the exit status."""

    date: str  # when it ran
    out: Path  # where the environments and the reports are
    pythons: dict[str, str]  # environment -> its Python version
    what_ran: list[str]  # a line each on the tests and conformance: what was selected
    packages: list[MovedPackage]
    tests: tuple[dict[str, Outcome], dict[str, Outcome]] | None  # (locked, newest); None: --skip-tests
    conformance: tuple[ConformanceRun, ConformanceRun] | None  # (locked, newest); None: --skip-conformance

    def changed_tests(self) -> list[ChangedTest]:
        return changes(*self.tests) if self.tests else []

    def changed_cells(self) -> list[ChangedCell]:
        return changes(self.conformance[0].cells, self.conformance[1].cells) if self.conformance else []


def exit_status(findings: Findings) -> int:
    """1 when a test or a cell changed; packages that moved alone are 0."""
    return 1 if findings.changed_tests() or findings.changed_cells() else 0


def render_report(findings: Findings) -> str:
    tests, cells = findings.changed_tests(), findings.changed_cells()
    envs = " · ".join(f"{env}: Python {findings.pythons.get(env, '?')} (`{findings.out / env}`)" for env in ENVS)
    out = [
        "# Drift: the newest releases against uv.lock",
        "",
        f"{findings.date} · {envs}",
        "",
        *[f"- {line}" for line in findings.what_ran],
        f"- Result: {_result(findings, tests, cells)}.",
        "",
    ]
    out += _packages_section(findings.packages)
    out += _tests_section(findings.tests, tests)
    out += _cells_section(findings, cells)
    return "\n".join(out).rstrip() + "\n"


def _result(findings: Findings, tests: list[ChangedTest], cells: list[ChangedCell]) -> str:
    """``"2 packages moved, 0 tests changed, 1 cell changed"``, of the stages that ran."""
    parts = [f"{_plural(len(findings.packages), 'package')} moved"]
    if findings.tests is not None:
        parts.append(f"{_plural(len(tests), 'test')} changed")
    if findings.conformance is not None:
        parts.append(f"{_plural(len(cells), 'cell')} changed")
    return ", ".join(parts)


def _packages_section(packages: list[MovedPackage]) -> list[str]:
    out = ["## Packages moved", ""]
    if not packages:
        return [*out, "None: the newest releases allowed are the locked ones.", ""]
    new = sum(package.locked is None for package in packages)
    gone = sum(package.newest is None for package in packages)
    out += [f"{len(packages) - new - gone} moved, {new} new, {gone} gone.", "", "| package | locked | newest |"]
    out.append("|---|---|---|")
    out += [f"| {p.key} | {p.locked or 'not installed'} | {p.newest or 'not installed'} |" for p in packages]
    return [*out, ""]


def _tests_section(runs: tuple[dict[str, Outcome], dict[str, Outcome]] | None, changed: list[ChangedTest]) -> list[str]:
    out = ["## Tests changed", ""]
    if runs is None:
        return [*out, "Not run (--skip-tests).", ""]
    if not changed:
        return [*out, f"No test changed: {tally(runs[0])} in both.", ""]
    out += [f"Locked: {tally(runs[0])}. Newest: {tally(runs[1])}.", "", "| test | locked | newest |", "|---|---|---|"]
    out += [f"| `{_cell(t.key)}` | {t.locked or 'not run'} | {t.newest or 'not run'} |" for t in changed]
    return [*out, ""]


def _cells_section(findings: Findings, changed: list[ChangedCell]) -> list[str]:
    out = ["## Matrix cells changed", ""]
    if findings.conformance is None:
        return [*out, "Not run (--skip-conformance).", ""]
    locked, newest = findings.conformance
    out += ["| server | locked | newest |", "|---|---|---|"]
    for server in sorted(set(locked.versions) | set(newest.versions)):
        out.append(
            f"| {server} | {locked.versions.get(server, 'not run')} | {newest.versions.get(server, 'not run')} |"
        )
    out.append("")
    if not changed:
        return [*out, f"No cell changed: {_plural(len(locked.cells), 'cell')}.", ""]
    out += ["Sides are client / app: what the client saw on the wire, what the app saw through ASGI.", ""]
    out += ["| check | server | locked | newest |", "|---|---|---|---|"]
    for change in changed:
        server, check = change.key
        out.append(f"| `{check}` | {server} | {_sides(change.locked)} | {_sides(change.newest)} |")
    report = findings.out / "newest" / "conformance" / "conformance-report.md"
    out += ["", f"The newest run's diffs, shortened (whole in `{report}`):", ""]
    for change in changed:
        cell = change.newest
        if cell is None or not cell.detail:
            continue
        out += [f"`{cell.check}` under {cell.server}:", "", "```", *shorten(cell.detail), "```", ""]
    return out


def _sides(cell: CellResult | None) -> str:
    return f"{cell.client} / {cell.app}" if cell else "not run"


def _cell(text: str) -> str:
    """Text for a Markdown table cell: a ``|`` would end it."""
    return text.replace("|", "\\|")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def plan(args: argparse.Namespace, out: Path) -> list[str]:
    """What the run will do and roughly how long it takes, for the first lines it prints."""
    servers = _servers(args.servers)
    minutes = INSTALL_MINUTES
    steps = [
        f"environments in {out}: locked (uv sync --locked) and newest (uv pip install --refresh, the lock ignored)"
    ]
    if args.skip_tests:
        steps.append("tests: skipped")
    elif args.pytest_args:
        minutes += 2 * SELECTION_MINUTES
        steps.append(f"tests in both: pytest {args.pytest_args} under {', '.join(servers)}")
    else:
        minutes += 2 * TEST_MINUTES_PER_SERVER * len(servers)
        steps.append(f"tests in both: the whole suite under {', '.join(servers)}, about 10 minutes per environment")
    if args.skip_conformance:
        steps.append("conformance: skipped")
    else:
        selection = f"scenarios {args.scenarios}" if args.scenarios else "every check"
        minutes += 2 * (SELECTION_MINUTES if args.scenarios else CONFORMANCE_MINUTES_PER_SERVER * len(servers))
        steps.append(f"conformance in both, without Autobahn: {selection} under {', '.join(servers)}")
    return [*steps, f"roughly {minutes} minutes in all (the first install downloads more)"]


def _servers(raw: str) -> list[str]:
    names = [name.strip() for name in raw.split(",") if name.strip()]
    if not names:
        raise DriftError(f"--servers {raw!r}: expected comma-separated server names")
    return names


# Running things


def _run(argv: Sequence[str | Path], what: str, env: Mapping[str, str] | None = None) -> int:
    """Run a command from the repository root, its output straight to the terminal; its exit status."""
    try:
        return subprocess.run([str(arg) for arg in argv], cwd=REPO_ROOT, env=env, check=False).returncode
    except OSError as exc:
        raise DriftError(f"{what}: cannot run {argv[0]}: {exc}") from exc


def _uv(argv: Sequence[str | Path], what: str, extra_env: Mapping[str, str] | None = None) -> None:
    # A VIRTUAL_ENV from the caller (tox -e drift runs inside one) is not where these installs go.
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    env.update(extra_env or {})
    status = _run([UV, *argv], what, env)
    if status != 0:
        raise DriftError(f"{what} failed (uv exit status {status}); its output is above")


def _in_env(env_dir: Path, servers: str) -> dict[str, str]:
    """The environment variables of a command run in ``env_dir``, as if it were activated."""
    env = dict(os.environ, VIRTUAL_ENV=str(env_dir), ASGI_WS_TEST_SERVERS=servers)
    env["PATH"] = os.pathsep.join([str(env_dir / "bin"), env.get("PATH", "")])
    return env


def make_locked(env_dir: Path) -> None:
    _uv(
        ["sync", "--locked", "--extra", "dev", "--python", "python3"],
        "uv sync --locked (the locked environment)",
        {"UV_PROJECT_ENVIRONMENT": str(env_dir)},
    )


def make_newest(env_dir: Path) -> None:
    _uv(["venv", env_dir, "--python", "python3", "--clear"], "uv venv (the newest environment)")
    # --refresh: a release of this morning must not be hidden by what uv's cache knew yesterday.
    _uv(
        ["pip", "install", "--python", env_dir / "bin" / "python", "--refresh", "-e", ".[dev]"],
        "uv pip install (the newest environment)",
    )


def list_packages(env_dir: Path) -> dict[str, str]:
    argv = [str(UV), "pip", "list", "--python", str(env_dir / "bin" / "python"), "--format", "json"]
    result = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise DriftError(f"uv pip list in {env_dir} failed (exit status {result.returncode}): {last}")
    return parse_pip_list(result.stdout)


def python_version(env_dir: Path) -> str:
    argv = [str(env_dir / "bin" / "python"), "-c", "import platform; print(platform.python_version())"]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    return result.stdout.strip() or "?"


def run_pytest(env_dir: Path, servers: str, pytest_args: Sequence[str]) -> dict[str, Outcome]:
    junit = env_dir / "junit.xml"
    junit.unlink(missing_ok=True)  # a junit.xml left by the last run must not pass for this one's
    argv: list[str | Path] = [env_dir / "bin" / "python", "-m", "pytest", "-p", "no:cacheprovider", "-q"]
    argv.append(f"--junitxml={junit}")
    status = _run([*argv, *pytest_args], f"pytest in {env_dir.name}", _in_env(env_dir, servers))
    # 0 passed, 1 failed, 2 interrupted (collection errors are in the XML), 5 nothing collected: data.
    # 3 and 4 are pytest's internal and usage errors: bad --pytest-args, or a conftest that no longer imports.
    if status in (3, 4):
        raise DriftError(
            f"pytest in {env_dir.name} stopped with a usage or internal error (exit status {status}): "
            "bad --pytest-args, or a conftest that no longer imports; its output is above"
        )
    return read_junit(junit)


def run_conformance(env_dir: Path, servers: str, scenarios: str | None) -> ConformanceRun:
    out = env_dir / "conformance"
    report = out / "conformance-report.json"
    report.unlink(missing_ok=True)
    argv: list[str | Path] = [env_dir / "bin" / "python", "-m", "conformance", "--servers", servers]
    argv += ["--skip-autobahn", "--out", out, *(["--scenarios", scenarios] if scenarios else [])]
    status = _run(argv, f"conformance in {env_dir.name}", _in_env(env_dir, servers))
    # 1 means unexplained cells, which is what drift compares; a crash also exits 1, but writes no report.
    if status not in (0, 1):
        raise DriftError(f"conformance in {env_dir.name} failed (exit status {status}); its output is above")
    if not report.exists():
        raise DriftError(f"conformance in {env_dir.name} wrote no {report} (exit status {status})")
    return parse_conformance(report.read_text())


# The command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python3 scripts/drift.py",
        description="Install the newest release of everything pyproject.toml allows beside exactly what uv.lock "
        "pins, each in an environment of its own under --out, then report which packages moved and which tests and "
        "conformance cells (no Autobahn) changed. Exit 0: nothing changed; 1: a test or a cell changed; 2: the "
        "check could not run. Not a CI gate. The whole run takes about 40 minutes; narrow it with the options.",
        epilog="A few minutes: python3 scripts/drift.py --pytest-args 'tests/test_app.py' --scenarios 'echo-*'",
    )
    parser.add_argument(
        "--servers", default=DEFAULT_SERVERS, help=f"for tests and conformance (default {DEFAULT_SERVERS})"
    )
    parser.add_argument(
        "--pytest-args", default="", help="appended to pytest, shell-quoted, e.g. 'tests/test_app.py -x' (default: all)"
    )
    parser.add_argument("--scenarios", help="passed to conformance, e.g. 'echo-*,probe-*' (default: every check)")
    parser.add_argument("--skip-tests", action="store_true", help="do not run pytest")
    parser.add_argument("--skip-conformance", action="store_true", help="do not run the conformance harness")
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / ".drift", help="environments and reports (default .drift/ in the repo)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out: Path = args.out.resolve()
    say = _printer(time.monotonic())
    try:
        for line in plan(args, out):
            say(line)
        findings = _drift(args, out, say)
        report = render_report(findings)
        (out / "report.md").write_text(report)
    except (DriftError, OSError) as exc:
        print(f"drift: error: {exc}", file=sys.stderr)
        return 2
    say(f"wrote {out / 'report.md'}")
    print("\n" + report, end="", flush=True)
    return exit_status(findings)


def _drift(args: argparse.Namespace, out: Path, say: Say) -> Findings:
    locked, newest = out / "locked", out / "newest"
    servers = ",".join(_servers(args.servers))
    pytest_args = shlex.split(args.pytest_args)
    out.mkdir(parents=True, exist_ok=True)
    say(f"the locked environment: uv sync --locked --extra dev into {locked}")
    make_locked(locked)
    say(f"the newest environment: uv venv --clear, then uv pip install --refresh -e '.[dev]' into {newest}")
    make_newest(newest)
    say("which packages moved: uv pip list in both")
    packages = changes(list_packages(locked), list_packages(newest))
    say(f"{_plural(len(packages), 'package')} moved, new or gone")

    what_ran: list[str] = []
    tests: tuple[dict[str, Outcome], dict[str, Outcome]] | None = None
    if not args.skip_tests:
        selection = f"pytest {shlex.join(pytest_args)}" if pytest_args else "the whole suite"
        say(f"tests in locked: {selection}, ASGI_WS_TEST_SERVERS={servers}")
        tests_locked = run_pytest(locked, servers, pytest_args)
        say(f"tests in newest: {selection}, ASGI_WS_TEST_SERVERS={servers}")
        tests = (tests_locked, run_pytest(newest, servers, pytest_args))
        shown = f"`{selection}`" if pytest_args else selection
        what_ran.append(f"Tests: {shown} with ASGI_WS_TEST_SERVERS={servers}.")
    conformance: tuple[ConformanceRun, ConformanceRun] | None = None
    if not args.skip_conformance:
        say(f"conformance in locked: servers {servers}, {args.scenarios or 'every check'}, no Autobahn")
        conformance_locked = run_conformance(locked, servers, args.scenarios)
        say(f"conformance in newest: servers {servers}, {args.scenarios or 'every check'}, no Autobahn")
        conformance = (conformance_locked, run_conformance(newest, servers, args.scenarios))
        scenarios = f"scenarios `{args.scenarios}`" if args.scenarios else "every check"
        what_ran.append(f"Conformance: servers {servers}, {scenarios}, without Autobahn.")
    pythons = {env: python_version(out / env) for env in ENVS}
    date = time.strftime("%Y-%m-%d %H:%M %Z")
    return Findings(date, out, pythons, what_ran, packages, tests, conformance)


def _printer(started: float) -> Say:
    def say(line: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] drift: {line}", flush=True)

    return say


if __name__ == "__main__":
    sys.exit(main())
