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

A :class:`Sender` is a feed client that also publishes, with ids (contract
§8.1), and is cut off at random between a send and its ack: it resends
everything unacked after each reconnect, and keeps the acks it got for
:func:`conformance.feedcheck.check` to hold against what the readers received.

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
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from asgi_ws.feed import Since

from .feedcheck import Connection

__all__ = ["Cutting", "FeedClient", "Sender", "Wandering", "data_of"]

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
    refused: int = 0  # connections that could not be opened (a server being restarted), each tried again

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

    @contextlib.asynccontextmanager
    async def reconnect(
        self, url_ofs: list[UrlOf], generator: random.Random, pause: float
    ) -> AsyncIterator[tuple[ClientConnection, Connection]]:
        """:meth:`connect` to one of ``url_ofs`` at random, trying again while connections are refused.

        A refusal (a server killed and not started again yet, or one that
        answers the handshake with an error while it stops) is counted in
        :attr:`refused`, and the next try, at most ``pause`` seconds later, goes
        to one of ``url_ofs`` at random again.
        """
        deadline = asyncio.get_running_loop().time() + PATIENCE
        while True:
            async with contextlib.AsyncExitStack() as stack:
                try:
                    opened = await stack.enter_async_context(self.connect(generator.choice(url_ofs)))
                except (OSError, InvalidHandshake):
                    self.refused += 1
                    assert asyncio.get_running_loop().time() < deadline, f"{self.name}: refused for {PATIENCE} s"
                else:
                    yield opened
                    return
            await asyncio.sleep(generator.uniform(0, pause))

    def closed(self, closed: ConnectionClosed) -> None:
        """The connection ended: count the server's close code, if it sent one."""
        if closed.rcvd is not None:
            self.closes[closed.rcvd.code] = self.closes.get(closed.rcvd.code, 0) + 1

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
        server (a 4503, say) or a server that goes away is one more drop: the
        client resumes as after any other.
        """
        while True:
            async with self.reconnect(url_ofs, generator, how.pause) as (ws, connection):
                try:
                    for _ in range(generator.randint(how.least, how.most)):
                        if data_of(await self.read(ws, connection)) == until:
                            return
                except ConnectionClosed as closed:
                    self.closed(closed)
                    continue
                if generator.random() < how.abort_share:
                    ws.transport.abort()
            await asyncio.sleep(generator.uniform(0, how.pause))


@dataclass(frozen=True, slots=True)
class Cutting:
    """How a :class:`Sender` paces its sends and is cut off between a send and its ack."""

    pace: float = 1 / 60  # seconds between two sends, reading meanwhile: under the default 100/s rate limit
    share: float = 0.05  # the share of sends right after which the connection is aborted
    unread: float = 0.1  # seconds, at most, the sender stops reading before that abort: an ack sent meanwhile is lost
    pause: float = 0.1  # seconds, at most, between an abort and the reconnect


@dataclass
class Sender(FeedClient):
    """A feed client that publishes :attr:`count` messages with ids (contract §8.1) and reads the room.

    Message ``N`` is ``{"id": "NAME-N", "data": "NAME:N"}``.  Every message
    without an ack is kept in :attr:`pending` and sent again, first thing,
    on each new connection, with the same id: the server acks a resend of a
    message it numbered before with the same number, and numbers the rest.
    """

    count: int = 0  # messages to publish
    sent: int = 0  # messages sent for the first time
    resent: int = 0  # sends of a message again, on a later connection
    cutoffs: int = 0  # connections lost with at least one message unacked: aborted, or their server killed
    pending: dict[str, str] = field(default_factory=dict)  # id -> data: sent, not acked yet, in the order first sent
    acks: dict[str, tuple[str, int]] = field(default_factory=dict)  # data -> the (epoch, offset) it was acked with
    conflicting_acks: int = 0  # acks for a message already acked at another (epoch, offset)
    halfway: asyncio.Event = field(default_factory=asyncio.Event, repr=False, compare=False)  # half sent
    all_acked: asyncio.Event = field(default_factory=asyncio.Event, repr=False, compare=False)

    def take(self, connection: Connection, text: str) -> None:
        """An ack settles a pending message; anything else is written down as :class:`FeedClient` does."""
        value = json.loads(text)
        if "ack" not in value:
            super().take(connection, text)
            return
        ident, number = value["ack"], (value["epoch"], value["offset"])
        data = self.pending.pop(ident, None) or _data_of_id(ident)
        if self.acks.setdefault(data, number) != number:
            self.conflicting_acks += 1
        if self.sent == self.count and not self.pending:
            self.all_acked.set()

    async def publish(self, url_ofs: list[UrlOf], until: str, generator: random.Random, how: Cutting) -> None:
        """Publish every message, through any number of cut-offs and reconnects, then read until ``until``.

        Each connection goes to one of ``url_ofs`` at random and resumes the
        room from :attr:`last`, as :meth:`FeedClient.wander` does.
        """
        while True:
            async with self.reconnect(url_ofs, generator, how.pause) as (ws, connection):
                try:
                    if await self._session(ws, connection, until, generator, how):
                        return
                except ConnectionClosed as closed:
                    self.closed(closed)
            if self.pending:
                self.cutoffs += 1
            await asyncio.sleep(generator.uniform(0, how.pause))

    async def _session(
        self, ws: ClientConnection, connection: Connection, until: str, generator: random.Random, how: Cutting
    ) -> bool:
        """One connection: resend, send on until cut off, then read until ``until``; True once it was read."""
        for ident, data in list(self.pending.items()):
            await ws.send(json.dumps({"id": ident, "data": data}))
            self.resent += 1
        while self.sent < self.count:
            ident, data = f"{self.name}-{self.sent}", f"{self.name}:{self.sent}"
            self.pending[ident] = data
            self.sent += 1
            if self.sent == self.count // 2:
                self.halfway.set()
            await ws.send(json.dumps({"id": ident, "data": data}))
            if generator.random() < how.share:
                await asyncio.sleep(generator.uniform(0, how.unread))  # not reading: an ack sent now stays unread
                ws.transport.abort()
                return False
            if await self._read_for(ws, connection, how.pace, until):
                return True  # the run ended while this last send paced itself
        while data_of(await self.read(ws, connection)) != until:
            pass
        return True

    async def _read_for(self, ws: ClientConnection, connection: Connection, seconds: float, until: str) -> bool:
        """Read whatever arrives within ``seconds``; True, at once, if it is ``until``."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while data_of(await self.read(ws, connection)) != until:
                    pass
                return True
        return False


def _data_of_id(ident: str) -> str:
    """A :class:`Sender`'s data for one of its ids: ``NAME-N`` -> ``NAME:N``."""
    name, _, number = ident.rpartition("-")
    return f"{name}:{number}"
