"""What a check is: a named, documented coroutine that drives one server and returns a transcript.

There are two kinds (contract §5):

- **scenarios** drive the app under test (``asgi_ws.app:app``, or ``--app``)
  with real clients and record what the client saw and, where it matters, what
  the app saw;
- **probes** drive the small probe app (:mod:`conformance.probe_app`) and record
  how the server itself implements the raw ASGI protocol.

A check returns a **transcript**: plain JSON data (dicts, lists, strings,
numbers, booleans, None), already normalised, i.e. free of ports, timestamps,
addresses and anything else that changes from run to run.  Two servers behave
the same on a check exactly when their transcripts are equal.

Checks register themselves with :func:`scenario` and :func:`probe`, used as
decorators.  They run through :mod:`conformance.runner`, which gives each one a
:class:`Target`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from asgi_ws.servers import Server

from .h2client import H2Client
from .launcher import HOST, RunningServer

__all__ = [
    "CHECKS",
    "HTTP1",
    "TRANSPORTS",
    "Check",
    "Kind",
    "Target",
    "Transcript",
    "Transport",
    "column",
    "columns_of",
    "kind_of",
    "probe",
    "scenario",
    "split_column",
]

Transcript = dict[str, Any]
Kind = Literal["scenario", "probe"]
# How a check's clients reach the server (contract §11): each scenario's WebSockets can be opened over any of them.
Transport = Literal["http/1.1", "h2", "h2c"]
HTTP1: Transport = "http/1.1"
TRANSPORTS: dict[Transport, str] = {
    "http/1.1": "HTTP/1.1",
    "h2": "HTTP/2 over TLS (ALPN h2), as browsers use it",
    "h2c": "HTTP/2 over TCP with prior knowledge (h2c)",
}
CheckFunction = Callable[["Target"], Awaitable[Transcript]]

# The header that tags a connection, so that what the app observed can be matched to the check.
OBSERVE_HEADER = "x-conformance-id"
OBSERVE_WAIT = 10.0  # seconds to wait for the app's observation of a connection to be written


@dataclass(frozen=True, slots=True)
class Check:
    """One scenario or probe."""

    kind: Kind
    name: str  # unique across both kinds, kebab-case
    summary: str  # one sentence: what it shows
    covers: str  # the contract (docs/contract.md) or ASGI spec section it covers, e.g. "contract §1 /ws"
    run: CheckFunction
    settings: Mapping[str, str] = field(default_factory=dict)  # ASGI_WS_* for the app it runs against
    generic: bool = False  # an echo scenario that runs against any app with --echo-path
    own_server: bool = False  # the check stops its server, so it gets a server of its own
    # Listen overrides, e.g. ping_interval (None: no ping flags, the server's own default).
    server_flags: Mapping[str, float | None] = field(default_factory=dict)
    racy: str | None = None  # what its outcome races with, and how the check gives one transcript anyway
    # The check mostly waits on a server's or the app's timer, on connections of its own: it runs side by
    # side with the other waiting checks of its server process (conformance.runner).
    waits: bool = False
    http1_only: str | None = None  # why the check runs over HTTP/1.1 only, e.g. it writes raw frames over TCP
    # The check speaks HTTP/2 itself, as a browser does: its server runs on TLS with HTTP/2 turned on.
    h2: bool = False


# Every check, by name, in registration order.
CHECKS: dict[str, Check] = {}


def kind_of(name: str) -> str:
    """What the check called ``name`` is: its kind if registered, ``autobahn`` for the Autobahn stage and its
    cases (``autobahn``, ``autobahn:1.1.1``), and ``scenario`` for anything else."""
    check = CHECKS.get(name)
    if check is not None:
        return check.kind
    return "autobahn" if name == "autobahn" or name.startswith("autobahn:") else "scenario"


def _register(
    kind: Kind, name: str, summary: str, covers: str, **options: Any
) -> Callable[[CheckFunction], CheckFunction]:
    def decorate(function: CheckFunction) -> CheckFunction:
        if name in CHECKS:
            raise ValueError(f"two checks are named {name!r}")
        CHECKS[name] = Check(kind, name, summary, covers, function, **options)
        return function

    return decorate


def scenario(name: str, summary: str, covers: str, **options: Any) -> Callable[[CheckFunction], CheckFunction]:
    """Register a scenario (options: settings, generic, own_server, server_flags, racy, http1_only)."""
    return _register("scenario", name, summary, covers, **options)


def probe(name: str, summary: str, covers: str, **options: Any) -> Callable[[CheckFunction], CheckFunction]:
    """Register a probe (options: own_server, server_flags, racy, waits, h2)."""
    return _register("probe", name, summary, covers, **options)


def column(server: str, transport: Transport) -> str:
    """The report's column for ``server`` over ``transport``: the server's name alone for HTTP/1.1."""
    return server if transport == HTTP1 else f"{server} over {transport}"


def columns_of(servers: Iterable[str]) -> list[str]:
    """Every column ``servers`` can have: each server over each transport."""
    return [column(server, transport) for server in servers for transport in TRANSPORTS]


def split_column(name: str) -> tuple[str, Transport]:
    """The server and the transport of a report column (the reverse of :func:`column`)."""
    server, _, transport = name.rpartition(" over ")
    if server and transport in TRANSPORTS:
        return server, transport
    return name, HTTP1


@dataclass(slots=True)
class Target:
    """What a check gets: the running server, and how to reach the app in it."""

    server: RunningServer  # the process; .terminate() for shutdown checks
    entry: Server  # what started it: its entry in asgi_ws.servers.SERVERS, or one given with --server-command
    echo_path: str = "/echo"  # where the app echoes, for generic scenarios
    observations: Path | None = None  # JSON lines written by conformance.observer, if the app is observed
    transport: Transport = HTTP1  # how the check's WebSockets are opened (h2 needs the server on TLS)
    _counter: int = 0  # for connection ids

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        return self.server.port

    def url(self, path: str) -> str:
        return self.server.url(path)

    async def h2(self) -> H2Client:
        """A new HTTP/2 connection to the server, over this target's transport (h2 or h2c)."""
        if self.transport == HTTP1:
            raise RuntimeError("this target's transport is HTTP/1.1")
        tls = self.server.tls.client() if self.transport == "h2" and self.server.tls is not None else None
        return await H2Client.open(self.host, self.port, tls=tls)

    def connection_id(self) -> str:
        """A fresh id for :data:`OBSERVE_HEADER`, unique within this server's run."""
        self._counter += 1
        return f"c{self._counter}-{time.monotonic_ns()}"

    async def observed(self, connection_id: str, within: float = OBSERVE_WAIT) -> dict[str, Any]:
        """What the app observed on the connection tagged ``connection_id`` (see conformance.observer).

        Waits up to ``within`` seconds for the record, which is written when the app's call returns.
        """
        if self.observations is None:
            raise RuntimeError("this target's app is not observed")
        deadline = time.monotonic() + within
        while True:
            if self.observations.exists():
                # Only whole lines: the server may be appending one right now.
                for line in self.observations.read_text().splitlines(keepends=True):
                    if not line.endswith("\n"):
                        break
                    record: dict[str, Any] = json.loads(line)
                    if record.get("id") == connection_id:
                        return record
            if time.monotonic() > deadline:
                return {"id": connection_id, "missing": "the app wrote no observation for this connection"}
            await asyncio.sleep(0.05)
