"""SIGTERM with 100 open connections (contract §4 "Lifespan", §7 clean shutdown).

The server process gets SIGTERM while 100 clients (chat and echo, all in use)
are connected.  Then:

- the process exits within its grace period (STOP_GRACE);
- every client sees its connection end: a close frame, or at least the end of
  TCP; none is left hanging;
- the app logs no error and no warning (the ``asgi_ws`` logger's lines; the
  servers' own tracebacks about cancelled tasks are theirs, and shown in the
  conformance report);
- lifespan shutdown runs to the end, with the broker closed: the Redis broker
  where the server can run it, the memory broker under trio.

hypercorn's trio worker, serving in-process as the tests run it, installs no
SIGTERM handler: the process dies at once, without lifespan shutdown, and the
clients see TCP end without a close frame.  That is the server's behaviour,
recorded by the ``probe-sigterm`` and ``shutdown-*`` checks in
docs/server-divergences.md; under it, this test checks exactly that instead.

hypercorn's asyncio worker on Python 3.12 and later never exits on SIGTERM
while a WebSocket is open: its shutdown awaits ``Server.wait_closed()``, which
since Python 3.12.1 waits for every open connection, so its graceful timeout is
never reached (https://github.com/pgjones/hypercorn/issues/308).  There the
test checks that the process is still running after the grace period, so that
it notices when hypercorn fixes it.

gunicorn 27 waits its graceful_timeout (30 s) for the open connections, without
closing them, and its master SIGKILLs the worker when the same 30 s are up, so
lifespan shutdown never runs and the clients see TCP end without a close frame
(gunicorn/workers/gasgi.py, ASGIWorker._shutdown; gunicorn/arbiter.py,
Arbiter.stop).  The test gives it that long and checks exactly that.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import anyio
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from asgi_ws.servers import SERVERS
from conformance.launcher import run_server
from conformance.redis_server import RedisServer

pytestmark = [pytest.mark.server, pytest.mark.anyio]

CLIENTS = 100
STOP_GRACE = 15.0  # seconds: uvicorn closes at once; hypercorn waits its graceful_timeout (3 s) first
GUNICORN_GRACE = 40.0  # seconds: gunicorn's graceful_timeout (30 s) and a margin
PATIENCE = 30.0


async def test_sigterm_with_100_open_connections(server_name: str, redis_server: RedisServer, tmp_path: Path) -> None:
    broker = redis_server.url if SERVERS[server_name].no_redis is None else "memory://"
    with run_server(server_name, tmp_path, {"ASGI_WS_BROKER": broker}) as server:
        await anyio.to_thread.run_sync(server.wait_for_health, lambda document: document["status"] == "ok", PATIENCE)
        clients: list[ClientConnection] = []
        for number in range(CLIENTS):
            path = "/ws/chat/shutdown" if number % 2 else "/echo"
            clients.append(await connect(server.url(path)))
        await clients[1].send("everyone here?")  # a chat message: reaches the 50 chat clients
        for number, ws in enumerate(clients):
            if number % 2 == 0:
                await ws.send("ping")
            assert await ws.recv() in ("ping", "everyone here?")

        grace = GUNICORN_GRACE if server_name == "gunicorn" else STOP_GRACE
        exit_code = await anyio.to_thread.run_sync(server.terminate, grace)
        if hangs_on_sigterm(server_name):
            assert exit_code is None, "hypercorn exited on SIGTERM: hypercorn#308 is fixed, update this test"
            return  # the launcher's SIGKILL ends it
        endings: list[str] = [""] * len(clients)

        async def record(number: int, ws: ClientConnection) -> None:
            endings[number] = await how_it_ended(ws)

        async with anyio.create_task_group() as readers:  # all at once: PATIENCE in all, not per client
            for number, ws in enumerate(clients):
                readers.start_soon(record, number, ws)
        log = server.log_text()

    assert exit_code is not None, f"{server_name} still running {grace} s after SIGTERM"
    assert all(ending != "still open" for ending in endings), endings
    print(f"\n{server_name}: exit code {exit_code}; clients saw {sorted(set(endings))}")
    if server_name == "hypercorn-trio":  # killed by the signal: no handler, no shutdown (see the module docstring)
        assert exit_code == -signal.SIGTERM
        assert set(endings) == {"end of TCP"}
        return
    app_lines = [line for line in log.splitlines() if "logger=asgi_ws" in line]
    assert [line for line in app_lines if "level=error" in line or "level=warning" in line] == []
    if server_name == "gunicorn":  # the worker is SIGKILLed at the end of the wait (see the module docstring)
        assert set(endings) == {"end of TCP"}
        assert not any("event=shutdown" in line for line in app_lines), "gunicorn ran lifespan shutdown: update"
        return
    assert any("event=shutdown" in line for line in app_lines), log[-2000:]
    if broker != "memory://":
        assert any("event=broker_stopped" in line for line in app_lines)


def hangs_on_sigterm(server_name: str) -> bool:
    """hypercorn's asyncio worker on Python 3.12+ (see the module docstring)."""
    return server_name in ("hypercorn", "hypercorn-uvloop") and sys.version_info >= (3, 12)


async def how_it_ended(ws: ClientConnection) -> str:
    """``close <code>`` if a close frame came, ``end of TCP`` if not, ``still open`` if neither in time."""
    with anyio.move_on_after(PATIENCE):
        try:
            while True:
                await ws.recv()
        except ConnectionClosed as closed:
            return f"close {closed.rcvd.code}" if closed.rcvd is not None else "end of TCP"
    return "still open"
