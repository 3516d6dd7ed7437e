"""The ASGI WebSocket lifecycle, seen from the app: its states and the events that move between them.

Rules
-----
The ASGI HTTP & WebSocket spec (version 2.5, "WebSocket") gives an app one
conversation per ``websocket`` scope, in this order:

1. The app receives ``websocket.connect``: the client's handshake is waiting.
2. The app answers it once: ``websocket.accept``; or ``websocket.close``, which
   the server turns into an HTTP 403; or, where the scope's ``extensions`` list
   ``websocket.http.response``, a whole HTTP response
   (``websocket.http.response.start``, then ``.body`` events until one has
   ``more_body`` false).
3. After accept, the app sends ``websocket.send`` and receives
   ``websocket.receive`` in any order, until either side closes: the app with
   ``websocket.close``, the client (or the network) with the
   ``websocket.disconnect`` the app then receives.
4. After ``websocket.disconnect`` the app calls neither ``receive()`` (servers
   differ on what it does: some return another disconnect, some block for
   ever) nor ``send()`` (servers differ on that too: most raise, some return).

Theory of operation
-------------------
The rules are data: :data:`SEND_TRANSITIONS` and :data:`RECEIVE_TRANSITIONS`
map a state and an event type to the next state, as h11's ``_state.py`` does
for HTTP/1.1.  An event the app sends that is not in its table, or a
``receive()`` once the connection is closed, is an error of the app, raised as
:class:`ProtocolError` with a message that names the state and the event.
Nothing here does I/O: :class:`asgi_ws.connection.Connection` looks every event
up here before it lets it through, and the unit tests' in-memory server
(``tests/asgi_driver.py``) checks the app against the same tables.

The states are those of the app's side of one connection.  They are not the
states of the WebSocket protocol itself (RFC 6455 §4 and §7), which the server
keeps: the app never sees a ping, a close frame or a TCP reset, only the events
the server derives from them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

__all__ = [
    "RECEIVE_TRANSITIONS",
    "SEND_TRANSITIONS",
    "ProtocolError",
    "State",
    "after_receive",
    "after_send",
    "before_receive",
]


class State(enum.Enum):
    """One connection, as the app sees it through ASGI, is in one of these states."""

    CONNECTING = "connecting"  # the handshake waits for the app's answer to websocket.connect
    RESPONDING = "responding"  # the app is refusing it with an HTTP response, body still to come
    ACCEPTED = "accepted"  # messages flow both ways
    CLOSING = "closing"  # the app sent websocket.close and waits for websocket.disconnect
    CLOSED = "closed"  # nothing more to send: disconnected, refused, or the client is gone


S = State

# (state, type of the event the app sends) -> the state after it.
SEND_TRANSITIONS: Mapping[tuple[State, str], State] = {
    (S.CONNECTING, "websocket.accept"): S.ACCEPTED,
    (S.CONNECTING, "websocket.close"): S.CLOSED,  # before accept: the server answers HTTP 403
    (S.CONNECTING, "websocket.http.response.start"): S.RESPONDING,
    (S.RESPONDING, "websocket.http.response.body"): S.RESPONDING,  # CLOSED with the last body (more_body false)
    (S.ACCEPTED, "websocket.send"): S.ACCEPTED,
    (S.ACCEPTED, "websocket.close"): S.CLOSING,
}

# (state, type of the event the app receives) -> the state after it.
RECEIVE_TRANSITIONS: Mapping[tuple[State, str], State] = {
    (S.CONNECTING, "websocket.connect"): S.CONNECTING,
    (S.CONNECTING, "websocket.disconnect"): S.CLOSED,  # the client left before the app answered
    (S.ACCEPTED, "websocket.receive"): S.ACCEPTED,
    (S.ACCEPTED, "websocket.disconnect"): S.CLOSED,
    (S.CLOSING, "websocket.receive"): S.CLOSING,  # a message that crossed the app's close on the wire
    (S.CLOSING, "websocket.disconnect"): S.CLOSED,
}


class ProtocolError(RuntimeError):
    """The app sent or received an event that its connection's state does not allow: a bug in the app."""


def after_send(state: State, event: Mapping[str, object]) -> State:
    """The state after the app sends ``event`` in ``state``; raises :class:`ProtocolError` if it may not."""
    kind = str(event.get("type"))
    next_state = SEND_TRANSITIONS.get((state, kind))
    if next_state is None:
        raise ProtocolError(f'Cannot send "{kind}" in state {state.value}: {_expected(SEND_TRANSITIONS, state)}.')
    if kind == "websocket.send" and (event.get("text") is None) == (event.get("bytes") is None):
        raise ProtocolError('A "websocket.send" event needs exactly one of "text" and "bytes" not None.')
    if kind == "websocket.http.response.body" and not event.get("more_body", False):
        return State.CLOSED
    return next_state


def before_receive(state: State) -> None:
    """Raise :class:`ProtocolError` if the app may not call ``receive()`` in ``state``."""
    if state is State.CLOSED:
        raise ProtocolError('Cannot call "receive" once the connection is closed (disconnected, refused or gone).')


def after_receive(state: State, event: Mapping[str, object]) -> State:
    """The state after the app receives ``event`` in ``state``.

    What the server sends is the server's business: an event the table does
    not know for ``state`` leaves the state as it is, and the app ignores it.
    """
    return RECEIVE_TRANSITIONS.get((state, str(event.get("type"))), state)


def _expected(table: Mapping[tuple[State, str], State], state: State) -> str:
    allowed = [f'"{kind}"' for (origin, kind) in table if origin is state]
    if not allowed:
        return "nothing is allowed there"
    return "expected " + " or ".join(allowed)
