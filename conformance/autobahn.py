"""The Autobahn|Testsuite stage of the conformance harness (contract §5, "Autobahn").

This module owns ``wstest``: finding or installing it, running its fuzzing client
against servers that are already serving ``/echo``, and reading its results back
as plain values.  It does not start servers (the caller does, with
:data:`APP_SETTINGS_FOR_AUTOBAHN` in their environment) and it does not render
reports (:func:`ServerResult.to_json` hands the report writer plain JSON).

Theory of operation:

1. :func:`find_wstest` looks for a Python 2.7, which ``wstest`` needs: the
   interpreter named by ``$CONFORMANCE_PYTHON2``, else ``python2.7`` on
   ``PATH``, else pyenv's ``~/.pyenv/versions/2.7*``.  Each candidate is run
   once to prove it is 2.7, because pyenv puts a ``python2.7`` shim on ``PATH``
   that fails unless 2.7 is selected.  With that interpreter's own pip it
   installs :data:`AUTOBAHN_PINS` into a private ``--target`` directory under
   the cache dir, once: a marker file records the pins and the interpreter,
   and any change reinstalls.  ``wstest`` then runs through a launcher script,
   generated in the cache dir, that calls ``site.addsitedir`` on that directory
   (so the ``.pth`` files of namespace packages such as ``zope`` are read).
   Without a Python 2.7 it falls back to the published docker image where
   ``docker info`` answers, and otherwise returns :class:`Unavailable`, whose
   reason the harness prints as "skipped".
2. :func:`run_fuzzingclient` runs one ``wstest -m fuzzingclient`` per server,
   one after the other, each in its own directory with its own spec and time
   bound.  One process for all servers would be simpler, but ``wstest`` writes
   its results only when every server is done, so one slow or hung server would
   lose them all.  Its output is streamed: each "Running test case ID ..." line
   advances that server's progress.
3. When a run exceeds its time bound it gets SIGTERM.  The launcher has hooked
   the report writer to the reactor's shutdown, so the cases finished so far
   are still written; then ``index.json`` and the per-case reports are parsed
   into :class:`CaseResult` values.  Parsing is pure (:func:`parse_index`,
   :func:`with_case_report`) and tested on inline fixtures.

Autobahn grades each case with a behaviour: ``OK``; ``NON-STRICT`` (allowed
but not what the RFC prefers, e.g. failing late on invalid UTF-8);
``INFORMATIONAL`` (the RFC leaves it open, e.g. in 7.1.6 whether a message sent
just before a close is still echoed); ``UNIMPLEMENTED`` (an optional feature,
e.g. permessage-deflate in 12.* and 13.* on a server that does not negotiate
it); and ``FAILED``.  Between OK and NON-STRICT, some cases of 3.* and 4.*
depend on timing (whether the server's close arrives before the client's next
frame), so those counts vary by one or two from run to run.  FAILED was
stable across runs on every server tried.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "APP_SETTINGS_FOR_AUTOBAHN",
    "AUTOBAHN_PINS",
    "BEHAVIORS",
    "DEFAULT_CACHE_DIR",
    "DEFAULT_CASES",
    "DEFLATE_SAMPLE_CASES",
    "DOCKER_IMAGE",
    "EXTENDED_CASES",
    "EXTENDED_RUN_TIMEOUT",
    "MINIMUM_CASES",
    "RUN_TIMEOUT",
    "CaseResult",
    "ServerResult",
    "Unavailable",
    "Wstest",
    "case_sort_key",
    "find_wstest",
    "fuzzingclient_spec",
    "parse_index",
    "parse_progress_line",
    "run_fuzzingclient",
    "summary",
    "with_case_report",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE_DIR = REPO_ROOT / ".conformance-cache" / "autobahn"

# The app's own policies would otherwise answer Autobahn before the server's
# protocol layer does: 9.* sends messages of up to 16 MiB (the app's default
# limit is 64 KiB), 9.* and 12.* send thousands of messages a second, and some
# cases wait for a while between frames.  contract §5: the limits are raised here.
APP_SETTINGS_FOR_AUTOBAHN: Mapping[str, str] = {
    "ASGI_WS_MAX_MESSAGE_SIZE": str(16 * 1024 * 1024),
    "ASGI_WS_RATE_LIMIT": "0",
    "ASGI_WS_IDLE_TIMEOUT": "0",
}

# Every package pinned, so that an install made today and one made in a year
# are the same.  autobahntestsuite 25.10.1 is the newest release (the one
# before it is 0.8.2, of 2016); it is still Python 2 only, and itself pins
# Twisted 19.10, autobahn 0.10.9 and the rest of its direct dependencies.  The
# other pins are what pip 19.2.3 on Python 2.7.18 resolved for them in November
# 2026: the last releases that still install on 2.7 (attrs 21.4, cffi 1.15,
# pyasn1 0.5, ...).  wsaccel and ujson are autobahn's "accelerate" extra, which
# does the frame masking and UTF-8 validation in C.
AUTOBAHN_PINS: tuple[str, ...] = (
    "autobahntestsuite==25.10.1",
    "autobahn[twisted,accelerate]==0.10.9",
    "Twisted==19.10.0",
    "Automat==22.10.0",
    "PyHamcrest==1.10.1",
    "Werkzeug==1.0.1",
    "argparse==1.4.0",
    "attrs==21.4.0",
    "cffi==1.15.1",
    "constantly==15.1.0",
    "cryptography==3.3.2",
    "enum34==1.1.10",
    "hyperlink==21.0.0",
    "idna==2.10",
    "incremental==16.10.1",
    "ipaddress==1.0.23",
    "jinja2==2.11.3",
    "klein==17.10.0",
    "linecache2==1.0.0",
    "markupsafe==1.1.1",
    "pyOpenSSL==19.1.0",
    "pyasn1==0.5.1",
    "pyasn1-modules==0.3.0",
    "pycparser==2.21",
    "service-identity==18.1.0",
    "setuptools==44.0.0",
    "six==1.16.0",
    "traceback2==1.4.0",
    "txaio==2.1.0",
    "typing==3.10.0.0",
    "ujson==2.0.3",
    "unittest2==1.1.0",
    "wsaccel==0.6.6",
    "zope.interface==4.6.0",
)

# Used only where no Python 2.7 is found and `docker info` succeeds: the
# published image at its versioned tag, the one many projects' CI runs.  Not
# exercised on the machine this module was written on, which has no docker engine.
DOCKER_IMAGE = "crossbario/autobahn-testsuite:0.8.2"

# Case groups, by Autobahn's numbering (no case is numbered 8.* or 11.*).
# wstest matches a pattern with "*" as a regular expression from the start of
# the id, not to its end: "12.*.1" also selects 12.1.10 to 12.1.18.
#
# Measured against uvicorn 0.54 with websockets-sansio (which negotiates
# permessage-deflate) on a 2-CPU machine, one wstest run per group: 1-7 and 10
# take 14 s in all (6.* alone 9 s), 9.* 7 s, 12.* 300 s and 13.* 240 s.
MINIMUM_CASES: tuple[str, ...] = ("1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "10.*")
# The first case of each 12.x and 13.x subgroup: a thousand small messages
# per payload kind and per set of deflate parameters.  About 5 s on a server
# that negotiates permessage-deflate, under 1 s on one that does not; enough
# to show which servers compress, and whether each parameter set works.
DEFLATE_SAMPLE_CASES: tuple[str, ...] = (
    *(f"12.{payload}.1" for payload in range(1, 6)),
    *(f"13.{parameters}.1" for parameters in range(1, 8)),
)
# The default adds 9.* (large messages and many of them), which costs seconds
# and is where servers' own size limits show, and the deflate sample.  Daphne
# makes it slower: two of its 9.* cases wait out Autobahn's 60 s case timeout.
DEFAULT_CASES: tuple[str, ...] = (*MINIMUM_CASES, "9.*", *DEFLATE_SAMPLE_CASES)
# All of 12.* and 13.* take 9-10 minutes per server that negotiates
# compression (uvicorn 540 s, hypercorn 615 s; 6 of the 8 servers negotiate
# it), and under a second where it answers UNIMPLEMENTED: too long for every
# run, so this is for a run on its own, with EXTENDED_RUN_TIMEOUT.
EXTENDED_CASES: tuple[str, ...] = (*MINIMUM_CASES, "9.*", "12.*", "13.*")

RUN_TIMEOUT = 300.0  # seconds for one server's run of DEFAULT_CASES: 15-25 s, daphne 140 s
EXTENDED_RUN_TIMEOUT = 1200.0  # seconds for one server's run of EXTENDED_CASES
REPORT_GRACE = 30.0  # seconds between SIGTERM (which writes the partial reports) and SIGKILL
INSTALL_TIMEOUT = 600.0  # seconds for pip to install AUTOBAHN_PINS
PROBE_TIMEOUT = 15.0  # seconds for `python -c ...`, `wstest -a` or `docker info`
PROGRESS_INTERVAL = 15.0  # seconds between two progress lines within one case group

BEHAVIORS: tuple[str, ...] = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")

Progress = Callable[[str], None]


# Results


@dataclass(frozen=True, slots=True)
class CaseResult:
    """How one server did on one Autobahn case."""

    case_id: str  # "7.1.5"
    behavior: str  # one of BEHAVIORS
    behavior_close: str  # how the closing handshake went: "OK", "WRONG CODE", "UNCLEAN", ...
    duration_ms: int  # as wstest measured it
    remote_close_code: int | None  # the close code the server sent; None if it sent none
    remote_close_reason: str | None = None  # from the case's own report, where it was read
    result: str | None = None  # Autobahn's sentence on the behaviour, e.g. "The close code should have been 1000"
    report_file: str | None = None  # the case's JSON report, relative to the server's report dir


@dataclass(slots=True)
class ServerResult:
    """One server's run of ``wstest``: its cases, or why some or all are missing."""

    server: str  # the agent name: a key of run_fuzzingclient's targets
    url: str  # the ws:// URL that was tested
    cases: dict[str, CaseResult]  # by case id, in Autobahn's order
    wall_seconds: float  # of the whole wstest run
    report_dir: Path  # spec.json, wstest.log, index.json and index.html
    error: str | None = None  # None when every case asked for has a result

    def to_json(self) -> dict[str, Any]:
        """Plain JSON for the harness's report."""
        return {
            "url": self.url,
            "summary": summary(self),
            "cases": {case_id: _case_json(case) for case_id, case in self.cases.items()},
            "wall_seconds": round(self.wall_seconds, 1),
            "report_dir": str(self.report_dir),
            "error": self.error,
        }


