"""Probes of the opening handshake: the scope, refusals, app failures around accept, and what accept carries.

Refusing before accept is where servers differ most visibly: the ASGI spec asks
for an HTTP 403 on ``websocket.close`` before accept, lets a server offer the
``websocket.http.response`` extension for any other response, and leaves the
response to an app that raises or returns early to the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from websockets.frames import Frame, Opcode

from ..checks import OBSERVE_HEADER, Target, Transcript, probe
from ..views import app_report, app_view, received_after_connect
from ._support import (
    PROMPT_LIMIT,
    READ_WAIT,
    connect,
    handshake_view,
    lenient_closing_view,
    lenient_open,
    next_text,
    only,
    open_and_close_view,
    read_close_leniently,
    still_serves,
)

__all__: list[str] = []  # probes register themselves; nothing to import


@probe(
    "probe-scope",
    "The websocket scope: which keys the server sets, the type of each, and the values that do not vary.",
    "ASGI WebSocket: connection scope",
)
async def scope(target: Target) -> Transcript:
    async with connect(target, "/scope?probe=1", subprotocols=["a", "b"]) as (client, _):
        handshake = await handshake_view(client)
        if handshake["status"] != 101:
            return {"handshake": handshake}
        text = await next_text(client)
    if text is None:
        return {"handshake": handshake, "app saw": "no description received"}
    described: dict[str, Any] = json.loads(text)
    return {"app saw": described}  # the app's side: the scope and connect event, as the probe app described them


async def _refusal(target: Target, path: str) -> Transcript:
    """Connect to ``path``: the handshake response, and if the server accepted anyway, how it then ended."""
    view, connection_id = await open_and_close_view(target, path)
    return {"client": view, "app": await app_view(target, connection_id)}


@probe(
    "probe-close-before-accept",
    "The app sends websocket.close (code 4003) before accept: what the client gets instead of 101.",
    "ASGI WebSocket: close, sent before accept (spec: HTTP 403)",
)
async def close_before_accept(target: Target) -> Transcript:
    return await _refusal(target, "/close-before-accept")


REFUSAL_PROMPT = 1.0  # seconds: a refusal within this came at the close; the app runs on for 2 s or more


async def _after_refusal(target: Target, then: str) -> Transcript:
    """Refuse with websocket.close, then ``then`` (see the probe app's ``/refuse-then``): the response, the app's side.

    How long the response took is kept only as "within 1 s": at the close, or
    only once the app returned (2 s or more later).
    """
    async with connect(target, f"/refuse-then?then={then}") as (client, connection_id):
        started = time.monotonic()
        view = await handshake_view(client)
        prompt = time.monotonic() - started < REFUSAL_PROMPT
    app = await app_view(target, connection_id)
    return {
        "client": {"status": view["status"], f"response within {REFUSAL_PROMPT:g} s": prompt},
        "app": {"received": received_after_connect(app), **await app_report(target, connection_id)},
    }


@probe(
    "probe-after-refusal-receive",
    "The app sends websocket.close before accept, then calls receive() once (bounded by 3 s): what it gets.",
    "ASGI WebSocket: close before accept (spec: HTTP 403); receive after it (not stated)",
)
async def after_refusal_receive(target: Target) -> Transcript:
    return await _after_refusal(target, "receive")


@probe(
    "probe-after-refusal-return-late",
    "The app sends websocket.close before accept and returns 2 s later: does the 403 go out at once?",
    "ASGI WebSocket: close before accept (spec: HTTP 403)",
    waits=True,
)
async def after_refusal_return_late(target: Target) -> Transcript:
    return await _after_refusal(target, "return-late")


@probe(
    "probe-denial-response",
    "The app refuses with websocket.http.response (400, two body chunks): advertised, and what arrives.",
    "ASGI WebSocket: websocket.http.response extension",
)
async def denial_response(target: Target) -> Transcript:
    view, connection_id = await open_and_close_view(target, "/deny")
    return {
        "client": view,
        "app": {"probe": await app_report(target, connection_id), **await app_view(target, connection_id)},
    }


@probe(
    "probe-raise-before-accept",
    "The app raises before accept: what the client gets.",
    "ASGI: application exceptions; WebSocket handshake",
)
async def raise_before_accept(target: Target) -> Transcript:
    return await _refusal(target, "/raise-before-accept")


@probe(
    "probe-return-before-accept",
    "The app returns before accept without sending anything: what the client gets.",
    "ASGI WebSocket: handshake",
)
async def return_before_accept(target: Target) -> Transcript:
    return await _refusal(target, "/return-before-accept")


@probe(
    "probe-raise-after-accept",
    "The app raises on an open connection: the close code the client gets, or none.",
    "ASGI: application exceptions; WebSocket close",
)
async def raise_after_accept(target: Target) -> Transcript:
    return await _refusal(target, "/raise-after-accept")


@probe(
    "probe-return-after-accept",
    "The app returns after accept without sending websocket.close: the close code the client gets, or none.",
    "ASGI WebSocket: close",
)
async def return_after_accept(target: Target) -> Transcript:
    return await _refusal(target, "/return-after-accept")


@probe(
    "probe-subprotocol",
    "The client offers subprotocols a and b, the app accepts b: what the scope held and the response says.",
    "ASGI WebSocket: scope subprotocols, accept subprotocol",
)
async def subprotocol(target: Target) -> Transcript:
    async with connect(target, "/subprotocol", subprotocols=["a", "b"]) as (client, _):
        handshake = await handshake_view(client)
        text = await next_text(client) if handshake["status"] == 101 else None
    return {
        "status": handshake["status"],
        "response": only(handshake.get("headers", {}), "sec-websocket-protocol"),
        "app saw": json.loads(text) if text is not None else None,
    }


@probe(
    "probe-accept-headers",
    "The app accepts with an extra header x-probe: 1: whether the 101 response carries it.",
    "ASGI WebSocket: accept headers",
)
async def accept_headers(target: Target) -> Transcript:
    async with connect(target, "/accept-headers") as (client, _):
        handshake = await handshake_view(client)
    return {"status": handshake["status"], "x-probe": handshake.get("headers", {}).get("x-probe")}


@probe(
    "probe-accept-set-cookie",
    "The app accepts with two set-cookie headers: whether the 101 carries both, each on its own line.",
    "ASGI WebSocket: accept headers; RFC 6265 §3 (set-cookie lines are never folded)",
)
async def accept_set_cookie(target: Target) -> Transcript:
    """A session cookie set at the handshake is the common case for accept headers; two of them show a
    server that joins repeated response headers, which breaks cookies (their dates hold commas)."""
    async with connect(target, "/accept-cookies") as (client, connection_id):
        view = await handshake_view(client)
        lines = client.handshake.headers if client.handshake is not None else ()
    return {
        "client": {"status": view["status"], "set-cookie": [value for name, value in lines if name == "set-cookie"]},
        "app": await app_report(target, connection_id),
    }


@probe(
    "probe-permessage-deflate",
    "The client offers permessage-deflate with client_max_window_bits: whether the server accepts it.",
    "RFC 7692; ASGI WebSocket: extensions are the server's",
)
async def permessage_deflate(target: Target) -> Transcript:
    offer = "permessage-deflate; client_max_window_bits"
    async with connect(target, "/hold", extensions_header=offer) as (client, _):
        handshake = await handshake_view(client)
    return {
        "status": handshake["status"],
        "sec-websocket-extensions": handshake.get("headers", {}).get("sec-websocket-extensions"),
    }


SLOWLORIS_WAIT = 8.0  # seconds: past hypercorn's 5 s keep-alive timeout, with room for a loaded machine
SLOWLORIS_TRICKLE = 0.5  # seconds between two header lines


@probe(
    "probe-slowloris",
    "A handshake whose header lines trickle in and never end: whether the server ends it within 8 s, and how.",
    "contract §7 slowloris (the server's job: the app never sees an unfinished handshake)",
    racy=(
        "The server's own handshake timeout is timing. hypercorn's (5 s, counted from the TCP accept) is "
        "judged against an 8 s window, 3 s of margin."
    ),
    waits=True,
)
async def slowloris(target: Target) -> Transcript:
    reader, writer = await asyncio.open_connection(target.host, target.port)
    try:
        writer.write(f"GET /hold HTTP/1.1\r\nHost: {target.host}\r\nUpgrade: websocket\r\n".encode())
        received = b""
        ended = False
        deadline = asyncio.get_running_loop().time() + SLOWLORIS_WAIT
        while not ended and asyncio.get_running_loop().time() < deadline:
            with contextlib.suppress(ConnectionError):
                writer.write(b"X-Slow: 1\r\n")  # one more header line, never the blank line that ends them
                await writer.drain()
            try:
                chunk = await asyncio.wait_for(reader.read(4096), SLOWLORIS_TRICKLE)
            except TimeoutError:
                continue
            except ConnectionError:
                ended = True
                continue
            received += chunk
            ended = chunk == b""
    finally:
        writer.close()
    status_line = received.split(b"\r\n", 1)[0].decode("latin-1") if received else None
    return {"ended by the server within 8 s": ended, "response": status_line}


async def _subprotocol_handshake(target: Target, path: str, offered: list[str], extra_lines: list[str]) -> Transcript:
    """Offer ``offered`` (one header line) plus ``extra_lines`` (one line each): the response, and what the app saw.

    The client leaves right after the handshake; ``a websockets client`` says
    whether the ``websockets`` library, which checks the response against its
    offer, would have accepted it.
    """
    lines = [("Sec-WebSocket-Protocol", line) for line in extra_lines]
    async with connect(target, path, subprotocols=offered, headers=lines) as (client, connection_id):
        handshake = await handshake_view(client)
        refused = client.protocol.handshake_exc
    if handshake["status"] is None:
        client_side: dict[str, Any] = {"handshake": handshake}
    else:
        client_side = {
            "status": handshake["status"],
            "response": only(handshake["headers"], "sec-websocket-protocol"),
            "a websockets client": "accepts" if refused is None else f"refuses: {refused}",
        }
    return {"client": client_side, "app": await app_report(target, connection_id)}


@probe(
    "probe-subprotocol-not-offered",
    "The client offers subprotocol a, the app accepts with c: does the server send c, refuse, or raise in the app?",
    "RFC 6455 §4.2.2 (the server picks one of the client's); ASGI WebSocket: accept subprotocol",
)
async def subprotocol_not_offered(target: Target) -> Transcript:
    """Motivated by hypercorn 0.18.0 ``protocol/ws_stream.py`` ``Handshake.accept`` (raises "Invalid
    Subprotocol"), against uvicorn 0.54.0 ``websockets_sansio_impl.py`` ``WebSocketsSansIOProtocol.send``,
    which puts the app's choice in the response unchecked, so that the client fails the connection."""
    return await _subprotocol_handshake(target, "/offered-subprotocols?choose=c", ["a"], [])


@probe(
    "probe-subprotocol-two-lines",
    "The client sends two Sec-WebSocket-Protocol lines, 'c' then 'a, b'; the app accepts c: the scope's list, "
    "and the response.",
    "RFC 6455 §11.3.4 (several lines are one list); ASGI WebSocket: scope subprotocols",
)
async def subprotocol_two_lines(target: Target) -> Transcript:
    """Motivated by hypercorn 0.18.0 ``protocol/ws_stream.py`` ``Handshake.__init__``, which keeps only the
    last ``sec-websocket-protocol`` line, as python-hyper/wsproto#175 (closed) reported for wsproto; uvicorn
    0.55.0 ``websockets_sansio_impl.py`` ``WebSocketsSansIOProtocol.handle_connect`` joins every line."""
    return await _subprotocol_handshake(target, "/offered-subprotocols?choose=c", ["c"], ["a, b"])


# A path with an encoded UTF-8 character, slash, space and percent sign, and a query with the same.
ENCODED_PATH = "/path/caf%C3%A9%2Fa%20b%25?q=caf%C3%A9%2F&r=a+b"


@probe(
    "probe-encoded-path",
    "A request to /path/caf%C3%A9%2Fa%20b%25?q=caf%C3%A9%2F&r=a+b: the scope's path, raw_path and query_string.",
    "ASGI WebSocket: scope path (decoded), raw_path (as received), query_string",
)
async def encoded_path(target: Target) -> Transcript:
    """Motivated by the decoding in uvicorn 0.54.0 ``websockets_sansio_impl.py``
    ``WebSocketsSansIOProtocol.handle_connect``, hypercorn 0.18.0 ``protocol/ws_stream.py``
    ``WSStream.handle`` and daphne 4.2.3 ``ws_protocol.py`` ``WebSocketProtocol.onConnect`` (each
    ``unquote`` a path of its own making), and by django/asgiref#474 (merged), which had to spell out that
    a WebSocket ``raw_path`` excludes the query string.  An app that routes on rooms in the path depends
    on this.  The request target goes out byte for byte (a bare socket, no URL library)."""
    client, connection_id = await read_close_leniently(target, ENCODED_PATH)
    return {"client": client, "app": await app_report(target, connection_id)}


NEVER_ACCEPT_WAIT = 15.0  # seconds the client waits for a response: past daphne's 5 s and legacy websockets' 10 s


@probe(
    "probe-accept-never",
    "The app receives websocket.connect and never answers: does the server end the handshake within 2 s, "
    "within 15 s, or not at all, and what does the app's next receive() give?",
    "ASGI WebSocket: connect event (no time limit on the app's answer); the app's rule: accept within 5 s",
    racy=(
        "A server's handshake timeout is timing. Only one of three windows is kept (within 2 s, within 15 s, "
        "not within 15 s), and the timeouts seen (daphne 5 s, websockets' 10 s) are far from their edges."
    ),
    waits=True,
)
async def accept_never(target: Target) -> Transcript:
    """Motivated by daphne 4.2.3 ``cli.py`` (``--websocket_connect_timeout``, default 5 s, given to autobahn
    as ``openHandshakeTimeout``) and websockets 17.4 ``legacy/server.py`` ``WebSocketServerProtocol.handler``
    (``open_timeout``, 10 s, under uvicorn's legacy implementation); uvicorn's default implementation and
    hypercorn 0.18.0 wait for the app however long it takes.  The windows are coarse on purpose: the two
    known limits fall well inside "later than 2 s, within 15 s"."""
    async with connect(target, "/never-accept", lenient=True) as (client, connection_id):
        started = time.monotonic()
        status = await lenient_open(client, NEVER_ACCEPT_WAIT)
        waited = time.monotonic() - started
        if status is not None:
            client_side: dict[str, Any] = {"status": status}
        elif not client.received.eof:
            client_side = {"status": None, "ended by the server": f"not within {NEVER_ACCEPT_WAIT:g} s"}
        elif waited < PROMPT_LIMIT:
            client_side = {"status": None, "ended by the server": f"within {PROMPT_LIMIT:g} s"}
        else:
            later = f"later than {PROMPT_LIMIT:g} s, within {NEVER_ACCEPT_WAIT:g} s"
            client_side = {"status": None, "ended by the server": later}
    app = await app_view(target, connection_id)
    return {
        "client": client_side,
        "app": {"received": received_after_connect(app), **await app_report(target, connection_id)},
    }


LATE_ACCEPTS = (6.0, 12.0)  # seconds: past daphne's 5 s handshake timeout; past websockets' legacy 10 s
LATE_ACCEPT_MARGIN = 3.0  # seconds the client waits for a response after the app's accept is due


@probe(
    "probe-late-accept",
    "The app accepts 6 s, and on another connection 12 s, after websocket.connect: does the client get a "
    "101, what does the late accept() do, and what does the next receive() give?",
    "ASGI WebSocket: connect event (no time limit on the app's answer); the app's rule: accept within 5 s",
    racy=(
        "A server's handshake timeout races the app's accept. Only which side of it each accept falls is kept, "
        "and the timeouts seen (daphne 5 s, websockets' legacy 10 s) are 1 s or more from 6 s and 12 s."
    ),
    waits=True,
)
async def late_accept(target: Target) -> Transcript:
    """Motivated by daphne 4.2.3 ``cli.py`` (``--websocket_connect_timeout``, default 5 s) and websockets
    17.4 ``legacy/server.py`` ``WebSocketServerProtocol.handler`` (``open_timeout``, 10 s, under
    uvicorn's legacy implementation), which probe-accept-never shows ending a handshake; this probe shows
    what a slow app is then told.  The two connections run at once, so the probe takes 12 s, not 18 s."""
    views = await asyncio.gather(*(_late_accept_view(target, after) for after in LATE_ACCEPTS))
    return {f"accept after {after:g} s": view for after, view in zip(LATE_ACCEPTS, views, strict=True)}


async def _late_accept_view(target: Target, after: float) -> Transcript:
    """One connection whose app accepts ``after`` seconds late: the response and the app's side.

    After a 101 the client closes with 1000 at once and reads the reply.
    """
    async with connect(target, f"/late-accept?after={after:g}", lenient=True) as (client, connection_id):
        status = await lenient_open(client, after + LATE_ACCEPT_MARGIN)
        if status == 101:
            await client.close(1000)
            client_side: dict[str, Any] = {"status": status, **await lenient_closing_view(client, answer=False)}
        elif status is None:
            client_side = {"status": None, "ended by the server": client.received.eof}
        else:
            client_side = {"status": status}
    report = await app_report(target, connection_id)
    received = received_after_connect(await app_view(target, connection_id))
    # The next event by type and code only: whether a reason key came is probe-client-close-code-reason's.
    then = only(received[0], "type", "code") if isinstance(received, list) and received else report.get("then_receive")
    return {"client": client_side, "app": {"accept": report.get("accept"), "then_receive": then}}


# The handshake of probe-header-fidelity, line by line after the request line, as it goes on the wire:
# a header repeated on two lines with another between them, a name with an underscore, and the
# permessage-deflate offer browsers send.  Host and the key stand first, as every client sends them.
FIDELITY_LINES = (
    ("Host", "{host}"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", "{key}"),
    ("Sec-WebSocket-Version", "13"),
    (OBSERVE_HEADER, "{tag}"),
    ("X-Probe-Repeat", "one"),
    ("X-Probe-Between", "middle"),
    ("X-Probe-Repeat", "two"),
    ("x_probe_under", "1"),
    ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
)
VARYING = "(varies)"  # as the probe app shows the values of Host, the key and the tag
SAMPLE_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3's sample nonce


@probe(
    "probe-header-fidelity",
    "A handshake with X-Probe-Repeat on two lines around another header, a name with an underscore "
    "(x_probe_under) and a Sec-WebSocket-Extensions offer: scope['headers'] line by line, in order.",
    "ASGI WebSocket: scope headers (order preserved, duplicates as received, names lowercased)",
)
async def header_fidelity(target: Target) -> Transcript:
    """Motivated by the ASGI spec's websocket scope, "Order should be preserved from the original HTTP
    request; duplicates are possible and must be preserved in the message as received. Header names must
    be lowercased", and by servers that rebuild the list: wsproto 1.3.2 ``handshake.py``
    ``H11Handshake._process_connection_request`` (under uvicorn-wsproto) takes the extensions and
    subprotocol lines out; daphne 4.2.3 ``http_protocol.py`` ``WebRequest.process`` passes the request to
    autobahn again with one line per name, and ``ws_protocol.py`` ``WebSocketProtocol.onConnect`` skips
    names with an underscore, as gunicorn 27.0.1's ``header_map`` setting does by default.  The request
    goes out byte for byte on a bare socket, so the line order is the probe's, not a client library's."""
    tag = target.connection_id()
    values = {"host": f"{target.host}:{target.port}", "key": SAMPLE_KEY, "tag": tag}
    request = "GET /headers HTTP/1.1\r\n" + "".join(
        f"{name}: {value.format(**values)}\r\n" for name, value in FIDELITY_LINES
    )
    reader, writer = await asyncio.open_connection(target.host, target.port)
    try:
        writer.write(request.encode("latin-1") + b"\r\n")
        await writer.drain()
        async with asyncio.timeout(READ_WAIT):
            status_line = await reader.readline()
    except (OSError, TimeoutError):
        status_line = b""
    finally:
        writer.close()
    sent = [[name, VARYING if "{" in value else value] for name, value in FIDELITY_LINES]
    parts = status_line.split(b" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    return {"client": {"sent": sent, "status": status}, "app": await app_report(target, tag)}


EARLY_MESSAGE = "early"  # the text message the client sends in the same write as its handshake request


@probe(
    "probe-data-before-101",
    "The client writes its handshake and, in the same write, a text frame, before reading the response: "
    "the status, whether the message reaches the app, and how the connection ends.",
    "RFC 6455 §4.1 (the client sends no data frame before the 101; the server's answer is not stated); "
    "ASGI WebSocket: receive",
)
async def data_before_101(target: Target) -> Transcript:
    """Motivated by hypercorn 0.18.0 and anycorn 0.20.1 ``protocol/ws_stream.py`` ``WSStream.handle``
    (``Data`` before ``self.handshake.accepted``: ``_send_error_response(400)``): ``protocol/h11.py``
    ``H11WSConnection.__init__`` hands the bytes that followed the request to the stream at once, so a
    client that pipelines its first message is refused, where a server that buffers them until the app
    accepts delivers it.  The reference loses the message: uvicorn 0.55.0 ``protocols/http/httptools_impl.py``
    ``HttpToolsProtocol.handle_websocket_upgrade`` rebuilds the request from the scope and hands the
    WebSocket protocol only that, not the bytes that followed it.  Once the app says ready the client
    closes with 1000.  Then a new connection asks ``GET /``: under hypercorn's trio worker the 400 ends
    the whole server (pgjones/hypercorn#225)."""
    early = Frame(Opcode.TEXT, EARLY_MESSAGE.encode()).serialize(mask=True)
    async with connect(target, "/hold", lenient=True) as (client, connection_id):
        try:
            async with asyncio.timeout(READ_WAIT):
                handshake = await client.open(early)
        except (OSError, TimeoutError):
            client_side: dict[str, Any] = {"status": None, "ended by the server": client.received.eof}
        else:
            client_side = {"status": handshake.status}
            if handshake.status == 101:
                ready = await client.read_frame(READ_WAIT)
                client_side["ready"] = ready == (Opcode.TEXT, b"ready")
                await client.close(1000)
                client_side.update(await lenient_closing_view(client, answer=False))
    received = received_after_connect(await app_view(target, connection_id))
    if isinstance(
        received, list
    ):  # events by type, code and length: the reason key is probe-client-close-code-reason's
        received = [only(event, "type", "code", "text", "bytes") for event in received]
    return {"client": client_side, "app": {"received": received}, "server still serves": await still_serves(target)}
