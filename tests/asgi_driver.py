"""Drive the ASGI callable in-process, with no server: the unit tests' client.

:func:`connect` runs one ``websocket`` scope of an app in a task (the scope of
:func:`bench.scope.websocket_scope`, which the benchmarks call the app with
too) and gives the test a :class:`WebSocketDriver` that plays the server's part: it puts receive
events in (``websocket.connect``, ``websocket.receive``,
``websocket.disconnect``) and takes the app's send events out.

Every event the app sends is checked against the ASGI WebSocket lifecycle, the
transition table of :mod:`asgi_ws.lifecycle` (the app checks itself against
the same table; the driver checks what actually reached the "server").  An
event that is not valid in the connection's current state, a close reason over
123 bytes, or a ``receive()`` after ``websocket.disconnect``, is recorded in
``violations``, and :func:`connect` fails the test on exit if there are any.
So every unit test that uses the driver also checks the app's protocol
discipline (``docs/contract.md`` §3 "Portability rules", §7).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc

from asgi_ws.lifecycle import ProtocolError, State, after_send
from bench.scope import websocket_scope

__all__ = ["DENIAL", "WebSocketDriver", "call_http", "connect"]

Event = dict[str, Any]
ASGIApp = Callable[..., Any]

# The extension that lets an app refuse a handshake with a real HTTP response.
DENIAL: dict[str, dict[object, object]] = {"websocket.http.response": {}}


# How long a test waits for the app before calling it hung.  Generous on
# purpose: it only stops a broken test from hanging, it measures nothing.
PATIENCE = 10.0


class WebSocketDriver:
    """The server's side of one in-process WebSocket connection."""

    def __init__(self, app: ASGIApp, scope: dict[str, Any]) -> None:
        self.app = app  # the ASGI callable under test
        self.scope = scope  # the scope it is called with
        self.state = State.CONNECTING  # the app's side of the conversation, moved by its events
        self.violations: list[str] = []  # protocol errors the app made
        self.sent: list[Event] = []  # every event the app sent, in order
        self.attempted: list[Event] = []  # every event the app tried to send, failed sends included
        self.disconnect_sent = False  # websocket.disconnect has been given to the app
        self.app_done = anyio.Event()  # set when the app's call returns
        self.app_error: BaseException | None = None  # what escaped the app, if anything
        self.send_gate: anyio.Event | None = None  # while set, the app's send() waits (a client not reading)
        self.fail_sends: Exception | None = None  # while set, the app's send() raises this
        self.answer_close = True  # the client answers the app's close: websocket.disconnect follows
        self._to_app_in, self._to_app_out = anyio.create_memory_object_stream[Event](math.inf)
        self._from_app_in, self._from_app_out = anyio.create_memory_object_stream[Event](math.inf)

    # The ASGI callables given to the app

    async def _receive(self) -> Event:
        if self.disconnect_sent and self._to_app_out.statistics().current_buffer_used == 0:
            self.violations.append("receive() called after websocket.disconnect")
        return await self._to_app_out.receive()

    async def _send(self, event: Event) -> None:
        self.attempted.append(event)
        if self.send_gate is not None:
            await self.send_gate.wait()
        if self.fail_sends is not None:
            raise self.fail_sends
        state = self.state
        self._check(event)
        self.sent.append(event)
        self._from_app_in.send_nowait(event)
        if (
            self.answer_close
            and state is State.ACCEPTED
            and event["type"] == "websocket.close"
            and not self.disconnect_sent
        ):
            # The client answers the close frame, as uvicorn reports at once.
            self.disconnect(event.get("code", 1000))

    def _check(self, event: Event) -> None:
        kind = event.get("type")
        try:
            next_state = after_send(self.state, event)
        except ProtocolError as exc:
            self.violations.append(str(exc))
            return
        if kind == "websocket.http.response.start" and "websocket.http.response" not in (
            self.scope.get("extensions") or {}
        ):
            self.violations.append("denial response without the websocket.http.response extension")
        if kind == "websocket.close" and len((event.get("reason") or "").encode()) > 123:
            self.violations.append(f"close reason over 123 bytes: {event!r}")
        self.state = next_state

    async def run_app(self) -> None:
        try:
            await self.app(self.scope, self._receive, self._send)
        except Exception as exc:  # recorded, and asserted on by connect()
            self.app_error = exc
        finally:
            self.app_done.set()

    # What a test does

    def put(self, event: Event) -> None:
        self._to_app_in.send_nowait(event)

    def send_text(self, text: str) -> None:
        self.put({"type": "websocket.receive", "text": text, "bytes": None})

    def send_bytes(self, data: bytes) -> None:
        self.put({"type": "websocket.receive", "bytes": data, "text": None})

    def disconnect(self, code: int = 1000) -> None:
        self.disconnect_sent = True
        self.put({"type": "websocket.disconnect", "code": code, "reason": ""})

    async def receive(self) -> Event:
        """The next event the app sent, failing the test if none comes."""
        with anyio.fail_after(PATIENCE):
            return await self._from_app_out.receive()

    async def receive_text(self) -> str:
        text: str = await self._receive_data("text")
        return text

    async def receive_bytes(self) -> bytes:
        data: bytes = await self._receive_data("bytes")
        return data

    async def _receive_data(self, key: str) -> Any:
        """The ``key`` of the app's next event, failing the test unless it is a ``websocket.send`` with ``key`` set."""
        event = await self.receive()
        assert event["type"] == "websocket.send", event
        assert event.get(key) is not None, event
        return event[key]

    async def receive_close(self) -> tuple[int, str]:
        """Skip data frames until the app's ``websocket.close``; its code and reason."""
        while True:
            event = await self.receive()
            if event["type"] == "websocket.close":
                return event.get("code", 1000), event.get("reason") or ""
            assert event["type"] == "websocket.send", event

    async def accept(self) -> None:
        """Play the handshake and require the app to accept."""
        self.put({"type": "websocket.connect"})
        event = await self.receive()
        assert event["type"] == "websocket.accept", event

    async def refusal(self) -> tuple[int, bytes]:
        """Play the handshake and require a denial response; its status and body."""
        self.put({"type": "websocket.connect"})
        start = await self.receive()
        assert start["type"] == "websocket.http.response.start", start
        body = b""
        while True:
            event = await self.receive()
            assert event["type"] == "websocket.http.response.body", event
            body += event.get("body", b"")
            if not event.get("more_body", False):
                return start["status"], body

    def unread(self) -> int:
        """Receive events the app has not taken yet."""
        return self._to_app_out.statistics().current_buffer_used

    def pending(self) -> list[Event]:
        """Events the app has sent that the test has not taken yet."""
        events = []
        while True:
            try:
                events.append(self._from_app_out.receive_nowait())
            except anyio.WouldBlock:
                return events

    async def wait_app_done(self) -> None:
        with anyio.fail_after(PATIENCE):
            await self.app_done.wait()

    def close_streams(self) -> None:
        for stream in (self._to_app_in, self._to_app_out, self._from_app_in, self._from_app_out):
            stream.close()


