"""Probes of the lifespan protocol: whether a server runs it, what its scope says, and what a failed startup does.

The ASGI lifespan spec lets a server skip lifespan altogether (an app that
raises on the scope is taken as "not supported"), asks it to send
``lifespan.shutdown`` when it stops, and says that on
``lifespan.startup.failed`` the server "should log it and exit".  asgi-ws starts
its Redis broker there (contract §4), so whether a server calls it, and whether
it refuses to serve an app that could not start, decide where the app can run.

Each probe needs a server process of its own: probe-lifespan stops its server
with SIGTERM; probe-lifespan-startup-failed starts the probe app's
``failing_startup`` callable itself, watching whether the process exits or
serves.  What the app's lifespan saw is read from the probe app's
observations, ``lifespan/startup`` and ``lifespan/shutdown``.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import time
from pathlib import Path
from typing import Any

from asgi_ws.servers import Server

from ..checks import Target, Transcript, probe
from ..launcher import SERVERS_OWN_DEFLATE, RunningServer, free_port, launch_listen, spawn, stop_process
from ..observer import FILE_ENV
from ..probe_app import LIFESPAN_ID, STARTUP_FAILURE

__all__: list[str] = []  # probes register themselves; nothing to import

FAILING_APP = "conformance.probe_app:failing_startup"
STARTUP_FAIL_WAIT = 10.0  # seconds to watch a server whose app's startup failed: does it exit, or serve?
SERVES_GRACE = 2.0  # seconds a server that already answers is still watched for an exit
POLL_INTERVAL = 0.1  # seconds between two looks at the process and its port


def lifespan_records(observations: Path | None) -> dict[str, Any]:
    """What the probe app's lifespan reported, by event: ``startup`` and ``shutdown``, or "not called".

    Also how many times the lifespan was started (``lifespan calls``): a server
    may run it more than once in one process (pyvoy runs it once per event loop).
    """
    records: dict[str, Any] = {"startup": "not called", "shutdown": "not called"}
    prefix = f"{LIFESPAN_ID}/"
    calls = 0
    if observations is None or not observations.exists():
        return {**records, "lifespan calls": calls}
    for line in observations.read_text().splitlines(keepends=True):
        if not line.endswith("\n"):
            break  # a line still being written by a server that did not exit
        record = json.loads(line)
        event = str(record.get("id", ""))[len(prefix) :]
        if str(record.get("id", "")).startswith(prefix) and event in records:
            records[event] = record["probe"]
            calls += event == "startup"
    return {**records, "lifespan calls": calls}


@probe(
    "probe-lifespan",
    "Lifespan: does the server call startup, with which asgi versions in the scope, and shutdown after SIGTERM?",
    "ASGI lifespan: startup, shutdown, scope asgi.spec_version",
    own_server=True,
)
async def lifespan(target: Target) -> Transcript:
    exit_code = await asyncio.to_thread(target.server.terminate)
    return {
        "app": lifespan_records(target.observations),
        "server": {"exited": exit_code is not None, "exit code": exit_code},
    }


@probe(
    "probe-lifespan-startup-failed",
    "The app answers lifespan.startup with lifespan.startup.failed: does the server log the message and exit, "
    "with what code, or serve anyway (GET / answered within 10 s)?",
    "ASGI lifespan: startup.failed (the server should log it and exit)",
)
async def lifespan_startup_failed(target: Target) -> Transcript:
    """Starts its own server, on the failing app, beside the probe app's: the launcher's run_server would
    raise on an exit before serving, which is one of the outcomes to record here."""
    log_dir = target.server.log_path.parent / "lifespan-startup-failed"
    return await asyncio.to_thread(_watch_failing_startup, target.entry, log_dir)


def _watch_failing_startup(entry: Server, log_dir: Path) -> Transcript:
    """Start ``entry`` on :data:`FAILING_APP` and watch it: whether it answers ``GET /``, whether it exits."""
    log_dir.mkdir(parents=True, exist_ok=True)
    observations = log_dir / "observations.jsonl"
    env = {**os.environ, FILE_ENV: str(observations), "PYTHONUNBUFFERED": "1"}
    port = free_port()
    server = RunningServer(entry.name, port, log_dir / f"{entry.name}-{port}.log")
    server.process = spawn(entry.command(FAILING_APP, launch_listen(port, SERVERS_OWN_DEFLATE)), server.log_path, env)
    serves = False
    try:
        deadline = time.monotonic() + STARTUP_FAIL_WAIT
        while server.process.poll() is None and time.monotonic() < deadline:
            if not serves and _answers(server):
                serves = True
                deadline = min(deadline, time.monotonic() + SERVES_GRACE)
            time.sleep(POLL_INTERVAL)
        exit_code = server.process.poll()
    finally:
        stop_process(server.process)
    return {
        "app": {"startup": lifespan_records(observations)["startup"]},
        "server": {
            "serves GET /": serves,
            f"exited within {STARTUP_FAIL_WAIT:g} s": exit_code is not None,
            "exit code": exit_code,
            "logged the app's message": STARTUP_FAILURE in server.log_text(),
        },
    }


def _answers(server: RunningServer) -> bool:
    """Whether ``GET /`` gets any HTTP response now."""
    with contextlib.suppress(OSError, http.client.HTTPException):
        server.get("/")
        return True
    return False
