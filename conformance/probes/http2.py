"""Probes of WebSockets over HTTP/2 (RFC 8441) where they have no HTTP/1.1 twin.

A browser that loaded its page over HTTP/2 opens the page's WebSockets as
extended CONNECT streams on the same connection, whenever the server's SETTINGS
advertise them.  What happens on a stream has no HTTP/1.1 twin: several
WebSockets and requests share one connection, a stream ends with END_STREAM or
RST_STREAM instead of a TCP FIN or RST, flow control sits between the app and
the client, and the CONNECT itself can name another protocol or none.

Each probe runs, as a browser would, over TLS with ALPN ``h2`` against a server
with HTTP/2 turned on (``Check.h2``), through :mod:`conformance.h2client`.
``h2-offer`` records what the server offers; where it does not advertise
extended CONNECT, every other probe records only ``{"offered": false}``: a
browser would open its WebSockets over HTTP/1.1 there, which every other check
covers.  The reference speaks no HTTP/2, so its transcripts are exactly those.

The close probes follow Chromium 156, whose net log shows its close frame
going out with END_STREAM on the same DATA frame (docs/http2.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import h2.errors
import h2.exceptions
from websockets.exceptions import InvalidStatus

from ..checks import OBSERVE_HEADER, Target, Transcript, probe
from ..h2client import H2Client, H2WebSocket, HandshakeRefused
from ..views import app_report
from ._support import PROMPT_LIMIT, READ_WAIT

__all__: list[str] = []  # probes register themselves; nothing to import

COVERS = "contract §11; RFC 8441"
PUSHED = 2000  # messages /push sends before its close, for the close with data still queued
FLOOD = 400  # messages of FLOOD_SIZE bytes /push sends to a client that reads nothing
FLOOD_SIZE = 10_000  # bytes: FLOOD of them are 4 MB, sixty times the stream's initial window
NOT_OFFERED: Transcript = {"offered": False}


async def _open(target: Target, *, validate: bool = True) -> H2Client | None:
    """A browser's HTTP/2 connection to the server: None where ALPN does not choose h2 or there is no advertisement.

    A server that refuses the TCP connection is gone, not silent: that raises.
    """
    assert target.server.tls is not None  # Check.h2: the runner started the server on TLS
    try:
        client = await H2Client.open(target.host, target.port, tls=target.server.tls.client(), validate=validate)
    except ConnectionRefusedError:
        raise
    except ConnectionError:  # ALPN chose another protocol, or none
        return None
    if client.advertises_websockets:
        return client
    await client.close()
    return None


@contextlib.asynccontextmanager
async def _offered(target: Target, *, validate: bool = True) -> AsyncIterator[H2Client | None]:
    """:func:`_open`, closed on leaving the block."""
    client = await _open(target, validate=validate)
    try:
        yield client
    finally:
        if client is not None:
            await client.close()


async def _tagged(
    client: H2Client, target: Target, path: str, protocol: str | None = "websocket"
) -> tuple[H2WebSocket, str]:
    """An extended CONNECT to ``path``, tagged for the observer; the WebSocket and its tag."""
    connection_id = target.connection_id()
    ws = await client.websocket(path, protocol=protocol, headers=[(OBSERVE_HEADER, connection_id)])
    return ws, connection_id


ProbeBody = Callable[[Target, H2Client], Awaitable[Transcript]]


def _h2_probe(name: str, summary: str, covers: str, *, validate: bool = True) -> Callable[[ProbeBody], ProbeBody]:
    """Register a probe over TLS with ALPN h2 (``Check.h2``) whose body is given an HTTP/2 connection where the
    server advertises WebSockets; elsewhere the probe records NOT_OFFERED.

    A refused extended CONNECT is recorded as the transcript, not raised.  ``validate=False``: h2 sends
    whatever headers the probe gives it.
    """

    def decorate(body: ProbeBody) -> ProbeBody:
        @functools.wraps(body)
        async def check(target: Target) -> Transcript:
            async with _offered(target, validate=validate) as client:
                if client is None:
                    return NOT_OFFERED
                try:
                    return await body(target, client)
                except HandshakeRefused as refused:
                    return {"CONNECT refused": _refusal(refused)}
                except InvalidStatus as refused:
                    return {"CONNECT refused": {"status": refused.response.status_code, "reset": None}}

        probe(name, summary, covers, h2=True)(check)
        return body

    return decorate


async def _count_until_closed(ws: H2WebSocket) -> int:
    """Read messages until the WebSocket ends or goes quiet; how many came."""
    received = 0
    with contextlib.suppress(ConnectionError, TimeoutError):
        while True:
            await ws.recv()
            received += 1
    return received


async def _serves(client: H2Client) -> int | str:
    """What a GET / on ``client``'s connection gets now: the status, or how the connection failed.

    A loopback GET takes milliseconds, so one that has no answer within PROMPT_LIMIT has none coming.
    """
    try:
        return (await asyncio.wait_for(client.get("/"), PROMPT_LIMIT)).status
    except (ConnectionError, TimeoutError, h2.exceptions.ProtocolError) as exc:
        return f"no answer ({type(exc).__name__})"


async def _new_connection_serves(target: Target) -> int | str:
    """What a GET / on a new HTTP/2 connection gets: the status, or that the server is gone."""
    try:
        async with _offered(target) as client:
            return await _serves(client) if client is not None else "not offered"
    except OSError as exc:
        return f"no connection ({type(exc).__name__})"


def _refusal(refused: HandshakeRefused) -> dict[str, Any]:
    response = refused.response
    return {"status": response.status or None, "reset": _error_name(response.reset)}


def _error_name(code: int | None) -> str | None:
    if code is None:
        return None
    try:
        return h2.errors.ErrorCodes(code).name
    except ValueError:
        return str(code)


async def _ending(ws: H2WebSocket) -> str:
    """How the server ended the stream after the close: END_STREAM, RST_STREAM, or not within PROMPT_LIMIT."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ws.wait_closed(), PROMPT_LIMIT)
    stream = ws.client.stream(ws.stream_id)
    if stream.reset is not None:
        return f"RST_STREAM {_error_name(stream.reset)}"
    return "END_STREAM" if ws.stream_ended else "still open"


