"""Run checks against one server: start the right processes, run each check, collect outcomes.

For one server (a row of contract §0) the runner starts as few processes as it can:

- one process of the app under test per distinct set of app settings, shared
  by the scenarios that need those settings;
- one process of the probe app, shared by the probes;
- one process of its own for every check marked ``own_server`` (shutdown
  checks stop their server).

Checks run one at a time, except those marked ``waits``: they spend their
seconds waiting on a timer of the server or of the app (a handshake timeout, a
late accept, a keepalive ping), each on its own connections, so they run side
by side, before the others of their process.  The ``own_server`` checks spend
theirs waiting for their process to stop, so each runs on a thread of its own,
beside the rest, and so does a process whose checks all wait (the server at
its own keepalive defaults, 20 s of listening for a ping).

Over a transport other than HTTP/1.1 (contract §11) the checks' WebSockets
are opened over HTTP/2 (:class:`~conformance.checks.Target`), the server
listens with a fresh certificate where the transport is TLS, and every outcome
is filed under the column of that server and transport
(:func:`~conformance.checks.column`); a server that has HTTP/2 off unless
asked (``Server.http2``) is asked.  Checks marked ``http1_only`` are left
out there.

Every app runs wrapped in :mod:`conformance.observer`, so checks can read what
the app saw.  Each check runs with a time bound; an exception or a timeout is
an ``error`` outcome with the reason, never a crash of the run.
"""

from __future__ import annotations

import asyncio
import json
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from asgi_ws.servers import Server

from .checks import HTTP1, Check, Target, Transcript, Transport, column
from .launcher import SERVERS_OWN_DEFLATE, ServerStartError, Tls, run_server
from .observer import APP_ENV, FILE_ENV

__all__ = ["CHECK_TIMEOUT", "SERVER_EXITED", "Outcome", "run_checks"]

CHECK_TIMEOUT = 60.0  # seconds one check may take before it is an error
SERVER_EXITED = "the server process exited"  # how an outcome's error begins when the server died during the check
PROBE_APP = "conformance.probe_app:app"
OBSERVED_APP = "conformance.observer:app"


@dataclass(frozen=True, slots=True)
class Outcome:
    """One check under one server."""

    check: str
    server: str
    transcript: Transcript | None  # None when the check could not finish
    error: str | None = None  # why it could not
    seconds: float = 0.0  # how long it took, for the progress output only


def run_checks(
    server: Server,
    checks: Sequence[Check],
    *,
    app: str,
    echo_path: str,
    work_dir: Path,
    progress: Callable[[str], None],
    transport: Transport = HTTP1,
) -> list[Outcome]:
    """Run ``checks`` under ``server`` over ``transport``; one outcome per check run, in the order given."""
    name = column(server.name, transport)
    if transport != HTTP1:
        checks = [check for check in checks if check.http1_only is None]
    outcomes: dict[str, Outcome] = {}
    groups = list(_groups(checks).values())

    def run(index: int, group: list[Check]) -> None:
        pending = group
        attempt = 0
        while pending:
            # A server that dies during a check is started again for the checks after it,
            # and the check that was running when it died says so.
            attempt += 1
            log_dir = work_dir / name.replace(" ", "-") / f"group-{index}-{attempt}"
            try:
                pending = _run_group(server, transport, pending, app, echo_path, log_dir, outcomes, progress)
            except ServerStartError as exc:
                for check in pending:
                    outcomes[check.name] = Outcome(check.name, name, None, f"server did not start: {exc}")
                    progress(f"  {name:<20} {check.name:<40} error (server did not start)")
                pending = []

    # A check with a process of its own mostly waits for that process to stop (gunicorn's graceful
    # timeout alone is 30 s), and a process whose checks all wait mostly waits on a timer: those run
    # side by side, each on its own thread, beside the others.
    beside = {index for index, group in enumerate(groups) if group[0].own_server or all(c.waits for c in group)}
    with ThreadPoolExecutor(max_workers=max(1, len(beside))) as pool:
        futures = [pool.submit(run, index, groups[index]) for index in sorted(beside)]
        for index, group in enumerate(groups):
            if index not in beside:
                run(index, group)
        for future in futures:
            future.result()
    return [outcomes[check.name] for check in checks]


