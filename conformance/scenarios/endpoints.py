"""Every WebSocket endpoint of contract §1, answered exactly as its table says.

One scenario per row and behaviour: ``/ws`` (text with its prefix, binary
unchanged), ``/echo`` (both unchanged; generic, so any app's echo endpoint can
be compared), ``/ws_json`` (values wrapped, invalid JSON answered and the
connection kept, binary closed with 4400), ``/ws_broadcast`` (every other
client, never the sender), chat (everyone in the room, ``lobby`` by default,
rooms isolated), ``/stream`` (the default 10,000 messages, ``count`` and the
JSON label), and binary on every text-only endpoint (4400).

Messages are recorded as the client received them, to the character: the
formats are the contract.  Where a client must receive *nothing*, the scenario
proves it by order, never by waiting: a later message is sent, and it must be
the next one to arrive.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.typing import Data

from ..checks import Target, Transcript, scenario
from .helpers import WAIT, client, join_broadcast, join_room, payload, receive, receive_real, sequence, until_close

__all__: list[str] = []  # scenarios register themselves; nothing here is for import

TEXTS = ["hello", "", "  spaces, tabs\tand\nnewlines  ", "héllo wörld ✓ 日本語 🎉"]
DATA = [b"\x00\x01\x02\xff", b"", bytes(range(256))]
# Sent after the messages of a round trip; every endpoint's answer to it contains it (it is valid JSON too).
LAST = '"last message"'


async def _answers(target: Target, path: str, messages: list[str] | list[bytes]) -> list[dict[str, Any]]:
    """Send the messages on one connection, then :data:`LAST`; every answer that came before LAST's.

    Answers come in order, so a message that got no answer shows as a shorter
    list, without waiting for an answer that might never come.
    """
    async with client(target, path) as ws:
        for message in messages:
            await ws.send(message)
        await ws.send(LAST)
        answers = []
        async with asyncio.timeout(WAIT):
            while not _answers_last(answer := await ws.recv()):
                answers.append(payload(answer))
        return answers


def _answers_last(answer: Data) -> bool:
    return isinstance(answer, str) and LAST in answer


# /ws and /echo


@scenario("ws-text-reply", "/ws answers text t with 'Message text was: t'.", "contract §1 /ws")
async def ws_text_reply(target: Target) -> Transcript:
    """Plain, empty, whitespace-only and non-ASCII text, each answered with the prefix."""
    return {"answers": await _answers(target, "/ws", TEXTS)}


@scenario("ws-binary-echo", "/ws answers binary with the same bytes.", "contract §1 /ws")
async def ws_binary_echo(target: Target) -> Transcript:
    """A few bytes, no bytes, and every byte value: each echoed as binary, unchanged."""
    return {"answers": await _answers(target, "/ws", DATA)}


@scenario("echo-text", "The echo endpoint answers text with the same text.", "contract §1 /echo", generic=True)
async def echo_text(target: Target) -> Transcript:
    """Text echoed unchanged, all sent before the first answer is read."""
    return {"answers": await _answers(target, target.echo_path, TEXTS)}


@scenario("echo-binary", "The echo endpoint answers binary with the same bytes.", "contract §1 /echo", generic=True)
async def echo_binary(target: Target) -> Transcript:
    """Binary echoed unchanged, all sent before the first answer is read."""
    return {"answers": await _answers(target, target.echo_path, DATA)}


# /ws_json


JSON_VALUES: list[Any] = [{"a": 1, "b": [1, 2.5, {"c": None}]}, [1, "two", False], "a string", 42, -0.5, True, None]


@scenario("json-values", "/ws_json wraps every JSON value in {'message', 'data'}.", "contract §1 /ws_json")
async def json_values(target: Target) -> Transcript:
    """Objects, arrays, strings, numbers, booleans and null; the answers as the client got them."""
    answers = await _answers(target, "/ws_json", [json.dumps(value) for value in JSON_VALUES])
    return {"answers": answers}


@scenario(
    "json-invalid-stays-open",
    "/ws_json answers invalid JSON with an invalid_json error and keeps the connection open.",
    "contract §1 /ws_json",
)
async def json_invalid_stays_open(target: Target) -> Transcript:
    """Three kinds of invalid JSON, then a valid value on the same connection."""
    return {"answers": await _answers(target, "/ws_json", ["{bad", "", "NaN", '{"still": "open"}'])}


@scenario(
    "json-binary-4400", "/ws_json closes a binary message with 4400 'unsupported data'.", "contract §1, §3 binary"
)
async def json_binary_4400(target: Target) -> Transcript:
    """A valid value first (so the connection works), then a binary frame."""
    async with client(target, "/ws_json") as ws:
        await ws.send("1")
        answer = payload((await receive(ws, 1))[0])
        await ws.send(b"{}")
        return {"answer": answer, "after_binary": await until_close(ws)}


# /ws_broadcast and chat


async def _take_turns(
    clients: dict[str, ClientConnection], turns: list[tuple[str, str]], delivered_to: Callable[[str], list[str]]
) -> Transcript:
    """Each turn, one client sends; every client ``delivered_to(sender)`` names reads one message.

    A turn ends when its message has arrived everywhere, so no two messages
    race and every client's list is in a deterministic order.
    """
    seen: dict[str, list[dict[str, Any]]] = {name: [] for name in clients}
    for sender, text in turns:
        await clients[sender].send(text)
        for name in delivered_to(sender):
            seen[name].extend(payload(message) for message in await receive_real(clients[name], 1))
    return seen


@scenario(
    "broadcast-others-only",
    "/ws_broadcast sends 'New message: t' to every other client and nothing to the sender.",
    "contract §1 /ws_broadcast",
)
async def broadcast_others_only(target: Target) -> Transcript:
    """Three clients take turns.  Had a sender been sent its own message, it would come before the next turn's."""
    path = "/ws_broadcast"
    async with client(target, path) as a, client(target, path) as b, client(target, path) as c:
        clients = {"a": a, "b": b, "c": c}
        await join_broadcast(a, [b.send, c.send])
        turns = [("a", "from a ✓"), ("b", "from b"), ("c", "from c"), ("a", "end")]
        return await _take_turns(clients, turns, lambda sender: [name for name in clients if name != sender])


