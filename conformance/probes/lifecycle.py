"""Probes of a connection's life after the handshake: sends and receives after a disconnect, keepalive, shutdown.

These are the places where the ASGI spec says least.  It does not say whether
``send()`` after the client has gone raises (and with what), nor what a
``receive()`` after ``websocket.disconnect`` does, nor how a server closes open
sockets when it is told to stop.  contract §3's portability rules exist because of
what these probes show.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from websockets.frames import Opcode

from asgi_ws.servers import SERVERS, Listen

from ..checks import OBSERVE_WAIT, Target, Transcript, probe
from ..probe_app import KEEP_WAITING, RECEIVES_AFTER_DISCONNECT, REPEATED_RECEIVE_WAIT
from ..rawclient import RawClient
from ..views import app_report, app_view, received_after_connect
from ._support import closing_view, connect, lenient_closing_view, lenient_open_ready, open_ready

__all__: list[str] = []  # probes register themselves; nothing to import

PING_WINDOW = 3.0  # seconds the keepalive probes listen for a ping
# Seconds the server-default probe listens: past uvicorn's and daphne's 20 s default
# interval, with room for a loaded machine, and well inside the 60 s check timeout.
SERVER_DEFAULT_WINDOW = 25.0
AT_ONCE = 0.5  # seconds: a ping this soon after accept was sent on accept, not after an interval
SHUTDOWN_WAIT = 15.0  # seconds the client waits for the server to end the connection after SIGTERM


async def _after_client_close(target: Target, path: str, app_runs_on: float = 0.0) -> Transcript:
    """The client closes with 1000 once the app says ``ready``; what the client got and what the app reports.

    ``app_runs_on``: the seconds the app may go on after the close, added to the wait for its record.
    """
    async with connect(target, path, lenient=True) as (client, connection_id):
        failure = await lenient_open_ready(client)
        if failure is not None:
            return failure
        await client.close(1000)
        client_view = await lenient_closing_view(client, answer=False)
    app = await app_view(target, connection_id, OBSERVE_WAIT + app_runs_on)
    return {
        "client": client_view,
        "app": {"send_errors": app.get("send_errors"), **await app_report(target, connection_id)},
    }


@probe(
    "probe-send-after-disconnect-unseen",
    "The client closes; the app, not having received the disconnect yet, sends a message and a close.",
    "ASGI WebSocket: send after the connection closed (spec 2.4+: raise an IOError subclass)",
    racy=(
        "The app's send must come after the client's close reached the server and before the app reads the "
        "disconnect. The probe app sleeps a fixed delay before sending, long against loopback latency."
    ),
)
async def send_after_disconnect_unseen(target: Target) -> Transcript:
    return await _after_client_close(target, "/send-after-disconnect?seen=0")


@probe(
    "probe-send-after-disconnect-seen",
    "The app receives websocket.disconnect, then sends a message and a close: did send() raise, with what?",
    "ASGI WebSocket: send after disconnect",
)
async def send_after_disconnect_seen(target: Target) -> Transcript:
    return await _after_client_close(target, "/send-after-disconnect?seen=1")


@probe(
    "probe-receive-after-disconnect",
    "The app calls receive() again after websocket.disconnect: returned event, exception, or blocked (2 s).",
    "ASGI WebSocket: receive after disconnect (unspecified)",
)
async def receive_after_disconnect(target: Target) -> Transcript:
    return await _after_client_close(target, "/receive-after-disconnect")


# How long /receive-after-disconnect-repeated goes on after the disconnect, at most: 4 x 0.5 s, then 11 s.
REPEATED_RECEIVES_RUN_FOR = RECEIVES_AFTER_DISCONNECT * REPEATED_RECEIVE_WAIT + KEEP_WAITING


@probe(
    "probe-receive-after-disconnect-repeated",
    "The app calls receive() four more times after websocket.disconnect (each bounded by 0.5 s), then waits "
    "on for 11 s: what each call does, and whether the server cancels the waiting app.",
    "ASGI WebSocket: receive after disconnect (unspecified); the app's task after the connection ends",
    racy=(
        "Where a server ends TCP only when the app returns (granian, gunicorn), the client's 5 s wait for the "
        "end of TCP races the app's 13 s of receives and waiting; gunicorn then cancels the app 3 s after the "
        "client gives up, at 8 s. daphne cancels it 10 to 11 s after the disconnect (its checker runs every "
        "second). Each is 2 s or more from the app's end at 13 s."
    ),
    waits=True,
)
async def receive_after_disconnect_repeated(target: Target) -> Transcript:
    """probe-receive-after-disconnect shows one call; this one shows what a loop that keeps calling gets,
    and what becomes of an app that lingers.  Under the reference the first extra call returns the 1005 that
    uvicorn 0.55.0 ``websockets_sansio_impl.py`` ``WebSocketsSansIOProtocol.connection_lost`` queued after
    the client's close, and every later call blocks: "another disconnect" there is a second queued event,
    not a rule.  The wait is 11 s because daphne 4.2.3 ``server.py`` ``Server.application_checker``
    cancels an app still running ``application_close_timeout`` (10 s) after its client left."""
    return await _after_client_close(target, "/receive-after-disconnect-repeated", REPEATED_RECEIVES_RUN_FOR)


async def _pinged(target: Target, first: float = AT_ONCE, whole: float = PING_WINDOW) -> Transcript:
    """Whether the server pings an idle connection within ``first`` seconds, and within ``whole``.

    The defaults ask whether it pings at once (hypercorn does) and within :data:`PING_WINDOW`.
    A ping seen in the first window ends the probe there.
    """
    async with connect(target, "/hold") as (client, _):
        failure = await open_ready(client)
        if failure is not None:
            return failure
        soon = await _ping_within(client, first)
        later = soon or await _ping_within(client, whole - first)
        await client.close(1000)
    return {f"pinged within {first:g} s": soon, f"pinged within {whole:g} s": later}


async def _ping_within(client: RawClient, seconds: float) -> bool:
    """Read for up to ``seconds``: has a ping arrived since the handshake (including before ``ready``)?"""

    def pinged() -> bool:
        return any(frame.opcode is Opcode.PING for frame in client.received.frames)

    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not pinged() and (remaining := deadline - loop.time()) > 0:
        try:
            if await client.next_frame(remaining) is None:
                break  # the connection ended
        except TimeoutError:  # the window ran out, or one read hit RawClient's own limit: read on
            continue
    return pinged()


def _flags_set(overrides: Mapping[str, float | None]) -> str:
    """Which ping flags the launcher passes to each server, in words, for a probe's summary.

    Servers with the same flags share one entry; the worker count is left out
    (the launcher always asks for a single process).
    """
    listen = Listen().with_overrides(overrides)
    by_flags: dict[str, list[str]] = {}
    for name, server in SERVERS.items():
        flags = server.ping_flags(listen)
        by_flags.setdefault(" ".join(flags) or "none", []).append(name)
    return "; ".join(f"{', '.join(names)}: {flags}" for flags, names in by_flags.items())


LAUNCHER_DEFAULT: dict[str, float | None] = {}  # Listen's own default: a 20 s interval
LAUNCHER_1S: dict[str, float | None] = {"ping_interval": 1.0}
SERVER_DEFAULT: dict[str, float | None] = {"ping_interval": None}  # no ping flags at all


@probe(
    "probe-keepalive-default",
    "With the launcher's default ping flags (20 s interval where the server has one): a ping within 3 s? "
    f"Flags the launcher sets: {_flags_set(LAUNCHER_DEFAULT)}.",
    "Server keepalive (asgi_ws.servers.Listen)",
    racy=(
        "A ping's arrival is timing. Only booleans for two windows (0.5 s and 3 s) are kept, far from the 20 "
        "s interval the launcher asks for."
    ),
)
async def keepalive_default(target: Target) -> Transcript:
    return await _pinged(target)


@probe(
    "probe-keepalive-1s",
    "With a 1 s ping interval requested through the server's flags: does a ping come within 3 s? "
    f"Flags the launcher sets: {_flags_set(LAUNCHER_1S)}.",
    "Server keepalive (asgi_ws.servers.Listen)",
    server_flags=LAUNCHER_1S,
    racy=(
        "A ping's arrival is timing. Only booleans for two windows (0.5 s and 3 s) are kept, each with room "
        "around the 1 s interval asked for."
    ),
)
async def keepalive_1s(target: Target) -> Transcript:
    return await _pinged(target)


@probe(
    "probe-keepalive-server-default",
    f"The server at its own keepalive defaults (the launcher sets no ping flag): a ping within "
    f"{PING_WINDOW:g} s, within {SERVER_DEFAULT_WINDOW:g} s?",
    "Server keepalive at the server's defaults",
    server_flags=SERVER_DEFAULT,
    racy=(
        "A ping's arrival is timing. Only booleans for two windows are kept, and the wide one ends well "
        "after the common 20 s default interval."
    ),
    waits=True,
)
async def keepalive_server_default(target: Target) -> Transcript:
    # Windows this coarse say "pings soon", "pings at a common default (20 s)" or
    # "does not ping"; the exact interval would be timing in the transcript.
    return await _pinged(target, PING_WINDOW, SERVER_DEFAULT_WINDOW)


@probe(
    "probe-sigterm",
    "SIGTERM with one idle open socket: what the client gets, what the app gets, whether the server exits.",
    "contract §4 (open sockets at shutdown are closed by the server); ASGI lifespan",
    own_server=True,
    racy=(
        "The server's exit races the client's reply to its close frame. FIN or RST is not recorded, and the "
        "client waits 15 s, longer than the launcher's 10 s grace before SIGKILL. A server that drops its "
        "sockets and exits (granian) also races the app: the app is told of the disconnect, or the process "
        "ends before its call returns, and the app side records whichever happened."
    ),
)
async def sigterm(target: Target) -> Transcript:
    async with connect(target, "/hold") as (client, connection_id):
        failure = await open_ready(client)
        if failure is not None:
            return failure
        reading = asyncio.create_task(closing_view(client, SHUTDOWN_WAIT))
        exit_code = await asyncio.to_thread(target.server.terminate)
        client_view = await reading
    app = await app_view(target, connection_id)
    if "missing" in app:  # the app's call never returned: the process ended under it
        app_side: dict[str, Any] = {"observed": "the app's call never returned"}
    else:
        report = await app_report(target, connection_id)
        app_side = {"received": received_after_connect(app), "app_error": app["app_error"], **report}
    return {
        "client": client_view,
        "app": app_side,
        "server": {"exited": exit_code is not None, "exit code": exit_code},
    }
