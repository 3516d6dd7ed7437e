"""Property tests of the ASGI callable, no server: random event sequences never break it (contract §7).

Hypothesis writes the scripts.  One script is one connection to any path,
including bad ones, with or without the denial extension, followed by a random
sequence of what a server could hand the app or do to it:

- text and binary messages of random size and content: invalid JSON, empty
  strings, messages past the size limit, lone surrogates (which a server never
  produces, but a direct ASGI caller could);
- messages from *other* connections in the same room or broadcast group,
  interleaved with the script's own;
- bursts of short messages with no pause, which on ``/stream`` are requests
  arriving while a push runs;
- a client that stops reading (the app's ``send()`` blocks) and starts again;
- a disconnect at any point, with any code.

The properties, checked for every script:

1. no exception escapes the callable (the driver records one as ``app_error``);
2. every event the app sends is valid for the connection's state: the driver
   checks each against the ASGI state machine (``tests/asgi_driver.py``);
3. once every connection has ended, the hub holds no trace of any of them: no
   admitted connection, no room or broadcast membership (and so no outbox
   reachable from it), the event loop is back to the tasks it had before, and
   so is the app's own count of its tasks (``asgi_ws_app_tasks``).

Each example runs in an event loop of its own, on asyncio and on trio.  The
limits are set low so that short scripts reach them: size, rate, outbox
(messages and bytes) and pushes waiting.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asgi_ws.app import create_app
from asgi_ws.runtime import app_task_count, task_count
from asgi_ws.settings import Settings
from tests.asgi_driver import DENIAL, WebSocketDriver, connect

# outbox_bytes 600: three broadcasts near the size limit fill it before four messages do;
# max_pending_pushes 1: two /stream requests during a stalled push are one too many.
LIMITS = Settings(
    max_message_size=256,
    rate_limit=50,
    rate_burst=12,
    outbox_size=4,
    outbox_bytes=600,
    max_pending_pushes=1,
    idle_timeout=0,
)
FAN_OUT_PATHS = ["/ws_broadcast", "/ws/chat/r", "/ws/chat"]  # where other connections' messages arrive
PATHS = ["/ws", "/echo", "/ws_json", "/stream", *FAN_OUT_PATHS, "/nope", "/ws/chat/bad room", "/ws/chat/r/deeper"]
STREAM_QUERIES = [b"count=1", b"count=3", b"count=40", b"count=0", b"count=x", b"count=1&count=2"]

texts = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "{bad", "[1, 2", '{"message": "m"}', '{"message": 5}', "NaN", '{"a": Infinity}', "null"]),
    st.sampled_from(["\ud800", "a\udfffb", '{"message": "\ud83d"}']),  # lone surrogates
    st.integers(min_value=200, max_value=2_000).map(lambda size: "é" * size),  # around the 256-byte limit
)
binaries = st.one_of(st.binary(max_size=40), st.integers(min_value=250, max_value=400).map(lambda size: b"\0" * size))
steps = st.one_of(
    st.tuples(st.just("text"), texts),
    st.tuples(st.just("bytes"), binaries),
    st.tuples(st.just("peer"), texts),  # another connection in the same room says something
    st.tuples(st.just("burst"), st.integers(min_value=2, max_value=4)),  # short texts at once: /stream requests
    st.tuples(st.just("stall"), st.none()),  # the client stops reading
    st.tuples(st.just("resume"), st.none()),
    st.tuples(st.just("yield"), st.integers(min_value=1, max_value=5)),
    st.tuples(st.just("disconnect"), st.sampled_from([1000, 1001, 1005, 1006, 4000])),
)
scripts = st.fixed_dictionaries(
    {
        "path": st.sampled_from(PATHS),
        "query": st.sampled_from(STREAM_QUERIES),
        "denial": st.booleans(),
        "peers": st.integers(min_value=0, max_value=2),
        "steps": st.lists(steps, max_size=25),
    }
)


async def run_script(script: dict[str, Any]) -> dict[str, Any]:
    """Play ``script`` against a fresh app; what the app left behind once everything ended."""
    app = create_app(LIMITS)
    baseline, app_baseline = task_count(), app_task_count()
    fan_out = script["path"] in FAN_OUT_PATHS
    async with AsyncExitStack() as stack:
        peers = [
            await stack.enter_async_context(connect(app, script["path"]))
            for _ in range(script["peers"] if fan_out else 0)
        ]
        query = script["query"] if script["path"] == "/stream" else b""
        main = await stack.enter_async_context(
            connect(
                app, script["path"], query_string=query, extensions=DENIAL if script["denial"] else None, accept=False
            )
        )
        main.put({"type": "websocket.connect"})
        for step, value in script["steps"]:
            await play(step, value, main, peers)
            if main.disconnect_sent or main.app_done.is_set():
                break
        if main.send_gate is not None:
            main.send_gate.set()  # a stalled client reads again, so that it can see its close
    # Every connection has ended: connect() checked the app's errors and protocol on the way out.
    await anyio.lowlevel.checkpoint()
    return {
        "connections": app.hub.connections,
        "topics": app.hub.topic_count,
        "extra tasks": task_count() - baseline,
        "extra app tasks": app_task_count() - app_baseline,
    }


async def play(step: str, value: Any, main: WebSocketDriver, peers: list[WebSocketDriver]) -> None:
    if step == "text":
        main.send_text(value)
    elif step == "bytes":
        main.send_bytes(value)
    elif step == "peer" and peers:
        peers[len(value) % len(peers)].send_text(value)
    elif step == "burst":
        for number in range(value):
            main.send_text(str(number))
    elif step == "stall" and main.send_gate is None:
        main.send_gate = anyio.Event()
    elif step == "resume" and main.send_gate is not None:
        main.send_gate.set()
        main.send_gate = None
    elif step == "disconnect":
        main.disconnect(value)
    for _ in range(value if step == "yield" else 1):
        await anyio.lowlevel.checkpoint()  # let the app's tasks run


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=scripts)
def test_no_script_breaks_the_app_or_leaves_a_trace(backend: str, script: dict[str, Any]) -> None:
    left = anyio.run(run_script, script, backend=backend)
    assert left == {"connections": 0, "topics": 0, "extra tasks": 0, "extra app tasks": 0}
