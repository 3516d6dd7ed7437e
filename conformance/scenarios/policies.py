"""The policies that end an accepted connection (contract §3), and what the app saw when they did.

===================  =====================  ==========================================
row of contract §3       close                  scenario
===================  =====================  ==========================================
normal end           1000                   ``normal-close-1000``
binary on text-only  4400                   ``json-binary-4400`` and
                                            ``binary-on-text-endpoints-4400``
                                            (:mod:`.endpoints`)
idle                 4408 "idle timeout"    ``idle-silent-4408``, ``idle-room-reader``
too big              4413 "message too big" ``size-limit-64kib``, ``size-limit-utf8``
rate                 4429 "rate limited"    ``rate-limit-4429``
slow consumer        4503 "slow consumer"   ``slow-consumer-4503``,
                                            ``slow-consumer-late-reader``
internal error       4500 "internal error"  none: see below
===================  =====================  ==========================================

4500 is not covered: it is the app's answer to a bug in itself, and no client
input reaches one (every input has a defined answer, and the hypothesis tests of
contract §7 hold the app to that).  A scenario would need a fault injected into the
app under test, which would make it another app.

Limits are set low, so that one message or a short flood trips them however
slow the machine: :data:`LIMITS` (size and rate), :data:`IDLE` and :data:`SLOW`
(outbox) are three server processes.  The default 64 KiB size limit is part of
the contract, so it is tested on the default server.  Timing appears only as
coarse facts: whether an idle close came no sooner than the timeout, whether a
reader of an active room stayed open.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import random
import socket
import time
from collections.abc import Sequence
from typing import Any

from websockets.frames import Opcode
from websockets.typing import Data

from ..checks import Target, Transcript, scenario
from ..rawclient import RawClient
from ..views import app_outcome, app_view
from .helpers import (
    BROADCAST_PREFIX,
    RAW_CLIENT,
    SMALL_RECEIVE_BUFFER,
    WAIT,
    client,
    join_broadcast,
    join_room,
    payload,
    raw_client,
    raw_summary,
    raw_until_close,
    read_to_end,
    read_until_text,
    real,
    receive,
    receive_real,
    sequence,
    until_close,
)

__all__ = ["IDLE", "LIMITS", "SLOW"]

DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024  # contract §3
SMALL_MAX_MESSAGE_SIZE = 1000
RATE_BURST = 5
# One token a second and five saved: of a flood sent in one write, exactly five messages pass.
LIMITS = {
    "ASGI_WS_MAX_MESSAGE_SIZE": str(SMALL_MAX_MESSAGE_SIZE),
    "ASGI_WS_RATE_LIMIT": "1",
    "ASGI_WS_RATE_BURST": str(RATE_BURST),
}
FLOOD = 200  # messages; far more than hypercorn 0.18 queues per connection (max_app_queue_size 10)

IDLE_TIMEOUT = 1.0  # seconds
IDLE = {"ASGI_WS_IDLE_TIMEOUT": str(IDLE_TIMEOUT)}
ACTIVE_FOR = 2.5  # seconds a room is kept active, well past the idle timeout
ACTIVE_EVERY = 0.25  # seconds between two messages in the active room: a quarter of the timeout

# The rate limit is off so that one client can send fast enough to outrun a reader that stopped.
SLOW_OUTBOX = 4
SLOW = {"ASGI_WS_OUTBOX_SIZE": str(SLOW_OUTBOX), "ASGI_WS_RATE_LIMIT": "0"}
# Enough data to fill the socket buffers between the server and a client that does not read
# (Linux loopback: some MiB), so that the server's send() stops and the outbox fills up.
FLOOD_MESSAGES = 500
FLOOD_MESSAGE_SIZE = 32_000  # characters, below the default 64 KiB limit
FLOOD_WINDOW = 2  # messages the flooder may be ahead of the reader; below the outbox size
# The late reader: a 4 KiB receive buffer (Linux doubles it to 8 KiB) and nothing read for 7 s after
# the flood, longer than the 5 s the app gives an ordinary close to be taken by the server.
LATE_READER_SOCKET = ((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),)
LATE_READER_PAUSE = 7.0  # seconds


# Normal end


@scenario(
    "normal-close-1000",
    "A client that closes with 1000 gets 1000 back, and the app sees a disconnect with 1000.",
    "contract §3 normal end",
    http1_only=RAW_CLIENT,
)
async def normal_close_1000(target: Target) -> Transcript:
    """One round trip on /ws, then the client starts the closing handshake with 1000."""
    tag = target.connection_id()
    async with raw_client(target, "/ws", tag=tag) as raw:
        await raw.send_text("bye soon")
        await read_until_text(raw, "Message text was: bye soon")
        await raw.close(1000)
        seen = await raw_until_close(raw)
    return {"client": seen, "app": app_outcome(await app_view(target, tag))}


# Size


async def _size_limit(target: Target, largest: str | bytes, too_big: str | bytes) -> Transcript:
    """The largest allowed message is echoed; one byte more closes the connection."""
    tag = target.connection_id()
    async with client(target, "/echo", tag=tag) as ws:
        await ws.send(largest)
        echoed = payload((await receive(ws, 1))[0])
        await ws.send(too_big)
        return {
            "largest echoed": echoed,
            "one byte more": await until_close(ws),
            "app": app_outcome(await app_view(target, tag)),
        }


@scenario(
    "size-limit-64kib",
    "A 64 KiB message is echoed; one byte more closes with 4413 'message too big'.",
    "contract §3 max_message_size",
)
async def size_limit_64kib(target: Target) -> Transcript:
    """The default limit, text and binary, each on a connection of its own."""
    return {
        "text": await _size_limit(target, "x" * DEFAULT_MAX_MESSAGE_SIZE, "x" * (DEFAULT_MAX_MESSAGE_SIZE + 1)),
        "binary": await _size_limit(target, b"x" * DEFAULT_MAX_MESSAGE_SIZE, b"x" * (DEFAULT_MAX_MESSAGE_SIZE + 1)),
    }


@scenario(
    "size-limit-utf8",
    "ASGI_WS_MAX_MESSAGE_SIZE counts UTF-8 bytes: 500 'é' pass a 1000-byte limit, 501 close with 4413.",
    "contract §3 max_message_size",
    settings=LIMITS,
)
async def size_limit_utf8(target: Target) -> Transcript:
    """Two-byte characters up to the limit, then one character more."""
    half = SMALL_MAX_MESSAGE_SIZE // 2
    return await _size_limit(target, "é" * half, "é" * (half + 1))


# Rate


@scenario(
    "rate-limit-4429",
    "A flood past the rate limit is answered up to the burst, then closed with 4429 'rate limited'.",
    "contract §3 rate_limit",
    settings=LIMITS,
    racy=(
        "The token bucket refills while the flood is sent. The rate is 1 message/s, so no token is added "
        "during the burst-sized flood, and the replies before the 4429 close are always the burst."
    ),
    http1_only=RAW_CLIENT,
)
async def rate_limit_4429(target: Target) -> Transcript:
    """200 messages in one write to a connection allowed 5 at once and 1 a second after that."""
    tag = target.connection_id()
    async with raw_client(target, "/echo", tag=tag) as raw:
        flood = b"".join(_text_frame(raw, str(number)) for number in range(FLOOD))
        await raw.send_raw(flood)
        seen = await raw_until_close(raw)
    return {"client": seen, "app": app_outcome(await app_view(target, tag))}


def _text_frame(raw: RawClient, text: str) -> bytes:
    """A text frame as the client's protocol serialises it (masked), to be written later with others."""
    raw.protocol.send_text(text.encode())
    return b"".join(raw.protocol.data_to_send())


