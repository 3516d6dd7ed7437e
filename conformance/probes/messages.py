"""Probes of data messages: the shape of receive events, the server's own size limit, invalid UTF-8.

The probe app has no size limit of its own, so the size probes find the
server's: the largest message it delivers with its default settings, and what
it does with a larger one.  The sizes bracket 1 MiB, daphne's default
(``--websocket-max-message-size``), and 16 MiB, the default of uvicorn
(``--ws-max-size``) and hypercorn (``websocket_max_message_size``).
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

from websockets.frames import Frame, Opcode

from ..checks import OBSERVE_HEADER, Target, Transcript, probe
from ..probe_app import CLIENT_WAIT, SLOW_READER_PAUSE
from ..rawclient import RawClient, close_view
from ..views import app_report, app_view, received_after_connect
from ._support import (
    READ_WAIT,
    closing_view,
    connect,
    handshake_view,
    lenient_closing_view,
    lenient_open,
    lenient_open_ready,
    next_text,
    open_ready,
)

__all__: list[str] = []  # probes register themselves; nothing to import

MIB = 1024 * 1024
SIZE_WAIT = 30.0  # seconds for the server to take in a big message and answer; pure-Python parsers are slow


@probe(
    "probe-receive-shapes",
    "The keys of websocket.receive for text, bytes, empty text and empty bytes, and which are None or absent.",
    "ASGI WebSocket: receive event",
)
async def receive_shapes(target: Target) -> Transcript:
    messages: list[tuple[str, str | bytes]] = [
        ("text", "hé"),
        ("bytes", b"\x00\x01"),
        ("empty text", ""),
        ("empty bytes", b""),
    ]
    shapes: dict[str, Any] = {}
    async with connect(target, "/shapes") as (client, _):
        handshake = await handshake_view(client)
        if handshake["status"] != 101:
            return {"handshake": handshake}
        for name, payload in messages:
            if isinstance(payload, str):
                await client.send_text(payload)
            else:
                await client.send_binary(payload)
            reply = await next_text(client)
            shapes[name] = json.loads(reply) if reply is not None else "no answer"
        await client.close(1000)
    return {"app received": shapes}  # the app's side: each event's keys, as the probe app reported them


@probe(
    "probe-send-shapes",
    "The app sends empty text, empty bytes, and messages with the other key None: which frames arrive?",
    "ASGI WebSocket: send event (exactly one of text and bytes is not None)",
)
async def send_shapes(target: Target) -> Transcript:
    async with connect(target, "/send-shapes") as (client, connection_id):
        handshake = await handshake_view(client)
        if handshake["status"] != 101:
            return {"handshake": handshake}
        client_view = await closing_view(client)
    return {"client": client_view, "app": await app_report(target, connection_id)}


def _text_message(size: int, fragment: int | None) -> bytes:
    """One text message of ``size`` bytes as wire bytes: one frame, or frames of ``fragment`` bytes (TEXT, CONT...)."""
    if fragment is None:
        return Frame(Opcode.TEXT, b"a" * size).serialize(mask=True)
    starts = range(0, size, fragment)
    return b"".join(
        Frame(
            Opcode.TEXT if start == 0 else Opcode.CONT, b"a" * min(fragment, size - start), fin=start == starts[-1]
        ).serialize(mask=True)
        for start in starts
    )


async def _send_size(target: Target, size: int, fragment: int | None = None) -> Transcript:
    """Send one text message of ``size`` bytes: did the app get all of it, or how did the server refuse it?

    The message goes out in chunks while the client reads, so a server that
    refuses it early is heard as soon as it speaks (see :mod:`conformance.rawclient`).  With
    ``fragment``, it goes out as frames of that many bytes.  :func:`_write_then_read`
    is the other kind of client, which writes the whole message before it reads.
    """
    async with connect(target, "/size", lenient=True) as (client, connection_id):
        status = await lenient_open(client, READ_WAIT)
        if status != 101:
            return {"handshake": status}
        sending = asyncio.create_task(client.send_in_chunks(_text_message(size, fragment)))
        first = await client.read_frame(SIZE_WAIT)
        sending.cancel()
        if first is not None and first[0] == Opcode.TEXT:  # the app's answer, {"length": ...}
            delivered = json.loads(first[1])["length"] == size
            await client.close(1000)
            return {"delivered": delivered, "client": await lenient_closing_view(client)}
        close = close_view(first[1]) if first is not None and first[0] == Opcode.CLOSE else None
        if close is not None:
            await client.close(1000)
        ended = client.received.eof or await client.read_to_end(READ_WAIT)
    app = await app_view(target, connection_id)
    return {
        "delivered": False,
        "client": {"close": close, "end": "closed" if ended else "still open"},
        # The app waits CLIENT_WAIT seconds for each event; a server may tell it later (legacy uvicorn: 10 s).
        f"app received within {CLIENT_WAIT:g} s": received_after_connect(app),
    }


async def _write_then_read(target: Target, size: int) -> dict[str, Any]:
    """A client that writes the whole message before reading anything: does the write end, and what can it read?

    A server that refuses the message from its frame header closes while the
    client is still writing.  The client's writes then fail with a reset (the
    server's kernel answers data for a closed socket with RST), yet the close
    frame the server sent before it may still be read: what that client sees
    depends on whether it reads after a failed write.
    """
    async with connect(target, "/size", lenient=True) as (client, _):
        status = await lenient_open(client, READ_WAIT)
        if status != 101:
            return {"handshake": status}
        written = await client.send_in_chunks(_text_message(size, None))
        first = await client.read_frame(READ_WAIT)
    read: str | dict[str, Any]
    if first is not None and first[0] == Opcode.TEXT:
        read = "the app's answer"
    elif first is not None and first[0] == Opcode.CLOSE:
        read = close_view(first[1])
    else:
        read = "nothing: no close frame"
    return {"write": "completed" if written else "reset by the server", "then read": read}


# (probe name, size, what it shows)
SIZES = [
    ("probe-size-1mib", MIB, "1 MiB, exactly daphne's default limit"),
    ("probe-size-1mib-plus-1", MIB + 1, "one byte over 1 MiB"),
    ("probe-size-16mib", 16 * MIB, "16 MiB, exactly uvicorn's and hypercorn's default limit"),
    ("probe-size-16mib-plus-1", 16 * MIB + 1, "one byte over 16 MiB"),
]


# The sizes over every server's default limit but daphne's, at which a client that writes first differs.
WRITTEN_FIRST = frozenset({"probe-size-16mib-plus-1"})


def _register_size(name: str, size: int, meaning: str) -> None:
    async def send_size(target: Target) -> Transcript:
        transcript = await _send_size(target, size)
        if name in WRITTEN_FIRST:
            transcript["a client that writes it all before reading"] = await _write_then_read(target, size)
        return transcript

    probe(
        name,
        f"One text message of {meaning}: delivered whole, or refused with which close code?",
        "Server defaults: message size limit (the probe app sets none)",
        racy=(
            "A server that refuses the message closes while the client is still writing it. The probe's main "
            "client reads while it writes, so it reads the close frame as soon as it is sent; a second client "
            "writes the whole frame first, and records whether its writes were reset and whether the close "
            "frame could still be read after that. On loopback each server gave the same pair every time "
            "but pyvoy, whose close frame the reading client got in one run and not in another."
        )
        if name in WRITTEN_FIRST
        else None,
    )(send_size)


for _name, _size, _meaning in SIZES:
    _register_size(_name, _size, _meaning)


FRAGMENT = 64 * 1024  # bytes per frame of a fragmented message: each frame far below every server's limit

# (probe name, size): one byte over daphne's limit, over uvicorn's and hypercorn's, and over granian's.
FRAGMENTED_SIZES = [
    ("probe-size-fragmented-1mib-plus-1", MIB + 1),
    ("probe-size-fragmented-16mib-plus-1", 16 * MIB + 1),
    # One byte over the limit per message of tungstenite's default configuration, which granian uses.
    ("probe-size-fragmented-64mib-plus-1", 64 * MIB + 1),
]


def _register_fragmented(name: str, size: int) -> None:
    async def send_fragmented(target: Target) -> Transcript:
        """Motivated by limits that may be checked per frame rather than per message: websockets 17.4
        ``protocol.py`` ``Protocol.recv_frame`` adds up a fragmented message against ``max_size``; wsproto
        1.3.2 (uvicorn-wsproto, hypercorn) checks each frame's length in ``frame_protocol.py``
        ``FrameDecoder`` and leaves the whole message to the server (hypercorn 0.18.0
        ``protocol/ws_stream.py`` ``WebsocketBuffer.extend``); daphne 4.2.3 relies on autobahn's
        ``maxMessagePayloadSize``.  A limit checked per frame only lets any size through."""
        return await _send_size(target, size, FRAGMENT)

    probe(
        name,
        f"One text message of {size} bytes sent as {FRAGMENT // 1024} KiB frames: delivered whole, or refused "
        "with which close code?",
        "Server defaults: message size limit on a fragmented message (the probe app sets none)",
    )(send_fragmented)


for _name, _size in FRAGMENTED_SIZES:
    _register_fragmented(_name, _size)


@probe(
    "probe-invalid-utf8",
    "The client sends a text frame of b'\\xff\\xfe': what it gets back, and what the app receives.",
    "RFC 6455 §8.1 (fail with 1007); ASGI WebSocket: receive text",
)
async def invalid_utf8(target: Target) -> Transcript:
    async with connect(target, "/hold") as (client, connection_id):
        failure = await open_ready(client)
        if failure is not None:
            return failure
        await client.send_frame(Frame(Opcode.TEXT, b"\xff\xfe"))
        client_view = await closing_view(client)
    app = await app_view(target, connection_id)
    return {
        "client": client_view,
        "app": {"received": received_after_connect(app), **await app_report(target, connection_id)},
    }


BACKLOG_MESSAGES = 256  # 16 MiB in all: more than a paused socket's kernel buffers hold on loopback
BACKLOG_SIZE = 64 * 1024  # bytes per binary message, each starting with its index (4 bytes, big-endian)
BACKLOG_SNDBUF = 64 * 1024  # the client's SO_SNDBUF: a fixed send buffer, not one the kernel grows to 4 MiB
BACKLOG_WRITE_WAIT = 25.0  # seconds the client may take to write them all once the app reads


@probe(
    "probe-receive-backpressure",
    f"The app calls no receive() for {SLOW_READER_PAUSE:g} s while the client writes {BACKLOG_MESSAGES} "
    f"binary messages of {BACKLOG_SIZE // 1024} KiB (16 MiB): do the client's writes stall until the app "
    "reads, and does the app then receive every message, in order?",
    "ASGI WebSocket: receive (no flow control stated); contract §7 (a slow app must not make the server buffer "
    "without bound)",
    racy=(
        f"Whether the writes stall is read as whether all 16 MiB went out within {SLOW_READER_PAUSE - 1:g} s, "
        f"while the app sleeps {SLOW_READER_PAUSE:g} s: a server that reads on writes 16 MiB on loopback in a "
        "fraction of that, a server that stops reading leaves the writes blocked until the app reads."
    ),
)
async def receive_backpressure(target: Target) -> Transcript:
    """Motivated by gunicorn 27.0.1 ``asgi/websocket.py`` ``WebSocketProtocol._put_message`` (waits while
    ``RECEIVE_QUEUE_HIGH_WATER``, 32, messages are unread, and ``feed_data`` pauses the transport past
    ``READ_BUFFER_HIGH_WATER``) and uvicorn 0.55.0 ``websockets_sansio_impl.py``
    ``WebSocketsSansIOProtocol.send_receive_event_to_app`` (``transport.pause_reading()`` after each message),
    hypercorn 0.18.0 ``asyncio/task_group.py`` ``TaskGroup.spawn_app`` (the app's queue holds
    ``max_app_queue_size``, 10, events), against daphne 4.2.3 ``ws_protocol.py`` ``WebSocketProtocol.onMessage``,
    which puts every message on a queue with no bound."""
    data = b"".join(
        Frame(Opcode.BINARY, index.to_bytes(4, "big") + bytes(BACKLOG_SIZE - 4)).serialize(mask=True)
        for index in range(BACKLOG_MESSAGES)
    )
    options = [(socket.SOL_SOCKET, socket.SO_SNDBUF, BACKLOG_SNDBUF)]
    tag = target.connection_id()
    client = RawClient(
        target.host,
        target.port,
        f"/slow-reader?count={BACKLOG_MESSAGES}",
        headers=[(OBSERVE_HEADER, tag)],
        socket_options=options,
        lenient=True,
    )
    try:
        failure = await lenient_open_ready(client)
        if failure is not None:
            return failure
        writing = asyncio.create_task(client.send_in_chunks(data))
        done, _ = await asyncio.wait({writing}, timeout=SLOW_READER_PAUSE - 1)
        written_while_unread = bool(done)
        try:
            async with asyncio.timeout(BACKLOG_WRITE_WAIT):
                written = await writing
        except TimeoutError:
            written = False
        if written:
            await client.close(1000)
        client_view = await lenient_closing_view(client, answer=not written)
    finally:
        client.abort()
    return {
        "client": {
            f"all written within {SLOW_READER_PAUSE - 1:g} s, the app not reading": written_while_unread,
            "all written": written,
            **client_view,
        },
        "app": await app_report(target, tag),
    }
