"""Probes of the closing handshake: close codes and reasons, in both directions.

App to client: the app sends ``websocket.close`` with a code and reason, some
of which RFC 6455 §7.4 forbids on the wire (1005, 1006 and 1015 are for
reporting only; codes under 1000 and from 5000 up are invalid) or which do not
fit in a close frame (a reason longer than 123 bytes).  The ASGI spec says
nothing about them, so servers pass them through, rewrite them, or raise.  The
client here is :func:`~._support.read_close_leniently`, which reports the bytes
as they arrived.

Client to app: what ``websocket.disconnect`` holds for a close frame with a code
and reason (ASCII or not), for one with no code at all (RFC 6455 §7.1.5:
"1005"), for a client that ends TCP without any close frame (1006), and for a
malformed close frame (a 1-byte payload, a forbidden code, a reason not in
UTF-8), which the server should fail with 1002 or 1007.

A client that reads the app's close frame and never answers it shows whether
the server ends TCP by itself, and when.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from websockets.frames import Frame, Opcode

from ..checks import Target, Transcript, probe
from ..rawclient import RawClient
from ..views import app_report, app_view, received_after_connect
from ._support import (
    READ_WAIT,
    connect,
    lenient_closing_view,
    lenient_open,
    lenient_open_ready,
    lenient_read_until_close,
    read_close_leniently,
)

__all__: list[str] = []  # probes register themselves; nothing to import

LONG_REASON = "é" * 100  # 200 bytes of UTF-8; a server cutting at byte 123 would split a character


async def _app_close(target: Target, code: int | None, reason: str | None) -> Transcript:
    """The app closes with ``code`` and ``reason`` (absent keys when None): the wire, and the app's side."""
    query = {key: str(value) for key, value in (("code", code), ("reason", reason)) if value is not None}
    client, connection_id = await read_close_leniently(target, f"/close?{urlencode(query)}")
    app = await app_view(target, connection_id)
    return {
        "client": client,
        "app": {
            "send_errors": app.get("send_errors"),
            "received": received_after_connect(app),
            **await app_report(target, connection_id),
        },
    }


@probe(
    "probe-app-close-code-reason",
    "The app closes with 4000 and reason 'probe reason': the client's close frame, the app's next receive.",
    "ASGI WebSocket: close code and reason",
)
async def app_close_code_reason(target: Target) -> Transcript:
    return await _app_close(target, 4000, "probe reason")


@probe(
    "probe-app-close-no-code",
    "The app sends websocket.close with no code key (the spec's default is 1000): the client's close frame.",
    "ASGI WebSocket: close code default",
)
async def app_close_no_code(target: Target) -> Transcript:
    return await _app_close(target, None, None)


@probe(
    "probe-app-close-long-reason",
    "The app closes with 4000 and a 200-byte reason, more than a close frame holds: what is sent.",
    "RFC 6455 §5.5 (control frames carry at most 125 bytes); ASGI WebSocket: close reason",
)
async def app_close_long_reason(target: Target) -> Transcript:
    return await _app_close(target, 4000, LONG_REASON)


@probe(
    "probe-app-close-reason-no-code",
    "The app sends websocket.close with reason 'probe reason' and no code key: the code and reason on the wire.",
    "ASGI WebSocket: close (code defaults to 1000; reason optional)",
)
async def app_close_reason_no_code(target: Target) -> Transcript:
    """Motivated by daphne 4.2.3 ``ws_protocol.py`` ``WebSocketProtocol.handle_reply``, which passes only
    the code on (django/daphne#374, open: the reason never reaches the wire), and by the default of 1000
    that uvicorn 0.54.0 ``websockets_sansio_impl.py`` ``WebSocketsSansIOProtocol.send`` and hypercorn
    0.18.0 ``protocol/ws_stream.py`` ``WSStream.app_send`` each apply in their own code."""
    return await _app_close(target, None, "probe reason")


# Codes an app might send.  1001, 1008 and 1011 are valid; the others the RFC forbids on the wire.
APP_CLOSE_CODES = {
    999: "below the range of close codes",
    1001: "going away: valid, but some servers refuse it",
    1005: "'no status received': for reporting only, never sent",
    1006: "'abnormal closure': for reporting only, never sent",
    1008: "policy violation: valid, but some servers refuse it",
    1011: "internal error: valid, but some servers refuse it",
    1015: "'TLS handshake failure': for reporting only, never sent",
    5000: "above the range of close codes",
}