# Idle


@scenario(
    "idle-silent-4408",
    "A connection with no message either way for idle_timeout is closed with 4408 'idle timeout'.",
    "contract §3 idle",
    settings=IDLE,
    racy=(
        "The idle close comes between idle_timeout and 1/16 of it later. The transcript keeps only that it "
        "did not come before the timeout (a lower bound), never when it came."
    ),
)
async def idle_silent_4408(target: Target) -> Transcript:
    """A client that says nothing on /ws, on /ws_json and on /stream, all three at once."""
    paths = ["/ws", "/ws_json", "/stream"]
    return dict(zip(paths, await asyncio.gather(*(_silent(target, path) for path in paths)), strict=True))


async def _silent(target: Target, path: str) -> dict[str, Any]:
    """Connect, say nothing, and record how and when the connection ends."""
    started = time.monotonic()
    async with client(target, path) as ws:
        ending = await until_close(ws)
    return {**ending, "not before the timeout": time.monotonic() - started >= IDLE_TIMEOUT}


@scenario(
    "idle-room-reader",
    "A silent client reading an active room is not idle; once the room falls silent, both close with 4408.",
    "contract §3 idle",
    settings=IDLE,
    racy=(
        "The room's ticks and the idle close are timed. The writer stops well before the timeout, and only "
        "the order of events (every tick heard, then 4408) is recorded."
    ),
)
async def idle_room_reader(target: Target) -> Transcript:
    """A writer says something every quarter of the timeout for two and a half timeouts; the reader never writes.

    Had the reader been closed as idle while the room was active, it would miss
    the ticks after its close.
    """
    path = "/ws/chat/idle-active"
    async with client(target, path) as writer, client(target, path) as reader:
        await join_room([writer, reader])
        ticks: list[str] = []
        deadline = time.monotonic() + ACTIVE_FOR
        while time.monotonic() < deadline:
            ticks.append(f"tick {len(ticks)}")
            await writer.send(ticks[-1])
            await receive_real(writer, 1)
            await asyncio.sleep(ACTIVE_EVERY)
        heard, reader_end = await read_to_end(reader)
        _, writer_end = await read_to_end(writer)
    return {"reader heard every tick": real(heard) == ticks, "reader": reader_end, "writer": writer_end}


