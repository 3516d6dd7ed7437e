"""How to run an ASGI app under each supported server: one declarative entry per server.

This module owns the command lines.  Each :class:`Server` is data: the
server's own command line as a template, the flags for the worker count and
for keepalive pings as two more templates, the packages it needs (whose
versions the conformance report shows), and why it cannot ping or run the
Redis broker, where it cannot.  Nothing here branches on a server's name: to
add a server, add one entry to :data:`SERVERS` (``docs/adding-a-server.md``).
This module starts nothing; :mod:`asgi_ws.cli` runs the command, and the
conformance harness and the tests start the same commands as subprocesses.

Theory of operation of :meth:`Server.command`:

1. Each template is split into words first (like a shell would), then the
   placeholders in each word are filled, so a value never splits a word.
2. The ``command`` template is the argv after ``python -m``.  Its ``{app}``
   word is the app, ``module:attr``; the *launcher flags* (workers, pings,
   deflate, TLS) go right before that word.
3. The launcher flags are the ones that do not choose the server: how many
   workers, the keepalive pings, permessage-deflate and TLS.
   :meth:`Server.launcher_flags` returns them alone, so that the conformance
   report can say what the launcher set.  ``Listen.ping_interval = None``
   passes no ping flags at all: the server's own defaults.

TLS (``Listen.certfile`` and ``Listen.keyfile``) is one more template of
flags, ``tls``, with ``{certfile}`` and ``{keyfile}``; daphne binds through a
Twisted endpoint string instead (``{endpoint}``: ``tcp:...``, or ``ssl:...``
with the two files), since its ``-b``/``-p`` and a TLS endpoint would be two
listeners.  Over TLS the servers that speak HTTP/2 offer it by ALPN.

Keepalive is set the same way everywhere it can be, so that dead peers are
found on every server (the app's idle timeout only counts messages):

- uvicorn, all ws implementations: ``--ws-ping-interval`` and ``--ws-ping-timeout``;
- hypercorn, asyncio and uvloop workers, and anycorn: ``--websocket-ping-interval``.
  Without it they do not ping at all, and they have no pong timeout;
- hypercorn's trio worker: no pings, because of a crash (:data:`TRIO_PING_RACE`);
- daphne: ``--ping-interval`` and ``--ping-timeout``;
- granian, gunicorn and pyvoy: none, they have no WebSocket ping option.
"""

from __future__ import annotations

import importlib.util
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace

__all__ = ["NO_LIFESPAN", "SERVERS", "Listen", "Server", "installed_servers"]

APP_WORD = "{app}"  # the word of a command template that is replaced by the app


@dataclass(frozen=True, slots=True)
class Listen:
    """Where and how a server listens: the options every server shares."""

    host: str = "127.0.0.1"
    port: int = 8000
    # Worker processes.  0 means "serve in the started process itself, with no
    # supervisor", which is what tests want so that one PID is the whole server:
    # uvicorn and daphne already do that with one worker, but hypercorn 0.18
    # with --workers 1 spawns a child that a SIGKILL of the parent leaves running.
    # Servers that cannot serve without a supervisor get 1 instead.
    workers: int = 1
    # Seconds between keepalive pings; None passes no ping flags: the server's own default.
    ping_interval: float | None = 20.0
    ping_timeout: float = 20.0  # seconds to wait for the pong, where the server can
    # permessage-deflate (RFC 7692), where the server has a switch: on or off; None: the launcher's
    # choice for that server, Server.deflate_default (docs/deflate.md).
    deflate: bool | None = None
    # TLS: the certificate chain and its private key, PEM files; None for both: plain TCP.
    certfile: str | None = None
    keyfile: str | None = None
    # HTTP/2 turned on where the server has it off by default (Server.http2); elsewhere it changes nothing.
    http2: bool = False

    def __post_init__(self) -> None:
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError("TLS needs both a certificate file and its key file")

    @property
    def tls(self) -> bool:
        return self.certfile is not None

    def with_overrides(self, overrides: Mapping[str, float | bool | None]) -> Listen:
        """This one with ``ping_interval``, ``ping_timeout``, ``deflate`` and ``http2`` taken from ``overrides``."""
        if unknown := set(overrides) - {"ping_interval", "ping_timeout", "deflate", "http2"}:
            raise ValueError(
                f"only ping_interval, ping_timeout, deflate and http2 can be overridden, not {sorted(unknown)}"
            )
        timeout = overrides.get("ping_timeout", self.ping_timeout)
        if timeout is None:
            raise ValueError("ping_timeout cannot be None")
        deflate = overrides.get("deflate", self.deflate)
        if deflate is not None and not isinstance(deflate, bool):
            raise ValueError(f"deflate is True, False or None, not {deflate!r}")
        return replace(
            self,
            ping_interval=overrides.get("ping_interval", self.ping_interval),
            ping_timeout=timeout,
            deflate=deflate,
            http2=bool(overrides.get("http2", self.http2)),
        )


