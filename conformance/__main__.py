"""``python -m conformance`` (also ``asgi-ws-conformance``): run every stage, write the report.

Stages, for every selected server that is installed (contract §0 order):

1. **scenarios**: the app under test, driven by real clients;
2. **probes**: the probe app, recording how the server speaks raw ASGI;
3. **Autobahn**: the Autobahn|Testsuite fuzzing client against the echo path.

Then every outcome is judged against ``conformance/expected/`` and
``conformance/divergences.toml`` (:mod:`conformance.verdicts`), the report is
written, and the exit status is 1 if any difference is unexplained.

Examples::

    python -m conformance                                  # everything, every server
    python -m conformance --list                           # the checks, grouped, each with its summary
    python -m conformance --servers uvicorn,hypercorn --skip-autobahn
    python -m conformance --scenarios 'stream-*,probe-scope*'
    python -m conformance --app myapp:app --echo-path /ws/echo
    python -m conformance --servers anycorn --skip-scenarios         # probes and Autobahn only
    python -m conformance --server-command 'mine=mine --bind {bind} {app}' --skip-scenarios
    python -m conformance --publish                        # also docs/server-divergences.md
    python -m conformance --rejudge .conformance-cache/runs/20261129-101500 --publish

Every run keeps what it observed in ``<run dir>/run.json`` (the run directory is
printed at the start), so that ``--rejudge`` can judge it again and rewrite the
report after an edit of ``divergences.toml`` or of the report, without running
any server.
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from pathlib import Path

from asgi_ws.servers import SERVERS, Server

from . import probes, published, scenarios, versions  # noqa: F401  (probes and scenarios: importing registers the checks)
from .autobahn_stage import CASE_SETS, EXPECTED_CASE, run_autobahn_stage
from .checks import CHECKS, HTTP1, TRANSPORTS, Check, Transcript, Transport, column, columns_of
from .launcher import APP, REPO_ROOT, SERVERS_OWN_DEFLATE, launch_listen
from .report import Report, write_html, write_json, write_markdown, write_portability
from .runner import Outcome, run_checks
from .summary import headlines
from .transports import Offer, offer
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
PORTABILITY = REPO_ROOT / "docs" / "portability.md"  # the portability guide, beside the matrix it links to
CACHE = REPO_ROOT / ".conformance-cache"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m conformance",
        description="Run the same app under every ASGI server and report where they differ (contract §5).",
    )
    parser.add_argument(
        "--servers", help=f"comma-separated, from {', '.join(SERVERS)} (default: all of them; missing ones are skipped)"
    )
    parser.add_argument("--scenarios", help="comma-separated check names or patterns, e.g. 'stream-*,probe-*'")
    parser.add_argument(
        "--list",
        action="store_true",
        help="run nothing: print the checks the other options select, grouped, each with its summary",
    )
    parser.add_argument("--app", default=APP, help=f"ASGI app under test, module:attr (default {APP})")
    parser.add_argument("--echo-path", default="/echo", help="the app's pure echo endpoint (default /echo)")
    parser.add_argument(
        "--transports",
        default="http/1.1,h2",
        help=f"comma-separated, from {', '.join(TRANSPORTS)} (default http/1.1,h2): the scenarios run over HTTP/2 "
        "under each server that advertises WebSockets there (contract §11)",
    )
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
    parser.add_argument(
        "--publish",
        action="store_true",
        help=f"also write {PUBLISHED.relative_to(REPO_ROOT)}, {PORTABILITY.relative_to(REPO_ROOT)}, "
        "docs/server-summary.json and the docs that quote it",
    )
    parser.add_argument(
        "--update-expected", metavar="SERVER", help="record SERVER's transcripts as the expected ones, then judge"
    )
    parser.add_argument(
        "--rejudge",
        metavar="RUN_DIR",
        type=Path,
        help="run nothing: judge the outcomes kept in RUN_DIR/run.json again and write the report",
    )
    return parser


@dataclasses.dataclass(slots=True)
class Run:
    """What one run observed, before any judging: kept as ``run.json`` for ``--rejudge``."""

    command: str  # how it was started
    ran_on: str  # date, Python and machine
    servers: list[str]  # the servers run, in the registry's order (asgi_ws.servers.SERVERS)
    versions: dict[str, str]  # server -> its packages' versions
    launcher_flags: dict[str, str]  # server -> the flags the launcher sets beyond choosing the server
    skipped: dict[str, str]  # server -> why it was not run
    checks: list[str]  # the checks selected, in registration order
    outcomes: list[Outcome]  # scenarios, probes and failed Autobahn cases
    autobahn: dict[str, object]  # the Autobahn section of the report ({} when not run)
    packages: dict[str, str]  # every package the servers, the app and the client stood on -> its version
    # Per HTTP/2 transport run: server -> what it offers there (conformance.transports); where it advertises
    # WebSockets, the scenarios ran over it, in the column "<server> over <transport>".
    offers: dict[Transport, dict[str, Offer]] = dataclasses.field(default_factory=dict)
    transports: list[str] = dataclasses.field(default_factory=lambda: [HTTP1])  # those the run was asked for

    @property
    def columns(self) -> list[str]:
        """The report's columns: every server over HTTP/1.1 if it ran, then every server and transport that served."""
        served = [
            column(server, transport)
            for transport, by_server in self.offers.items()
            for server, found in by_server.items()
            if found.served
        ]
        return [*(self.servers if HTTP1 in self.transports else []), *served]

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(dataclasses.asdict(self), indent=1, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, path: Path) -> Run:
        data = json.loads(path.read_text())
        data["outcomes"] = [Outcome(**outcome) for outcome in data["outcomes"]]
        data.setdefault("launcher_flags", {})  # not kept by runs before it was reported
        data.setdefault("packages", {})  # nor this
        offers = data.get("offers", {})
        data["offers"] = {
            transport: {server: Offer(**found) for server, found in offers[transport].items()}
            for transport in TRANSPORTS
            if transport in offers
        }
        return cls(**data)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    started = time.monotonic()
    say = _printer(started)
    if args.list:
        print(_listing(_select(args), args), end="")
        return 0
    try:
        registry = _registry(args.server_command)
        divergences = load_divergences(known_servers=columns_of(registry))
        reference_notes = load_reference_notes()
        run = _rejudged(args.rejudge) if args.rejudge else _run(args, say, registry)
    except (ValueError, DivergenceFileError, OSError) as exc:
        print(f"conformance: error: {exc}", file=sys.stderr)
        return 2

    cells = [judge(outcome, _expected(outcome.check), divergences) for outcome in run.outcomes]
    ran = set(run.servers)
    notes = [
        f"divergence entry `{entry.check}` ({', '.join(entry.servers)}) explained nothing in this run"
        for entry in stale(divergences, cells)
        if set(entry.servers) <= ran and any(entry.covers(check, entry.servers[0]) for check in run.checks)
    ]
    report = Report(run.command, run.columns, run.versions, run.skipped, cells, divergences, run.autobahn, notes)
    report.reference_notes, report.ran_on, report.launcher_flags = reference_notes, run.ran_on, run.launcher_flags
    report.packages, report.offers = run.packages, run.offers
    _write(report, args, say)
    for headline in headlines(cells, run.columns).values():
        say(headline.line)
    failing = report.failing
    say(f"done: {len(cells)} cells, {len(failing)} differing with no entry, in {time.monotonic() - started:.0f} s")
    for cell in failing:
        say(f"  {cell.verdict}: {cell.check} under {cell.server}")
    return 1 if failing else 0


