"""The Autobahn stage as the harness runs it: one server at a time, results as report cells.

:mod:`conformance.autobahn` knows ``wstest``; this module starts each server
with the app's limits raised (contract §5: Autobahn tests the server's protocol
layer, not the app's policies), points ``wstest`` at its echo path, and turns
the results into the report's JSON and into outcomes.  A case graded ``FAILED``
becomes the outcome ``autobahn:<case>`` (expected: ``OK``), which fails the run
unless ``divergences.toml`` explains it; every other grade is summarised only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from asgi_ws.servers import Server

from .autobahn import (
    APP_SETTINGS_FOR_AUTOBAHN,
    DEFAULT_CASES,
    EXTENDED_CASES,
    EXTENDED_RUN_TIMEOUT,
    MINIMUM_CASES,
    RUN_TIMEOUT,
    Unavailable,
    find_wstest,
    run_fuzzingclient,
)
from .launcher import SERVERS_OWN_DEFLATE, ServerStartError, run_server
from .runner import Outcome

__all__ = ["CASE_SETS", "EXPECTED_CASE", "run_autobahn_stage"]

# What every ``autobahn:<case>`` outcome is judged against.
EXPECTED_CASE = {"behavior": "OK"}

# --autobahn-cases: name -> (case patterns, time bound per server)
CASE_SETS: dict[str, tuple[tuple[str, ...], float]] = {
    "minimum": (MINIMUM_CASES, RUN_TIMEOUT),
    "default": (DEFAULT_CASES, RUN_TIMEOUT),
    "extended": (EXTENDED_CASES, EXTENDED_RUN_TIMEOUT),
}


def run_autobahn_stage(
    servers: Sequence[Server],
    *,
    app: str,
    echo_path: str,
    cases: str,
    work_dir: Path,
    cache_dir: Path,
    progress: Callable[[str], None],
) -> tuple[dict[str, Any], list[Outcome]]:
    """Run ``wstest`` against each server; the report's Autobahn section, and the outcomes to judge."""
    wstest = find_wstest(cache_dir / "autobahn", progress)
    if isinstance(wstest, Unavailable):
        progress(f"skip autobahn: {wstest.reason}")
        return {"skipped": wstest.reason}, []
    patterns, bound = CASE_SETS[cases]
    section: dict[str, Any] = {"cases": " ".join(patterns), "wstest": wstest.description, "servers": {}}
    outcomes: list[Outcome] = []
    for entry in servers:
        server = entry.name
        progress(f"  {server}: autobahn {cases} cases")
        log_dir = work_dir / server / "autobahn"
        try:
            with run_server(entry, log_dir, APP_SETTINGS_FOR_AUTOBAHN, app=app, listen=SERVERS_OWN_DEFLATE) as running:
                result = run_fuzzingclient(
                    wstest, {server: running.url(echo_path)}, patterns, log_dir / "reports", progress, bound
                )[server]
        except ServerStartError as exc:
            outcomes.append(Outcome("autobahn", server, None, f"server did not start: {exc}"))
            continue
        section["servers"][server] = result.to_json()
        if result.error is not None:
            outcomes.append(Outcome("autobahn", server, None, result.error))
        outcomes += [
            Outcome(f"autobahn:{case.case_id}", server, {"behavior": case.behavior})
            for case in result.cases.values()
            if case.behavior == "FAILED"
        ]
    return section, outcomes