@probe(
    "h2-offer",
    "Over TLS, as a browser connects: does ALPN choose h2, and do the server's SETTINGS advertise extended "
    "CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL = 1), which makes browsers open their WebSockets over HTTP/2?",
    COVERS + " §3",
    h2=True,
)
async def h2_offer(target: Target) -> Transcript:
    """A server that advertises and then does not serve a WebSocket breaks every browser; the scenarios
    over h2 (python -m conformance --transports) show whether it serves them."""
    assert target.server.tls is not None
    try:
        async with await H2Client.open(target.host, target.port, tls=target.server.tls.client()) as client:
            return {"alpn": "h2", "advertises": client.advertises_websockets}
    except ConnectionRefusedError:
        raise
    except ConnectionError:  # ALPN chose another protocol, or none
        return {"alpn": None, "advertises": False}


@_h2_probe(
    "h2-connect-other-protocol",
    "An extended CONNECT whose :protocol is not websocket ('foo'): an error, as RFC 8441 §4 asks, or a WebSocket?",
    COVERS + " §4",
)
async def h2_connect_other_protocol(target: Target, client: H2Client) -> Transcript:
    """pgjones/hypercorn#277 (open) and davidbrochart/anycorn#84 (open): every CONNECT becomes a WebSocket."""
    try:
        ws, _ = await _tagged(client, target, "/echo", protocol="foo")
    except HandshakeRefused as refused:
        return {"answer": _refusal(refused)}
    await ws.send("foo")
    echoed = await ws.recv()
    await ws.close()
    return {"answer": {"status": 200, "a WebSocket that echoes": echoed == "foo"}}


@_h2_probe(
    "h2-connect-no-protocol",
    "A CONNECT with :scheme and :path and no :protocol, which RFC 9113 §8.5 calls malformed: what comes back?",
    COVERS + "; RFC 9113 §8.5",
    validate=False,
)
async def h2_connect_no_protocol(target: Target, client: H2Client) -> Transcript:
    """The stream should be refused (RST_STREAM PROTOCOL_ERROR) or the connection ended (GOAWAY)."""
    try:
        ws, _ = await _tagged(client, target, "/echo", protocol=None)
    except HandshakeRefused as refused:
        return {"answer": _refusal(refused)}
    except ConnectionError:
        return {"answer": {"GOAWAY": _error_name(client.goaway)}}
    await ws.close()
    return {"answer": {"status": 200}}


@_h2_probe(
    "h2-multiplexed",
    "Two WebSockets and a plain GET on one HTTP/2 connection, as a browser's page makes them: each answered on its "
    "own stream?",
    COVERS + " §5",
)
async def h2_multiplexed(target: Target, client: H2Client) -> Transcript:
    (first, _), (second, _) = await _tagged(client, target, "/echo"), await _tagged(client, target, "/echo")
    await first.send("one")
    await second.send(b"two")
    page = await client.get("/")
    echoes = [await first.recv(), await second.recv()]
    await first.close()
    await second.close()
    return {"echoes": [repr(echo) for echo in echoes], "GET /": page.status}