@dataclass(frozen=True, slots=True)
class Server:
    """One server: its command line, the flags the launcher sets, what it needs.

    Placeholders of ``command_template``: ``{host}``, ``{port}``, ``{bind}`` (``host:port``,
    with an IPv6 host in brackets) and the word ``{app}``.  Of ``workers``:
    ``{workers}``.  Of ``ping``: ``{ping_interval}`` and ``{ping_timeout}`` in
    seconds as given, ``{ping_seconds}`` the interval in whole seconds (at least 1).
    """

    name: str
    command_template: str  # the argv after "python -m", e.g. "uvicorn --host {host} --port {port} {app}"
    packages: tuple[str, ...]  # importable packages it needs (distribution names too), shown with their versions
    workers: str = ""  # flags for the worker count; "": one process only, more workers are refused
    ping: str = ""  # flags for keepalive pings; "": none are passed (say why in no_ping)
    zero_workers: bool = False  # the server takes --workers 0: serve in the started process, no supervisor
    ready_log: str | None = None  # text its log must show, besides answering HTTP, before it counts as ready
    # Whether it offers the websocket.http.response extension; without it the app
    # refuses a handshake by closing before accept, which the server answers with a bare 403.
    denial_response: bool = True
    no_ping: str | None = None  # why keepalive pings are not turned on, where they are not
    # permessage-deflate: the flags that turn it on and off ("" for both: the server has no switch),
    # and the launcher's choice where Listen.deflate leaves it open (None: pass nothing).
    deflate_on: str = ""
    deflate_off: str = ""
    deflate_default: bool | None = None
    no_redis: str | None = None  # why the redis:// broker cannot run under this server, where it cannot
    tls: str = ""  # flags that serve TLS, with {certfile} and {keyfile}; "": by {endpoint}, or not at all
    no_tls: str | None = None  # why it cannot serve TLS, where it cannot
    install: str = ""  # the asgi-ws[...] extra that installs it, where that is not the package run
    http2: str = ""  # flags that turn HTTP/2 on, where it is off unless asked for (Listen.http2)

    def __post_init__(self) -> None:
        if shlex.split(self.command_template).count(APP_WORD) != 1:
            raise ValueError(f"server {self.name!r}: the command needs the word {APP_WORD} exactly once")
        if not self.ping and self.no_ping is None:
            raise ValueError(f"server {self.name!r}: no ping flags, so say why in no_ping")
        if bool(self.deflate_on) != bool(self.deflate_off):
            raise ValueError(f"server {self.name!r}: a deflate switch needs both deflate_on and deflate_off")
        if self.deflate_default is not None and not self.deflate_on:
            raise ValueError(f"server {self.name!r}: a deflate_default needs a switch (deflate_on, deflate_off)")
        try:  # every placeholder is a known one: a typo fails here, not when the server is started
            self.command("module:app", Listen())
        except ValueError as exc:
            raise ValueError(f"server {self.name!r}: {exc}") from None
        if not self.serves_tls and self.no_tls is None:
            raise ValueError(f"server {self.name!r}: no tls flags and no {{endpoint}}, so say why in no_tls")

    # What it needs

    @property
    def module(self) -> str:
        """The package run with ``python -m``: the command's first word."""
        return shlex.split(self.command_template)[0]

    @property
    def extra(self) -> str:
        """The ``asgi-ws[...]`` extra that installs it: ``install``, else named after the package run."""
        return self.install or self.module.split(".")[0]

    @property
    def multi_worker(self) -> bool:
        return bool(self.workers)

    def missing(self) -> list[str]:
        """The packages this entry needs that are not importable here."""
        return [name for name in self.packages if importlib.util.find_spec(name) is None]

    def installed(self) -> bool:
        return not self.missing()

    # Command lines

    def command(self, app: str, listen: Listen) -> list[str]:
        """The argv that serves ``app`` ("module:attr") as ``listen`` says."""
        words = [_fill(word, self._values(listen)) for word in shlex.split(self.command_template)]
        at = words.index(APP_WORD)
        return [sys.executable, "-m", *words[:at], *self.launcher_flags(listen), app, *words[at + 1 :]]

    def launcher_flags(self, listen: Listen) -> list[str]:
        """The flags that do not choose the server: the worker count, the keepalive pings, deflate, TLS, HTTP/2."""
        return [
            *self.worker_flags(listen),
            *self.ping_flags(listen),
            *self.deflate_flags(listen),
            *self.tls_flags(listen),
            *(shlex.split(self.http2) if listen.http2 else []),
        ]

    def worker_flags(self, listen: Listen) -> list[str]:
        """The ``workers`` template filled; raises ValueError for more than one worker where there is none."""
        if listen.workers > 1 and not self.multi_worker:
            raise ValueError(f"{self.name} runs a single process; use --workers 1")
        return [_fill(word, self._values(listen)) for word in shlex.split(self.workers)]

    def ping_flags(self, listen: Listen) -> list[str]:
        """The ``ping`` template filled; none where ``listen.ping_interval`` is None (the server's default)."""
        if listen.ping_interval is None:
            return []
        return [_fill(word, self._values(listen)) for word in shlex.split(self.ping)]

    @property
    def deflate_switch(self) -> bool:
        """Whether the server's command line can turn permessage-deflate on and off."""
        return bool(self.deflate_on)

    def deflate_flags(self, listen: Listen) -> list[str]:
        """The flags for ``listen.deflate``, else for ``deflate_default``; none without a switch or a choice."""
        wanted = self.deflate_default if listen.deflate is None else listen.deflate
        if wanted is None or not self.deflate_switch:
            return []
        return shlex.split(self.deflate_on if wanted else self.deflate_off)

    @property
    def serves_tls(self) -> bool:
        """Whether the launcher can serve TLS under it: by its ``tls`` flags, or in its ``{endpoint}``."""
        return bool(self.tls) or "{endpoint}" in self.command_template

    def tls_flags(self, listen: Listen) -> list[str]:
        """The ``tls`` template filled for ``listen``'s files; none for plain TCP.  ValueError where it has no TLS."""
        if not listen.tls:
            return []
        if not self.serves_tls:
            raise ValueError(f"{self.name} cannot serve TLS: {self.no_tls}")
        return [_fill(word, self._values(listen)) for word in shlex.split(self.tls)]

    def _values(self, listen: Listen) -> dict[str, str]:
        host = f"[{listen.host}]" if ":" in listen.host else listen.host
        values = {
            "host": listen.host,
            "port": str(listen.port),
            "bind": f"{host}:{listen.port}",
            "endpoint": _twisted_endpoint(listen),
            "workers": str(listen.workers if self.zero_workers else max(1, listen.workers)),
            "ping_timeout": f"{listen.ping_timeout:g}",
        }
        if listen.certfile is not None and listen.keyfile is not None:
            values["certfile"], values["keyfile"] = listen.certfile, listen.keyfile
        if listen.ping_interval is not None:
            values["ping_interval"] = f"{listen.ping_interval:g}"
            values["ping_seconds"] = str(max(1, round(listen.ping_interval)))
        return values


