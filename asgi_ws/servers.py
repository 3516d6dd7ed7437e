"""How to run an ASGI app under each supported server (SPEC §0 server table).

This module owns the command lines: one :class:`Server` per row of the table,
turning "host, port, workers, keepalive" into the argv of that server's own CLI.
It starts nothing; :mod:`asgi_ws.cli` runs the command, and the conformance
harness and the tests start the same commands as subprocesses.

Keepalive is set the same way everywhere it can be, so that dead peers are
found on every server (the app's idle timeout only counts messages):

- uvicorn, all ws implementations: ``--ws-ping-interval`` and ``--ws-ping-timeout``;
- hypercorn, asyncio and uvloop workers: ``--websocket-ping-interval``.  Without
  it hypercorn does not ping at all, and it has no pong timeout;
- hypercorn's trio worker: no pings, because of a crash (:data:`TRIO_PING_RACE`);
- daphne: ``--ping-interval`` and ``--ping-timeout``;
- granian: none, it has no WebSocket ping option.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass

__all__ = ["SERVERS", "Listen", "Server", "installed_servers"]


@dataclass(frozen=True, slots=True)
class Listen:
    """Where and how a server listens: the options every server shares."""

    host: str = "127.0.0.1"
    port: int = 8000
    # Worker processes.  0 means "serve in the started process itself, with no
    # supervisor", which is what tests want so that one PID is the whole server:
    # uvicorn and daphne already do that with one worker, but hypercorn 0.18
    # with --workers 1 spawns a child that a SIGKILL of the parent leaves running.
    workers: int = 1
    ping_interval: float = 20.0  # seconds between keepalive pings
    ping_timeout: float = 20.0  # seconds to wait for the pong, where the server can


@dataclass(frozen=True, slots=True)
class Server:
    """One row of the SPEC §0 table."""

    name: str
    module: str  # the server's package, run with ``python -m``
    flags: tuple[str, ...]  # fixed flags that select the implementation or worker
    requires: tuple[str, ...] = ()  # other packages that implementation needs
    multi_worker: bool = True  # False: one process only (daphne)
    no_ping: str | None = None  # why keepalive pings are not turned on, where they are not
    no_redis: str | None = None  # why the redis:// broker cannot run under this server, where it cannot

    def missing(self) -> list[str]:
        """The packages this row needs that are not importable here."""
        return [name for name in (self.module, *self.requires) if importlib.util.find_spec(name) is None]

    def installed(self) -> bool:
        return not self.missing()

    def command(self, app: str, listen: Listen) -> list[str]:
        """The argv that serves ``app`` ("module:attr") as ``listen`` says."""
        if listen.workers > 1 and not self.multi_worker:
            raise ValueError(f"{self.name} runs a single process; use --workers 1")
        argv = [sys.executable, "-m", self.module, *self.flags, *self._listen_flags(listen), app]
        return argv

    def _listen_flags(self, listen: Listen) -> list[str]:
        interval, timeout = f"{listen.ping_interval:g}", f"{listen.ping_timeout:g}"
        workers = str(max(1, listen.workers))  # 0 is hypercorn's alone; one worker is in-process elsewhere
        if self.module == "uvicorn":
            return [
                *("--host", listen.host, "--port", str(listen.port), "--workers", workers),
                *("--ws-ping-interval", interval, "--ws-ping-timeout", timeout),
            ]
        if self.module == "hypercorn":
            host = f"[{listen.host}]" if ":" in listen.host else listen.host
            flags = ["--bind", f"{host}:{listen.port}", "--workers", str(listen.workers)]
            if self.no_ping is None:
                # hypercorn 0.18's flag takes whole seconds only (argparse type=int).
                flags += ["--websocket-ping-interval", str(max(1, round(listen.ping_interval)))]
            return flags
        if self.module == "daphne":
            return ["-b", listen.host, "-p", str(listen.port), "--ping-interval", interval, "--ping-timeout", timeout]
        # granian
        return ["--host", listen.host, "--port", str(listen.port), "--workers", workers]


# hypercorn 0.18's trio worker can crash the whole server when a keepalive ping
# races with the server closing a connection: TCPServer._close() calls
# send_eof() without the send lock that protocol_send() holds, so the ping task's
# send_all() raises trio.BusyResourceError, which nothing catches
# (hypercorn/trio/tcp_server.py).  No keepalive is safer than that.
TRIO_PING_RACE = "hypercorn 0.18's trio worker can crash when a ping races a close (see asgi_ws/servers.py)"

# The Redis broker (SPEC §4) is started by the lifespan scope and uses redis-py's
# asyncio client.
TRIO_NO_REDIS = "it runs trio, and redis-py's client needs asyncio: use --server hypercorn or hypercorn-uvloop"
NO_LIFESPAN = "it does not run the ASGI lifespan protocol, which starts the broker: use uvicorn or hypercorn"

SERVERS: dict[str, Server] = {
    server.name: server
    for server in [
        Server("uvicorn", "uvicorn", ("--ws", "websockets-sansio"), requires=("websockets",)),
        Server("uvicorn-websockets", "uvicorn", ("--ws", "websockets"), requires=("websockets",)),
        Server("uvicorn-wsproto", "uvicorn", ("--ws", "wsproto"), requires=("wsproto",)),
        Server("hypercorn", "hypercorn", ("--worker-class", "asyncio")),
        Server("hypercorn-uvloop", "hypercorn", ("--worker-class", "uvloop"), requires=("uvloop",)),
        Server(
            "hypercorn-trio",
            "hypercorn",
            ("--worker-class", "trio"),
            requires=("trio",),
            no_ping=TRIO_PING_RACE,
            no_redis=TRIO_NO_REDIS,
        ),
        Server("daphne", "daphne", (), multi_worker=False, no_redis=NO_LIFESPAN),
        Server("granian", "granian", ("--interface", "asgi"), no_ping="granian 2.x has no WebSocket ping option"),
    ]
}


def installed_servers() -> list[str]:
    """Names of the servers whose package is importable here."""
    return [name for name, server in SERVERS.items() if server.installed()]