def _run_group(
    server: Server,
    transport: Transport,
    group: Sequence[Check],
    app: str,
    echo_path: str,
    log_dir: Path,
    outcomes: dict[str, Outcome],
    progress: Callable[[str], None],
) -> list[Check]:
    """Run ``group`` on one server process; the checks left to run if that process died."""
    first = group[0]
    observations = log_dir / "observations.jsonl"
    env = {APP_ENV: PROBE_APP if first.kind == "probe" else app, FILE_ENV: str(observations)}
    listen: dict[str, float | bool | None] = {**SERVERS_OWN_DEFLATE, **dict(first.server_flags)}
    if transport != HTTP1 or first.h2:
        listen["http2"] = True  # where a server has HTTP/2 off by default (uvicorn's zttp), it is turned on
    tls = Tls.issued(log_dir / "tls") if transport == "h2" or first.h2 else None
    name = column(server.name, transport)
    with run_server(
        server, log_dir, first.settings, app=OBSERVED_APP, extra_env=env, listen=listen, tls=tls
    ) as running:
        target = Target(running, server, echo_path, observations, transport)
        together = [check for check in group if check.waits]
        one_by_one = [check for check in group if not check.waits]
        batches = ([together] if together else []) + [[check] for check in one_by_one]
        for position, batch in enumerate(batches):
            batch_outcomes = asyncio.run(_run_together(batch, name, target, progress))
            assert running.process is not None
            died = running.process.poll() is not None and not any(check.own_server for check in batch)
            for outcome in batch_outcomes:
                if died:
                    why = f"{SERVER_EXITED} ({running.process.returncode}) during this check"
                    outcome = Outcome(outcome.check, name, outcome.transcript, why, outcome.seconds)
                    progress(f"  {name:<20} {outcome.check:<40} {why}; starting it again")
                outcomes[outcome.check] = outcome
            if died:
                return [check for later in batches[position + 1 :] for check in later]
    return []


def _groups(checks: Iterable[Check]) -> dict[tuple[object, ...], list[Check]]:
    """Checks that can share one server process, keyed by what that process needs."""
    groups: dict[tuple[object, ...], list[Check]] = {}
    for check in checks:
        key: tuple[object, ...] = (
            check.kind,
            tuple(sorted(check.settings.items())),
            tuple(sorted(check.server_flags.items())),
            check.name if check.own_server else None,
            check.h2,
        )
        groups.setdefault(key, []).append(check)
    return groups


async def _run_together(
    checks: Sequence[Check], server: str, target: Target, progress: Callable[[str], None]
) -> list[Outcome]:
    """Run ``checks`` side by side on one event loop; their outcomes, in the order given."""
    return list(await asyncio.gather(*(_run_one(check, server, target, progress) for check in checks)))


async def _run_one(check: Check, server: str, target: Target, progress: Callable[[str], None]) -> Outcome:
    started = time.monotonic()
    try:
        transcript = await _bounded(check, target)
    except _CheckTimedOut:
        outcome = Outcome(check.name, server, None, f"timed out after {CHECK_TIMEOUT:g} s")
    except Exception as exc:  # including a check's own shorter timeouts, reported with their place
        detail = "".join(traceback.format_exception_only(exc)).strip() + _where(exc)
        outcome = Outcome(check.name, server, None, detail)
    else:
        outcome = Outcome(check.name, server, _plain(transcript))
    outcome = Outcome(outcome.check, server, outcome.transcript, outcome.error, time.monotonic() - started)
    status = "ok" if outcome.error is None else f"error: {outcome.error.splitlines()[0][:80]}"
    progress(f"  {server:<20} {check.name:<40} {status} ({outcome.seconds:.1f} s)")
    return outcome


def _where(exc: BaseException) -> str:
    """`` at file:line`` of the innermost frame in the harness, so a bare TimeoutError says where."""
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__) if "/conformance/" in frame.filename]
    if not frames:
        return ""
    return f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})"


class _CheckTimedOut(Exception):
    """The whole check ran past CHECK_TIMEOUT (as opposed to a timeout inside it)."""


async def _bounded(check: Check, target: Target) -> Transcript:
    async with asyncio.timeout(CHECK_TIMEOUT) as bound:
        try:
            return await check.run(target)
        except TimeoutError:
            if bound.expired():
                raise _CheckTimedOut from None
            raise


def _plain(transcript: Mapping[str, object]) -> Transcript:
    """The transcript as JSON would give it back (tuples to lists, keys to strings)."""
    plain: Transcript = json.loads(json.dumps(transcript, default=str))
    return plain