def summary(result: ServerResult) -> dict[str, int]:
    """Number of cases per behaviour: every one of BEHAVIORS, in order, then any other wstest used."""
    counts = dict.fromkeys(BEHAVIORS, 0)
    for case in result.cases.values():
        counts[case.behavior] = counts.get(case.behavior, 0) + 1
    return counts


def _case_json(case: CaseResult) -> dict[str, Any]:
    document = dataclasses.asdict(case)
    del document["case_id"]  # it is the key
    return document


# Finding or installing wstest


@dataclass(frozen=True, slots=True)
class Wstest:
    """A runnable ``wstest``: :meth:`command` gives the argv for one run."""

    description: str  # for the report: what runs it, and which version
    prefix: tuple[str, ...]  # argv that runs wstest; wstest's own options follow
    docker_image: str | None = None  # set when wstest runs in this image: run dirs are mounted

    def command(self, run_dir: Path, container: str, *args: str) -> list[str]:
        """The argv that runs ``wstest *args`` with ``run_dir`` readable and writable at the same path."""
        if self.docker_image is None:
            return [*self.prefix, *args]
        # --network host: the servers listen on the host's 127.0.0.1.  The run dir is
        # mounted at its own path, so that the paths in spec.json mean the same inside.
        docker = ["--name", container, "--network", "host", "--volume", f"{run_dir}:{run_dir}"]
        return [*self.prefix, *docker, self.docker_image, "wstest", *args]


