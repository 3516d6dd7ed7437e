"""A feed client that remembers where it is and resumes: what the feed's proof runs, many at a time.

A :class:`FeedClient` is one user of a feed room across any number of
connections, possibly to different server processes.  It keeps the last
numbered message it saw, ``(epoch, offset)``, and opens every connection after
its first with ``?since=EPOCH:OFFSET``.  Every text each connection received is
written down, in order, as a :class:`~conformance.feedcheck.Connection`, for
:func:`conformance.feedcheck.check`.

:meth:`FeedClient.wander` is the restless user of the scenarios: it reads a
random number of messages, drops the connection (a clean close or a TCP
abort), waits a moment and resumes, until it has seen a given message.  A
client that stops reading altogether is a :class:`~conformance.rawclient.RawClient`
with a small receive buffer; what it read once it read again goes in through
:meth:`FeedClient.record`.

The connections are ``websockets`` asyncio clients, as users run them, with no
size limit, no queue limit and no keepalive pings of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from asgi_ws.feed import Since

from .feedcheck import Connection

__all__ = ["FeedClient", "Wandering", "data_of"]

PATIENCE = 60.0  # seconds any one expected message may take; only a hung server takes that long

UrlOf = Callable[[str], str]  # a server's path -> ws:// URL, e.g. RunningServer.url


def data_of(text: str) -> str | None:
    """The ``data`` of a numbered message; None for a control message."""
    data: str | None = json.loads(text).get("data")
    return data


@dataclass(frozen=True, slots=True)
class Wandering:
    """How :meth:`FeedClient.wander` behaves: messages per connection, pauses, how it leaves."""

    least: int = 5  # messages read on one connection before it may be dropped
    most: int = 200
    pause: float = 0.1  # seconds, at most, between a drop and the resume
    abort_share: float = 0.5  # the share of drops that are a TCP abort rather than a closing handshake


@dataclass(slots=True)
class FeedClient:
    """One feed user: its room path, its last message, and what each of its connections received."""

    name: str
    path: str  # e.g. "/ws/feed/room"
    last: Since | None = None  # the last numbered message received, as a since; None before the first
    connections: list[Connection] = field(default_factory=list)  # in the order opened
    closes: dict[int, int] = field(default_factory=dict)  # close codes the server sent, and how often

    def resume_path(self) -> str:
        """The path of the next connection: with ``since`` once a message was received."""
        if self.last is None:
            return self.path
        return f"{self.path}?since={self.last.epoch}:{self.last.offset}"

    def record(self, since: Since | None, texts: Iterable[str] = ()) -> Connection:
        """Write down a new connection opened with ``since`` and what it received so far."""
        connection = Connection(since)
        self.connections.append(connection)
        for text in texts:
            self.take(connection, text)
        return connection

    def take(self, connection: Connection, text: str) -> None:
        """``connection`` received ``text``: write it down, and remember it if it is a numbered message."""
        connection.texts.append(text)
        value = json.loads(text)
        if "data" in value:
            self.last = Since(value["epoch"], value["offset"])

    @contextlib.asynccontextmanager
    async def connect(self, url_of: UrlOf) -> AsyncIterator[tuple[ClientConnection, Connection]]:
        """Open a connection to the server behind ``url_of``, resuming from :attr:`last`."""
        since = self.last
        # max_queue=None: a client that closes while a bounded queue is full has stopped reading TCP,
        # so it never reads the server's close frame and waits out its close_timeout (10 s); the
        # websockets maintainer calls that the correct behaviour (python-websockets/websockets#1555,
        # closed).  These clients read everything they keep, so their queue is bounded by the test.
        async with connect(
            url_of(self.resume_path()), compression=None, max_size=None, max_queue=None, ping_interval=None, proxy=None
        ) as ws:
            yield ws, self.record(since)

    async def read(self, ws: ClientConnection, connection: Connection, within: float = PATIENCE) -> str:
        """Read one text on ``ws`` and write it down."""
        async with asyncio.timeout(within):
            text = await ws.recv()
        assert isinstance(text, str), f"{self.name}: a feed sends text, got {text!r}"
        self.take(connection, text)
        return text

    async def read_until(self, ws: ClientConnection, connection: Connection, data: str) -> None:
        """Read until the numbered message carrying ``data`` arrives."""
        while data_of(await self.read(ws, connection)) != data:
            pass

    async def wander(self, url_ofs: list[UrlOf], until: str, generator: random.Random, how: Wandering) -> None:
        """Connect, read a while, drop, resume, over and over, until the message carrying ``until`` is read.

        Each connection goes to one of ``url_ofs`` at random.  A close from the
        server (a 4503, say) is one more drop: the client resumes as after any other.
        """
        while True:
            async with self.connect(generator.choice(url_ofs)) as (ws, connection):
                try:
                    for _ in range(generator.randint(how.least, how.most)):
                        if data_of(await self.read(ws, connection)) == until:
                            return
                except ConnectionClosed as closed:
                    if closed.rcvd is not None:
                        self.closes[closed.rcvd.code] = self.closes.get(closed.rcvd.code, 0) + 1
                    continue
                if generator.random() < how.abort_share:
                    ws.transport.abort()
            await asyncio.sleep(generator.uniform(0, how.pause))