# Slow consumer


@scenario(
    "slow-consumer-4503",
    "A client that stops reading while others flood is closed with 4503 'slow consumer'; the others get everything.",
    "contract §3 outbound queue full, §4",
    settings=SLOW,
    racy=(
        "How much of the flood the stalled client reads before the 4503 close depends on socket buffers and "
        "timing. The transcript keeps only that what it read is the flood's start, in order, and whether it "
        "read all of it."
    ),
    http1_only=SMALL_RECEIVE_BUFFER,
)
async def slow_consumer_4503(target: Target) -> Transcript:
    """On /ws_broadcast: a flooder, a reader that keeps up, and a raw client that reads nothing until the flood is over.

    The flood is far more than the socket buffers hold, so the server's
    ``send()`` to the stalled client stops, its outbox of 4 fills, and the app
    closes it.  The close frame waits behind the data already buffered; the
    stalled client sees it once it reads again.  A server whose ``send()``
    never waits buffers everything instead, and the stalled client is never
    closed: that shows as ``"close": "still open"`` and the whole flood read.

    The flooder keeps at most two messages ahead of the reader, as a client
    that keeps up would be; so only the stalled client falls behind.
    """
    return await _slow_consumer(target)


@scenario(
    "slow-consumer-late-reader",
    "A slow consumer with a 4 KiB receive buffer that reads again 7 s after the flood still gets its 4503 close frame.",
    "outbound queue full: the slow consumer's close frame",
    settings=SLOW,
    racy=(
        "How much of the backlog the client reads before the close frame depends on socket buffers. The client "
        "reads again 7 s after the flood, past the app's 5 s close timeout and well inside its 30 s for a slow "
        "consumer, and the transcript keeps the close frame and the order of what was read, not how much."
    ),
    http1_only=SMALL_RECEIVE_BUFFER,
)
async def slow_consumer_late_reader(target: Target) -> Transcript:
    """``slow-consumer-4503``, but the stalled client has a small receive buffer and reads again only 7 s later.

    The close frame is queued behind megabytes the server has already taken
    for this client, and a server may take the frame itself only once the
    client has read part of them: uvicorn 0.54.0 does
    (``WebSocketsSansIOProtocol.send`` in websockets_sansio_impl.py and
    ``WSProtocol.send`` in wsproto_impl.py await ``writable`` before writing
    anything; Kludex/uvicorn#3048, merged).  A client that reads again
    after the app stopped waiting for its close gets the data and then the end
    of TCP, without the frame: what this checks is that the app waits long
    enough.  The 4 KiB buffer is the one of the client that showed the
    problem; the time is what matters (a default buffer read 7 s late fared
    the same), so it stays as the harsher case.
    """
    return await _slow_consumer(target, socket_options=LATE_READER_SOCKET, pause=LATE_READER_PAUSE)