@dataclass(frozen=True, slots=True)
class Unavailable:
    """wstest cannot run here.  ``reason`` is a sentence for the report."""

    reason: str


def find_wstest(cache_dir: Path = DEFAULT_CACHE_DIR, progress: Progress | None = None) -> Wstest | Unavailable:
    """Find a Python 2.7 and install wstest for it under ``cache_dir``, or fall back to docker.

    The first call installs (about 30 s, from PyPI); later calls reuse the install.
    ``progress`` is told when an install starts.
    """
    python, tried = _find_python2()
    if python is not None:
        return _installed(python, cache_dir, progress or (lambda line: None))
    docker = _docker_status()
    if docker is None:
        return Wstest(f"wstest in docker image {DOCKER_IMAGE}", ("docker", "run", "--rm"), DOCKER_IMAGE)
    return Unavailable(f"wstest needs Python 2.7 or docker, and there is neither: {'; '.join(tried)}; {docker}.")


def _find_python2() -> tuple[Path | None, list[str]]:
    """The first working Python 2.7, and what was tried, each with why it was not used."""
    tried: list[str] = []
    explicit = os.environ.get("CONFORMANCE_PYTHON2")
    if explicit:
        # Named explicitly, so no silent fallback to some other interpreter.
        found = shutil.which(explicit)
        problem = _python2_problem(Path(found)) if found else "not found"
        if found and problem is None:
            return Path(found), tried
        return None, [f"CONFORMANCE_PYTHON2={explicit} is not a working Python 2.7 ({problem})"]
    on_path = shutil.which("python2.7")
    if on_path is None:
        tried.append("no python2.7 on PATH")
    else:
        problem = _python2_problem(Path(on_path))
        if problem is None:
            return Path(on_path), tried
        tried.append(f"python2.7 on PATH ({on_path}) does not run ({problem})")
    pattern = str(Path.home() / ".pyenv" / "versions" / "2.7*" / "bin" / "python")
    candidates = sorted(glob.glob(pattern), key=_version_key, reverse=True)
    for candidate in candidates:
        problem = _python2_problem(Path(candidate))
        if problem is None:
            return Path(candidate), tried
        tried.append(f"{candidate} does not run ({problem})")
    if not candidates:
        tried.append(f"nothing matches {pattern}")
    return None, tried


