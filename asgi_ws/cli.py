"""``asgi-ws serve``: run the app under a chosen server (also ``python -m asgi_ws serve``).

The command validates every setting first, so a bad value fails here with a
message naming the flag or variable.  It then hands the settings to the server
as ``ASGI_WS_*`` environment variables and *replaces itself* with the server's
own command line (:mod:`asgi_ws.servers`).  Environment variables rather than
an app object because with ``--workers N`` each worker process imports
``asgi_ws.app:app`` itself; exec rather than a child process so that signals
(Ctrl-C, SIGTERM from a supervisor) reach the server directly.

The command it runs is printed first: it is the same as running that server
by hand, and ``--print-command`` shows it without running it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable, Sequence

from . import __version__
from .broker import redact
from .servers import SERVERS, Listen
from .settings import Settings, SettingsError, add_arguments

__all__ = ["build_parser", "main"]

APP = "asgi_ws.app:app"


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
    parser = argparse.ArgumentParser(prog="asgi-ws", description="Real-time WebSockets on raw ASGI.")
    parser.add_argument("--version", action="version", version=f"asgi-ws {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

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
        help="worker processes (default 1; 0 serves in this process with no supervisor, as hypercorn allows)",
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
    serve.add_argument("--print-command", action="store_true", help="print the server command and exit")
    add_arguments(serve)
    serve.set_defaults(run=serve_command)
    return parser


def serve_command(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_sources(args)
    except SettingsError as exc:
        return _fail(str(exc))
    server = SERVERS[args.server]
    interval = None if args.server_keepalive else args.ping_interval
    listen = Listen(args.host, args.port, args.workers, interval, args.ping_timeout)
    try:
        argv = server.command(APP, listen)
    except ValueError as exc:
        return _fail(str(exc))
    if args.print_command:  # also for a server that is not installed here: it only shows
        print(shlex.join(argv))
        return 0
    if server.no_redis is not None and not settings.broker.startswith("memory://"):
        return _fail(f"--server {server.name} cannot use the broker {redact(settings.broker)}: {server.no_redis}")
    if missing := server.missing():
        return _fail(f"--server {server.name} needs {', '.join(missing)}: pip install 'asgi-ws[{server.extra}]'")
    _note(f"serving ws://{args.host}:{args.port}/ws with {server.name}, broker {redact(settings.broker)}")
    if args.workers > 1 and settings.broker.startswith("memory://"):
        _note("with the memory broker each worker has its own rooms: chat reaches only its own worker's clients")
    if args.server_keepalive:
        _note(f"keepalive pings: {server.name}'s own default")
    elif server.no_ping is not None:
        _note(f"keepalive pings are off: {server.no_ping}")
    _note(f"exec {shlex.join(argv)}")
    sys.stderr.flush()
    os.execve(argv[0], argv, {**os.environ, **settings.to_env()})
    return 0  # pragma: no cover - execve does not return


def _note(message: str) -> None:
    print(f"asgi-ws: {message}", file=sys.stderr)


def _fail(message: str) -> int:
    print(f"asgi-ws: error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    return run(args)
