"""The probe app: a small raw ASGI 3 app that shows how a server implements the WebSocket protocol.

The server probes (contract §5, :mod:`conformance.probes`) run this app, not
asgi_ws, under every server.  asgi_ws is written to behave the same everywhere;
this app does the opposite on purpose: it does the things whose outcome the
ASGI spec leaves open or servers get wrong (sending after a disconnect,
receiving after it, closing with reserved codes, raising, returning without a
close) and reports what happened.

Each WebSocket path is one behaviour, written as its own small ASGI app in the
``ROUTES`` table below; the query string, where there is one, is its argument.
The app reports what it observes in two ways:

- over the socket, while it is open: a JSON text frame describing the scope or
  the shape of a received event;
- once the socket may be gone, in the observations file that
  :mod:`conformance.observer` (which wraps this app) writes.  The observer
  already records every event received and sent, every exception ``send()``
  raised (by type name) and the app's own exception.  What it cannot see, such
  as whether a ``receive()`` after the disconnect returned, raised or hung, this
  app appends itself as ``{"id": "<x-conformance-id>/probe", "probe": {...}}``.

Every wait is bounded, so a server that never delivers an event makes a probe
report "timed out" rather than hang.  The waits use anyio, so the app runs on
asyncio and on trio (hypercorn ``-k trio``).

It answers plain HTTP ``GET /`` with ``200 probe app`` (the launcher polls it
to know the server is ready) and completes lifespan startup and shutdown,
reporting each as ``lifespan/startup`` and ``lifespan/shutdown``;
:func:`failing_startup` is the same app with a startup that fails.  It imports
nothing from asgi_ws.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import anyio

from .observer import FILE_ENV, HEADER

__all__ = ["ROUTES", "app", "failing_startup", "shape"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Handler = Callable[[Scope, Receive, Send], Awaitable[None]]

# Bounds on the app's waits, in seconds.  Each is far above what a working
# server needs on a loopback connection, and below the probe's own bound.
CLIENT_WAIT = 5.0  # for the client's next move (a message, its close)
AFTER_DISCONNECT_WAIT = 2.0  # for an event that may never come (a receive() after the disconnect)
HOLD_WAIT = 30.0  # how long /hold keeps an idle connection open (longer than a SIGTERM's grace)
LATE_RECEIVE_WAIT = 3.0  # /late-accept: for the receive() after the late accept
NEVER_ACCEPT_WAIT = 20.0  # how long /never-accept waits for its next event (the client leaves after 15 s)
UNSEEN_DISCONNECT_DELAY = 0.5  # /send-after-disconnect: time for the client's close to reach the server
RECEIVES_AFTER_DISCONNECT = 4  # /receive-after-disconnect-repeated: receive() calls after the disconnect
REPEATED_RECEIVE_WAIT = 0.5  # for each of them
KEEP_WAITING = 11.0  # then how long the app waits on: past daphne's 10 s application_close_timeout
REFUSAL_RECEIVE_WAIT = 3.0  # /refuse-then?then=receive: for the receive() after refusing
LATE_RETURN_DELAY = 2.0  # /refuse-then?then=return-late: how long the app runs on after refusing
SLOW_READER_PAUSE = 4.0  # /slow-reader: how long the app leaves its messages unread after ready


# Reporting


def shape(message: Mapping[str, Any]) -> dict[str, Any]:
    """An event's type, and the type name of every other key's value.

    ``{"type": "websocket.receive", "keys": {"bytes": "NoneType", "text": "str"}}``
    shows what a bare ``message.get("text")`` cannot: whether a key is absent or
    present and None.
    """
    keys = {key: type(value).__name__ for key, value in sorted(message.items()) if key != "type"}
    return {"type": message.get("type"), "keys": keys}


def report(scope: Scope, facts: Mapping[str, Any]) -> None:
    """Append the app's own observation of this connection, read by ``target.observed(id + "/probe")``."""
    tag = _tag(scope)
    if tag is not None:
        _append(f"{tag}/probe", facts)


LIFESPAN_ID = "lifespan"  # the observations of the lifespan scope are "lifespan/startup" and "lifespan/shutdown"
STARTUP_FAILURE = "probe app: startup failed on purpose"  # failing_startup's message, for the server to log