def _twisted_endpoint(listen: Listen) -> str:
    """``listen`` as a Twisted server endpoint string (daphne's ``-e``): TCP, or TLS with its two files.

    In such a string ``:`` separates the fields and ``=`` a field's name from its value, so both are
    escaped with a backslash inside a value: an IPv6 address, or a path that holds one.
    """

    def escaped(value: str) -> str:
        return value.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")

    fields = f"port={listen.port}:interface={escaped(listen.host)}"
    if listen.certfile is None or listen.keyfile is None:
        return f"tcp:{fields}"
    return f"ssl:{fields}:privateKey={escaped(listen.keyfile)}:certKey={escaped(listen.certfile)}"


def _fill(word: str, values: dict[str, str]) -> str:
    """One template word with its placeholders filled; ``{app}`` stays for :meth:`Server.command`."""
    if word == APP_WORD:
        return word
    try:
        return word.format_map(values)
    except KeyError as exc:
        raise ValueError(f"unknown placeholder {exc} in {word!r}; expected one of {sorted(values)}") from None


# hypercorn 0.18's trio worker can crash the whole server when a keepalive ping
# races with the server closing a connection: TCPServer._close() calls
# send_eof() without the send lock that protocol_send() holds, so the ping task's
# send_all() raises trio.BusyResourceError, which nothing catches
# (hypercorn/trio/tcp_server.py).  No keepalive is safer than that.
TRIO_PING_RACE = "hypercorn 0.18's trio worker can crash when a ping races a close (see asgi_ws/servers.py)"

