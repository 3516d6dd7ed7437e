"""Run the app under a real server process: start it, wait until it serves, stop it.

One :class:`RunningServer` is one ``python -m uvicorn`` or ``python -m hypercorn``
child process serving ``asgi_ws.app:app`` on ``127.0.0.1`` and a free port.  The
app is configured the way its users configure it: ``ASGI_WS_*`` variables in the
child's environment (SPEC §3).  This module knows nothing of pytest; the fixtures
in ``conftest.py`` wrap :func:`run_server`.

Theory of operation of :func:`run_server`:

1. Pick a free port by binding a socket to port 0 and closing it.  Another
   process may take the port before the server binds it, so a start that fails
   with "address already in use" is retried on a new port.
2. Spawn the server with stdout and stderr going to a log file, in the test
   process's environment minus its ``ASGI_WS_*`` variables (a developer's shell
   must not change what the tests test) plus the settings asked for.
3. Poll ``GET /healthz`` until it answers 200, which means lifespan startup has
   run and the socket is listening.  If the process exits first, or the wait
   runs out, fail with the tail of the log.
4. When the ``with`` block ends, however it ends: SIGTERM, a grace period, then
   SIGKILL, all sent to the child's PID and to nothing else.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asgi_ws.servers import SERVERS, Listen, Server
from asgi_ws.settings import ENV_PREFIX, Settings

__all__ = [
    "HOST",
    "SERVERS",
    "HTTPResult",
    "RunningServer",
    "ServerStartError",
    "StartServer",
    "free_port",
    "run_server",
]

HOST = "127.0.0.1"
APP = "asgi_ws.app:app"
REPO_ROOT = Path(__file__).resolve().parents[2]

READY_TIMEOUT = 20.0  # seconds for a server to answer /healthz; a loaded machine can be slow to import
STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL
START_ATTEMPTS = 3  # each on a new port, in case the port was taken between picking and binding it
POLL_INTERVAL = 0.1  # seconds between two polls of /healthz
HTTP_TIMEOUT = 5.0  # seconds for one HTTP request to the server
LOG_TAIL_LINES = 40  # lines of the server's log quoted when it fails to start

# Every variable the app reads, so that a misspelt one fails here instead of being ignored.
KNOWN_SETTINGS = frozenset(Settings().to_env())


class ServerStartError(RuntimeError):
    """The server could not be started or did not become ready.  The message says why."""


@dataclass(frozen=True, slots=True)
class HTTPResult:
    """One plain HTTP response, read to the end."""

    status: int
    content_type: str | None
    body: bytes


@dataclass(frozen=True, slots=True)
class RunningServer:
    """A server process that has answered ``GET /healthz``, and how to reach it."""

    name: str  # a key of SERVERS
    port: int  # on HOST
    log_path: Path  # the process's stdout and stderr

    def url(self, path: str) -> str:
        """The ``ws://`` URL of ``path``, which may carry a query string."""
        return f"ws://{HOST}:{self.port}{path}"

    @property
    def origin(self) -> str:
        """The ``Origin`` a page served by this server sends: the same host, so always allowed."""
        return f"http://{HOST}:{self.port}"

    def get(self, path: str) -> HTTPResult:
        """``GET path`` over a new connection, closed before returning."""
        connection = http.client.HTTPConnection(HOST, self.port, timeout=HTTP_TIMEOUT)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return HTTPResult(response.status, response.getheader("content-type"), response.read())
        finally:
            connection.close()

    def health(self) -> dict[str, Any]:
        """The ``/healthz`` document (SPEC §2)."""
        document: dict[str, Any] = json.loads(self.get("/healthz").body)
        return document

    def wait_for_health(self, condition: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        """Poll ``/healthz`` until ``condition`` holds for its document, and return that document.

        Blocks, so async tests call it in a worker thread.  Raises AssertionError,
        quoting the last document, if ``timeout`` seconds pass first.
        """
        deadline = time.monotonic() + timeout
        while True:
            document = self.health()
            if condition(document):
                return document
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: /healthz still {document} after {timeout} s")
            time.sleep(POLL_INTERVAL)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self) -> str:
        return "\n".join(self.log_text().splitlines()[-LOG_TAIL_LINES:])


