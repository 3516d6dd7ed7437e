"""A feed client whose server is killed under it, for the tests of the clients that resume (contract §8).

Two app processes share one ``redis-server``: ``a`` serves the client under
test (the demo page, the example client), ``b`` a publisher.  Both run one
server, or ``a`` one and ``b`` another (the senders of
``tests/integration/test_exactly_once.py`` on a uvicorn and a hypercorn).
``a`` is killed with SIGKILL, so its clients lose their connections without a
close frame, as in a crash; the publisher goes on through ``b``, and Redis
numbers and keeps its messages; then ``a`` starts again on the same port, and
the client must come back by itself and resume with ``since``.

Everything is synchronous: the demo page test drives Playwright's sync API,
which must not run inside an event loop.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from websockets.sync.client import ClientConnection, connect

from asgi_ws.redis_wire import channel
from asgi_ws.servers import SERVERS
from asgi_ws.topics import feed_room
from conformance.launcher import RunningServer, run_server
from conformance.redis_server import RedisServer

__all__ = ["PATIENCE", "Publisher", "RestartablePair", "restartable_pair"]

PATIENCE = 60.0  # seconds for any one wait; only a broken deployment takes that long


class RestartablePair:
    """Processes ``a`` and ``b`` on one Redis, of the servers ``names``; ``a`` can be killed and started again."""

    def __init__(self, names: tuple[str, str], redis: RedisServer, log_dir: Path, stack: ExitStack) -> None:
        self.names = dict(zip("ab", names, strict=True))  # the server each process runs
        self.redis = redis  # the Redis they share
        self._log_dir = log_dir  # every process's log goes here
        self._stack = stack  # stops every process started, whatever happens
        self._settings = {"ASGI_WS_BROKER": redis.url}
        self.a = self._start("a")  # the process the client under test uses
        self.b = self._start("b")  # the publisher's process

    def _start(self, name: str, port: int | None = None) -> RunningServer:
        server = self._stack.enter_context(
            run_server(self.names[name], self._log_dir / name, self._settings, port=port)
        )
        server.wait_for_health(lambda document: document["broker"]["connected"], PATIENCE)
        return server

    def wait_until_subscribed(self, room: str) -> None:
        """Wait until both processes subscribe to the feed room: pub/sub reaches only the subscribers of the moment."""
        deadline = time.monotonic() + PATIENCE
        while self.redis.subscribers(channel(feed_room(room))) < 2:  # another process's state: no event to wait on
            assert time.monotonic() < deadline, f"a and b not both subscribed to feed room {room} after {PATIENCE} s"
            time.sleep(0.05)

    def kill_a(self) -> None:
        """SIGKILL to ``a`` and its workers: the kernel closes their sockets, with no close frame.

        The whole process group, whose id is the server's PID (the launcher starts
        each server in a session of its own): gunicorn serves from a worker
        process that would otherwise outlive its killed master and go on serving.
        """
        assert self.a.process is not None
        os.killpg(self.a.process.pid, signal.SIGKILL)
        self.a.process.wait()

    def restart_a(self) -> None:
        """Start ``a`` again on the port it had, so that its clients can find it."""
        self.a = self._start("a", port=self.a.port)


@contextmanager
def restartable_pair(
    server_name: str, redis: RedisServer, log_dir: Path, other: str | None = None
) -> Iterator[RestartablePair]:
    """``a`` runs ``server_name``, ``b`` runs ``other`` (by default the same server)."""
    names = (server_name, other or server_name)
    for name in names:
        if SERVERS[name].no_redis is not None:
            pytest.skip(f"{name} cannot run the Redis broker: {SERVERS[name].no_redis}")
    with ExitStack() as stack:
        yield RestartablePair(names, redis, log_dir, stack)


class Publisher:
    """A feed client that sends texts into a room and waits until each has come back numbered."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws  # a connection to /ws/feed/{room}, without since

    @classmethod
    @contextmanager
    def on(cls, server: RunningServer, room: str) -> Iterator[Publisher]:
        with connect(server.url(f"/ws/feed/{room}"), open_timeout=PATIENCE) as ws:
            yield cls(ws)

    def send(self, texts: Sequence[str]) -> list[tuple[str, int]]:
        """Send ``texts``; the ``(epoch, offset)`` Redis gave each, once all have come back."""
        for text in texts:
            self.ws.send(text)
        numbered: list[tuple[str, int]] = []
        while len(numbered) < len(texts):
            message = json.loads(self.ws.recv(timeout=PATIENCE))
            assert message["data"] == texts[len(numbered)], message  # the publisher is alone in sending
            numbered.append((message["epoch"], message["offset"]))
        return numbered
