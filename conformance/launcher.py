"""Run an ASGI app under a real server process: start it, wait until it serves, stop it.

One :class:`RunningServer` is one server process (a row of the contract §0 table,
from :data:`asgi_ws.servers.SERVERS`, or a :class:`~asgi_ws.servers.Server` entry
given by the caller, such as ``--server-command``'s) serving an ASGI app (``asgi_ws.app:app``
unless told otherwise) on ``127.0.0.1`` and a free port.  The app is configured
the way its users configure it: ``ASGI_WS_*`` variables in the child's
environment (contract §3).  The conformance harness, the integration tests and the
benchmarks all start servers through :func:`run_server`; nothing else starts
one.  The one process the benchmarks run that is not an ASGI server (the
``websockets`` library's own server, a peer) is started by :func:`spawn`, the
same way.

Theory of operation of :func:`run_server`:

1. Pick a free port by binding a socket to port 0 and closing it.  Another
   process may take the port before the server binds it, so a start that fails
   with "address already in use" is retried on a new port.
2. Spawn the server with stdout and stderr going to a log file, in this
   process's environment minus its ``ASGI_WS_*`` variables (a developer's shell
   must not change what is tested) plus the settings asked for.  The server is
   started with ``workers=0`` semantics, so that one PID is the whole server.
3. Poll with ``GET`` on the ready path until any HTTP response comes back: the
   socket listens and the app has been imported (and, where the server runs
   lifespan, started).  If the process exits first, or the wait runs out, fail
   with the tail of the log.
4. When the ``with`` block ends, however it ends: SIGTERM, a grace period, then
   SIGKILL, sent to the child's PID and to its process group (a session of its
   own, whose id is that PID), and to nothing else.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import trustme
from cryptography.hazmat.primitives import serialization
from prometheus_client.parser import text_string_to_metric_families

from asgi_ws.servers import SERVERS, Listen, Server
from asgi_ws.settings import ENV_PREFIX, Settings

__all__ = [
    "APP",
    "HOST",
    "HTTPResult",
    "MetricSamples",
    "RunningServer",
    "ServerStartError",
    "StartServer",
    "Tls",
    "free_port",
    "launch_listen",
    "process_group_rss",
    "run_server",
    "spawn",
    "stop_process",
    "wait_until_ready",
]

HOST = "127.0.0.1"
APP = "asgi_ws.app:app"
REPO_ROOT = Path(__file__).resolve().parents[1]

READY_TIMEOUT = 20.0  # seconds for a server to answer; a loaded machine can be slow to import
STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL
START_ATTEMPTS = 3  # each on a new port, in case the port was taken between picking and binding it
POLL_INTERVAL = 0.1  # seconds between two readiness polls
HTTP_TIMEOUT = 5.0  # seconds for one HTTP request to the server
LOG_TAIL_LINES = 40  # lines of the server's log quoted when it fails to start

# Every variable asgi_ws reads, so that a misspelt one fails here instead of being ignored.
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
class Tls:
    """TLS for a server: its certificate chain and private key, and the authority that signed it (PEM files).

    :meth:`issued` makes all three with trustme, for the tests and the harness's HTTP/2 runs.
    """

    certfile: Path
    keyfile: Path
    cafile: Path  # the authority a client trusts to verify the server's certificate for HOST

    @classmethod
    def issued(cls, folder: Path) -> Tls:
        """A fresh authority, and a certificate for HOST it signed, written into ``folder``.

        The key is written as PKCS#8, the one form every server reads: granian takes no other.
        """
        authority = trustme.CA()
        issued = authority.issue_cert(HOST)
        folder.mkdir(parents=True, exist_ok=True)
        certfile, keyfile, cafile = folder / "cert.pem", folder / "key.pem", folder / "ca.pem"
        certfile.write_bytes(b"".join(pem.bytes() for pem in issued.cert_chain_pems))
        key = serialization.load_pem_private_key(issued.private_key_pem.bytes(), password=None)
        pkcs8 = serialization.PrivateFormat.PKCS8
        keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption()))
        authority.cert_pem.write_to_path(str(cafile))
        return cls(certfile, keyfile, cafile)

    def client(self, alpn: Sequence[str] = ()) -> ssl.SSLContext:
        """A fresh client context that trusts ``cafile``, offering ``alpn`` (none: nothing, so HTTP/1.1)."""
        context = ssl.create_default_context(cafile=str(self.cafile))
        if alpn:
            context.set_alpn_protocols(list(alpn))
        return context


@dataclass(slots=True)
class RunningServer:
    """A server process that answers HTTP, and how to reach it."""

    name: str  # the server's name: a key of asgi_ws.servers.SERVERS, or one given with its entry
    port: int  # on HOST
    log_path: Path  # the process's stdout and stderr
    process: subprocess.Popen[bytes] | None = None  # set once spawned
    tls: Tls | None = None  # served over TLS: https:// and wss://

    def url(self, path: str) -> str:
        """The ``ws://`` URL of ``path`` (``wss://`` over TLS), which may carry a query string."""
        return f"{'wss' if self.tls else 'ws'}://{HOST}:{self.port}{path}"

    @property
    def origin(self) -> str:
        """The ``Origin`` a page served by this server sends: the same host, so always allowed."""
        return f"{'https' if self.tls else 'http'}://{HOST}:{self.port}"

    def get(self, path: str) -> HTTPResult:
        """``GET path`` over a new connection, closed before returning."""
        connection = (
            http.client.HTTPSConnection(HOST, self.port, timeout=HTTP_TIMEOUT, context=self.tls.client())
            if self.tls
            else http.client.HTTPConnection(HOST, self.port, timeout=HTTP_TIMEOUT)
        )
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return HTTPResult(response.status, response.getheader("content-type"), response.read())
        finally:
            connection.close()

    def health(self) -> dict[str, Any]:
        """asgi_ws's ``/healthz`` document (contract §2)."""
        document: dict[str, Any] = json.loads(self.get("/healthz").body)
        return document

    def metrics(self) -> MetricSamples:
        """asgi_ws's ``/metrics`` page (contract §2), parsed.  Raises AssertionError unless it answers 200."""
        response = self.get("/metrics")
        assert response.status == 200, f"{self.name}: GET /metrics answered {response.status}"
        return MetricSamples.parse(response.body.decode())

    def rss(self) -> int:
        """Resident memory of the whole server, in bytes: its process and every process in its group.

        Read from ``/proc``, so that it covers what ``/metrics`` cannot: a
        supervisor and its workers (gunicorn), a server without the app's
        metrics (the benchmarks' peers).  The server runs in a session of its
        own (:func:`spawn`), so its group id is its PID.  Linux only.
        """
        assert self.process is not None
        return process_group_rss(self.process.pid)

    def wait_for_health(self, condition: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        """Poll ``/healthz`` until ``condition`` holds for its document, and return that document.

        Blocks, so async callers run it in a worker thread.  Raises AssertionError,
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

    def terminate(self, timeout: float = STOP_GRACE) -> int | None:
        """Send SIGTERM and wait up to ``timeout`` s for the exit; its return code, or None if still running."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self) -> str:
        return "\n".join(self.log_text().splitlines()[-LOG_TAIL_LINES:])


class MetricSamples(dict[tuple[str, frozenset[tuple[str, str]]], float]):
    """A Prometheus text page as ``{(sample name, labels): value}``."""

    @classmethod
    def parse(cls, text: str) -> MetricSamples:
        return cls(
            ((sample.name, frozenset(sample.labels.items())), sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        )

    def value(self, name: str, **labels: str) -> float:
        """The sample ``name`` with exactly these labels; 0 if the page has none (a counter not yet used)."""
        return self.get((name, frozenset(labels.items())), 0.0)

    def total(self, name: str) -> float:
        """The sum of ``name`` over all its label sets."""
        return sum(value for (sample, _), value in self.items() if sample == name)


# The type of a ``start_server`` fixture: settings in, a running server out.
StartServer = Callable[[Mapping[str, str]], RunningServer]


@contextlib.contextmanager
def run_server(
    server: str | Server,
    log_dir: Path,
    settings: Mapping[str, str] | None = None,
    *,
    app: str = APP,
    ready_path: str = "/",
    via_cli: Sequence[str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    listen: Mapping[str, float | bool | None] | None = None,
    cpus: Collection[int] | None = None,
    port: int | None = None,
    tls: Tls | None = None,
) -> Iterator[RunningServer]:
    """Run ``server`` serving ``app`` with ``ASGI_WS_*`` ``settings`` for the ``with`` block.

    ``server``: a name from :data:`asgi_ws.servers.SERVERS`, or an entry that
    is not in it (``python -m conformance --server-command``).
    ``via_cli``: start it through ``python -m asgi_ws serve`` with these extra
    flags, instead of the server's own command line.  ``extra_env``: more
    environment variables for the child, not checked against asgi_ws's names.
    ``listen``: overrides of :class:`asgi_ws.servers.Listen`, e.g. ``ping_interval``
    (None: no ping flags, the server's own keepalive default).
    ``cpus``: pin the server, and every process and thread it starts, to these
    CPUs (the benchmarks keep it off the load generator's).
    ``port``: listen on this port (say, the one of a server that was just
    stopped, so that its clients can come back) instead of a free one; taken,
    it fails at once with :class:`ServerStartError`.
    ``tls``: serve TLS with these files (ValueError under a server that cannot); the
    server's ``url``, ``origin`` and ``get`` then speak ``wss://`` and ``https://``.
    """
    options = Launch(app, ready_path, via_cli, extra_env or {}, listen or {}, frozenset(cpus or ()), tls)
    kind = SERVERS[server] if isinstance(server, str) else server
    running = _start(kind, log_dir, settings or {}, options, port)
    try:
        yield running
    finally:
        assert running.process is not None
        stop_process(running.process)


def free_port() -> int:
    """A port that nothing listens on right now.  It may be taken again before the server binds it."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def process_group_rss(group: int) -> int:
    """The summed VmRSS of every live process in process group ``group``, in bytes (Linux ``/proc``)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ")".
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[2]) != group:
                continue
            status = (stat.parent / "status").read_text()
        except (OSError, ValueError, IndexError):
            continue  # the process ended while it was being read
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


# Starting and stopping


class _PortTaken(Exception):
    """The server exited because another process bound its port first."""


@dataclass(frozen=True, slots=True)
class Launch:
    """How to start the process, besides which server and which settings."""

    app: str  # "module:attr"
    ready_path: str  # polled with GET until anything answers
    via_cli: Sequence[str] | None  # flags for asgi-ws serve, or None for the server's own command
    extra_env: Mapping[str, str]  # added to the child's environment
    listen: Mapping[str, float | bool | None]  # Listen overrides
    cpus: frozenset[int]  # CPU affinity of the child; empty: wherever the OS puts it
    tls: Tls | None = None  # serve TLS with these files


def _start(
    kind: Server, log_dir: Path, settings: Mapping[str, str], options: Launch, port: int | None = None
) -> RunningServer:
    name = kind.name
    missing = kind.missing()
    if missing:
        raise ServerStartError(
            f"server {name!r} cannot run: {', '.join(missing)} not importable by {sys.executable}; "
            f"install asgi-ws[{kind.extra}]"
        )
    unknown = sorted(set(settings) - KNOWN_SETTINGS)
    if unknown:
        raise ValueError(f"unknown settings {unknown}; the app reads {sorted(KNOWN_SETTINGS)}")
    env = {key: value for key, value in os.environ.items() if not key.startswith(ENV_PREFIX)}
    env.update(settings)
    env.update(options.extra_env)
    env["PYTHONUNBUFFERED"] = "1"  # log lines reach the file as they are written
    log_dir.mkdir(parents=True, exist_ok=True)

    ports = [port] if port is not None else (free_port() for _ in range(START_ATTEMPTS))
    for chosen in ports:
        # On a port given again, a new log beside the earlier process's, not over it.
        again = "" if port is None else f"-{time.time_ns()}"
        server = RunningServer(name, chosen, log_dir / f"{name}-{chosen}{again}.log", tls=options.tls)
        server.process = _spawn(kind, server, env, options)
        try:
            wait_until_ready(server, options.ready_path, kind.ready_log)
        except _PortTaken:
            stop_process(server.process)
            continue
        except BaseException:
            stop_process(server.process)
            raise
        return server
    if port is not None:
        raise ServerStartError(f"{name}: port {port} is taken")
    raise ServerStartError(f"{name}: the chosen port was taken {START_ATTEMPTS} times in a row")


# The conformance harness runs every server with permessage-deflate on where it has a switch, which is
# each switch's own default, so that Autobahn's deflate cases test the server's deflate; asgi-ws serve,
# the tests and the benchmarks take the launcher's choice, off where the server can (docs/deflate.md).
SERVERS_OWN_DEFLATE: Mapping[str, bool] = {"deflate": True}


def launch_listen(port: int, overrides: Mapping[str, float | bool | None] | None = None) -> Listen:
    """How the launcher asks every server to listen: on HOST, one process, keepalive and deflate as given or by default.

    workers=0: one process is the whole server, so stopping its PID stops everything.
    """
    return Listen(HOST, port, workers=0).with_overrides(overrides or {})


def _spawn(kind: Server, server: RunningServer, env: Mapping[str, str], options: Launch) -> subprocess.Popen[bytes]:
    listen = launch_listen(server.port, options.listen)
    files: list[str] = []  # asgi-ws serve's TLS flags
    if options.tls is not None:
        certfile, keyfile = str(options.tls.certfile), str(options.tls.keyfile)
        listen = replace(listen, certfile=certfile, keyfile=keyfile)
        files = ["--certfile", certfile, "--keyfile", keyfile]
    argv = kind.command(options.app, listen)
    if options.via_cli is not None:
        # asgi-ws serve execs the server in the same process: the PID stays the server's.
        flags = ["--host", HOST, "--port", str(server.port), "--workers", "0", *files]
        argv = [sys.executable, "-m", "asgi_ws", "serve", "--server", server.name, *flags, *options.via_cli]
    return spawn(argv, server.log_path, env, options.cpus)


def spawn(
    argv: Sequence[str], log_path: Path, env: Mapping[str, str], cpus: Collection[int] = ()
) -> subprocess.Popen[bytes]:
    """Start ``argv`` from the repository's root, in a session of its own, its output going to ``log_path``.

    For :func:`run_server`, and for the rare process that is not one of the
    servers (the benchmarks' plain ``websockets`` server): stop it with
    :func:`stop_process`.  ``cpus``: pin it, and every process and thread it
    starts, to these CPUs.
    """
    pinned = frozenset(cpus)
    # The child gets its own copy of the log file's descriptor; ours is closed on leaving the block.
    with log_path.open("wb") as log:
        # A session of its own, so that a server with helper processes (granian runs a
        # worker beside its main process) can be killed as a whole: its group is its PID.
        return subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # Set in the child before exec, so that threads and workers it starts inherit it.
            preexec_fn=(lambda: os.sched_setaffinity(0, pinned)) if pinned else None,
        )


def wait_until_ready(server: RunningServer, ready_path: str, ready_log: str | None = None) -> None:
    """Return once ``GET ready_path`` gets any HTTP response, and the log shows ``ready_log`` if given.

    Raises _PortTaken or ServerStartError.
    """
    assert server.process is not None
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        returncode = server.process.poll()
        if returncode is not None:
            if "address already in use" in server.log_text().lower():
                raise _PortTaken
            raise ServerStartError(
                f"{server.name} exited with code {returncode} before it was ready; "
                f"log {server.log_path} ends with:\n{server.log_tail()}"
            )
        # Refused until the server listens; http.client's errors while it starts up.
        with contextlib.suppress(OSError, http.client.HTTPException):
            server.get(ready_path)
            if ready_log is None or ready_log in server.log_text():
                return
        if time.monotonic() > deadline:
            raise ServerStartError(
                f"{server.name} did not answer GET {ready_path}"
                + (f" and log {ready_log!r}" if ready_log is not None else "")
                + f" within {READY_TIMEOUT} s; "
                f"log {server.log_path} ends with:\n{server.log_tail()}"
            )
        time.sleep(POLL_INTERVAL)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's PID, up to STOP_GRACE seconds to exit, then SIGKILL.

    The SIGKILL goes to the server's process group, whose id is the server's
    PID (see _spawn), so that no helper process it started outlives it.
    ``terminate`` does nothing if the process has already exited and been reaped.
    """
    process.terminate()
    try:
        process.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # helpers left behind, if any