def report_lifespan(event: str, facts: Mapping[str, Any]) -> None:
    """Append what the lifespan scope saw at ``event`` (``startup``, ``shutdown``), as ``lifespan/<event>``."""
    _append(f"{LIFESPAN_ID}/{event}", facts)


def _append(record_id: str, facts: Mapping[str, Any]) -> None:
    path = os.environ.get(FILE_ENV)
    if path is None:
        return  # not run by the harness: nobody to tell
    with Path(path).open("a") as file:
        file.write(json.dumps({"id": record_id, "probe": dict(facts)}) + "\n")


def _tag(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if bytes(name).lower() == HEADER:
            tag: str = bytes(value).decode("latin-1")
            return tag
    return None


def _length(message: Message) -> int | None:
    """The length of a receive event's payload: ``text`` if it is not None, else ``bytes``."""
    for key in ("text", "bytes"):
        value = message.get(key)
        if value is not None:
            return len(value)
    return None


def _query(scope: Scope) -> dict[str, str]:
    return dict(parse_qsl(bytes(scope.get("query_string", b"")).decode("latin-1")))


# Bounded waits that report instead of raising


async def receive_within(receive: Receive, seconds: float) -> Message | None:
    """The next event, or None if none arrives within ``seconds``."""
    with anyio.move_on_after(seconds):
        return await receive()
    return None


async def message_within(receive: Receive, seconds: float) -> Message | None:
    """The next message; None at the disconnect, or if nothing arrives within ``seconds``."""
    message = await receive_within(receive, seconds)
    return None if message is None or message["type"] == "websocket.disconnect" else message


async def receive_outcome(receive: Receive, seconds: float) -> dict[str, Any]:
    """What one ``receive()`` does: the event's shape, ``timed out``, or the exception it raised."""
    try:
        message = await receive_within(receive, seconds)
    except Exception as exc:
        return {"raised": type(exc).__name__}
    if message is None:
        return {"timed out": True}
    return {"returned": shape(message)}


async def send_outcome(send: Send, message: Message, seconds: float, *, kind: bool = False) -> dict[str, Any]:
    """What one ``send()`` does: ``returned``, ``timed out`` (it blocked), or the exception it raised.

    ``kind``: also record whether the exception is an ``OSError``, the kind the
    ASGI spec (2.4+) asks for from a send on a closed connection.
    """
    try:
        with anyio.move_on_after(seconds):
            await send(message)
            return {"returned": True}
    except Exception as exc:
        return {"raised": type(exc).__name__, **({"an OSError": isinstance(exc, OSError)} if kind else {})}
    return {"timed out": True}


async def try_send(send: Send, message: Message) -> str | None:
    """Send ``message``; the type name of the exception ``send()`` raised, or None if it did not."""
    try:
        await send(message)
    except Exception as exc:
        return type(exc).__name__
    return None


async def wait_for_disconnect(receive: Receive, seconds: float) -> Message | None:
    """Receive until ``websocket.disconnect`` (returned) or ``seconds`` pass (None), ignoring messages."""
    with anyio.move_on_after(seconds):
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return message
    return None


# WebSocket behaviours, one per path


async def describe_scope(scope: Scope, receive: Receive, send: Send) -> None:
    """``/scope``: accept, send a JSON description of the scope and the connect event, close 1000."""
    connect = await receive()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": json.dumps({"scope": _describe(scope), "connect": shape(connect)})})
    await send({"type": "websocket.close", "code": 1000})


ABSENT = "absent"  # how a description shows a scope key the server did not set


def _describe(scope: Scope) -> dict[str, Any]:
    """The scope as types and values that do not change between runs (no ports, no header values)."""
    state = scope.get("state")
    return {
        "keys": {key: type(value).__name__ for key, value in sorted(scope.items())},
        "asgi": dict(sorted(scope["asgi"].items())) if isinstance(scope.get("asgi"), Mapping) else ABSENT,
        "http_version": scope.get("http_version", ABSENT),
        "scheme": scope.get("scheme", ABSENT),
        "path": scope.get("path", ABSENT),
        "raw_path": _bytes_value(scope.get("raw_path", ABSENT)),
        "query_string": _bytes_value(scope.get("query_string", ABSENT)),
        "root_path": scope.get("root_path", ABSENT),
        "subprotocols": _typed(scope.get("subprotocols", ABSENT)),
        "extensions": _describe_extensions(scope.get("extensions", ABSENT)),
        "headers": _describe_headers(scope["headers"]),
        "client": _describe_address(scope.get("client", ABSENT)),
        "server": _describe_address(scope.get("server", ABSENT)),
        # Set by the lifespan startup below, where the server supports lifespan state.
        "state": state.get("probe") if isinstance(state, Mapping) else ABSENT,
    }


def _typed(value: object) -> object:
    """A list or tuple as its type and items (JSON would make both a list); anything else as is."""
    if isinstance(value, list | tuple):
        return {"type": type(value).__name__, "items": list(value)}
    return value


def _bytes_value(value: object) -> object:
    """A bytes value as its type and latin-1 text; anything else (or absent) as is."""
    if isinstance(value, bytes | bytearray):
        return {"type": type(value).__name__, "value": bytes(value).decode("latin-1")}
    return value


def _describe_extensions(extensions: object) -> object:
    """Each extension's name, with its value's keys and their types (the spec's values are dicts)."""
    if not isinstance(extensions, Mapping):
        return extensions if extensions == ABSENT else type(extensions).__name__
    return {
        str(name): (
            {str(key): type(item).__name__ for key, item in sorted(value.items())}
            if isinstance(value, Mapping)
            else type(value).__name__
        )
        for name, value in sorted(extensions.items())
    }


def _describe_headers(headers: Any) -> dict[str, Any]:
    """The container and item types the spec leaves to the server (an iterable of pairs of bytes), and the names."""
    items = list(headers)
    return {
        "type": type(headers).__name__,
        "item_types": sorted({type(item).__name__ for item in items}),
        "item_lengths": sorted({len(item) for item in items}),
        "name_types": sorted({type(item[0]).__name__ for item in items}),
        "value_types": sorted({type(item[1]).__name__ for item in items}),
        "names": sorted({bytes(item[0]).decode("latin-1") for item in items}),
    }


def _describe_address(value: object) -> object:
    """A (host, port) pair as its shape only: container type, host, port type.  Ports change every run."""
    if isinstance(value, list | tuple) and len(value) == 2:
        return {"type": type(value).__name__, "host": value[0], "port_type": type(value[1]).__name__}
    return value if value is None or value == ABSENT else {"type": type(value).__name__}


# Request headers whose values change from run to run: the port, the key, the harness's tag.
VARYING_HEADERS = frozenset({b"host", b"sec-websocket-key", HEADER})
VARYING = "(varies)"  # how a header list shows the value of one of VARYING_HEADERS


async def describe_headers(scope: Scope, receive: Receive, send: Send) -> None:
    """``/headers``: report ``scope["headers"]`` in the server's order, name and value as given; close 1000.

    Unlike ``/scope``, which reports the set of names, this keeps every line:
    repeated names, their order, the names' spelling and case.  Only the values
    of :data:`VARYING_HEADERS` are replaced by :data:`VARYING`.
    """
    await receive()  # websocket.connect
    report(scope, {"headers": _header_lines(scope["headers"])})
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": 1000})


def _header_lines(headers: Any) -> list[list[str]]:
    """``[name, value]`` for every header pair, in order, as latin-1 text; varying values masked."""
    lines = []
    for name, value in headers:
        name_bytes = bytes(name)
        shown = VARYING if name_bytes.lower() in VARYING_HEADERS else bytes(value).decode("latin-1")
        lines.append([name_bytes.decode("latin-1"), shown])
    return lines


async def receive_shapes(scope: Scope, receive: Receive, send: Send) -> None:
    """``/shapes``: accept; answer every message with the JSON shape of its receive event."""
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while (message := await message_within(receive, CLIENT_WAIT)) is not None:
        reply = {"shape": shape(message), "length": _length(message)}
        await send({"type": "websocket.send", "text": json.dumps(reply)})


async def send_shapes(scope: Scope, receive: Receive, send: Send) -> None:
    """``/send-shapes``: accept; send empty messages and messages with the other key set to None; close 1000.

    All four are valid ASGI: exactly one of ``text`` and ``bytes`` is not None.
    Reports which sends raised; the client shows which frames arrived.
    """
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    messages: list[Message] = [
        {"type": "websocket.send", "text": ""},
        {"type": "websocket.send", "bytes": b""},
        {"type": "websocket.send", "text": "t", "bytes": None},
        {"type": "websocket.send", "bytes": b"b", "text": None},
    ]
    report(scope, {"send_raised": [await try_send(send, message) for message in messages]})
    await send({"type": "websocket.close", "code": 1000})


async def hold(scope: Scope, receive: Receive, send: Send) -> None:
    """``/hold``: accept, send ``ready``, then wait for the disconnect and report its shape.

    For probes where the client or the server ends the connection: client close
    codes, invalid UTF-8, keepalive pings, permessage-deflate, SIGTERM.
    """
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": "ready"})
    disconnect = await wait_for_disconnect(receive, HOLD_WAIT)
    report(scope, {"disconnect": shape(disconnect) if disconnect is not None else "timed out"})
    if disconnect is None:
        await try_send(send, {"type": "websocket.close", "code": 1000})


async def app_close(scope: Scope, receive: Receive, send: Send) -> None:
    """``/close?code=..&reason=..``: accept, then close with exactly those keys (absent when not given).

    The codes may be ones the RFC forbids on the wire (1005, 1006, 1015, 999,
    5000) and the reason may be longer than a close frame holds (123 bytes).
    Reports whether ``send()`` raised, then what one ``receive()`` gives.
    """
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    query = _query(scope)
    close: Message = {"type": "websocket.close"}
    if "code" in query:
        close["code"] = int(query["code"])
    if "reason" in query:
        close["reason"] = query["reason"]
    error = await try_send(send, close)
    then = await receive_outcome(receive, AFTER_DISCONNECT_WAIT)
    report(scope, {"close_raised": error, "then_receive": then})


async def close_before_accept(scope: Scope, receive: Receive, send: Send) -> None:
    """``/close-before-accept``: the ASGI way to refuse; the spec says the client gets HTTP 403."""
    await receive()  # websocket.connect
    await send({"type": "websocket.close", "code": 4003, "reason": "closed before accept"})


async def refuse_then(scope: Scope, receive: Receive, send: Send) -> None:
    """``/refuse-then?then=receive|return-late``: refuse with ``websocket.close`` (4003), then go on.

    ``receive``: call ``receive()`` once, bounded by :data:`REFUSAL_RECEIVE_WAIT`
    (the disconnect, nothing, or an exception?).  ``return-late``: sleep
    :data:`LATE_RETURN_DELAY` before returning, so the client can tell whether
    the 403 went out at the close or only when the app returned.
    """
    await receive()  # websocket.connect
    facts: dict[str, Any] = {"close": await send_outcome(send, {"type": "websocket.close", "code": 4003}, CLIENT_WAIT)}
    if _query(scope).get("then") == "receive":
        facts["then_receive"] = await receive_outcome(receive, REFUSAL_RECEIVE_WAIT)
    else:
        await anyio.sleep(LATE_RETURN_DELAY)
    report(scope, facts)


async def deny(scope: Scope, receive: Receive, send: Send) -> None:
    """``/deny``: refuse with the ``websocket.http.response`` extension, a 400 with a two-chunk body.

    Sent whether or not the server advertises the extension in
    ``scope["extensions"]``: the probe shows what each server does either way.
    """
    await receive()  # websocket.connect
    advertised = "websocket.http.response" in (scope.get("extensions") or {})
    headers = [(b"content-type", b"text/plain"), (b"x-probe", b"deny")]
    errors = [
        await try_send(send, {"type": "websocket.http.response.start", "status": 400, "headers": headers}),
        await try_send(send, {"type": "websocket.http.response.body", "body": b"denied: ", "more_body": True}),
        await try_send(send, {"type": "websocket.http.response.body", "body": b"two chunks", "more_body": False}),
    ]
    report(scope, {"advertised": advertised, "send_raised": errors})


async def raise_before_accept(scope: Scope, receive: Receive, send: Send) -> None:
    """``/raise-before-accept``: an app bug during the handshake."""
    await receive()  # websocket.connect
    raise RuntimeError("probe app: raised before accept")


async def raise_after_accept(scope: Scope, receive: Receive, send: Send) -> None:
    """``/raise-after-accept``: an app bug on an open connection."""
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    raise RuntimeError("probe app: raised after accept")


async def return_before_accept(scope: Scope, receive: Receive, send: Send) -> None:
    """``/return-before-accept``: the app returns without sending anything."""
    await receive()  # websocket.connect


async def return_after_accept(scope: Scope, receive: Receive, send: Send) -> None:
    """``/return-after-accept``: the app returns without sending ``websocket.close``."""
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})