# The Redis broker (contract §4) is started by the lifespan scope and uses redis-py's
# asyncio client.
TRIO_NO_REDIS = "it runs trio, and redis-py's client needs asyncio: use --server hypercorn or hypercorn-uvloop"
NO_LIFESPAN = "it does not run the ASGI lifespan protocol, which starts the broker: use uvicorn or hypercorn"
# pyvoy 1.3 runs the app's lifespan once per event loop, one for HTTP and one for WebSockets
# (src/asgi/shared/eventloop.rs, EventLoops::new), so two brokers start, each on its own loop.
PYVOY_TWO_LIFESPANS = (
    "pyvoy 1.3 runs the lifespan once per event loop (HTTP and WebSocket), so the broker starts twice: "
    "use uvicorn or hypercorn"
)

# uvicorn's ping timeout exists; hypercorn's and anycorn's flag takes whole seconds
# only (hypercorn 0.18: argparse type=int; anycorn 0.20: click type=int).
UVICORN_PING = "--ws-ping-interval {ping_interval} --ws-ping-timeout {ping_timeout}"
HYPERCORN_PING = "--websocket-ping-interval {ping_seconds}"

# TLS flags: every server but daphne takes the two files as flags (daphne: an ssl: endpoint, _twisted_endpoint).
UVICORN_TLS = "--ssl-certfile {certfile} --ssl-keyfile {keyfile}"
HYPERCORN_TLS = "--certfile {certfile} --keyfile {keyfile}"  # hypercorn, anycorn and gunicorn alike

# permessage-deflate switches: uvicorn's applies to all its ws implementations (uvicorn/config.py,
# ws_per_message_deflate); anycorn's and uvicorn's are click options of type bool.  The launcher turns
# deflate off on every server that has a switch: with it, a connection that has received one message
# holds more than the 40 KiB that lets 100,000 browsers fit in 4 GiB (bench/RESULTS.md, P11;
# docs/deflate.md).  hypercorn 0.18 has no switch (pgjones/hypercorn#307); daphne, granian and
# gunicorn never accept it.
UVICORN_DEFLATE_ON = "--ws-per-message-deflate true"
UVICORN_DEFLATE_OFF = "--ws-per-message-deflate false"