async def _slow_consumer(
    target: Target, *, socket_options: Sequence[tuple[int, int, int]] = (), pause: float = 0.0
) -> Transcript:
    """A flood on /ws_broadcast past a stalled raw client, which reads again ``pause`` seconds after the flood."""
    tag = target.connection_id()
    flood = _flood()
    expected = [BROADCAST_PREFIX + message for message in flood]
    async with (
        client(target, "/ws_broadcast", compression=None) as flooder,
        client(target, "/ws_broadcast", compression=None) as reader,
        raw_client(target, "/ws_broadcast", tag=tag, socket_options=socket_options) as stalled,
    ):
        await join_broadcast(reader, [flooder.send, stalled.send_text])
        received: list[Data] = []
        for number, message in enumerate(flood):
            await flooder.send(message)
            if number >= FLOOD_WINDOW:
                received.extend(await receive_real(reader, 1))
        received.extend(await receive_real(reader, len(flood) - len(received)))
        await asyncio.sleep(pause)
        stalled_seen = await _read_stalled(stalled, expected)
        # The flooder and the reader are still served.
        await reader.send("after the flood")
        after = await receive_real(flooder, 1)
    return {
        "reader": sequence(received, expected),
        "stalled": stalled_seen,
        "flooder afterwards": payload(after[0]),
        "app (stalled)": app_outcome(await app_view(target, tag)),
    }


def _flood() -> list[str]:
    """FLOOD_MESSAGES distinct texts that compress badly (so no layer can shrink them), the same every run."""
    generator = random.Random(4503)
    return [
        f"{number}:" + base64.b64encode(generator.randbytes(FLOOD_MESSAGE_SIZE * 3 // 4)).decode()
        for number in range(FLOOD_MESSAGES)
    ]


async def _read_stalled(stalled: RawClient, expected: list[str]) -> dict[str, Any]:
    """Read what the stalled client was sent: up to a close frame, the end of TCP, or the whole flood."""
    texts: list[str] = []
    closed = False
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(WAIT):
            while len(texts) < len(expected):
                frame = await stalled.next_frame()
                if frame is None or frame.opcode is Opcode.CLOSE:
                    closed = True
                    break
                if frame.opcode is Opcode.TEXT:
                    texts.extend(str(text) for text in real([bytes(frame.data).decode()]))
    if closed:
        await raw_until_close(stalled)  # the rest of the closing handshake
    summary = raw_summary(stalled.received)
    return {
        "close": summary["close"],
        "tcp_closed": summary["tcp_closed"],
        "what it read is the flood's start, in order": texts == expected[: len(texts)],
        "read the whole flood": len(texts) == len(expected),
    }