async def send_after_disconnect(scope: Scope, receive: Receive, send: Send) -> None:
    """``/send-after-disconnect?seen=0|1``: send a message, then a close, after the client has closed.

    The client closes as soon as it reads ``ready``.  With ``seen=1`` the app
    first receives ``websocket.disconnect``; with ``seen=0`` it only sleeps, so
    the server knows of the close but the app does not.  Which exceptions the
    two sends raised is in the observer's ``send_errors``.
    """
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": "ready"})
    facts: dict[str, Any] = {}
    seen = _query(scope).get("seen") == "1"
    if seen:
        disconnect = await wait_for_disconnect(receive, CLIENT_WAIT)
        facts["disconnect"] = shape(disconnect) if disconnect is not None else "timed out"
    else:
        await anyio.sleep(UNSEEN_DISCONNECT_DELAY)
    facts["send_raised"] = await try_send(send, {"type": "websocket.send", "text": "after disconnect"})
    facts["close_raised"] = await try_send(send, {"type": "websocket.close", "code": 1000})
    if not seen:
        # The disconnect the app has not read yet: is it still delivered after the failed sends?
        facts["then_receive"] = await receive_outcome(receive, AFTER_DISCONNECT_WAIT)
    report(scope, facts)


async def receive_after_disconnect(scope: Scope, receive: Receive, send: Send) -> None:
    """``/receive-after-disconnect``: call ``receive()`` once more after ``websocket.disconnect``.

    The ASGI spec does not say what happens: a server may return the disconnect
    again, raise, or block forever (hence the bound).
    """
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": "ready"})
    disconnect = await wait_for_disconnect(receive, CLIENT_WAIT)
    then = await receive_outcome(receive, AFTER_DISCONNECT_WAIT) if disconnect is not None else None
    report(scope, {"disconnect": shape(disconnect) if disconnect else "timed out", "then_receive": then})