@scenario("chat-room-everyone", "A chat message reaches everyone in the room, the sender included.", "contract §1 chat")
async def chat_room_everyone(target: Target) -> Transcript:
    """Three clients in one room take turns; every message reaches all three."""
    path = "/ws/chat/everyone"
    async with client(target, path) as a, client(target, path) as b, client(target, path) as c:
        clients = {"a": a, "b": b, "c": c}
        await join_room(list(clients.values()))
        turns = [("a", "hello, room ✓"), ("b", "from b"), ("c", "from c")]
        return await _take_turns(clients, turns, lambda sender: list(clients))


@scenario("chat-lobby-default", "/ws/chat is the room 'lobby', the same as /ws/chat/lobby.", "contract §1 chat")
async def chat_lobby_default(target: Target) -> Transcript:
    """One client on each path; each one's message reaches both."""
    async with client(target, "/ws/chat") as bare, client(target, "/ws/chat/lobby") as named:
        clients = {"bare": bare, "named": named}
        await join_room(list(clients.values()))
        turns = [("bare", "from /ws/chat"), ("named", "from /ws/chat/lobby")]
        return await _take_turns(clients, turns, lambda sender: list(clients))


@scenario("chat-rooms-isolated", "A message in one chat room never reaches another room.", "contract §1 chat")
async def chat_rooms_isolated(target: Target) -> Transcript:
    """Room b speaks, then room a: had b's message leaked into a, it would be a's first message."""
    async with client(target, "/ws/chat/isolated-a") as a, client(target, "/ws/chat/isolated-b") as b:
        clients = {"a": a, "b": b}
        turns = [("b", "only for b"), ("a", "only for a"), ("b", "b again")]
        return await _take_turns(clients, turns, lambda sender: [sender])


# /stream


@scenario(
    "stream-default-10000",
    "/stream pushes 10,000 numbered messages per request, complete and in order.",
    "contract §1 /stream",
)
async def stream_default_10000(target: Target) -> Transcript:
    """A plain request, then a JSON-labelled one on the same connection."""
    count = 10_000
    async with client(target, "/stream") as ws:
        await ws.send("go")
        plain = await receive(ws, count, within=30.0)
        await ws.send('{"message": "next"}')
        labelled = await receive(ws, count, within=30.0)
    return {
        "plain": sequence(plain, [str(number) for number in range(1, count + 1)]),
        "labelled": sequence(
            labelled,
            [{"message": f"next - {number}", "number": number} for number in range(1, count + 1)],
            json.loads,
        ),
    }


@scenario(
    "stream-count-and-label",
    "/stream?count=N pushes N messages, plain numbers or labelled JSON, one request after another.",
    "contract §1 /stream",
)
async def stream_count_and_label(target: Target) -> Transcript:
    """count=3: a non-ASCII label, a plain request, and requests whose "message" is not a string."""
    requests = [json.dumps({"message": "héllo ✓"}, ensure_ascii=False), "plain", '{"message": 5}', '["message"]']
    async with client(target, "/stream?count=3") as ws:
        pushes = []
        for request in requests:
            await ws.send(request)
            pushes.append([payload(message) for message in await receive(ws, 3)])
    return {"pushes": pushes}


# Binary where only text is accepted


@scenario(
    "binary-on-text-endpoints-4400",
    "Binary on /ws_broadcast, chat and /stream closes the connection with 4400 'unsupported data'.",
    "contract §1 binary, §3 binary frame",
)
async def binary_on_text_endpoints_4400(target: Target) -> Transcript:
    """One connection per text-only endpoint (other than /ws_json), each sent one binary frame."""
    transcript: Transcript = {}
    for path in ["/ws_broadcast", "/ws/chat/binary", "/stream?count=1"]:
        async with client(target, path) as ws:
            await ws.send(b"binary")
            transcript[path] = await until_close(ws)
    return transcript
