"""What the probes share: connecting to the probe app, and turning what came back into transcript data.

Every function here returns plain, normalised data and captures failures as
data: a server that closes the TCP connection where a handshake response was
due gives ``{"status": None, "failure": "closed without a response", ...}``,
not an exception.  A probe's transcript is then made only of these views and
of what the app saw (:mod:`conformance.views`).

One client is used, :class:`~conformance.rawclient.RawClient`, in two ways:

- as it comes, for almost everything: a correct client that shows every frame;
- lenient (the ``lenient_*`` functions), where the server may send what a
  correct client refuses to parse (close codes and reasons the RFC forbids), or
  may close while the client is still sending (messages over its size limit).

Timing appears only as coarse booleans, never as durations.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import subprocess
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from websockets.frames import Opcode

from ..checks import OBSERVE_HEADER, Target
from ..rawclient import RawClient, Received, close_view

__all__ = [
    "HEADERS_OF_INTEREST",
    "PROMPT_LIMIT",
    "READ_WAIT",
    "closing_view",
    "connect",
    "frames_view",
    "handshake_view",
    "lenient_closing_view",
    "lenient_open",
    "lenient_open_ready",
    "lenient_read_until_close",
    "next_text",
    "only",
    "open_and_close_view",
    "open_ready",
    "read_close_leniently",
    "still_serves",
]

READ_WAIT = 5.0  # seconds to wait for the server's next frame or its close; loopback needs milliseconds
PROMPT_LIMIT = 2.0  # seconds: an answer later than this came from a timeout, not from the event itself
BODY_LIMIT = 300  # characters of a refusal's body kept in a transcript
# Seconds a server that stopped answering is given to exit, so the check that killed it is named.  Generous: with
# 5 s, a loaded run of hypercorn's trio worker was still exiting when the next four checks began, and they failed.
EXIT_WAIT = 20.0  # with READ_WAIT, OBSERVE_WAIT and SETTLE_WAIT, well inside the runner's CHECK_TIMEOUT (60 s)
SETTLE_WAIT = 3.0  # seconds a server is watched for an exit before asking whether it still serves

# Response headers whose values a transcript keeps; of the others only the names are kept.
HEADERS_OF_INTEREST = frozenset(
    {
        "connection",
        "content-length",
        "content-type",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "transfer-encoding",
        "upgrade",
        "x-probe",
    }
)
# Response headers left out of transcripts altogether: they change from run to run.
VOLATILE_HEADERS = frozenset({"date", "sec-websocket-accept"})


# Connecting


@contextlib.asynccontextmanager
async def connect(
    target: Target,
    path: str,
    *,
    subprotocols: Sequence[str] = (),
    extensions_header: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
    lenient: bool = False,
) -> AsyncIterator[tuple[RawClient, str]]:
    """A :class:`RawClient` for ``path``, tagged for the observer, not yet opened; and its tag.

    The handshake is left to :func:`handshake_view` (or, ``lenient``, to
    :func:`lenient_open`), which records a failed one instead of raising.  The
    socket is closed on leaving the block.
    """
    connection_id = target.connection_id()
    client = RawClient(
        target.host,
        target.port,
        path,
        headers=[(OBSERVE_HEADER, connection_id), *headers],
        subprotocols=subprotocols,
        extensions_header=extensions_header,
        lenient=lenient,
    )
    try:
        yield client, connection_id
    finally:
        client.abort()


# Views of what the client saw


async def open_and_close_view(target: Target, path: str) -> tuple[dict[str, Any], str]:
    """Connect to ``path``: the handshake response and, if it was a 101, how the connection then ended; and the tag."""
    async with connect(target, path) as (client, connection_id):
        view = await handshake_view(client)
        if view["status"] == 101:
            view["then"] = await closing_view(client)
    return view, connection_id


async def handshake_view(client: RawClient) -> dict[str, Any]:
    """Open ``client``: the response's status, headers and body, or how the handshake failed.

    A failure says whether it came at once or only after
    :data:`PROMPT_LIMIT` seconds (e.g. a server's own handshake timeout).
    """
    started = time.monotonic()
    try:
        handshake = await client.open()
    except TimeoutError:
        return {"status": None, "failure": "no response in time"}
    except OSError:  # ConnectionError included: the server ended TCP first
        prompt = time.monotonic() - started < PROMPT_LIMIT
        return {"status": None, "failure": "closed without a response", "at once": prompt}
    names = sorted({name for name, _ in handshake.headers if name not in VOLATILE_HEADERS})
    view: dict[str, Any] = {
        "status": handshake.status,
        "header_names": names,
        "headers": {name: value for name, value in handshake.headers if name in HEADERS_OF_INTEREST},
    }
    if handshake.status != 101:
        view["body"] = handshake.body.decode(errors="replace")[:BODY_LIMIT]
    return view


async def closing_view(client: RawClient, within: float = READ_WAIT) -> dict[str, Any]:
    """Read until the server ends the connection: all its messages, its close frame, and how TCP ended.

    ``messages`` lists every data frame of the connection, including those read
    before; keepalive pings and pongs are left out.  ``end`` is ``closed`` (the
    server ended TCP) or ``still open`` when ``within`` seconds passed first.
    Whether TCP ended with FIN or RST is not kept: it is a race, e.g. between a
    server's exit and the client's reply to its close frame, so it would differ
    from run to run.  A frame the client's protocol refused shows as
    ``protocol_error``.
    """
    end = "closed"
    try:
        await client.read_until_closed(within)
    except TimeoutError:
        end = "still open"
    except OSError:
        pass  # a reset, or a broken pipe while the client was still sending
    view = frames_view(client.received)
    view["end"] = end
    if client.protocol.parser_exc is not None and not isinstance(client.protocol.parser_exc, EOFError):
        view["protocol_error"] = str(client.protocol.parser_exc)
    return view


def frames_view(received: Received) -> dict[str, Any]:
    """Data frames as ``{"text": length}`` / ``{"binary": length}``, and the close frame's code and reason."""
    messages: list[dict[str, int]] = []
    close: dict[str, Any] | None = None
    for frame in received.frames:
        if frame.opcode is Opcode.TEXT:
            messages.append({"text": len(frame.data)})
        elif frame.opcode is Opcode.BINARY:
            messages.append({"binary": len(frame.data)})
        elif frame.opcode is Opcode.CONT:
            messages.append({"continuation": len(frame.data)})
        elif frame.opcode is Opcode.CLOSE:
            close = close_view(bytes(frame.data))
    return {"messages": messages, "close": close}


async def next_text(client: RawClient, within: float = READ_WAIT) -> str | None:
    """The next text message from the server, skipping pings; None if something else came, or nothing."""
    while True:
        try:
            frame = await client.next_frame(within)
        except (TimeoutError, OSError):
            return None
        if frame is None or frame.opcode not in (Opcode.PING, Opcode.PONG):
            break
    if frame is None or frame.opcode is not Opcode.TEXT or not frame.fin:
        return None
    return bytes(frame.data).decode()


async def open_ready(client: RawClient) -> dict[str, Any] | None:
    """Open ``client`` and read the app's ``ready``: None if both happened, else what happened instead."""
    handshake = await handshake_view(client)
    if handshake["status"] != 101:
        return {"handshake": handshake}
    if await next_text(client) != "ready":
        return {"handshake": handshake, "instead of ready": await closing_view(client)}
    return None


# The lenient client


async def lenient_open(client: RawClient, within: float) -> int | None:
    """Open a lenient ``client``: the response's status code, or None if none came within ``within`` seconds."""
    try:
        async with asyncio.timeout(within):
            handshake = await client.open()
    except (OSError, TimeoutError):
        return None
    return handshake.status


async def lenient_open_ready(client: RawClient) -> dict[str, Any] | None:
    """Open a lenient ``client`` and read the app's ``ready``: None if both happened, else what happened instead."""
    status = await lenient_open(client, READ_WAIT)
    if status != 101:
        return {"handshake": status}
    frame = await client.read_frame(READ_WAIT)
    if frame != (Opcode.TEXT, b"ready"):
        return {"handshake": status, "instead of ready": await lenient_closing_view(client)}
    return None


async def lenient_closing_view(client: RawClient, within: float = READ_WAIT, *, answer: bool = True) -> dict[str, Any]:
    """Read frames until the server's close frame, answer it with 1000 (if ``answer``), and wait for the end of TCP.

    Nothing is validated: a close code of 1005 or 5000, or a reason of 200
    bytes, is reported as it arrived.  ``end`` as in :func:`closing_view`.
    Pass ``answer=False`` when the client has sent its close frame already.
    """
    messages, close = await lenient_read_until_close(client, within)
    if answer and close is not None and not client.received.eof:
        await client.close(1000)
    ended = client.received.eof or await client.read_to_end(within)
    return {"messages": messages, "close": close, "end": "closed" if ended else "still open"}


async def lenient_read_until_close(
    client: RawClient, within: float = READ_WAIT
) -> tuple[list[dict[str, int]], dict[str, Any] | None]:
    """Read frames until the server's close frame, the end of TCP, or ``within`` seconds without a frame.

    Returns the data frames as ``{"text": length}`` (or binary, continuation)
    and the close frame's code and reason (None if none came).  Answers nothing.
    """
    messages: list[dict[str, int]] = []
    close: dict[str, Any] | None = None
    while close is None and (frame := await client.read_frame(within)) is not None:
        opcode, payload = frame
        if opcode == Opcode.CLOSE:
            close = close_view(payload)
        elif opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
            messages.append({Opcode(opcode).name.lower(): len(payload)})
    return messages, close


async def read_close_leniently(target: Target, path: str) -> tuple[dict[str, Any], str]:
    """Open ``path`` with a lenient client, read until the server has closed; the view and the tag."""
    async with connect(target, path, lenient=True) as (client, connection_id):
        status = await lenient_open(client, READ_WAIT)
        if status != 101:
            return {"status": status}, connection_id
        return {"status": status, **await lenient_closing_view(client)}, connection_id


def only(mapping: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    """``mapping`` restricted to ``keys``, in that order, for compact transcripts."""
    return {key: mapping[key] for key in keys if key in mapping}


# The server process


async def still_serves(target: Target) -> bool:
    """Whether the server answers ``GET /`` on a new connection after what a probe did to it.

    The server is first given :data:`SETTLE_WAIT` to exit, if it is going to:
    a server that crashes may go on answering for a moment while the crash
    unwinds (hypercorn's trio worker after pgjones/hypercorn#225's 400), and
    the next check would then meet a dying server.  Where it does not answer, its process is given
    :data:`EXIT_WAIT` to exit.  Either way the runner, which looks at the process
    after each check, names this check as the one during which the server died.
    """

    def answers() -> bool:
        try:
            return target.server.get("/").status == 200
        except (OSError, http.client.HTTPException):
            return False

    process = target.server.process
    if process is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(process.wait, SETTLE_WAIT)
        if process.poll() is not None:
            return False
    serves = await asyncio.to_thread(answers)
    if not serves and process is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(process.wait, EXIT_WAIT)
    return serves