async def receive_after_disconnect_repeated(scope: Scope, receive: Receive, send: Send) -> None:
    """``/receive-after-disconnect-repeated``: four more ``receive()`` calls after the disconnect, then wait on.

    Each call is bounded by :data:`REPEATED_RECEIVE_WAIT`; then the app sleeps
    :data:`KEEP_WAITING`, as an app waiting on something else would.  Reports
    each call's outcome, and whether the server cancelled the app meanwhile
    (the cancellation is reported, then raised again).
    """
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": "ready"})
    disconnect = await wait_for_disconnect(receive, CLIENT_WAIT)
    facts: dict[str, Any] = {"disconnect": shape(disconnect) if disconnect else "timed out", "then_receive": []}
    try:
        for _ in range(RECEIVES_AFTER_DISCONNECT):
            facts["then_receive"].append(await receive_outcome(receive, REPEATED_RECEIVE_WAIT))
        await anyio.sleep(KEEP_WAITING)
        facts[f"waiting on {KEEP_WAITING:g} s"] = "not cancelled"
    except BaseException as exc:  # the server's cancellation: asyncio's CancelledError, trio's Cancelled
        facts[f"waiting on {KEEP_WAITING:g} s"] = f"cancelled ({type(exc).__name__})"
        raise
    finally:
        report(scope, facts)


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """``/echo``: accept; send every message back as it came; at the disconnect, report its shape."""
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while (message := await receive_within(receive, HOLD_WAIT)) is not None:
        if message["type"] == "websocket.disconnect":
            report(scope, {"disconnect": shape(message), "code": message.get("code")})
            return
        await try_send(send, {"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")})
    report(scope, {"disconnect": "timed out"})


