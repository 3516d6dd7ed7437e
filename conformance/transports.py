"""Whether a server offers WebSockets over HTTP/2, as a browser finds out (contract §11).

A browser opens a WebSocket over HTTP/2 only where the page's connection is
HTTP/2 and the server's SETTINGS carry ``SETTINGS_ENABLE_CONNECT_PROTOCOL = 1``
(RFC 8441 §3).  Anywhere else it opens it over HTTP/1.1.  So, for each server
and HTTP/2 transport, the harness asks what a browser would:

1. Does the server speak HTTP/2 there (ALPN ``h2`` over TLS, or the h2c preface)?
2. Does it advertise extended CONNECT?  Then it must serve WebSockets over it,
   and the scenarios run over that transport (:mod:`conformance.runner`).
3. If not, does the browser's fallback work: a WebSocket over HTTP/1.1 on the
   same address, TLS and all?

The answer is an :class:`Offer`: whether the scenarios run there, and what was
found, in the words the report's headline uses.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from asgi_ws.servers import Server

from .checks import Transport
from .h2client import H2Client
from .launcher import APP, HOST, RunningServer, Tls, run_server

__all__ = ["Offer", "offer"]

WAIT = 10.0  # seconds for the fallback's echo


@dataclass(frozen=True, slots=True)
class Offer:
    """What a server offers over one HTTP/2 transport."""

    served: bool  # it advertises extended CONNECT, so browsers open WebSockets over it
    found: str  # what was found, as a clause: "speaks HTTP/2 but does not advertise extended CONNECT; ..."


def offer(server: Server, transport: Transport, log_dir: Path, *, app: str = APP, echo_path: str = "/echo") -> Offer:
    """Start ``server`` with ``app`` (on TLS for ``h2``, HTTP/2 turned on where it has a switch) and find out
    what it offers over ``transport``."""
    tls = Tls.issued(log_dir / "tls") if transport == "h2" else None
    with run_server(server, log_dir, app=app, tls=tls, listen={"http2": True}) as running:
        return asyncio.run(_offer(running, transport, echo_path))


async def _offer(running: RunningServer, transport: Transport, echo_path: str) -> Offer:
    tls = running.tls.client() if transport == "h2" and running.tls is not None else None
    try:
        async with await H2Client.open(HOST, running.port, tls=tls) as client:
            if client.advertises_websockets:
                return Offer(True, "advertises extended CONNECT (RFC 8441)")
        spoken = "speaks HTTP/2 but does not advertise extended CONNECT"
    except Exception as exc:  # whatever an HTTP/1.1 server does with an HTTP/2 preface: close, 400, garbage
        spoken = f"does not speak HTTP/2 here ({_first_line(exc)})"
    return Offer(False, f"{spoken}; a browser falls back to HTTP/1.1, {await _fallback(running, echo_path)}")


async def _fallback(running: RunningServer, echo_path: str) -> str:
    """A browser's fallback: one echo over HTTP/1.1 at the same address, in words."""
    ssl = running.tls.client(alpn=["http/1.1"]) if running.tls is not None else None
    try:
        async with asyncio.timeout(WAIT), connect(running.url(echo_path), ssl=ssl, proxy=None) as ws:
            await ws.send("fallback")
            echoed = await ws.recv()
    except (OSError, TimeoutError, WebSocketException) as exc:
        return f"where the WebSocket failed ({_first_line(exc)})"
    with contextlib.suppress(Exception):
        await ws.close()
    return "where the WebSocket works" if echoed == "fallback" else f"where the echo came back as {echoed!r}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().partition("\n")[0] or type(exc).__name__
    return text[:100]
