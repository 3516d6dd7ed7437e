"""asgi_ws.lifecycle: the ASGI WebSocket states and the transition tables."""

from __future__ import annotations

import pytest

from asgi_ws.lifecycle import (
    RECEIVE_TRANSITIONS,
    SEND_TRANSITIONS,
    ProtocolError,
    State,
    after_receive,
    after_send,
    before_receive,
)

ACCEPT = {"type": "websocket.accept"}
TEXT = {"type": "websocket.send", "text": "hi", "bytes": None}
CLOSE = {"type": "websocket.close", "code": 1000}


def test_an_accepted_conversation_runs_through_the_states() -> None:
    state = after_receive(State.CONNECTING, {"type": "websocket.connect"})
    assert state is State.CONNECTING
    state = after_send(state, ACCEPT)
    assert state is State.ACCEPTED
    assert after_send(state, TEXT) is State.ACCEPTED
    assert after_receive(state, {"type": "websocket.receive", "text": "x"}) is State.ACCEPTED
    state = after_send(state, CLOSE)
    assert state is State.CLOSING
    assert after_receive(state, {"type": "websocket.receive", "text": "crossed"}) is State.CLOSING
    assert after_receive(state, {"type": "websocket.disconnect", "code": 1000}) is State.CLOSED


def test_refusals_end_the_conversation() -> None:
    assert after_send(State.CONNECTING, CLOSE) is State.CLOSED
    start = {"type": "websocket.http.response.start", "status": 404}
    state = after_send(State.CONNECTING, start)
    assert state is State.RESPONDING
    state = after_send(state, {"type": "websocket.http.response.body", "body": b"not", "more_body": True})
    assert state is State.RESPONDING
    assert after_send(state, {"type": "websocket.http.response.body", "body": b" found"}) is State.CLOSED


@pytest.mark.parametrize(
    ("state", "event", "message"),
    [
        (State.CONNECTING, TEXT, 'Cannot send "websocket.send" in state connecting: expected "websocket.accept" or'),
        (State.ACCEPTED, ACCEPT, 'Cannot send "websocket.accept" in state accepted'),
        (State.CLOSING, TEXT, 'Cannot send "websocket.send" in state closing: nothing is allowed there'),
        (State.CLOSED, CLOSE, 'Cannot send "websocket.close" in state closed'),
        (State.ACCEPTED, {"type": "websocket.send", "text": "a", "bytes": b"b"}, "exactly one of"),
        (State.ACCEPTED, {"type": "websocket.send"}, "exactly one of"),
    ],
)
def test_an_illegal_send_names_the_state_and_the_event(state: State, event: dict[str, object], message: str) -> None:
    with pytest.raises(ProtocolError, match=message.replace("(", r"\(")):
        after_send(state, event)


def test_receive_is_refused_once_closed_and_odd_server_events_change_nothing() -> None:
    with pytest.raises(ProtocolError, match='Cannot call "receive" once the connection is closed'):
        before_receive(State.CLOSED)
    before_receive(State.CLOSING)  # allowed: the app drains until the disconnect
    assert after_receive(State.ACCEPTED, {"type": "websocket.unknown"}) is State.ACCEPTED


def test_every_state_but_closed_can_be_left() -> None:
    origins = {state for state, _ in SEND_TRANSITIONS} | {state for state, _ in RECEIVE_TRANSITIONS}
    assert origins == set(State) - {State.CLOSED}
    targets = set(SEND_TRANSITIONS.values()) | set(RECEIVE_TRANSITIONS.values())
    assert State.CLOSED in targets