SERVERS: dict[str, Server] = {
    server.name: server
    for server in [
        Server(
            "uvicorn",
            "uvicorn --ws websockets-sansio --host {host} --port {port} {app}",
            ("uvicorn", "websockets"),
            workers="--workers {workers}",
            ping=UVICORN_PING,
            deflate_on=UVICORN_DEFLATE_ON,
            deflate_off=UVICORN_DEFLATE_OFF,
            deflate_default=False,
            tls=UVICORN_TLS,
        ),
        Server(
            "uvicorn-websockets",
            "uvicorn --ws websockets --host {host} --port {port} {app}",
            ("uvicorn", "websockets"),
            workers="--workers {workers}",
            ping=UVICORN_PING,
            deflate_on=UVICORN_DEFLATE_ON,
            deflate_off=UVICORN_DEFLATE_OFF,
            deflate_default=False,
            tls=UVICORN_TLS,
        ),
        Server(
            "uvicorn-wsproto",
            "uvicorn --ws wsproto --host {host} --port {port} {app}",
            ("uvicorn", "wsproto"),
            workers="--workers {workers}",
            ping=UVICORN_PING,
            deflate_on=UVICORN_DEFLATE_ON,
            deflate_off=UVICORN_DEFLATE_OFF,
            deflate_default=False,
            tls=UVICORN_TLS,
        ),
        # uvicorn's zttp HTTP parser (uvicorn/protocols/http/zttp_impl.py) with its own upgrade path:
        # ZttpProtocol.handle_websocket_upgrade hands the connection to the --ws implementation, so the
        # WebSocket itself is websockets-sansio, as in the reference.  No --http2: zttp's HTTP/2 path
        # (zttp_h2_impl.py) has no WebSockets.
        Server(
            "uvicorn-zttp",
            "uvicorn --http zttp --ws websockets-sansio --host {host} --port {port} {app}",
            ("uvicorn", "zttp", "websockets"),
            workers="--workers {workers}",
            ping=UVICORN_PING,
            deflate_on=UVICORN_DEFLATE_ON,
            deflate_off=UVICORN_DEFLATE_OFF,
            deflate_default=False,
            tls=UVICORN_TLS,
            install="zttp",
            http2="--http2",  # zttp's HTTP/2 (h2c and ALPN h2): off unless asked for
        ),
        Server(
            "hypercorn",
            "hypercorn --worker-class asyncio --bind {bind} {app}",
            ("hypercorn",),
            workers="--workers {workers}",
            ping=HYPERCORN_PING,
            zero_workers=True,
            tls=HYPERCORN_TLS,
        ),
        Server(
            "hypercorn-uvloop",
            "hypercorn --worker-class uvloop --bind {bind} {app}",
            ("hypercorn", "uvloop"),
            workers="--workers {workers}",
            ping=HYPERCORN_PING,
            zero_workers=True,
            tls=HYPERCORN_TLS,
        ),
        Server(
            "hypercorn-trio",
            "hypercorn --worker-class trio --bind {bind} {app}",
            ("hypercorn", "trio"),
            workers="--workers {workers}",
            zero_workers=True,
            no_ping=TRIO_PING_RACE,
            no_redis=TRIO_NO_REDIS,
            tls=HYPERCORN_TLS,
        ),
        Server(
            "daphne",
            "daphne -e {endpoint} {app}",
            ("daphne",),
            ping="--ping-interval {ping_interval} --ping-timeout {ping_timeout}",
            denial_response=False,
            no_redis=NO_LIFESPAN,
        ),
        Server(
            "granian",
            "granian --interface asgi --host {host} --port {port} {app}",
            ("granian",),
            workers="--workers {workers}",
            no_ping="granian 2.x has no WebSocket ping option",
            tls="--ssl-certificate {certfile} --ssl-keyfile {keyfile}",
        ),
        # gunicorn 27's own ASGI worker (gunicorn/workers/gasgi.py, ASGIWorker), a
        # master with worker children.  --no-control-socket: gunicorn 27 otherwise
        # opens a control socket at one fixed path per user
        # ($XDG_RUNTIME_DIR/gunicorn.ctl or ~/.gunicorn/gunicorn.ctl, gunicorn/config.py
        # ControlSocket), which two servers started side by side would share.
        Server(
            "gunicorn",
            "gunicorn --worker-class asgi --no-control-socket --bind {bind} {app}",
            ("gunicorn",),
            workers="--workers {workers}",
            denial_response=False,
            no_ping="gunicorn 27's asgi worker has no WebSocket ping option (it only answers pings)",
            tls=HYPERCORN_TLS,
        ),
        # anycorn 0.20, hypercorn's fork on anyio: hypercorn's command line, a click CLI.
        Server(
            "anycorn",
            "anycorn --worker-class asyncio --bind {bind} {app}",
            ("anycorn",),
            workers="--workers {workers}",
            ping=HYPERCORN_PING,
            deflate_on="--websocket-permessage-deflate true",
            deflate_off="--websocket-permessage-deflate false",
            deflate_default=False,
            zero_workers=True,
            tls=HYPERCORN_TLS,
        ),
        # pyvoy 1.3, an ASGI server on Envoy: the Python process starts one envoy child (in its
        # process group) that embeds Python and runs the app.  WebSockets are off unless --websockets.
        # There is no pyvoy/__main__.py, so the command is its CLI module, pyvoy/_cli.py.
        # No workers: --worker-threads runs more event loops in one process, which asgi-ws's
        # per-process hub does not expect.
        Server(
            "pyvoy",
            "pyvoy._cli --websockets --address {host} --port {port} {app}",
            ("pyvoy",),
            denial_response=False,
            no_ping="pyvoy 1.3 has no WebSocket ping option",
            deflate_on="--websockets-compression",
            deflate_off="--no-websockets-compression",
            deflate_default=False,
            no_redis=PYVOY_TWO_LIFESPANS,
            tls="--tls-cert {certfile} --tls-key {keyfile}",  # on --port itself, since there is no --tls-port
        ),
    ]
}


def installed_servers() -> list[str]:
    """Names of the servers whose package is importable here."""
    return [name for name, server in SERVERS.items() if server.installed()]
