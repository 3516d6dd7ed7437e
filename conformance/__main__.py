"""``python -m conformance`` (also ``asgi-ws-conformance``): run every stage, write the report.

Stages, for every selected server that is installed (SPEC §0 order):

1. **scenarios**: the app under test, driven by real clients;
2. **probes**: the probe app, recording how the server speaks raw ASGI;
3. **Autobahn**: the Autobahn|Testsuite fuzzing client against the echo path.

Then every outcome is judged against ``conformance/expected/`` and
``conformance/divergences.toml`` (:mod:`conformance.verdicts`), the report is
written, and the exit status is 1 if any difference is unexplained.

Examples::

    python -m conformance                                  # everything, every server
    python -m conformance --servers uvicorn,hypercorn --skip-autobahn
    python -m conformance --scenarios 'stream-*,probe-scope*'
    python -m conformance --app myapp:app --echo-path /ws/echo
    python -m conformance --servers anycorn --skip-scenarios         # probes and Autobahn only
    python -m conformance --server-command 'mine=mine --bind {bind} {app}' --skip-scenarios
    python -m conformance --publish                        # also docs/server-divergences.md
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path

from asgi_ws.servers import SERVERS, Server

from . import probes, scenarios  # noqa: F401  (importing registers the checks)
from .autobahn_stage import CASE_SETS, run_autobahn_stage
from .checks import CHECKS, Check
from .launcher import APP, REPO_ROOT
from .report import Report, write_html, write_json, write_markdown
from .runner import Outcome, run_checks
from .verdicts import (
    DivergenceFileError,
    judge,
    load_divergences,
    load_expected,
    load_reference_notes,
    save_expected,
    stale,
)

__all__ = ["main"]

PUBLISHED = REPO_ROOT / "docs" / "server-divergences.md"
CACHE = REPO_ROOT / ".conformance-cache"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m conformance",
        description="Run the same app under every ASGI server and report where they differ (SPEC §5).",
    )
    parser.add_argument(
        "--servers", help=f"comma-separated, from {', '.join(SERVERS)} (default: all of them; missing ones are skipped)"
    )
    parser.add_argument("--scenarios", help="comma-separated check names or patterns, e.g. 'stream-*,probe-*'")
    parser.add_argument("--app", default=APP, help=f"ASGI app under test, module:attr (default {APP})")
    parser.add_argument("--echo-path", default="/echo", help="the app's pure echo endpoint (default /echo)")
    parser.add_argument("--skip-autobahn", action="store_true", help="do not run the Autobahn stage")
    parser.add_argument("--skip-probes", action="store_true", help="do not run the server probes")
    parser.add_argument(
        "--skip-scenarios", action="store_true", help="do not run the scenarios: probes and Autobahn only"
    )
    parser.add_argument(
        "--server-command",
        action="append",
        default=[],
        metavar="NAME=TEMPLATE",
        help="a server that is not in asgi_ws.servers, for this run: its command after 'python -m', with "
        "{host}, {port} or {bind}, and {app}; e.g. 'mine=mine --bind {bind} {app}'. "
        "Without --servers, only these servers run",
    )
    parser.add_argument(
        "--autobahn-cases",
        choices=list(CASE_SETS),
        default="default",
        help="minimum: 1-7, 10; default: also 9 and a sample of 12-13; extended: all of 12-13 (slow)",
    )
    parser.add_argument("--out", type=Path, default=Path("."), help="where the report files go (default .)")
    parser.add_argument("--html", action="store_true", help="also write conformance-report.html")
    parser.add_argument("--publish", action="store_true", help=f"also write {PUBLISHED.relative_to(REPO_ROOT)}")
    parser.add_argument(
        "--update-expected", metavar="SERVER", help="record SERVER's transcripts as the expected ones, then judge"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.monotonic()
    command = _command_line(argv if argv is not None else sys.argv[1:])
    try:
        ad_hoc = [_ad_hoc_server(raw) for raw in args.server_command]
        SERVERS.update((server.name, server) for server in ad_hoc)
        servers = _servers(args.servers) if args.servers or not ad_hoc else [server.name for server in ad_hoc]
        divergences = load_divergences(known_servers=SERVERS)
        reference_notes = load_reference_notes()
    except (ValueError, DivergenceFileError) as exc:
        print(f"conformance: error: {exc}", file=sys.stderr)
        return 2
    checks = _select(args)
    if not checks:
        print("conformance: error: --scenarios matched no check", file=sys.stderr)
        return 2
    installed = [name for name in servers if SERVERS[name].installed()]
    skipped = {
        name: f"not installed ({', '.join(SERVERS[name].missing())})" for name in servers if name not in installed
    }
    say = _printer(started)
    for name, reason in skipped.items():
        say(f"skip {name}: {reason}")

    work_dir = CACHE / "runs" / time.strftime("%Y%m%d-%H%M%S")
    outcomes: list[Outcome] = []
    for server in installed:
        say(f"== {server}: {len(checks)} checks")
        outcomes += run_checks(server, checks, app=args.app, echo_path=args.echo_path, work_dir=work_dir, progress=say)

    if args.update_expected:
        recorded = [outcome for outcome in outcomes if outcome.server == args.update_expected and outcome.transcript]
        for outcome in recorded:
            assert outcome.transcript is not None
            save_expected(outcome.check, outcome.transcript)
        say(f"recorded {len(recorded)} expected transcripts from {args.update_expected}")

    cells = [judge(outcome, load_expected(outcome.check), divergences) for outcome in outcomes]
    autobahn: dict[str, object] = {}
    if not args.skip_autobahn:
        say("== autobahn")
        autobahn, autobahn_cells = run_autobahn_stage(
            installed,
            app=args.app,
            echo_path=args.echo_path,
            cases=args.autobahn_cases,
            work_dir=work_dir,
            cache_dir=CACHE,
            divergences=divergences,
            progress=say,
        )
        cells += autobahn_cells

    ran = set(installed)
    notes = [
        f"divergence entry `{entry.check}` ({', '.join(entry.servers)}) explained nothing in this run"
        for entry in stale(divergences, cells)
        if set(entry.servers) <= ran and any(entry.covers(check.name, entry.servers[0]) for check in checks)
    ]
    report = Report(command, installed, _versions(installed), skipped, cells, divergences, autobahn, notes)
    report.reference_notes, report.ran_on = reference_notes, _ran_on()
    _write(report, args, say)
    failing = report.failing
    say(f"done: {len(cells)} cells, {len(failing)} unexplained, in {time.monotonic() - started:.0f} s")
    for cell in failing:
        say(f"  {cell.verdict}: {cell.check} under {cell.server}")
    return 1 if failing else 0


def _command_line(argv: Sequence[str]) -> str:
    """The command as the report shows it: without --out, which only says where this copy was written."""
    shown: list[str] = []
    skip_next = False
    for arg in argv:
        if skip_next:
            skip_next = False
        elif arg == "--out":
            skip_next = True
        elif not arg.startswith("--out="):
            shown.append(arg)
    return " ".join(["python -m conformance", shlex.join(shown)]).rstrip()


def _servers(raw: str | None) -> list[str]:
    if raw is None:
        return list(SERVERS)
    names = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = [name for name in names if name not in SERVERS]
    if unknown or not names:
        raise ValueError(f"--servers {raw!r}: expected names from {', '.join(SERVERS)}")
    return names


def _ad_hoc_server(raw: str) -> Server:
    """``--server-command NAME=TEMPLATE`` as a registry entry: no worker or ping flags of its own."""
    name, _, template = raw.partition("=")
    if not name.strip() or not template.strip():
        raise ValueError(f"--server-command {raw!r}: expected NAME=TEMPLATE")
    if name.strip() in SERVERS:
        raise ValueError(f"--server-command {raw!r}: {name.strip()} is already a server")
    package = shlex.split(template)[0]  # run with python -m, so it must be importable
    return Server(name.strip(), template, (package,), no_ping="an ad-hoc server: any ping flags are in its command")


def _select(args: argparse.Namespace) -> list[Check]:
    """The checks to run: generic scenarios only for another app; filtered by --scenarios."""
    patterns = [part.strip() for part in (args.scenarios or "*").split(",") if part.strip()]
    other_app = args.app != APP
    selected = []
    for check in CHECKS.values():
        if check.kind == "probe" and args.skip_probes:
            continue
        if check.kind == "scenario" and args.skip_scenarios:
            continue
        if check.kind == "scenario" and other_app and not check.generic:
            continue
        if any(fnmatch.fnmatchcase(check.name, pattern) for pattern in patterns):
            selected.append(check)
    return selected


def _ran_on() -> str:
    """When and on what the run happened, for the published matrix."""
    return (
        f"{time.strftime('%Y-%m-%d')}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs"
    )


def _versions(servers: Sequence[str]) -> dict[str, str]:
    versions = {}
    for server in servers:
        versions[server] = ", ".join(f"{name} {_version(name)}" for name in SERVERS[server].packages)
    return versions


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def _write(report: Report, args: argparse.Namespace, say: Callable[[str], None]) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    written = [args.out / "conformance-report.md", args.out / "conformance-report.json"]
    write_markdown(report, written[0])
    write_json(report, written[1])
    if args.html:
        written.append(args.out / "conformance-report.html")
        write_html(report, written[-1])
    if args.publish:
        written.append(PUBLISHED)
        write_markdown(report, PUBLISHED, title="ASGI WebSocket server divergence matrix")
    say("wrote " + ", ".join(str(path) for path in written))


def _printer(started: float) -> Callable[[str], None]:
    def say(line: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {line}", flush=True)

    return say


if __name__ == "__main__":
    sys.exit(main())