async def push(scope: Scope, receive: Receive, send: Send) -> None:
    """``/push?count=N&size=S``: accept; at the client's first message send N messages of S bytes (text,
    default 10) as fast as ``send()`` returns, then close with 1000 at once, data still queued or not."""
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    query = _query(scope)
    count, size = int(query.get("count", "1")), int(query.get("size", "10"))
    if await message_within(receive, CLIENT_WAIT) is None:
        report(scope, {"pushed": 0})
        return
    for number in range(1, count + 1):
        if await try_send(send, {"type": "websocket.send", "text": str(number).rjust(size, ".")}) is not None:
            report(scope, {"pushed": number - 1})
            return
    error = await try_send(send, {"type": "websocket.close", "code": 1000})
    report(scope, {"pushed": count, "close_raised": error})


async def size(scope: Scope, receive: Receive, send: Send) -> None:
    """``/size``: accept; answer every message with its length only, so large ones are not echoed."""
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while (message := await message_within(receive, CLIENT_WAIT)) is not None:
        await send({"type": "websocket.send", "text": json.dumps({"length": _length(message)})})


async def subprotocol(scope: Scope, receive: Receive, send: Send) -> None:
    """``/subprotocol``: accept choosing subprotocol ``b``; send the offered list; close 1000."""
    await receive()  # websocket.connect
    await send({"type": "websocket.accept", "subprotocol": "b"})
    await send({"type": "websocket.send", "text": json.dumps({"offered": list(scope.get("subprotocols", ()))})})
    await send({"type": "websocket.close", "code": 1000})