def _run(args: argparse.Namespace, say: Callable[[str], None], registry: Mapping[str, Server]) -> Run:
    """Start every selected server, run the checks and Autobahn; what they observed, kept in run.json.

    ``registry``: the servers to choose from; those given with --server-command are the ones run unless
    --servers names others.
    """
    checks = _select(args)
    if not checks:
        raise ValueError("--scenarios matched no check")
    installed, skipped = _chosen(args, registry, say)

    work_dir = CACHE / "runs" / time.strftime("%Y%m%d-%H%M%S")
    say(f"run directory: {work_dir}")
    transports = _transports(args.transports)
    outcomes: list[Outcome] = []
    offers: dict[Transport, dict[str, Offer]] = {}
    for server in installed:
        if HTTP1 in transports:
            say(f"== {server.name}: {len(checks)} checks")
            outcomes += run_checks(
                server, checks, app=args.app, echo_path=args.echo_path, work_dir=work_dir, progress=say
            )
        for transport in (transport for transport in transports if transport != HTTP1):
            outcomes += _over(server, transport, checks, args, work_dir, offers, say)

    if args.update_expected:
        _record_expected(outcomes, args.update_expected, say)

    autobahn: dict[str, object] = {}
    if not args.skip_autobahn:
        say("== autobahn")
        autobahn, failed_cases = run_autobahn_stage(
            installed,
            app=args.app,
            echo_path=args.echo_path,
            cases=args.autobahn_cases,
            work_dir=work_dir,
            cache_dir=CACHE,
            progress=say,
        )
        outcomes += failed_cases

    command = _command_line(args.argv)
    names = [check.name for check in checks]
    run = Run(
        command,
        _ran_on(),
        [server.name for server in installed],
        _versions(installed, transports),
        _launcher_flags(installed, transports),
        skipped,
        names,
        outcomes,
        autobahn,
        _packages(installed),
        offers,
        list(transports),
    )
    columns = set(run.columns)  # the versions and flags of a column only where there is one
    run.versions = {name: text for name, text in run.versions.items() if name in columns}
    run.launcher_flags = {name: text for name, text in run.launcher_flags.items() if name in columns}
    run.save(work_dir / "run.json")
    return run