def _register_app_close_code(code: int, meaning: str) -> None:
    async def app_close_code(target: Target) -> Transcript:
        return await _app_close(target, code, None)

    probe(
        f"probe-app-close-code-{code}",
        f"The app closes with code {code} ({meaning}): what the client receives, whether send() raised.",
        "RFC 6455 §7.4; ASGI WebSocket: close code",
    )(app_close_code)


for _code, _meaning in APP_CLOSE_CODES.items():
    _register_app_close_code(_code, _meaning)


async def _client_close(target: Target, code: int | None, reason: str) -> Transcript:
    """The client closes with ``code`` and ``reason`` (no code: an empty close frame): what the app gets."""
    return await _client_ends(target, lambda client: client.close(code, reason))


async def _client_ends(target: Target, end: Callable[[RawClient], Awaitable[None]]) -> Transcript:
    """Once the app says ready, the client ends the connection with ``end``: its view, and what the app gets."""
    async with connect(target, "/hold", lenient=True) as (client, connection_id):
        failure = await lenient_open_ready(client)
        if failure is not None:
            return failure
        await end(client)
        client_view = await lenient_closing_view(client, answer=False)
    app = await app_view(target, connection_id)
    return {
        "client": client_view,
        # The observer's summary of the disconnect (code, reason), then its shape as the app reported it.
        "app": {"received": received_after_connect(app), **await app_report(target, connection_id)},
    }


@probe(
    "probe-client-close-code-reason",
    "The client closes with 4001 and 'client reason': the code and reason keys of websocket.disconnect.",
    "ASGI WebSocket: disconnect code and reason",
)
async def client_close_code_reason(target: Target) -> Transcript:
    return await _client_close(target, 4001, "client reason")


@probe(
    "probe-client-close-no-code",
    "The client sends a close frame with no code: the code in websocket.disconnect (RFC 6455: 1005).",
    "RFC 6455 §7.1.5; ASGI WebSocket: disconnect code",
)
async def client_close_no_code(target: Target) -> Transcript:
    return await _client_close(target, None, "")


NON_ASCII_REASON = "café ☕ naïve"  # 16 bytes of UTF-8, with 2- and 3-byte sequences


@probe(
    "probe-client-close-non-ascii-reason",
    f"The client closes with 4001 and the reason {NON_ASCII_REASON!r} (UTF-8, RFC 6455 §5.5.1): the reason "
    "in websocket.disconnect.",
    "ASGI WebSocket: disconnect reason (a str); RFC 6455 §5.5.1 (the reason is UTF-8)",
)
async def client_close_non_ascii_reason(target: Target) -> Transcript:
    return await _client_close(target, 4001, NON_ASCII_REASON)


@probe(
    "probe-client-fin-no-close",
    "Once the app says ready, the client ends its half of TCP (FIN) without a close frame: what the app is "
    "told, and how the server ends the connection (a close frame, TCP closed, or left open).",
    "ASGI WebSocket: disconnect code; RFC 6455 §7.1.5 (no close frame: 1006)",
    racy=(
        "Whether TCP ends within the client's 5 s: hypercorn's asyncio worker and anycorn end it at their next "
        "keepalive ping, 20 s after the last with the launcher's flags, far past that window."
    ),
)
async def client_fin_no_close(target: Target) -> Transcript:
    """The client that vanishes (a closed laptop lid, a proxy timing out) does this, or sends an RST
    (echo-reset-after-message).  After a FIN the client can still read, so what the server sends back, and
    whether it closes its side, is on the record."""

    async def end_sending(client: RawClient) -> None:
        client.end_sending()

    return await _client_ends(target, end_sending)


UNANSWERED_WAIT = 15.0  # seconds the client waits for the end of TCP: past uvicorn's 10 s close timeout
UNANSWERED_AT_ONCE = 1.5  # seconds: TCP ended this soon came without waiting for the reply, not after a timeout


