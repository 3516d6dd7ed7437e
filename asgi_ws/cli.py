"""``asgi-ws serve``: run the app under a chosen server (also ``python -m asgi_ws serve``).

The command validates every setting first, so a bad value fails here with a
message naming the flag or variable.  It then hands the settings to the server
as ``ASGI_WS_*`` environment variables and *replaces itself* with the server's
own command line (:mod:`asgi_ws.servers`).  Environment variables rather than
an app object because with ``--workers N`` each worker process imports
``asgi_ws.app:app`` itself; exec rather than a child process so that signals
(Ctrl-C, SIGTERM from a supervisor) reach the server directly.

The command it runs is printed first, as a shell line that does the same by
hand: the ``ASGI_WS_*`` assignments that matter (:func:`equivalent_command`),
then the server's argv.  ``--print-command`` prints that line without running
it.  A broker URL's password is shown as ``***`` there, as in every log line.

Errors name the problem on their first line and point to ``--help``, instead
of argparse's habit of printing the whole usage block before the error.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import NoReturn

from . import __version__
from .broker import redact
from .servers import SERVERS, Listen, Server
from .settings import DEFAULTS, Settings, SettingsError, add_arguments, env_name

__all__ = ["build_parser", "equivalent_command", "main"]

APP = "asgi_ws.app:app"


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors come first, with a pointer to ``--help`` instead of the usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\nrun '{self.prog} --help' for the options\n")


def _ranged(kind: Callable[[str], float], low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = kind(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number from {low:g} to {high:g}, got {raw!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected a number from {low:g} to {high:g}, got {raw!r}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="asgi-ws", description="Real-time WebSockets on raw ASGI.")
    parser.add_argument("--version", action="version", version=f"asgi-ws {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the app under an ASGI server",
        description="Run asgi_ws.app:app under an ASGI server. Defaults: uvicorn on 127.0.0.1:8000, memory broker.",
    )
    serve.add_argument("--server", choices=list(SERVERS), default="uvicorn", help="ASGI server (default uvicorn)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=_ranged(int, 0, 65535), default=8000, help="port to bind (default 8000)")
    serve.add_argument(
        "--workers",
        type=_ranged(int, 0, 1024),
        default=1,
        help="worker processes (default 1; 0 serves in this process with no supervisor where the server can, "
        "as hypercorn and anycorn do, and is 1 elsewhere)",
    )
    serve.add_argument(
        "--ping-interval", type=_ranged(float, 0.1, 86400), default=20.0, help="seconds between keepalive pings"
    )
    serve.add_argument(
        "--ping-timeout", type=_ranged(float, 0.1, 86400), default=20.0, help="seconds to wait for a pong"
    )
    serve.add_argument(
        "--server-keepalive",
        action="store_true",
        help="pass no ping flags: the server's own keepalive defaults (--ping-interval is ignored)",
    )
    serve.add_argument(
        "--deflate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="turn permessage-deflate on or off where the server has a switch (default: off, which keeps a "
        "browser's connection within 40 KiB; see docs/deflate.md)",
    )
    serve.add_argument(
        "--certfile", metavar="FILE", help="serve TLS (https://, wss://) with this PEM certificate chain, and --keyfile"
    )
    serve.add_argument("--keyfile", metavar="FILE", help="the private key of --certfile, a PEM file")
    serve.add_argument(
        "--print-command",
        action="store_true",
        help="print the equivalent shell command and exit: the ASGI_WS_* variables that are not at their "
        "default or that the environment sets, then the server's command line; a broker password shows as ***",
    )
    add_arguments(serve)
    serve.set_defaults(run=serve_command, command_parser=serve)

    token = commands.add_parser(
        "token",
        help="mint an access token (contract §10) with ASGI_WS_TOKEN_SECRET",
        description="Print an HS256 access token for a backend or a test, signed with the secret in "
        "ASGI_WS_TOKEN_SECRET, as the app checks it.",
    )
    token.add_argument("--sub", required=True, help='who the client is: "from" on every message it sends')
    token.add_argument(
        "--rooms",
        required=True,
        help="comma-separated room names it may enter, each exact or a prefix ending in * ('team-*')",
    )
    token.add_argument(
        "--ttl", type=_ranged(float, 1, 366 * 86400), default=3600.0, help="seconds it is valid (default 3600)"
    )
    token.set_defaults(run=token_command, command_parser=token)
    return parser


def token_command(args: argparse.Namespace) -> int:
    """Print a token for ``--sub`` and ``--rooms``, valid ``--ttl`` seconds."""
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        return _fail(str(exc))
    if not settings.token_secret:
        return _fail("ASGI_WS_TOKEN_SECRET is not set: the token is signed with the secret the app checks it with")
    rooms = [room.strip() for room in args.rooms.split(",") if room.strip()]
    if not args.sub.strip() or not rooms:
        return _fail("--sub and --rooms must not be empty")
    from .access import mint_token

    print(mint_token(settings.token_secret, args.sub, rooms, args.ttl))
    return 0


def serve_command(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_sources(args)
    except SettingsError as exc:
        return _fail(f"{exc}\nrun 'asgi-ws serve --help' for the options")
    server = SERVERS[args.server]
    interval = None if args.server_keepalive else args.ping_interval
    try:
        certfile, keyfile = _tls_files(args.certfile, args.keyfile)
        listen = Listen(args.host, args.port, args.workers, interval, args.ping_timeout, args.deflate)
        listen = replace(listen, certfile=certfile, keyfile=keyfile)
        argv = server.command(APP, listen)
    except ValueError as exc:
        return _fail(str(exc))
    if args.workers == 0 and not server.zero_workers:
        _note(_no_zero_workers(server))
    if args.deflate is not None and not server.deflate_switch:
        _note(f"--{'' if args.deflate else 'no-'}deflate does nothing: {server.name} has no permessage-deflate switch")
    command = equivalent_command(settings, argv)
    if args.print_command:  # also for a server that is not installed here: it only shows
        if redact(settings.broker) != settings.broker:
            _note("the broker's password shows as ***: put it back before running this")
        if settings.token_secret:
            _note("ASGI_WS_TOKEN_SECRET shows as ***: put it back before running this")
        print(command)
        return 0
    if server.no_redis is not None and not settings.broker.startswith("memory://"):
        return _fail(f"--server {server.name} cannot use the broker {redact(settings.broker)}: {server.no_redis}")
    if missing := server.missing():
        return _fail(f"--server {server.name} needs {', '.join(missing)}: pip install 'asgi-ws[{server.extra}]'")
    base = _authority(args.host, args.port)
    broker = redact(settings.broker)
    http, ws = ("https", "wss") if listen.tls else ("http", "ws")
    _note(f"serving {http}://{base}/ (the demo page) and {ws}://{base}/ws with {server.name}, broker {broker}")
    if args.workers > 1 and settings.broker.startswith("memory://"):
        _note("with the memory broker each worker has its own rooms: chat reaches only its own worker's clients")
    if args.server_keepalive:
        _note(f"keepalive pings: {server.name}'s own default")
    elif server.no_ping is not None:
        _note(f"keepalive pings are off: {server.no_ping}")
    _note(f"exec {command}")
    sys.stderr.flush()
    os.execve(argv[0], argv, {**os.environ, **settings.to_env()})
    return 0  # pragma: no cover - execve does not return


def equivalent_command(settings: Settings, argv: Sequence[str], environ: Mapping[str, str] | None = None) -> str:
    """A shell line that runs ``argv`` with ``settings``, as ``serve`` does, for a person to copy.

    ``serve`` hands the server every ``ASGI_WS_*`` variable; the line shows the
    ones that change something: those not at their default, and those the
    environment (``environ``, else ``os.environ``) sets, which a by-hand run in
    the same shell would otherwise inherit unchanged.  Each value is quoted
    apart from its name, so that the shell reads ``NAME=value`` as an
    assignment, and the broker URL's password is shown as ``***``.
    """
    environ = os.environ if environ is None else environ
    defaults = DEFAULTS.to_env()
    shown = {env_name("broker"): redact(settings.broker), env_name("token_secret"): "***"}
    assignments = [
        f"{name}={shlex.quote(shown.get(name, value) if value else value)}"
        for name, value in settings.to_env().items()
        if value != defaults[name] or name in environ
    ]
    return " ".join([*assignments, shlex.join(argv)])


def _tls_files(certfile: str | None, keyfile: str | None) -> tuple[str | None, str | None]:
    """``--certfile`` and ``--keyfile`` as absolute paths, both or neither; ValueError says what is wrong.

    Absolute, since the server may resolve a relative path from another directory.
    """
    if (certfile is None) != (keyfile is None):
        raise ValueError("--certfile and --keyfile go together: TLS needs the certificate and its private key")
    if certfile is None or keyfile is None:
        return None, None
    for flag, path in (("--certfile", certfile), ("--keyfile", keyfile)):
        if not os.path.isfile(path):
            raise ValueError(f"{flag} {path}: no such file")
    return os.path.abspath(certfile), os.path.abspath(keyfile)


def _authority(host: str, port: int) -> str:
    """``host:port`` for a URL, an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _no_zero_workers(server: Server) -> str:
    """What ``--workers 0`` becomes under a server that takes no worker count of 0 (``Server.zero_workers``)."""
    if server.multi_worker:
        return f"--workers 0 is --workers 1 under {server.name}, which has no worker count of 0"
    return f"--workers 0 is the same as 1 under {server.name}: it runs a single process"


def _note(message: str) -> None:
    print(f"asgi-ws: {message}", file=sys.stderr)


def _fail(message: str) -> int:
    print(f"asgi-ws: error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # argparse leaves these to the top parser, but the command's --help is the one that lists its flags
        command_parser: argparse.ArgumentParser = getattr(args, "command_parser", parser)
        command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is None:  # bare "asgi-ws": what it can do, as --help shows it
        parser.print_help()
        return 0
    run: Callable[[argparse.Namespace], int] = args.run
    return run(args)