async def accept_headers(scope: Scope, receive: Receive, send: Send) -> None:
    """``/accept-headers``: accept with an extra response header ``x-probe: 1``; close 1000."""
    await receive()  # websocket.connect
    await send({"type": "websocket.accept", "headers": [(b"x-probe", b"1")]})
    await send({"type": "websocket.close", "code": 1000})


# Two cookies, each on its own set-cookie line: RFC 6265 §3 forbids folding them into one.
ACCEPT_COOKIES = [(b"set-cookie", b"probe_a=1; Path=/"), (b"set-cookie", b"probe_b=2; Path=/; HttpOnly")]


async def accept_cookies(scope: Scope, receive: Receive, send: Send) -> None:
    """``/accept-cookies``: accept with two ``set-cookie`` headers (:data:`ACCEPT_COOKIES`); close 1000."""
    await receive()  # websocket.connect
    accept: Message = {"type": "websocket.accept", "headers": ACCEPT_COOKIES}
    report(scope, {"accept": await send_outcome(send, accept, CLIENT_WAIT)})
    await try_send(send, {"type": "websocket.close", "code": 1000})


async def send_after_close(scope: Scope, receive: Receive, send: Send) -> None:
    """``/send-after-close``: accept, close 1000, then at once send a text message on the closed connection.

    The client does not answer the close frame until this app has reported, so
    the send meets a connection that the app closed and the client has not.
    """
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    close = await send_outcome(send, {"type": "websocket.close", "code": 1000}, AFTER_DISCONNECT_WAIT)
    message = {"type": "websocket.send", "text": "after close"}
    after = await send_outcome(send, message, AFTER_DISCONNECT_WAIT, kind=True)
    report(scope, {"close": close, "send after close": after})


async def send_before_accept(scope: Scope, receive: Receive, send: Send) -> None:
    """``/send-before-accept``: send a text message before accept, then accept, send ``accepted``, close 1000.

    The ASGI spec allows only accept, close or ``websocket.http.response.start``
    as the first message.  The later steps show whether the connection survives
    the bad one.
    """
    await receive()  # websocket.connect
    steps: list[tuple[str, Message]] = [
        ("send before accept", {"type": "websocket.send", "text": "before accept"}),
        ("accept", {"type": "websocket.accept"}),
        ("send after accept", {"type": "websocket.send", "text": "accepted"}),
        ("close", {"type": "websocket.close", "code": 1000}),
    ]
    report(scope, {name: await send_outcome(send, message, CLIENT_WAIT) for name, message in steps})


async def accept_twice(scope: Scope, receive: Receive, send: Send) -> None:
    """``/accept-twice``: accept, accept again, send ``after``, close 1000; reports what each step did."""
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    steps: list[tuple[str, Message]] = [
        ("second accept", {"type": "websocket.accept"}),
        ("send", {"type": "websocket.send", "text": "after"}),
        ("close", {"type": "websocket.close", "code": 1000}),
    ]
    report(scope, {name: await send_outcome(send, message, CLIENT_WAIT) for name, message in steps})