@probe(
    "probe-close-unanswered",
    "The app closes with 1000; the client reads the close frame and never answers it nor closes TCP: does "
    "the server end TCP within 1.5 s, within 15 s, or not at all, and does the app's close raise?",
    "RFC 6455 §7.1.1 (the server ends TCP once the closing handshake is done) and §7.1.7; contract §7",
    racy=(
        "A server's close timeout is timing. Only one of three windows is kept (within 1.5 s, within 15 s, not "
        "within 15 s). The ends seen: at once (granian), 0 to 1 s (daphne: autobahn's 1 s close-handshake "
        "timeout, which txaio cuts down to a whole second), about 2 s (hypercorn, anycorn, once the app's 2 s "
        "receive() has returned), 5 s (gunicorn), 10 s (uvicorn); each 0.5 s or more from an edge."
    ),
    waits=True,
)
async def close_unanswered(target: Target) -> Transcript:
    """Motivated by uvicorn 0.55.0 ``websockets_sansio_impl.py`` ``WebSocketsSansIOProtocol.send`` (on
    ``websocket.close``: ``loop.call_later(self.close_timeout, self.transport.close)``, 10 s, the same in
    ``wsproto_impl.py`` ``WSProtocol.send``) and gunicorn 27.0.1 ``asgi/websocket.py``
    ``WebSocketProtocol._send`` (waits 5 s for the client's close frame, then closes the transport): a
    client that has gone silent must not hold the server's socket forever."""
    async with connect(target, "/close?code=1000", lenient=True) as (client, connection_id):
        status = await lenient_open(client, READ_WAIT)
        if status != 101:
            return {"handshake": status}
        _, close = await lenient_read_until_close(client)
        started = time.monotonic()
        ended = client.received.eof or await client.read_to_end(UNANSWERED_WAIT)
        waited = time.monotonic() - started
    if not ended:
        window = f"not within {UNANSWERED_WAIT:g} s"
    elif waited < UNANSWERED_AT_ONCE:
        window = f"within {UNANSWERED_AT_ONCE:g} s"
    else:
        window = f"later than {UNANSWERED_AT_ONCE:g} s, within {UNANSWERED_WAIT:g} s"
    # The app's side is only whether its close raised; its next receive() is probe-app-close-code-reason's.
    report = await app_report(target, connection_id)
    return {
        "client": {"close": close, "TCP ended by the server": window},
        "app": {"close_raised": report.get("close_raised", report.get("missing"))},
    }


# Close frames RFC 6455 forbids a client to send (§5.5.1, §7.4): the server should fail the connection
# (§7.1.7), with 1002 for a malformed frame or a forbidden code and 1007 for a reason not in UTF-8 (§8.1).
MALFORMED_CLOSES = {
    "one-byte": (b"\x03", "a 1-byte payload (half a close code)"),
    "1005": (b"\x03\xed", "code 1005 ('no status received', for reporting only)"),
    "999": (b"\x03\xe7", "code 999 (below the range of close codes)"),
    "invalid-utf8-reason": (b"\x03\xe8\xff\xfe", "code 1000 and a reason that is not UTF-8 (b'\\xff\\xfe')"),
}


def _register_client_close_malformed(variant: str, payload: bytes, meaning: str) -> None:
    async def client_close_malformed(target: Target) -> Transcript:
        """Motivated by gunicorn 27.0.1 ``asgi/websocket.py`` ``WebSocketProtocol._handle_close``, which
        answers a malformed close frame with 1002 ("Invalid close payload", "Invalid close code") or 1007
        ("Invalid UTF-8"), as RFC 6455 §7.4 and §8.1 ask, where a server may also echo the code back or
        pass it to the app as if it were valid."""

        async with connect(target, "/hold", lenient=True) as (client, connection_id):
            failure = await lenient_open_ready(client)
            if failure is not None:
                return failure
            await client.send_frame(Frame(Opcode.CLOSE, payload))
            client_view = await lenient_closing_view(client, answer=False)
        received = received_after_connect(await app_view(target, connection_id))
        # Codes only: the reasons are each library's own error messages, and the disconnect's key types are
        # probe-client-close-code-reason's.
        close = client_view["close"]
        if close is None:
            close_code: Any = "no close frame"
        else:
            close_code = close["code"] if close["code"] is not None else f"{close['payload_length']}-byte payload"
        if isinstance(received, list):
            disconnect: Any = received[0].get("code", "no code key") if received else "nothing received"
        else:
            disconnect = received
        return {"client": {"close code": close_code, "end": client_view["end"]}, "app": {"disconnect code": disconnect}}

    probe(
        f"probe-client-close-malformed-{variant}",
        f"The client sends a close frame with {meaning}: the server's close code, and what websocket.disconnect says.",
        "RFC 6455 §5.5.1, §7.4 and §8.1 (fail with 1002, or 1007 for a reason not in UTF-8); ASGI WebSocket: "
        "disconnect code",
    )(client_close_malformed)


for _variant, (_payload, _meaning) in MALFORMED_CLOSES.items():
    _register_client_close_malformed(_variant, _payload, _meaning)
