"""Probes of an app that breaks the order or the shape of the ASGI send events.

The ASGI spec (asgiref ``specs/www.rst``, WebSocket, version 2.5) says what an
app may send and when: the first event is ``websocket.accept``,
``websocket.close`` or ``websocket.http.response.start``; a ``websocket.send``
carries exactly one of ``text`` and ``bytes``.  It does not say what a server
does when an app breaks those rules, nor what ``send()`` does after the app's
own ``websocket.close``.  Servers raise (each its own exception), send
something anyway, or do nothing at all; these probes show which, on both sides:
the client's wire and the app's ``send()``.

Each probe app path reports every step's outcome (``returned``, ``raised`` with
the exception's type name, or ``timed out``), so one failed step does not hide
the next.
"""

from __future__ import annotations

from ..checks import Target, Transcript, probe
from ..views import app_report
from ._support import READ_WAIT, connect, lenient_open, lenient_read_until_close, only, open_and_close_view

__all__: list[str] = []  # probes register themselves; nothing to import

AFTER_CLOSE_WAIT = 1.0  # seconds the client listens for frames after the close frame, the app having reported


async def _steps(target: Target, path: str) -> Transcript:
    """Connect to ``path`` and read until the end: the client's view, and the app's report of each step.

    The client's view leaves out the 101's headers: they are the scope of other probes.
    """
    client, connection_id = await open_and_close_view(target, path)
    return {
        "client": only(client, "status", "failure", "at once", "body", "then"),
        "app": await app_report(target, connection_id),
    }


@probe(
    "probe-send-after-close",
    "The app closes with 1000, then at once sends a text message: does send() raise (which type), return "
    "silently, or block, and does any frame follow the close frame?",
    "ASGI WebSocket: send event after the app's own websocket.close (unspecified)",
)
async def send_after_close(target: Target) -> Transcript:
    """Motivated by uvicorn 0.54.0 ``websockets_sansio_impl.py`` ``WebSocketsSansIOProtocol.send``
    (RuntimeError "Unexpected ASGI message 'websocket.send', after sending 'websocket.close'") against
    hypercorn 0.18.0 ``protocol/ws_stream.py`` ``WSStream.app_send`` (UnexpectedMessageError in state
    CLOSED), and by fastapi/fastapi#2370 (open), where apps hit the RuntimeError when a broadcast raced
    a close.

    The client does not answer the close frame until the app has reported, so
    the app's send meets a connection that only the app has closed: no race
    with the client's reply.
    """
    async with connect(target, "/send-after-close", lenient=True) as (client, connection_id):
        status = await lenient_open(client, READ_WAIT)
        if status != 101:
            return {"client": {"handshake": status}, "app": await app_report(target, connection_id)}
        messages, close = await lenient_read_until_close(client)
        app = await app_report(target, connection_id)  # written after the send: whatever it sent is on its way
        after_close, _ = await lenient_read_until_close(client, AFTER_CLOSE_WAIT)
        if close is not None:
            await client.close(1000)
        ended = client.received.eof or await client.read_to_end(READ_WAIT)
    return {
        "client": {
            "messages": messages,
            "close": close,
            "frames after the close frame": after_close,
            "end": "closed" if ended else "still open",
        },
        "app": app,
    }


@probe(
    "probe-send-before-accept",
    "The app sends a text message before accept, then accepts, sends, and closes: what send() does, "
    "and whether the client gets the handshake and which frames.",
    "ASGI WebSocket: the first message must be accept, close or http.response.start",
)
async def send_before_accept(target: Target) -> Transcript:
    """Motivated by daphne 4.2.3 ``ws_protocol.py`` ``WebSocketProtocol.handle_reply`` (ValueError "Socket
    has not been accepted"), while its ``serverSend`` accepts implicitly, and by uvicorn 0.54.0
    ``websockets_sansio_impl.py`` ``WebSocketsSansIOProtocol.send`` (RuntimeError "Expected ASGI message
    'websocket.accept', 'websocket.close' or 'websocket.http.response.start'")."""
    return await _steps(target, "/send-before-accept")


@probe(
    "probe-accept-twice",
    "The app sends websocket.accept a second time on an open connection, then a text message and a close.",
    "ASGI WebSocket: accept event (once; a second one is unspecified)",
)
async def accept_twice(target: Target) -> Transcript:
    """Motivated by uvicorn 0.54.0 ``websockets_sansio_impl.py`` ``WebSocketsSansIOProtocol.send`` (a second
    accept falls to "Expected ASGI message 'websocket.send' or 'websocket.close'") and hypercorn 0.18.0
    ``protocol/ws_stream.py`` ``WSStream.app_send`` (UnexpectedMessageError); daphne 4.2.3
    ``ws_protocol.py`` ``WebSocketProtocol.serverAccept`` fires a deferred it has already deleted."""
    return await _steps(target, "/accept-twice")


@probe(
    "probe-invalid-send-shapes",
    "The app sends websocket.send with both text and bytes, with neither key, and with both None: "
    "which frame each becomes and what send() does.",
    "ASGI WebSocket: send event (exactly one of text and bytes is not None)",
)
async def invalid_send_shapes(target: Target) -> Transcript:
    """Motivated by hypercorn 0.18.0 ``protocol/ws_stream.py`` ``WSStream.app_send`` (bytes win; no key
    raises KeyError), daphne 4.2.3 ``ws_protocol.py`` ``WebSocketProtocol.handle_reply`` (ValueError on
    both, nothing sent on neither), uvicorn 0.54.0 ``websockets_sansio_impl.py``
    ``WebSocketsSansIOProtocol.send`` (bytes win, neither sends nothing), and by
    emmett-framework/granian#19 (closed), where granian sent an empty binary frame for
    ``{"bytes": None, "text": ...}``."""
    return await _steps(target, "/invalid-send-shapes")