async def invalid_send_shapes(scope: Scope, receive: Receive, send: Send) -> None:
    """``/invalid-send-shapes``: accept; send events that break "exactly one of text and bytes"; close 1000.

    Both keys set (text of 4 characters, bytes of 2), no key at all, and both
    keys None.  The client's frame list shows what each became on the wire.
    """
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    steps: list[tuple[str, Message]] = [
        ("text and bytes", {"type": "websocket.send", "text": "text", "bytes": b"by"}),
        ("neither key", {"type": "websocket.send"}),
        ("both None", {"type": "websocket.send", "text": None, "bytes": None}),
        ("close", {"type": "websocket.close", "code": 1000}),
    ]
    report(scope, {name: await send_outcome(send, message, CLIENT_WAIT) for name, message in steps})


async def offered_subprotocols(scope: Scope, receive: Receive, send: Send) -> None:
    """``/offered-subprotocols?choose=NAME``: accept choosing NAME, whether offered or not; close 1000.

    Reports the scope's ``subprotocols`` and what the accept did.  The client
    leaves after the handshake, so the close is not reported.
    """
    await receive()  # websocket.connect
    accept: Message = {"type": "websocket.accept", "subprotocol": _query(scope).get("choose")}
    accepted = await send_outcome(send, accept, CLIENT_WAIT)
    report(scope, {"subprotocols": _typed(scope.get("subprotocols", ABSENT)), "accept": accepted})
    await try_send(send, {"type": "websocket.close", "code": 1000})


async def describe_path(scope: Scope, receive: Receive, send: Send) -> None:
    """``/path/...``: reports ``path``, ``raw_path`` and ``query_string`` as the server decoded them; close 1000."""
    await receive()  # websocket.connect
    report(
        scope,
        {
            "path": scope.get("path", ABSENT),
            "raw_path": _bytes_value(scope.get("raw_path", ABSENT)),
            "query_string": _bytes_value(scope.get("query_string", ABSENT)),
        },
    )
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": 1000})


async def never_accept(scope: Scope, receive: Receive, send: Send) -> None:
    """``/never-accept``: receive ``websocket.connect`` and then neither accept nor refuse.

    Reports what the next ``receive()`` gives within :data:`NEVER_ACCEPT_WAIT`:
    the disconnect of a server that gave up on the handshake (or saw the client
    leave), or ``timed out``.
    """
    await receive()  # websocket.connect
    report(scope, {"then_receive": await receive_outcome(receive, NEVER_ACCEPT_WAIT)})
    await try_send(send, {"type": "websocket.close"})


async def late_accept(scope: Scope, receive: Receive, send: Send) -> None:
    """``/late-accept?after=SECONDS``: receive ``websocket.connect``, wait, then accept.

    Reports what the late ``accept`` did and what the next ``receive()`` gives
    within :data:`LATE_RECEIVE_WAIT`: the client's close after a 101, the
    disconnect of a server that gave up on the handshake, or nothing.
    """
    await receive()  # websocket.connect
    await anyio.sleep(float(_query(scope).get("after", "0")))
    accepted = await send_outcome(send, {"type": "websocket.accept"}, CLIENT_WAIT)
    report(scope, {"accept": accepted, "then_receive": await receive_outcome(receive, LATE_RECEIVE_WAIT)})
    await try_send(send, {"type": "websocket.close", "code": 1000})


async def slow_reader(scope: Scope, receive: Receive, send: Send) -> None:
    """``/slow-reader?count=N``: accept, send ``ready``, call no ``receive()`` for a while, then read N messages.

    The client writes N binary messages, each starting with its index as 4
    bytes big-endian, while the app sleeps :data:`SLOW_READER_PAUSE`.  Then
    the app receives until it has N messages, the disconnect, or nothing for
    :data:`CLIENT_WAIT`, and reports how many came and whether in order; then
    it waits for the client's close.
    """
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": "ready"})
    await anyio.sleep(SLOW_READER_PAUSE)
    count = int(_query(scope).get("count", "0"))
    indices: list[int] = []
    ended_by: Any = "all received"
    while len(indices) < count:
        message = await receive_within(receive, CLIENT_WAIT)
        if message is None or message["type"] != "websocket.receive":
            ended_by = shape(message) if message is not None else "timed out"
            break
        data = message.get("bytes") or b""
        indices.append(int.from_bytes(data[:4], "big"))
    received = "all" if len(indices) == count else "none" if not indices else "some"
    in_order = indices == list(range(len(indices)))
    facts: dict[str, Any] = {"received": received, "in order": in_order, "ended by": ended_by}
    if ended_by == "all received":
        disconnect = await wait_for_disconnect(receive, CLIENT_WAIT)
        # The type alone: what a disconnect's keys hold is probe-client-close-code-reason's.
        facts["then"] = disconnect["type"] if disconnect is not None else "timed out"
    report(scope, facts)