def _over(
    server: Server,
    transport: Transport,
    checks: Sequence[Check],
    args: argparse.Namespace,
    work_dir: Path,
    offers: dict[Transport, dict[str, Offer]],
    say: Callable[[str], None],
) -> list[Outcome]:
    """The scenarios under ``server`` over an HTTP/2 ``transport``, if it advertises WebSockets there."""
    name = column(server.name, transport)
    found = offer(
        server, transport, work_dir / name.replace(" ", "-") / "offer", app=args.app, echo_path=args.echo_path
    )
    offers.setdefault(transport, {})[server.name] = found
    over = [check for check in checks if check.kind == "scenario" and check.http1_only is None]
    if not found.served or not over:
        say(f"== {name}: not run: {server.name} {found.found}")
        return []
    say(f"== {name}: {len(over)} scenarios ({server.name} {found.found})")
    return run_checks(
        server, over, app=args.app, echo_path=args.echo_path, work_dir=work_dir, progress=say, transport=transport
    )


def _transports(raw: str) -> list[Transport]:
    """The transports ``--transports`` names, in the order given."""
    names = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = [name for name in names if name not in TRANSPORTS]
    if unknown or not names:
        raise ValueError(f"--transports {raw!r}: expected names from {', '.join(TRANSPORTS)}")
    return [transport for transport in TRANSPORTS if transport in names]


def _chosen(
    args: argparse.Namespace, registry: Mapping[str, Server], say: Callable[[str], None]
) -> tuple[list[Server], dict[str, str]]:
    """The servers to run, those installed here, and why each of the others is skipped."""
    ad_hoc = [name for name in registry if name not in SERVERS]
    servers = _servers(args.servers, registry) if args.servers or not ad_hoc else [registry[name] for name in ad_hoc]
    installed = [server for server in servers if server.installed()]
    skipped = {
        server.name: f"not installed ({', '.join(server.missing())})" for server in servers if not server.installed()
    }
    for name, reason in skipped.items():
        say(f"skip {name}: {reason}")
    return installed, skipped


def _record_expected(outcomes: list[Outcome], server: str, say: Callable[[str], None]) -> None:
    """--update-expected: keep ``server``'s transcripts as the expected ones."""
    recorded = [outcome for outcome in outcomes if outcome.server == server and outcome.transcript]
    for outcome in recorded:
        assert outcome.transcript is not None
        save_expected(outcome.check, outcome.transcript)
    say(f"recorded {len(recorded)} expected transcripts from {server}")


def _rejudged(run_dir: Path) -> Run:
    path = run_dir / "run.json" if run_dir.is_dir() else run_dir
    if not path.exists():
        raise ValueError(f"--rejudge {run_dir}: no run.json there (every run keeps one in its run directory)")
    return Run.load(path)


def _expected(check: str) -> Transcript | None:
    """What ``check`` is judged against: its expected transcript, or OK for an Autobahn case."""
    return dict(EXPECTED_CASE) if check.startswith("autobahn:") else load_expected(check)


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


def _servers(raw: str | None, registry: Mapping[str, Server]) -> list[Server]:
    """The servers ``--servers`` names, from ``registry``; all of them without it."""
    if raw is None:
        return list(registry.values())
    names = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = [name for name in names if name not in registry]
    if unknown or not names:
        raise ValueError(f"--servers {raw!r}: expected names from {', '.join(registry)}")
    return [registry[name] for name in names]


def _registry(server_commands: Sequence[str]) -> dict[str, Server]:
    """The servers this run can choose from: asgi_ws.servers.SERVERS, which stays as shipped, then the ad hoc ones."""
    registry = dict(SERVERS)
    for raw in server_commands:
        server = _ad_hoc_server(raw, registry)
        registry[server.name] = server
    return registry