# The type of the ``start_server`` fixture: settings in, a running server out.
StartServer = Callable[[Mapping[str, str]], RunningServer]


@contextlib.contextmanager
def run_server(
    name: str, log_dir: Path, settings: Mapping[str, str] | None = None, *, via_cli: Sequence[str] | None = None
) -> Iterator[RunningServer]:
    """Run server ``name`` with ``ASGI_WS_*`` ``settings`` for the length of the ``with`` block.

    ``via_cli``: start it through ``python -m asgi_ws serve`` with these extra
    flags, instead of the server's own command line.
    """
    process, server = _start(name, log_dir, settings or {}, via_cli)
    try:
        yield server
    finally:
        _stop(process)


def free_port() -> int:
    """A port that nothing listens on right now.  It may be taken again before the server binds it."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


# Starting and stopping


class _PortTaken(Exception):
    """The server exited because another process bound its port first."""


def _start(
    name: str, log_dir: Path, settings: Mapping[str, str], via_cli: Sequence[str] | None
) -> tuple[subprocess.Popen[bytes], RunningServer]:
    kind = SERVERS[name]
    missing = kind.missing()
    if missing:
        raise ServerStartError(
            f"server {name!r} cannot run: {', '.join(missing)} not importable by {sys.executable}; "
            f"install asgi-ws[{kind.module}]"
        )
    unknown = sorted(set(settings) - KNOWN_SETTINGS)
    if unknown:
        raise ValueError(f"unknown settings {unknown}; the app reads {sorted(KNOWN_SETTINGS)}")
    env = {key: value for key, value in os.environ.items() if not key.startswith(ENV_PREFIX)}
    env.update(settings)
    env["PYTHONUNBUFFERED"] = "1"  # log lines reach the file as they are written

    for _ in range(START_ATTEMPTS):
        port = free_port()
        server = RunningServer(name, port, log_dir / f"{name}-{port}.log")
        process = _spawn(kind, server, env, via_cli)
        try:
            _wait_until_ready(process, server)
        except _PortTaken:
            _stop(process)
            continue
        except BaseException:
            _stop(process)
            raise
        return process, server
    raise ServerStartError(f"{name}: the chosen port was taken {START_ATTEMPTS} times in a row")


def _spawn(
    kind: Server, server: RunningServer, env: Mapping[str, str], via_cli: Sequence[str] | None
) -> subprocess.Popen[bytes]:
    # workers=0: one process is the whole server, so stopping its PID stops everything.
    argv = kind.command(APP, Listen(HOST, server.port, workers=0))
    if via_cli is not None:
        # asgi-ws serve execs the server in the same process: the PID stays the server's.
        listen = ["--host", HOST, "--port", str(server.port), "--workers", "0"]
        argv = [sys.executable, "-m", "asgi_ws", "serve", "--server", server.name, *listen, *via_cli]
    # The child gets its own copy of the log file's descriptor; ours is closed on leaving the block.
    with server.log_path.open("wb") as log:
        return subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _wait_until_ready(process: subprocess.Popen[bytes], server: RunningServer) -> None:
    """Return once ``/healthz`` answers 200.  Raises _PortTaken or ServerStartError otherwise."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        returncode = process.poll()
        if returncode is not None:
            if "address already in use" in server.log_text().lower():
                raise _PortTaken
            raise ServerStartError(
                f"{server.name} exited with code {returncode} before it was ready; "
                f"log {server.log_path} ends with:\n{server.log_tail()}"
            )
        # Refused until the server listens; http.client's errors while it starts up.
        with contextlib.suppress(OSError, http.client.HTTPException):
            if server.get("/healthz").status == 200:
                return
        if time.monotonic() > deadline:
            raise ServerStartError(
                f"{server.name} did not answer GET /healthz with 200 within {READY_TIMEOUT} s; "
                f"log {server.log_path} ends with:\n{server.log_tail()}"
            )
        time.sleep(POLL_INTERVAL)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, up to STOP_GRACE seconds to exit, then SIGKILL.  To this PID only.

    ``terminate`` does nothing if the process has already exited and been reaped.
    """
    process.terminate()
    try:
        process.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
