"""The wire under the echo endpoint: message edge cases, control frames, closes and resets (contract §5).

Most scenarios here use the raw client (:mod:`conformance.rawclient`), because
what they do cannot be done with a well-behaved client, and what they record
is frame by frame:

- **messages**: empty, non-ASCII, fragmented (split inside a multi-byte
  character), interleaved with a ping, invalid UTF-8, and many pipelined at
  once;
- **closes from the client**: 1000-range and private codes with a reason, and a
  close frame without any code; the server's reply, and the code (and reason,
  where the server passes it) of the ``websocket.disconnect`` the app got;
- **resets** (TCP RST, no closing handshake): after a message, in the middle
  of a frame, and in the middle of a ``/stream`` push, where the app's
  ``send()`` is what finds out, and how it fails differs by server.

Every scenario but the ``/stream`` one is generic: it needs only an echo
endpoint (``target.echo_path``), so it runs against any app.  The invalid
UTF-8 scenario comes last on purpose: one server crashes on it (see there).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from websockets.frames import Frame, Opcode

from ..checks import Target, Transcript, scenario
from ..rawclient import RawClient
from ..views import app_outcome, app_view
from .helpers import (
    RAW_CLIENT,
    client,
    digest,
    handshake,
    payload,
    raw_client,
    raw_summary,
    raw_until_close,
    read_until_text,
    receive,
    reset_mid_frame,
    sequence,
    settle,
)

__all__: list[str] = []  # scenarios register themselves; nothing here is for import

LAST = "last message"  # ends a conversation: see _then_closed
PIPELINED = 150  # messages sent before any answer is read; below asgi_ws's default burst of 200

Moves = Callable[[RawClient], Awaitable[None]]


async def _conversation(target: Target, moves: Moves, *, client_resets: bool = False) -> Transcript:
    """Run ``moves`` on a tagged raw connection to the echo endpoint; what both sides saw.

    The client's side is every frame up to the end of the connection, so
    ``moves`` should end the conversation: with a close, or with a reset
    (``client_resets``), after which there is nothing more to read.
    """
    tag = target.connection_id()
    async with raw_client(target, target.echo_path, tag=tag) as raw:
        await moves(raw)
        if client_resets:
            seen: dict[str, Any] = {"frames": raw_summary(raw.received)["frames"], "end": "the client reset TCP"}
        else:
            seen = await raw_until_close(raw)
    return {"client": seen, "app": app_outcome(await app_view(target, tag), messages=True)}


async def _then_closed(raw: RawClient) -> None:
    """Send :data:`LAST` and read up to its echo, then close with 1000.

    The echo endpoint answers in order, so once LAST's echo is in, every
    earlier answer that was coming has come: none can race the close, and one
    that never comes is missing from the transcript without a wait for it.
    """
    await raw.send_text(LAST)
    await read_until_text(raw, LAST)
    await raw.close(1000)


# Messages


@scenario(
    "echo-empty-messages",
    "An empty text and an empty binary message are each echoed as an empty frame of the same type.",
    "contract §1 /echo, §5 empty messages",
    generic=True,
    http1_only=RAW_CLIENT,
)
async def echo_empty_messages(target: Target) -> Transcript:
    """Two empty frames, one of each type."""

    async def moves(raw: RawClient) -> None:
        await raw.send_text("")
        await raw.send_binary(b"")
        await _then_closed(raw)

    return await _conversation(target, moves)


UNICODE = [
    "é",  # 2 bytes in UTF-8
    "✓ 日本語",  # 3 bytes each
    "🎉",  # 4 bytes, outside the BMP
    "e\u0301",  # a combining accent: two code points, one character on screen
    "שלום",  # right to left
    "\ufeffBOM first",  # a byte order mark, which must not be stripped
    "nul\x00inside",  # U+0000 is a valid character
    "\U0010ffff",  # the last code point
]


@scenario(
    "echo-unicode",
    "Non-ASCII text, from 2-byte characters to the last code point, is echoed unchanged.",
    "contract §1 /echo, §5 unicode",
    generic=True,
)
async def echo_unicode(target: Target) -> Transcript:
    """Each string on its own, then 10,000 emoji in one 40 KB message."""
    long_text = "🎉" * 10_000
    async with client(target, target.echo_path) as ws:
        answers = []
        for text in UNICODE:
            await ws.send(text)
            answers.append(payload((await receive(ws, 1))[0]))
        await ws.send(long_text)
        (echoed,) = await receive(ws, 1)
    return {"answers": answers, "long": {"sent": digest(long_text.encode()), "echoed": payload(echoed)}}


@scenario(
    "echo-fragmented-text",
    "A text message sent in five fragments, split inside characters, reaches the app and comes back whole.",
    "contract §1 every message, §5 fragmented frames",
    generic=True,
    http1_only=RAW_CLIENT,
)
async def echo_fragmented_text(target: Target) -> Transcript:
    """RFC 6455 §5.4: TEXT (fin=0), three CONTINUATION (fin=0), CONTINUATION (fin=1)."""

    async def moves(raw: RawClient) -> None:
        await raw.send_fragmented_text("héllo wörld ✓ 🎉", pieces=5)
        await _then_closed(raw)

    return await _conversation(target, moves)


@scenario(
    "echo-fragmented-binary",
    "A binary message sent in four fragments reaches the app and comes back whole.",
    "contract §1 every message, §5 fragmented frames",
    generic=True,
    http1_only=RAW_CLIENT,
)
async def echo_fragmented_binary(target: Target) -> Transcript:
    """BINARY (fin=0), two CONTINUATION (fin=0), CONTINUATION (fin=1): 1 KiB of every byte value."""
    data = bytes(range(256)) * 4

    async def moves(raw: RawClient) -> None:
        pieces = [data[start : start + 256] for start in range(0, len(data), 256)]
        for index, piece in enumerate(pieces):
            opcode = Opcode.BINARY if index == 0 else Opcode.CONT
            await raw.send_frame(Frame(opcode, piece, fin=index == len(pieces) - 1))
        await _then_closed(raw)

    return await _conversation(target, moves)


@scenario(
    "echo-ping-between-fragments",
    "A ping between two fragments of a message is answered at once; the message still arrives whole.",
    "contract §5 fragmented frames; RFC 6455 §5.4 control frames inside fragmented messages",
    generic=True,
    http1_only=RAW_CLIENT,
)
async def echo_ping_between_fragments(target: Target) -> Transcript:
    """TEXT "hel" (fin=0), PING "mid", CONTINUATION "lo" (fin=1): a pong, then "hello"."""

    async def moves(raw: RawClient) -> None:
        await raw.send_frame(Frame(Opcode.TEXT, b"hel", fin=False))
        await raw.send_frame(Frame(Opcode.PING, b"mid"))
        await raw.send_frame(Frame(Opcode.CONT, b"lo"))
        await _then_closed(raw)

    return await _conversation(target, moves)


@scenario(
    "echo-ping-pong",
    "A client ping is answered with a pong of the same payload; an unsolicited pong is ignored.",
    "contract §5; RFC 6455 §5.5.2-3",
    generic=True,
    http1_only=RAW_CLIENT,
)
async def echo_ping_pong(target: Target) -> Transcript:
    """PING "are you there?", then an unsolicited PONG, then a text message that must still be echoed."""

    async def moves(raw: RawClient) -> None:
        await raw.send_frame(Frame(Opcode.PING, b"are you there?"))
        await raw.send_frame(Frame(Opcode.PONG, b"unsolicited"))
        await raw.send_text("still here")
        await _then_closed(raw)

    return await _conversation(target, moves)


@scenario(
    "echo-pipelined-order",
    "150 messages written back to back on one connection are answered completely and in order.",
    "contract §1 every message",
    generic=True,
)
async def echo_pipelined_order(target: Target) -> Transcript:
    """All sent before any answer is read."""
    texts = [f"message {number}" for number in range(PIPELINED)]
    async with client(target, target.echo_path) as ws:
        for text in texts:
            await ws.send(text)
        answers = await receive(ws, len(texts))
    return {"answers": sequence(answers, texts)}


# Closes from the client


def _close_with(code: int | None, reason: str = "") -> Moves:
    """One round trip, then a close frame with ``code`` (None: no code at all) and ``reason``."""

    async def moves(raw: RawClient) -> None:
        await raw.send_text("hi")
        await read_until_text(raw, "hi")
        await raw.close(code, reason)

    return moves


@scenario(
    "echo-client-close-4000",
    "A client close with a private code and a reason: the server's reply, and the code and reason the app gets.",
    "contract §5 client close codes and reasons",
    generic=True,
    http1_only=RAW_CLIENT,
)
async def echo_client_close_4000(target: Target) -> Transcript:
    """Close 4000 "bye"."""
    return await _conversation(target, _close_with(4000, "bye"))


@scenario(
    "echo-client-close-1001",
    "A client close with 1001 'going away' (a browser leaving the page): the reply, and what the app gets.",
    "contract §5 client close codes and reasons",
    generic=True,
    http1_only=RAW_CLIENT,
)
async def echo_client_close_1001(target: Target) -> Transcript:
    """Close 1001 "going away"."""
    return await _conversation(target, _close_with(1001, "going away"))


@scenario(
    "echo-client-close-no-code",
    "A client close frame with no code: the server's reply, and the code the app gets (1005 per the ASGI spec).",
    "contract §5 client close codes; RFC 6455 §7.1.5",
    generic=True,
    http1_only=RAW_CLIENT,
)
async def echo_client_close_no_code(target: Target) -> Transcript:
    """A close frame with an empty payload."""
    return await _conversation(target, _close_with(None))


# Resets


@scenario(
    "echo-reset-after-message",
    "A client that resets TCP after a round trip: the code of the disconnect the app gets.",
    "contract §5 abrupt TCP resets",
    generic=True,
    racy=(
        "The reset races the server's read of the connection. The client waits for its echo before it resets,"
        " so the order is fixed, and how TCP ended (FIN or RST) is not recorded; only the disconnect code the"
        " app got."
    ),
    http1_only=RAW_CLIENT,
)
async def echo_reset_after_message(target: Target) -> Transcript:
    """One round trip, then RST."""

    async def moves(raw: RawClient) -> None:
        await raw.send_text("hi")
        await read_until_text(raw, "hi")
        raw.reset()

    return await _conversation(target, moves, client_resets=True)


@scenario(
    "echo-reset-mid-frame",
    "A client that resets TCP halfway through a frame: the app gets no message, only a disconnect.",
    "contract §5 abrupt TCP resets, §7 reset mid-message",
    generic=True,
    racy=(
        "The reset races the server's read of the half frame. The client waits for its first echo before it "
        "resets, the half frame can never become a message, and only the disconnect code the app got is "
        "recorded."
    ),
    http1_only=RAW_CLIENT,
)
async def echo_reset_mid_frame(target: Target) -> Transcript:
    """One round trip, then half of a 1000-byte text frame, then RST."""

    async def moves(raw: RawClient) -> None:
        await raw.send_text("hi")
        await read_until_text(raw, "hi")
        await reset_mid_frame(raw)

    return await _conversation(target, moves, client_resets=True)


@scenario(
    "stream-reset-send-errors",
    "A client that resets TCP during a /stream push: whether the app's send() raised, and what, differs by server.",
    "contract §3 send() may fail after a disconnect, §5 resets, §7 reset mid-stream",
    racy=(
        "How many push messages go out before send() fails depends on the moment of the reset. The transcript"
        " keeps only whether send() failed and with what (a million-message push cannot finish first), and "
        "waits for /healthz to count the connection released."
    ),
    http1_only=RAW_CLIENT,
)
async def stream_reset_send_errors(target: Target) -> Transcript:
    """A million-message push, reset as soon as it starts; then the connection must be released."""
    tag = target.connection_id()
    settled_before = await settle(target)
    async with raw_client(target, "/stream?count=1000000", tag=tag) as raw:
        await raw.send_text("go")
        started = await read_until_text(raw, "1")
        raw.reset()
    return {
        "settled before": settled_before,
        "push started": started,
        "app": app_outcome(await app_view(target, tag)),
        "connections released": await settle(target),
    }


# Last: see the docstring.


@scenario(
    "echo-invalid-utf8",
    "A text frame that is not valid UTF-8 never reaches the app; the server closes the connection.",
    "contract §5; RFC 6455 §8.1 (fail with 1007)",
    generic=True,
    http1_only=RAW_CLIENT,
)
async def echo_invalid_utf8(target: Target) -> Transcript:
    """A valid message, then TEXT b"\\xff\\xfe not utf-8", then nothing: the server ends it.

    Last in this module, and so last among the scenarios that share the
    default server: on a server that crashes here, no other scenario is lost.
    """

    async def moves(raw: RawClient) -> None:
        await raw.send_text("valid first")
        await read_until_text(raw, "valid first")
        await raw.send_frame(Frame(Opcode.TEXT, b"\xff\xfe not utf-8"))

    transcript = await _conversation(target, moves)
    # hypercorn 0.18's trio worker can crash on this (its ping task's send_all meets another
    # send on the same stream: trio.BusyResourceError escapes the server's nursery).
    transcript["server still accepts connections"] = (await handshake(target, target.echo_path))["status"] == 101
    return transcript
