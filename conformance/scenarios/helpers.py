"""What every scenario module shares: connecting, reading to the end, and writing it down.

A scenario is short because the moves it makes are named here:

- **connect**: :func:`client` (the ``websockets`` client, as users run it) and
  :func:`raw_client` (:class:`~conformance.rawclient.RawClient`, for the
  wire), both optionally tagged with :data:`~conformance.checks.OBSERVE_HEADER`
  so that :mod:`conformance.views` can later say what the app observed.
  Over HTTP/2 (``target.transport``), :func:`client` is the same library's
  connection on an extended CONNECT stream (:mod:`conformance.h2client`), and
  :func:`raw_client` refuses: checks that need it are ``http1_only``;
- **handshake only**: :func:`handshake`, the status (and body) of an opening
  handshake, for the refusals of contract §1 and §3;
- **reset**: :func:`reset_mid_frame`, half a frame and then a TCP reset;
- **read**: :func:`receive` (exactly n messages), :func:`receive_real` (n
  messages that are not sync messages), :func:`read_until_text` (a raw client
  up to a given message), :func:`read_to_end`, :func:`until_close` and
  :func:`raw_until_close` (everything up to the end of the connection);
- **join a group**: :func:`join_room`, :func:`join_broadcast` and
  :func:`join_group`, which return only once every client is provably a member
  of its chat room or of the broadcast group, so no message of the scenario
  can miss a client that was still joining;
- **count connections**: :func:`settle`, which waits for asgi_ws's
  ``/healthz`` to show a connection count;
- **write down**: :func:`payload`, :func:`sequence` and :func:`close_of` turn
  messages, long runs of messages and close frames into the plain,
  deterministic data a transcript holds; what the app saw is written down by
  :func:`conformance.views.app_outcome`.

Nothing here knows one scenario from another, and nothing here asserts: a
scenario records what happened, and the report compares the records.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Close, Frame, Opcode
from websockets.typing import Data, Origin

from ..checks import HTTP1, OBSERVE_HEADER, Target
from ..rawclient import RawClient, Received

__all__ = [
    "BROADCAST_PREFIX",
    "EOF",
    "NO_CODE",
    "RAW_CLIENT",
    "SMALL_RECEIVE_BUFFER",
    "STILL_OPEN",
    "SYNC_PREFIX",
    "WAIT",
    "client",
    "close_of",
    "digest",
    "handshake",
    "join_broadcast",
    "join_group",
    "join_room",
    "payload",
    "raw_client",
    "raw_frame",
    "raw_summary",
    "raw_until_close",
    "read_to_end",
    "read_until_text",
    "real",
    "receive",
    "receive_real",
    "reset_mid_frame",
    "sequence",
    "settle",
    "until_close",
]

# Why a scenario runs over HTTP/1.1 only (its http1_only), in the words of the report.
RAW_CLIENT = "its client writes frames of its own over TCP (conformance.rawclient)"
SMALL_RECEIVE_BUFFER = "its slow reader is a TCP socket with a small receive buffer"

WAIT = 10.0  # seconds any one expected event may take before the scenario records its absence
SETTLE = 15.0  # seconds for /healthz to show the expected connection count
SYNC_RETRY = 0.1  # seconds between two attempts to prove the first member of a group
SHORT = 120  # payloads up to this many characters (text) or bytes (binary) are written in full

# How a transcript says that a connection ended without a close frame, or did not end.
EOF = "eof without close frame"
NO_CODE = "close frame without code"
STILL_OPEN = "still open"

# What the messages of join_room and join_group start with; real() drops them from what clients received.
SYNC_PREFIX = "sync:"
BROADCAST_PREFIX = "New message: "  # contract §1: what /ws_broadcast puts before the text


# Connecting


def _tag_headers(tag: str | None) -> list[tuple[str, str]]:
    """The request header that makes the observer record this connection, if ``tag`` is given."""
    return [(OBSERVE_HEADER, tag)] if tag is not None else []


def client(
    target: Target,
    path: str,
    *,
    tag: str | None = None,
    origin: str | None = None,
    max_queue: int | None = 16,
    compression: str | None = "deflate",
) -> contextlib.AbstractAsyncContextManager[ClientConnection]:
    """The ``websockets`` client for ``path``: ``async with client(target, "/ws") as ws``.

    Defaults are the library's, except that the client never pings (keepalive
    pings would be timing in the transcript), never goes through a proxy, has
    no size limit of its own, and waits 5 s rather than 10 for a close reply.
    Over HTTP/2 each client has a connection of its own, as each tab of a browser would.
    """
    if target.transport != HTTP1:
        return _h2_client(target, path, tag=tag, origin=origin, max_queue=max_queue, compression=compression)
    return connect(
        target.url(path),
        additional_headers=_tag_headers(tag),
        origin=Origin(origin) if origin is not None else None,
        compression=compression,
        proxy=None,
        ping_interval=None,
        close_timeout=5.0,
        max_size=None,
        max_queue=max_queue,
    )


@contextlib.asynccontextmanager
async def _h2_client(
    target: Target, path: str, *, tag: str | None, origin: str | None, max_queue: int | None, compression: str | None
) -> AsyncIterator[ClientConnection]:
    """:func:`client` over HTTP/2: the connection, then the WebSocket on a stream of it; both closed on leaving."""
    async with await target.h2() as connection:
        ws = await connection.websockets_client(
            path, headers=_tag_headers(tag), origin=origin, compression=compression, max_queue=max_queue
        )
        async with ws:  # as websockets' connect() does: a close on leaving, 1011 after an exception
            yield ws


def raw_client(
    target: Target,
    path: str,
    *,
    tag: str | None = None,
    origin: str | None = None,
    socket_options: Sequence[tuple[int, int, int]] = (),
) -> RawClient:
    """A :class:`RawClient` for ``path``: ``async with raw_client(target, "/echo") as raw``.

    ``socket_options`` are set on the client's socket before it connects, e.g. a small ``SO_RCVBUF``.
    HTTP/1.1 only: a check that uses it is registered ``http1_only``.
    """
    if target.transport != HTTP1:
        raise RuntimeError(f"the raw client speaks HTTP/1.1 only, and this check runs over {target.transport}")
    return RawClient(
        target.host, target.port, path, headers=_tag_headers(tag), origin=origin, socket_options=socket_options
    )


async def handshake(target: Target, path: str, *, origin: str | None = None) -> dict[str, Any]:
    """Only the opening handshake: ``{"status": 101}``, or a refusal's status and body.

    An accepted connection is closed again at once with 1000 and the closing
    handshake is completed, so that the app sees an ordinary end.  Over HTTP/2
    the extended CONNECT's 200 is written as the 101 it stands for (RFC 8441 §5).
    """
    if target.transport != HTTP1:
        return await _h2_handshake(target, path, origin)
    raw = raw_client(target, path, origin=origin)
    try:
        response = await raw.open()
    except (ConnectionError, TimeoutError) as exc:
        raw.abort()
        return {"status": None, "error": f"no handshake response ({type(exc).__name__})"}
    try:
        if response.status != 101:
            return {"status": response.status, "body": response.body.decode(errors="replace")[:SHORT]}
        await raw.close(1000)
        with contextlib.suppress(TimeoutError):
            await raw.read_until_closed(WAIT)
        return {"status": 101}
    finally:
        raw.abort()


async def _h2_handshake(target: Target, path: str, origin: str | None) -> dict[str, Any]:
    """:func:`handshake` over an extended CONNECT."""
    async with await target.h2() as connection:
        try:
            ws = await connection.websockets_client(path, origin=origin)
        except InvalidStatus as refused:
            return {
                "status": refused.response.status_code,
                "body": refused.response.body.decode(errors="replace")[:SHORT],
            }
        except (ConnectionError, TimeoutError) as exc:
            return {"status": None, "error": f"no handshake response ({type(exc).__name__})"}
        await ws.close(1000)
        return {"status": 101}


async def reset_mid_frame(raw: RawClient) -> None:
    """Write the first half of a 1000-byte text frame, then reset: the server is left mid-message."""
    await raw.send_half_frame(Frame(Opcode.TEXT, b"x" * 1000))
    raw.reset()


# Reading


async def receive(ws: ClientConnection, count: int, within: float = WAIT) -> list[Data]:
    """The next ``count`` messages.  Raises TimeoutError or ConnectionClosed if they do not all come."""
    async with asyncio.timeout(within):
        return [await ws.recv() for _ in range(count)]


async def read_to_end(ws: ClientConnection, within: float = WAIT) -> tuple[list[Data], Any]:
    """Every message up to the end of the connection, and how it ended (see :func:`close_of`)."""
    messages: list[Data] = []
    try:
        async with asyncio.timeout(within):
            while True:
                messages.append(await ws.recv())
    except ConnectionClosed as closed:
        return messages, close_of(closed.rcvd)
    except TimeoutError:
        return messages, STILL_OPEN


async def until_close(ws: ClientConnection, within: float = WAIT) -> dict[str, Any]:
    """:func:`read_to_end`, written down: ``{"frames": [...], "close": ...}``."""
    messages, ending = await read_to_end(ws, within)
    return {"frames": [payload(message) for message in messages], "close": ending}


async def raw_until_close(raw: RawClient, within: float = WAIT) -> dict[str, Any]:
    """What a raw client read up to the end: frames, close, and whether TCP ended (see :func:`raw_summary`)."""
    with contextlib.suppress(TimeoutError):
        await raw.read_until_closed(within)
    return raw_summary(raw.received)


def raw_summary(received: Received) -> dict[str, Any]:
    """Frames (server pings left out: they are keepalive timing), the close frame, and the end of TCP.

    The raw client answers the server's close frame itself (its protocol
    does), so ``tcp_closed`` says whether the closing handshake completed:
    after it, RFC 6455 §7.1.1 has the server close the TCP connection.  Whether
    that close comes as FIN or RST depends on whether the server closed its
    socket before the client's close frame reached it, a race, so it is not
    written down.
    """
    frames = [raw_frame(frame) for frame in received.frames if frame.opcode not in (Opcode.PING, Opcode.CLOSE)]
    closes = [frame for frame in received.frames if frame.opcode is Opcode.CLOSE]
    ending: Any = close_of(Close.parse(closes[0].data)) if closes else (EOF if received.eof else STILL_OPEN)
    return {"frames": frames, "close": ending, "tcp_closed": received.eof}


async def read_until_text(raw: RawClient, text: str) -> bool:
    """Read frames until a text frame carrying ``text``, skipping all others; False if the connection ends first."""
    while (frame := await raw.next_frame()) is not None:
        if frame.opcode is Opcode.TEXT and bytes(frame.data) == text.encode():
            return True
    return False


# Joining a group


async def join_room(clients: Sequence[ClientConnection], within: float = WAIT) -> None:
    """Return once every client is in its chat room.

    A connection joins its room before it reads its first message, and chat
    sends every message back to its sender, so a client that gets its own
    message back is a member.  The sync messages stay in the clients' streams;
    :func:`real` drops them.
    """
    async with asyncio.timeout(within):
        for number, ws in enumerate(clients):
            mine = f"{SYNC_PREFIX}{number}"
            await ws.send(mine)
            while await ws.recv() != mine:
                pass


async def join_broadcast(
    listener: ClientConnection, senders: Sequence[Callable[[str], Awaitable[None]]], within: float = WAIT
) -> None:
    """Return once ``listener`` and every client that sends with one of ``senders`` are in the broadcast group.

    A sender is never sent its own broadcast, so membership is proved by
    another client (see :func:`join_group`).
    """
    await join_group(listener, senders, heard_as=BROADCAST_PREFIX, within=within)


async def join_group(
    listener: ClientConnection,
    senders: Sequence[Callable[[str], Awaitable[None]]],
    *,
    heard_as: str = "",
    within: float = WAIT,
) -> None:
    """Return once ``listener`` and every client that sends with one of ``senders`` are in one group.

    A connection joins its room or the broadcast group before it reads its
    first message, so a sender whose message reaches a member is a member.
    The first message proves the listener too; until it arrives, it is sent
    again.  ``heard_as`` is what the endpoint puts before the text.
    """
    async with asyncio.timeout(within):
        for number, send in enumerate(senders):
            for attempt in itertools.count():
                mine = f"{SYNC_PREFIX}{number}.{attempt}"
                await send(mine)
                if await _hears(listener, heard_as + mine, SYNC_RETRY if number == 0 else None):
                    break


async def _hears(ws: ClientConnection, expected: str, within: float | None) -> bool:
    """Read until ``expected`` arrives; False if ``within`` seconds pass first."""
    try:
        async with asyncio.timeout(within):
            while await ws.recv() != expected:
                pass
    except TimeoutError:
        return False
    return True


def real(messages: Iterable[Data]) -> list[Data]:
    """``messages`` without the sync messages of :func:`join_room` and :func:`join_group`."""
    return [
        message
        for message in messages
        if not (isinstance(message, str) and message.removeprefix(BROADCAST_PREFIX).startswith(SYNC_PREFIX))
    ]


async def receive_real(ws: ClientConnection, count: int, within: float = WAIT) -> list[Data]:
    """The next ``count`` messages that are not sync messages (see :func:`real`)."""
    messages: list[Data] = []
    async with asyncio.timeout(within):
        while len(messages) < count:
            messages.extend(real([await ws.recv()]))
    return messages


async def settle(target: Target, connections: int = 0, within: float = SETTLE) -> bool:
    """Wait until asgi_ws's ``/healthz`` counts ``connections``; False if it never does."""
    try:
        await asyncio.to_thread(
            target.server.wait_for_health, lambda health: health["connections"] == connections, within
        )
    except AssertionError:
        return False
    return True