def _ad_hoc_server(raw: str, registry: Mapping[str, Server] = SERVERS) -> Server:
    """``--server-command NAME=TEMPLATE`` as a registry entry: no worker or ping flags of its own.

    ``registry``: the servers already known, whose names it may not take.
    """
    name, _, template = raw.partition("=")
    if not name.strip() or not template.strip():
        raise ValueError(f"--server-command {raw!r}: expected NAME=TEMPLATE")
    if name.strip() in registry:
        raise ValueError(f"--server-command {raw!r}: {name.strip()} is already a server")
    package = shlex.split(template)[0]  # run with python -m, so it must be importable
    return Server(
        name.strip(),
        template,
        (package,),
        no_ping="an ad-hoc server: any ping flags are in its command",
        no_tls="an ad-hoc server: any TLS flags are in its command",
    )


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


def _listing(checks: Sequence[Check], args: argparse.Namespace) -> str:
    """``--list``: the checks by stage (scenarios, then probes), then by module, each with its summary."""
    stages = {
        "scenario": f"scenarios: {args.app} driven by real clients, the app's side observed",
        "probe": "probes: the probe app (conformance.probe_app), recording how the server speaks raw ASGI",
    }
    lines: list[str] = []
    for kind, stage in stages.items():
        of_kind = [check for check in checks if check.kind == kind]
        if not of_kind:
            continue
        width = max(len(check.name) for check in of_kind)
        lines.append(f"{len(of_kind)} {stage}")
        by_module: dict[str, list[Check]] = {}
        for check in of_kind:
            by_module.setdefault(check.run.__module__, []).append(check)
        for module, group in by_module.items():
            lines.append(f"  {module.rpartition('.')[2]}: {_first_line(sys.modules[module].__doc__)}")
            lines += [f"    {check.name:<{width}}  {check.summary}" for check in group]
    if not args.skip_autobahn:
        patterns = " ".join(CASE_SETS[args.autobahn_cases][0])
        lines.append(f"then Autobahn|Testsuite against {args.echo_path}: cases {patterns} (--autobahn-cases)")
    return "".join(line + "\n" for line in lines)


def _first_line(docstring: str | None) -> str:
    """A module docstring's first line, as plain text."""
    return (docstring or "").strip().partition("\n")[0].replace("``", "")


def _ran_on() -> str:
    """When and on what the run happened, for the published matrix."""
    return (
        f"{time.strftime('%Y-%m-%d')}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs"
    )


def _versions(servers: Sequence[Server], transports: Sequence[Transport] = (HTTP1,)) -> dict[str, str]:
    """The packages of each server, with their versions, per report column."""
    return {
        column(server.name, transport): ", ".join(f"{name} {_version(name)}" for name in server.packages)
        for server in servers
        for transport in transports
    }


def _packages(servers: Sequence[Server]) -> dict[str, str]:
    """The version of every package the run stood on: the servers', what they require, the app's and the client's."""
    roots = [package for server in servers for package in server.packages]
    return versions.installed([*roots, "asgi-ws", "websockets"])


def _launcher_flags(servers: Sequence[Server], transports: Sequence[Transport] = (HTTP1,)) -> dict[str, str]:
    """What the launcher sets on each server's command line besides what selects the server, per report column.

    Over an HTTP/2 transport it also turns HTTP/2 on where the server has a switch, and over h2 it serves TLS
    (the certificate files are made for each run: cert.pem and key.pem stand for them).
    """
    flags = {}
    for server in servers:
        for transport in transports:
            listen = launch_listen(0, {**SERVERS_OWN_DEFLATE, "http2": transport != HTTP1})
            if transport == "h2":
                listen = dataclasses.replace(listen, certfile="cert.pem", keyfile="key.pem")
            flags[column(server.name, transport)] = shlex.join(server.launcher_flags(listen))
    return flags


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
        guide = PORTABILITY.relative_to(PUBLISHED.parent).as_posix()
        write_markdown(report, PUBLISHED, title="ASGI WebSocket server divergence matrix", guide=guide)
        write_portability(report, PORTABILITY, matrix=PUBLISHED.relative_to(PORTABILITY.parent).as_posix())
        summary = published.summary_of(json.loads(written[1].read_text()))
        published.SUMMARY.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        written += [PUBLISHED, PORTABILITY, published.SUMMARY, *published.publish_blocks()]
    say("wrote " + ", ".join(str(path) for path in written))


def _printer(started: float) -> Callable[[str], None]:
    def say(line: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {line}", flush=True)

    return say


if __name__ == "__main__":
    sys.exit(main())