def _version_key(path: str) -> tuple[int, ...]:
    """``~/.pyenv/versions/2.7.18/bin/python`` sorts after ``.../2.7.9/...``."""
    return tuple(int(part) for part in re.findall(r"\d+", Path(path).parents[1].name))


def _python2_problem(python: Path) -> str | None:
    """None if ``python`` runs and is 2.7, else what is wrong with it."""
    try:
        done = subprocess.run(
            [str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if done.returncode != 0:
        # First line: pyenv's shim says "pyenv: python2.7: command not found" and then advice.
        return _first_line(done.stderr) or f"exit code {done.returncode}"
    version = done.stdout.strip()
    return None if version == "2.7" else f"it is Python {version}"


def _docker_status() -> str | None:
    """None if a docker engine answers, else why not, as a clause of a sentence."""
    if shutil.which("docker") is None:
        return "no docker on PATH"
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=PROBE_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`docker info` failed ({exc})"
    if done.returncode != 0:
        return f"`docker info` failed ({_first_line(done.stderr) or f'exit code {done.returncode}'})"
    return None


# The launcher runs under Python 2.7.  argv[1] is the site dir; the rest is wstest's.
# wstest writes its reports only after the last case, from its own code; the hook
# also writes them on any other reactor shutdown, such as the SIGTERM that ends a
# run at its time bound, so that the cases done so far are not lost.
_LAUNCHER = """\
# Generated by conformance/autobahn.py: runs wstest from a private site directory.
import site
import sys

site.addsitedir(sys.argv.pop(1))
sys.argv[0] = "wstest"

from twisted.internet import reactor
from autobahntestsuite import fuzzing, wstest

_create_reports = fuzzing.FuzzingFactory.createReports
_client_init = fuzzing.FuzzingClientFactory.__init__


def create_reports_once(self, *args, **kwargs):
    if not getattr(self, "_reports_created", False):
        self._reports_created = True
        _create_reports(self, *args, **kwargs)


def client_init(self, *args, **kwargs):
    _client_init(self, *args, **kwargs)
    reactor.addSystemEventTrigger("before", "shutdown", self.createReports)


fuzzing.FuzzingFactory.createReports = create_reports_once
fuzzing.FuzzingClientFactory.__init__ = client_init
wstest.run()
"""


def _installed(python: Path, cache_dir: Path, progress: Progress) -> Wstest | Unavailable:
    """wstest for ``python``, installed under ``cache_dir`` unless it already is."""
    site_dir = cache_dir / "site"
    marker = site_dir / ".asgi-ws-installed"
    wanted = json.dumps({"python": str(python), "pins": list(AUTOBAHN_PINS)}, indent=1)
    cache_dir.mkdir(parents=True, exist_ok=True)
    # The cache holds a third-party install: never commit it, wherever it is.
    _write_if_changed(cache_dir / ".gitignore", "*\n")
    launcher = cache_dir / "wstest_launcher.py"
    _write_if_changed(launcher, _LAUNCHER)
    prefix = (str(python), "-u", str(launcher), str(site_dir))  # -u: progress lines arrive as they are printed

    if not (marker.is_file() and marker.read_text() == wanted):
        progress(f"autobahn: installing autobahntestsuite for {python} into {site_dir} (once)")
        problem = _pip_install(python, cache_dir, site_dir)
        if problem is not None:
            return Unavailable(f"installing autobahntestsuite with {python} failed: {problem}.")
        marker.write_text(wanted)

    version = _wstest_version(prefix)
    if version is None:
        marker.unlink(missing_ok=True)  # reinstall next time
        return Unavailable(f"wstest installed in {site_dir} does not start; see {cache_dir / 'pip.log'}.")
    return Wstest(f"{version} under {python}", prefix)


def _pip_install(python: Path, cache_dir: Path, site_dir: Path) -> str | None:
    """Install AUTOBAHN_PINS into ``site_dir``; None on success, else what went wrong.

    pip installs into a fresh directory that replaces ``site_dir`` only once pip
    has succeeded, so an interrupted install never looks like a finished one.
    """
    staging = cache_dir / f"site.installing-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    log_path = cache_dir / "pip.log"
    argv = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
    argv += ["--target", str(staging), *AUTOBAHN_PINS]
    try:
        with log_path.open("wb") as log:
            done = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT)
        if done.returncode != 0:
            tail = _last_line(log_path.read_text(errors="replace"))
            return f"pip exited with code {done.returncode}: {tail} (log: {log_path})"
        shutil.rmtree(site_dir, ignore_errors=True)
        staging.rename(site_dir)
        return None
    except subprocess.TimeoutExpired:
        return f"pip took more than {INSTALL_TIMEOUT:g} s (log: {log_path})"
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already if it became site_dir


def _wstest_version(prefix: Sequence[str]) -> str | None:
    """wstest's version, such as "autobahntestsuite 25.10.1 (autobahn 0.10.9)", or None if it does not start."""
    try:
        done = subprocess.run([*prefix, "--autobahnversion"], capture_output=True, text=True, timeout=PROBE_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        return None
    versions = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
    if done.returncode != 0 or "AutobahnTestSuite" not in versions:
        return None
    return f"autobahntestsuite {versions['AutobahnTestSuite']} (autobahn {versions.get('Autobahn', '?')})"


def _write_if_changed(path: Path, text: str) -> None:
    """Write ``path`` unless it already holds ``text``: another harness run may be reading it."""
    if not (path.is_file() and path.read_text() == text):
        path.write_text(text)


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else ""


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


# Running the fuzzing client


def run_fuzzingclient(
    wstest: Wstest,
    targets: Mapping[str, str],
    cases: Sequence[str],
    out_dir: Path,
    progress: Progress,
    timeout: float = RUN_TIMEOUT,
) -> dict[str, ServerResult]:
    """Run Autobahn's fuzzing client against each server, one server after the other.

    ``targets`` maps a server name (used as Autobahn's agent name) to the
    ``ws://`` URL of its echo endpoint.  Each server's run gets its own
    directory ``out_dir/<name>`` and at most ``timeout`` seconds; past that it
    is stopped and keeps the cases it finished, with ``error`` saying so.
    """
    return {
        name: _run_one(wstest, name, url, cases, out_dir / name, progress, timeout) for name, url in targets.items()
    }


def _run_one(
    wstest: Wstest, name: str, url: str, cases: Sequence[str], run_dir: Path, progress: Progress, timeout: float
) -> ServerResult:
    shutil.rmtree(run_dir, ignore_errors=True)  # no stale index.json from an earlier run
    run_dir.mkdir(parents=True)
    spec_path = run_dir / "spec.json"
    spec_path.write_text(json.dumps(fuzzingclient_spec(name, url, cases, run_dir), indent=2))
    container = f"asgi-ws-autobahn-{os.getpid()}-{re.sub(r'[^A-Za-z0-9_.-]', '-', name)}"
    argv = wstest.command(run_dir, container, "--mode", "fuzzingclient", "--spec", str(spec_path))

    started = time.monotonic()
    tracker = _Tracker(name, progress)
    with (
        (run_dir / "wstest.log").open("w", buffering=1) as log,  # line-buffered: tail -f works
        subprocess.Popen(
            argv,
            cwd=run_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        ) as process,
    ):
        # The watchdog stops wstest at the time bound; the lines it prints while
        # it writes its reports still reach the log, and the pipe ends when it exits.
        watchdog = _Watchdog(process, timeout, container if wstest.docker_image else None)
        assert process.stdout is not None
        try:
            for line in process.stdout:
                log.write(line)
                tracker.line(line)
            process.wait()
        finally:
            watchdog.cancel()
            if process.poll() is None:  # interrupted, by Ctrl-C for one: no reports wanted
                watchdog.kill()
    wall = time.monotonic() - started

    unreadable = None
    try:
        results = _read_results(run_dir, name)
    except ValueError as exc:  # an index.json that parse_index refuses: say so, and go on to the next server
        results, unreadable = {}, str(exc)
    error: str | None = None
    if unreadable is not None:
        error = unreadable
    elif watchdog.fired:
        error = f"wstest timed out after {timeout:g} s during case {tracker.current or '?'}"
    elif process.returncode != 0:
        error = f"wstest exited with code {process.returncode}; see {run_dir / 'wstest.log'}"
    elif tracker.total is not None and len(results) < tracker.total:
        error = f"wstest ran {len(results)} of {tracker.total} cases: {tracker.failure or 'see wstest.log'}"
    result = ServerResult(name, url, results, wall, run_dir, error)
    counts = ", ".join(f"{count} {behavior}" for behavior, count in summary(result).items() if count)
    progress(f"{name}: {len(results)} cases in {wall:.1f} s: {counts or 'none'}" + (f" ({error})" if error else ""))
    return result


class _Watchdog:
    """Stops a process that is still running ``timeout`` seconds from now: SIGTERM, then SIGKILL.

    SIGTERM lets wstest write the reports of the cases it finished; SIGKILL
    follows REPORT_GRACE seconds later.  Both go to this PID only.  For docker,
    ``docker run`` passes SIGTERM on to wstest, but a SIGKILL would not reach
    the container, which is then removed by its name.
    """

    def __init__(self, process: subprocess.Popen[str], timeout: float, container: str | None) -> None:
        self.process = process  # the process to stop
        self.container = container  # its docker container's name, if it runs in one
        self.fired = False  # True once the time bound was reached with the process running
        self._timer = threading.Timer(timeout, self._stop)  # runs _stop in its own thread
        self._timer.daemon = True
        self._timer.start()

    def cancel(self) -> None:
        """The process has ended: stop waiting.  Waits for a stop in progress to finish."""
        self._timer.cancel()
        if self._timer.is_alive() and self._timer is not threading.current_thread():
            self._timer.join()

    def _stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.fired = True
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=REPORT_GRACE)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL now, and remove the container if there is one."""
        self.process.kill()
        self.process.wait()
        if self.container is not None:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                argv = ["docker", "rm", "--force", self.container]
                subprocess.run(argv, capture_output=True, timeout=PROBE_TIMEOUT)


@dataclass(slots=True)
class _Tracker:
    """Turns wstest's output into a few progress lines: one per case group, and one every PROGRESS_INTERVAL."""

    server: str
    progress: Progress
    total: int | None = None  # cases wstest said it would run
    done: int = 0  # cases started so far
    current: str | None = None  # the case running now
    failure: str | None = None  # wstest's "Connection to ... failed (...)" line, if any
    _last_report: float = field(default=0.0)  # monotonic time of the last progress line

    def line(self, line: str) -> None:
        if self.total is None and (planned := _PLANNED.match(line)):
            self.total = int(planned["count"])
            return
        if line.startswith("Connection to "):
            self.failure = line.strip()
            return
        case_id = parse_progress_line(line)
        if case_id is None:
            return
        new_group = self.current is None or self.current.split(".")[0] != case_id.split(".")[0]
        self.current, self.done = case_id, self.done + 1
        now = time.monotonic()
        if new_group or now - self._last_report >= PROGRESS_INTERVAL:
            self._last_report = now
            self.progress(f"{self.server}: case {case_id} ({self.done}/{self.total or '?'})")


_PLANNED = re.compile(r"Ok, will run (?P<count>\d+) test cases")
_RUNNING = re.compile(r"Running test case ID (?P<case>\d+(?:\.\d+)*) for agent ")


def _read_results(run_dir: Path, agent: str) -> dict[str, CaseResult]:
    """The cases in ``run_dir/index.json``, each completed from its own report; {} if there is no index.

    Raises ValueError if the index is there but is not what wstest writes.
    """
    try:
        index = json.loads((run_dir / "index.json").read_text())
    except (OSError, ValueError):
        return {}
    results = parse_index(index, agent)
    for case_id, case in results.items():
        if case.report_file is None:
            continue
        with contextlib.suppress(OSError, ValueError):
            results[case_id] = with_case_report(case, json.loads((run_dir / case.report_file).read_text()))
    return results


# Pure parts: spec in, results out


def fuzzingclient_spec(agent: str, url: str, cases: Sequence[str], out_dir: Path) -> dict[str, Any]:
    """The ``-s`` spec for one server: reports go to ``out_dir``, named after ``agent``."""
    return {
        "outdir": str(out_dir),
        "servers": [{"agent": agent, "url": url}],
        "cases": list(cases),
        "exclude-cases": [],
        "exclude-agent-cases": {},
    }


def parse_progress_line(line: str) -> str | None:
    """The case id in wstest's "Running test case ID 1.1.1 for agent ..." line, else None."""
    match = _RUNNING.search(line)
    return match["case"] if match else None


def case_sort_key(case_id: str) -> tuple[int, ...]:
    """Autobahn's order: 1.1.2 before 1.1.10."""
    return tuple(int(part) for part in case_id.split("."))


def parse_index(index: Mapping[str, Any], agent: str) -> dict[str, CaseResult]:
    """``agent``'s cases from wstest's ``index.json``, in Autobahn's order.

    The index maps agent -> case id -> ``behavior``, ``behaviorClose``,
    ``duration`` (ms), ``remoteCloseCode`` (null if none) and ``reportfile``.
    Raises ValueError if an entry lacks one of the first three.
    """
    cases = index.get(agent, {})
    results: dict[str, CaseResult] = {}
    for case_id in sorted(cases, key=case_sort_key):
        entry = cases[case_id]
        try:
            behavior, behavior_close, duration = entry["behavior"], entry["behaviorClose"], entry["duration"]
        except KeyError as exc:
            raise ValueError(f"index.json: case {case_id} of {agent} has no {exc.args[0]!r}") from None
        code = entry.get("remoteCloseCode")
        results[case_id] = CaseResult(
            case_id=case_id,
            behavior=str(behavior),
            behavior_close=str(behavior_close),
            duration_ms=int(duration),
            remote_close_code=int(code) if code is not None else None,
            report_file=entry.get("reportfile"),
        )
    return results


def with_case_report(case: CaseResult, report: Mapping[str, Any]) -> CaseResult:
    """``case`` completed from its own JSON report: the close reason, and Autobahn's sentence on it."""
    reason = report.get("remoteCloseReason")
    result = report.get("result")
    return dataclasses.replace(
        case,
        remote_close_reason=str(reason) if reason is not None else None,
        result=str(result) if result else None,
    )
