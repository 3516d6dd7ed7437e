"""The server is stopped (SIGTERM) while WebSockets are open (contract §4 "Lifespan", §5 shutdown).

Closing open sockets at shutdown is the server's job, and servers do it
differently: some send a close frame (with a code of their choosing), some
cancel the app and drop the TCP connection, some wait for the app.  So these
scenarios record, per client, how the connection ended; whether the process
exited within the launcher's grace period, and with what code; and whether its
log shows a traceback (the app's own errors, or the server's).

What the app saw is not recorded here.  Whether the app's call returns before
the process ends is itself a race on some servers (granian 2.8 exits while the
app is handling its disconnect, and the observer's record is sometimes written
and sometimes not), so it would make the transcript change from run to run.
The probes cover the app's side of shutdown with a probe app built for it.

Each scenario stops its server, so each gets a server of its own
(``own_server=True``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from ..checks import Target, Transcript, scenario
from .helpers import STILL_OPEN, client, close_of, join_room, receive

__all__: list[str] = []  # scenarios register themselves; nothing here is for import

SHUTDOWN_WAIT = 15.0  # seconds a client waits for its connection to end; more than the launcher's grace period


async def _stop(target: Target) -> dict[str, Any]:
    """SIGTERM; whether and how the process exited, and whether its log shows a traceback."""
    code = await asyncio.to_thread(target.server.terminate)
    return {"exit code": code if code is not None else "did not exit", "traceback in log": _traceback(target)}


def _traceback(target: Target) -> bool:
    return "Traceback (most recent call last)" in target.server.log_text()


async def _count_to_end(ws: ClientConnection) -> tuple[int, Any]:
    """Read and count messages (without keeping them) until the connection ends; the count and the close."""
    count = 0
    try:
        async with asyncio.timeout(SHUTDOWN_WAIT):
            while True:
                await ws.recv()
                count += 1
    except ConnectionClosed as closed:
        return count, close_of(closed.rcvd)
    except TimeoutError:
        return count, STILL_OPEN


@scenario(
    "shutdown-idle-sockets",
    "SIGTERM with idle sockets open: how each client's connection ends and how the process exits.",
    "contract §4 lifespan, §5 server shutdown with open sockets",
    own_server=True,
    racy=(
        "The server's exit races the client's reply to its close frame. FIN or RST is not recorded, and the "
        "client waits 15 s, longer than the launcher's 10 s grace before SIGKILL."
    ),
)
async def shutdown_idle_sockets(target: Target) -> Transcript:
    """One client on /ws and one in a chat room, both idle, when the server is told to stop."""
    async with client(target, "/ws") as echo, client(target, "/ws/chat/shutdown") as chat:
        await echo.send("hello")
        await receive(echo, 1)
        await join_room([chat])
        stopped, (_, echo_end), (_, chat_end) = await asyncio.gather(
            _stop(target), _count_to_end(echo), _count_to_end(chat)
        )
    return {"clients": {"/ws": echo_end, "/ws/chat/shutdown": chat_end}, "server": stopped}


@scenario(
    "shutdown-mid-stream",
    "SIGTERM during a /stream push that the client is reading: how the push ends, how the process exits.",
    "contract §4 lifespan, §5 server shutdown with open sockets",
    own_server=True,
    racy=(
        "SIGTERM lands at some point of the push. The transcript keeps only how the push ended and that it "
        "was not whole, not how many messages arrived."
    ),
)
async def shutdown_mid_stream(target: Target) -> Transcript:
    """A million-message push, started, then SIGTERM while the client keeps reading."""
    async with client(target, "/stream?count=1000000") as ws:
        await ws.send("go")
        await receive(ws, 1)
        stopped, (count, ending) = await asyncio.gather(_stop(target), _count_to_end(ws))
    return {
        "client": {"close": ending, "whole push received": count == 1_000_000 - 1},
        "server": stopped,
    }