async def unknown_path(scope: Scope, receive: Receive, send: Send) -> None:
    """Any other path: refuse before accept."""
    await receive()  # websocket.connect
    await send({"type": "websocket.close"})


ROUTES: dict[str, Handler] = {
    "/scope": describe_scope,
    "/headers": describe_headers,
    "/shapes": receive_shapes,
    "/send-shapes": send_shapes,
    "/hold": hold,
    "/close": app_close,
    "/close-before-accept": close_before_accept,
    "/refuse-then": refuse_then,
    "/deny": deny,
    "/raise-before-accept": raise_before_accept,
    "/raise-after-accept": raise_after_accept,
    "/return-before-accept": return_before_accept,
    "/return-after-accept": return_after_accept,
    "/send-after-disconnect": send_after_disconnect,
    "/receive-after-disconnect": receive_after_disconnect,
    "/receive-after-disconnect-repeated": receive_after_disconnect_repeated,
    "/size": size,
    "/echo": echo,
    "/push": push,
    "/subprotocol": subprotocol,
    "/accept-headers": accept_headers,
    "/accept-cookies": accept_cookies,
    "/send-after-close": send_after_close,
    "/send-before-accept": send_before_accept,
    "/accept-twice": accept_twice,
    "/invalid-send-shapes": invalid_send_shapes,
    "/offered-subprotocols": offered_subprotocols,
    "/never-accept": never_accept,
    "/late-accept": late_accept,
    "/slow-reader": slow_reader,
}
PATH_PREFIX = "/path/"  # every path under it goes to describe_path, whatever its encoding


# HTTP and lifespan: just enough for the launcher


async def http(scope: Scope, receive: Receive, send: Send) -> None:
    """``GET /`` answers 200 ``probe app``, which is what the launcher polls for; anything else 404."""
    status, body = (200, b"probe app") if scope["path"] == "/" else (404, b"not found")
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    """Complete startup and shutdown, reporting each (probe-lifespan reads them).

    Leaves a mark in the lifespan state, which ``/scope`` reports.
    """
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            report_lifespan("startup", _describe_lifespan(scope))
            if isinstance(scope.get("state"), MutableMapping):
                scope["state"]["probe"] = "set at startup"
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            report_lifespan("shutdown", {"received": message["type"]})
            await send({"type": "lifespan.shutdown.complete"})
            return


def _describe_lifespan(scope: Scope) -> dict[str, Any]:
    """The lifespan scope's ``asgi`` versions and whether it carries a ``state`` dict."""
    asgi = scope.get("asgi")
    return {
        "asgi": dict(sorted(asgi.items())) if isinstance(asgi, Mapping) else ABSENT,
        "state": type(scope["state"]).__name__ if "state" in scope else ABSENT,
    }


async def failing_startup(scope: Scope, receive: Receive, send: Send) -> None:
    """The probe app, but its lifespan startup fails: ``lifespan.startup.failed``, as an app whose database is down.

    The ASGI spec says the server should then log the message and exit;
    probe-lifespan-startup-failed serves this callable to see whether it does.
    """
    if scope["type"] != "lifespan":
        await app(scope, receive, send)
        return
    message = await receive()
    report_lifespan("startup", {"received": message["type"]})
    await send({"type": "lifespan.startup.failed", "message": STARTUP_FAILURE})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI 3 entry point: route by scope type, then, for WebSockets, by path."""
    if scope["type"] == "lifespan":
        await lifespan(scope, receive, send)
    elif scope["type"] == "http":
        await http(scope, receive, send)
    elif scope["type"] == "websocket":
        path = scope["path"]
        handler = describe_path if path.startswith(PATH_PREFIX) else ROUTES.get(path, unknown_path)
        await handler(scope, receive, send)