# Writing down


def digest(data: bytes) -> dict[str, Any]:
    """A long payload as its length and the start of its SHA-256."""
    return {"length": len(data), "sha256": hashlib.sha256(data).hexdigest()[:16]}


def payload(message: Data) -> dict[str, Any]:
    """One message: ``{"text": ...}`` or ``{"binary": hex}``; long ones as a :func:`digest`."""
    if isinstance(message, str):
        return {"text": message if len(message) <= SHORT else digest(message.encode())}
    data = bytes(message)
    return {"binary": data.hex() if len(data) <= SHORT else digest(data)}


def raw_frame(frame: Frame) -> dict[str, Any]:
    """One frame as the raw client read it: opcode, fin bit and payload."""
    name = frame.opcode.name.lower()
    if frame.opcode is Opcode.TEXT:
        content: Any = payload(bytes(frame.data).decode(errors="replace"))["text"]
    else:
        content = payload(bytes(frame.data))["binary"]
    return {name: content} if frame.fin else {name: content, "fin": False}


def sequence(
    received: Sequence[Data], expected: Sequence[Any], parse: Callable[[Data], Any] | None = None
) -> dict[str, Any]:
    """A long run of messages as its count, first and last, and whether it is exactly ``expected``.

    ``parse`` turns each message into what ``expected`` holds, e.g. ``json.loads``
    where values matter and spacing does not.
    """
    values = [parse(message) for message in received] if parse is not None else list(received)
    return {
        "count": len(received),
        "first": payload(received[0]) if received else None,
        "last": payload(received[-1]) if received else None,
        "in_order": values == list(expected),
    }


def close_of(close: Close | None) -> Any:
    """A received close frame as ``{"code", "reason"}``; :data:`NO_CODE` or :data:`EOF` otherwise."""
    if close is None:
        return EOF
    if close.code == 1005:  # RFC 6455 §7.1.5: what an empty close payload is reported as
        return NO_CODE
    return {"code": close.code, "reason": close.reason}