@asynccontextmanager
async def connect(
    app: ASGIApp,
    path: str = "/ws",
    *,
    query_string: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    extensions: dict[str, dict[object, object]] | None = None,
    accept: bool = True,
) -> AsyncIterator[WebSocketDriver]:
    """Run one websocket scope of ``app``; accept it unless ``accept=False``.

    On exit the app is sent ``websocket.disconnect`` if it is still running,
    it must then return, and the test fails if it raised or broke the protocol.
    """
    # The server offers the denial response unless the test says otherwise: most refusals are tested with it.
    scope = websocket_scope(
        path, query_string=query_string, headers=headers, extensions=DENIAL if extensions is None else extensions
    )
    driver = WebSocketDriver(app, scope)
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(driver.run_app)
        try:
            if accept:
                await driver.accept()
            yield driver
            # Like a server: the client leaves, or answers the app's close; either way
            # the app hears websocket.disconnect, once.
            if not driver.app_done.is_set() and not driver.disconnect_sent:
                driver.disconnect()
            driver.send_gate = None
            await driver.wait_app_done()
        finally:
            task_group.cancel_scope.cancel()
            driver.close_streams()
    assert driver.app_error is None, f"the app raised {driver.app_error!r}"
    assert driver.violations == [], driver.violations


async def call_http(app: ASGIApp, path: str, method: str = "GET") -> tuple[int, dict[bytes, bytes], bytes]:
    """One HTTP request to ``app`` in-process: status, headers, body."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    sent: list[Event] = []

    async def receive() -> Event:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(event: Event) -> None:
        sent.append(event)

    with anyio.fail_after(PATIENCE):
        await app(scope, receive, send)
    start, *bodies = sent
    assert start["type"] == "http.response.start", start
    assert all(event["type"] == "http.response.body" for event in bodies), bodies
    assert not bodies[-1].get("more_body", False)
    return start["status"], dict(start["headers"]), b"".join(event.get("body", b"") for event in bodies)