@_h2_probe(
    "h2-reset-mid-message",
    "The client resets its stream (RST_STREAM CANCEL, a tab going away) halfway through a frame: what does the app "
    "see, and does the connection serve on?",
    COVERS + " §5; RFC 9113 §8.1",
)
async def h2_reset_mid_message(target: Target, client: H2Client) -> Transcript:
    ws, connection_id = await _tagged(client, target, "/echo")
    await ws.send_raw(bytes([0x81, 0x80 | 100]) + bytes(4) + b"x" * 50)  # 50 of a masked frame's 100 bytes
    client.reset(ws.stream_id)
    page = await client.get("/")
    return {"app": await app_report(target, connection_id), "then GET /": page.status}


@_h2_probe(
    "h2-close-with-data-queued",
    f"The app sends {PUSHED} messages and closes at once, with data still queued: does the client get every "
    "message, then the close frame, then END_STREAM?",
    COVERS + " §5",
)
async def h2_close_with_data_queued(target: Target, client: H2Client) -> Transcript:
    """pgjones/hypercorn#327 (open): Chrome reports 1006 over HTTP/2 only, when data is queued at the close."""
    ws, connection_id = await _tagged(client, target, f"/push?count={PUSHED}")
    await ws.send("go")
    received = await _count_until_closed(ws)
    close = ws.close_received
    return {
        "received": received,
        "close": close.code if close is not None else None,
        "stream": await _ending(ws),
        "then GET / on the connection": await _serves(client),
        "then GET / on a new one": await _new_connection_serves(target),
        "app": await app_report(target, connection_id),
    }


@_h2_probe(
    "h2-client-close",
    "The client closes with 1000, END_STREAM on the close frame's DATA frame as Chromium sends it: the server's "
    "close reply, how it ends its half of the stream, and the app's disconnect.",
    COVERS + " §5; RFC 6455 §7.1.1",
)
async def h2_client_close(target: Target, client: H2Client) -> Transcript:
    ws, connection_id = await _tagged(client, target, "/echo")
    reply = await ws.close(1000, end_stream=True)
    return {
        "close reply": reply.code if reply is not None else None,
        "stream": await _ending(ws),
        "then GET / on the connection": await _serves(client),
        "app": await app_report(target, connection_id),
    }


@_h2_probe(
    "h2-end-stream-after-close",
    "As h2-client-close, but END_STREAM comes as an empty DATA frame of its own after the close frame, which "
    "RFC 9113 allows: does the server still serve?",
    COVERS + " §5; RFC 9113 §6.1",
)
async def h2_end_stream_after_close(target: Target, client: H2Client) -> Transcript:
    ws, _ = await _tagged(client, target, "/echo")
    reply = await ws.close(1000)
    with contextlib.suppress(Exception):
        client.end_stream(ws.stream_id)
    await asyncio.sleep(PROMPT_LIMIT / 4)  # time for the server to read it
    on_the_connection = await _serves(client)
    return {
        "close reply": reply.code if reply is not None else None,
        "then GET / on the connection": on_the_connection,
        "then GET / on a new one": await _new_connection_serves(target),
    }


@_h2_probe(
    "h2-deflate",
    "permessage-deflate over HTTP/2: is it negotiated on the CONNECT, and does a compressed message (RSV1 set) come "
    "back whole?",
    COVERS + "; RFC 7692",
)
async def h2_deflate(target: Target, client: H2Client) -> Transcript:
    ws = await client.websockets_client("/echo", compression="deflate")
    text = "compressible " * 200
    await ws.send(text)
    echoed = await asyncio.wait_for(ws.recv(), READ_WAIT)
    await ws.close()
    assert ws.response is not None
    return {
        "extensions": ws.response.headers.get("sec-websocket-extensions"),
        "echoed whole": echoed == text,
    }


@_h2_probe(
    "h2-reader-stops",
    f"The client stops reading (gives no flow-control window back) while the app sends {FLOOD} messages of "
    f"{FLOOD_SIZE} bytes: does the app's send() wait for it, as over TCP, or does the server buffer everything?",
    COVERS + " §5; RFC 9113 §5.2",
)
async def h2_reader_stops(target: Target, client: H2Client) -> Transcript:
    """The app reports once it has sent everything; whether that report exists while the client still reads
    nothing says whether backpressure reached the app."""
    ws, connection_id = await _tagged(client, target, f"/push?count={FLOOD}&size={FLOOD_SIZE}")
    ws.pause_reading()
    await ws.send("go")
    await asyncio.sleep(PROMPT_LIMIT)
    early = await target.observed(f"{connection_id}/probe", within=0)
    ws.resume_reading()
    received = await _count_until_closed(ws)
    return {
        "app done while the client read nothing": "missing" not in early,
        "received": received,
        "app": await app_report(target, connection_id),
    }
