"""Record what the app under test sees, from inside the server process (contract §5, "what the app saw").

A client can only report what arrived on the wire.  Some scenarios must also
show the app's side: the code in ``websocket.disconnect``, whether ``send()``
raised and with what, whether the app itself raised.  :class:`Observer` is an
ASGI middleware that wraps the app, watches its ``receive`` and ``send``, and
appends one JSON line per tagged WebSocket connection to a file when the app's
call returns.

The server runs ``conformance.observer:app``, which wraps the app named by
``CONFORMANCE_APP`` (``module:attr``) and writes to ``CONFORMANCE_OBSERVATIONS``.
Only connections whose handshake carries the ``x-conformance-id`` header are
recorded; everything passes through unchanged, exceptions included.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

__all__ = ["APP_ENV", "FILE_ENV", "Observer", "app", "summarise"]

APP_ENV = "CONFORMANCE_APP"
FILE_ENV = "CONFORMANCE_OBSERVATIONS"
HEADER = b"x-conformance-id"

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


def summarise(message: Message) -> dict[str, Any]:
    """An ASGI event reduced to what a transcript compares: its type, codes, and payload sizes."""
    summary: dict[str, Any] = {"type": message.get("type")}
    for key in ("code", "reason", "status"):
        if key in message:
            summary[key] = message[key]
    for key in ("text", "bytes", "body"):
        value = message.get(key)
        if value is not None:
            summary[key] = len(value)
    return summary


class Observer:
    """ASGI middleware: ``Observer(app, path)`` records tagged WebSocket connections to ``path``."""

    def __init__(self, app: ASGIApp, path: Path) -> None:
        self.app = app  # the app under test
        self.path = path  # JSON lines, appended

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        tag = _tag(scope) if scope["type"] == "websocket" else None
        if tag is None:
            await self.app(scope, receive, send)
            return
        record: dict[str, Any] = {"id": tag, "received": [], "sent": [], "send_errors": [], "app_error": None}

        async def observed_receive() -> Message:
            message = await receive()
            record["received"].append(summarise(message))
            return message

        async def observed_send(message: Message) -> None:
            try:
                await send(message)
            except Exception as exc:
                record["send_errors"].append({"event": message.get("type"), "error": type(exc).__name__})
                raise
            record["sent"].append(summarise(message))

        try:
            await self.app(scope, observed_receive, observed_send)
        except BaseException as exc:
            record["app_error"] = type(exc).__name__
            raise
        finally:
            with self.path.open("a") as file:
                file.write(json.dumps(record) + "\n")


def _tag(scope: MutableMapping[str, Any]) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == HEADER:
            tag: str = value.decode("latin-1")
            return tag
    return None


def _load(spec: str) -> ASGIApp:
    module_name, _, attribute = spec.partition(":")
    loaded: ASGIApp = getattr(importlib.import_module(module_name), attribute or "app")
    return loaded


def _from_env() -> Observer | None:
    if APP_ENV not in os.environ:
        return None
    return Observer(_load(os.environ[APP_ENV]), Path(os.environ[FILE_ENV]))


app = _from_env()
