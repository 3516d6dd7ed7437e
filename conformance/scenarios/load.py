"""Many clients at once, and clients that vanish among them (contract §5 "many clients", §7 resets).

- 50 clients in one chat room, all sending at once: every client gets every
  message, each sender's messages in the order sent, and all clients in the
  same order (the hub queues each message for every member before the next).
- 20 clients on ``/ws_broadcast``, all sending at once: everyone gets every
  other client's message and never its own.
- 50 clients echoing at once (generic).
- half of a room resets its TCP connections in the middle of a message: the
  other half is unaffected, and the connection count comes back down.

What varies from run to run (which sender the server happens to read first)
is never written down; only the facts that must hold whatever the order are.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from websockets.asyncio.client import ClientConnection
from websockets.typing import Data

from ..checks import Target, Transcript, scenario
from ..rawclient import RawClient
from .helpers import (
    BROADCAST_PREFIX,
    RAW_CLIENT,
    client,
    join_broadcast,
    join_group,
    join_room,
    raw_client,
    receive,
    receive_real,
    reset_mid_frame,
    settle,
)

__all__: list[str] = []  # scenarios register themselves; nothing here is for import

LOAD_WAIT = 30.0  # seconds for every client of a load scenario to get everything


async def _connect_all(
    stack: contextlib.AsyncExitStack, target: Target, path: str, count: int
) -> list[ClientConnection]:
    """``count`` clients on ``path``, connected concurrently, closed when ``stack`` is."""
    connecting = [stack.enter_async_context(client(target, path)) for _ in range(count)]
    return list(await asyncio.gather(*connecting))


async def _everyone_sends(
    clients: Sequence[ClientConnection], texts: Sequence[Sequence[str]], expect: int
) -> list[list[Data]]:
    """Client k sends ``texts[k]`` while every client reads ``expect`` real messages; what each read."""

    async def send(ws: ClientConnection, mine: Sequence[str]) -> None:
        for text in mine:
            await ws.send(text)

    async with asyncio.TaskGroup() as group:
        for ws, mine in zip(clients, texts, strict=True):
            group.create_task(send(ws, mine))
        reads = [group.create_task(receive_real(ws, expect, within=LOAD_WAIT)) for ws in clients]
    return [read.result() for read in reads]


def _kept_each_senders_order(received: Sequence[Data], texts: Sequence[Sequence[str]]) -> bool:
    """Whether every sender's messages appear in ``received`` in the order that sender sent them."""
    for mine in texts:
        sent = set(mine)
        if [message for message in received if message in sent] != list(mine):
            return False
    return True


def _one_order(received: Sequence[Sequence[Data]]) -> bool:
    """Whether any two clients saw the messages they both got in the same order."""
    for index, first in enumerate(received):
        for second in received[index + 1 :]:
            in_both = set(first) & set(second)
            if [m for m in first if m in in_both] != [m for m in second if m in in_both]:
                return False
    return True


@scenario(
    "chat-50-clients",
    "50 clients in one room all send at once: every client gets every message, in one order for all.",
    "contract §5 many clients at once, §1 chat",
)
async def chat_50_clients(target: Target) -> Transcript:
    """50 clients, 4 messages each, sent concurrently: 200 messages, 10,000 deliveries."""
    clients_count, each = 50, 4
    texts = [[f"client {number} message {index}" for index in range(each)] for number in range(clients_count)]
    everything = sorted(text for mine in texts for text in mine)
    async with contextlib.AsyncExitStack() as stack:
        clients = await _connect_all(stack, target, "/ws/chat/load-50", clients_count)
        await join_room(clients, within=LOAD_WAIT)
        received = await _everyone_sends(clients, texts, len(everything))
    return {
        "clients": clients_count,
        "messages": len(everything),
        "every client got every message": all(sorted(map(str, got)) == everything for got in received),
        "each sender's order kept": all(_kept_each_senders_order(got, texts) for got in received),
        "one order for all": _one_order(received),
    }


@scenario(
    "broadcast-20-clients",
    "20 clients on /ws_broadcast all send at once: each gets every other client's message and never its own.",
    "contract §5 many clients at once, §1 /ws_broadcast",
)
async def broadcast_20_clients(target: Target) -> Transcript:
    """20 clients, one message each, sent concurrently."""
    clients_count = 20
    texts = [[f"from {number}"] for number in range(clients_count)]
    others = [
        sorted(BROADCAST_PREFIX + text for sender, mine in enumerate(texts) if sender != number for text in mine)
        for number in range(clients_count)
    ]
    async with contextlib.AsyncExitStack() as stack:
        clients = await _connect_all(stack, target, "/ws_broadcast", clients_count)
        await join_broadcast(clients[0], [ws.send for ws in clients[1:]], within=LOAD_WAIT)
        received = await _everyone_sends(clients, texts, clients_count - 1)
    return {
        "clients": clients_count,
        "every client got every other message, not its own": all(
            sorted(map(str, got)) == expected for got, expected in zip(received, others, strict=True)
        ),
        "one order for all": _one_order(received),
    }


@scenario(
    "echo-50-clients",
    "50 clients echo 20 messages each at the same time: every answer arrives, in order, on its own connection.",
    "contract §5 many clients at once, §1 /echo",
    generic=True,
)
async def echo_50_clients(target: Target) -> Transcript:
    """Each client sends all its messages, then reads all its answers; all clients at once."""
    clients_count, each = 50, 20

    async def converse(ws: ClientConnection, number: int) -> bool:
        texts = [f"client {number} message {index}" for index in range(each)]
        for text in texts:
            await ws.send(text)
        return await receive(ws, each, within=LOAD_WAIT) == texts

    async with contextlib.AsyncExitStack() as stack:
        clients = await _connect_all(stack, target, target.echo_path, clients_count)
        answered = await asyncio.gather(*(converse(ws, number) for number, ws in enumerate(clients)))
    return {"clients": clients_count, "messages each": each, "every client answered in order": all(answered)}


@scenario(
    "resets-amid-chat",
    "Half of a room resets TCP mid-message; the other half is unaffected and the connection count comes back down.",
    "contract §5 abrupt TCP resets, §7 resets leave no trace",
    racy=(
        "Which messages reach a client that resets is timing. Only the survivors' messages are recorded, and "
        "the counts are read after /healthz has settled (polled, up to a bound)."
    ),
    http1_only=RAW_CLIENT,
)
async def resets_amid_chat(target: Target) -> Transcript:
    """5 well-behaved clients and 5 raw clients in one room; the raw ones send half a frame and reset."""
    path, survivors_count, resetters_count = "/ws/chat/resets", 5, 5
    settled_before = await settle(target)
    async with contextlib.AsyncExitStack() as stack:
        survivors = await _connect_all(stack, target, path, survivors_count)
        resetters: list[RawClient] = [
            await stack.enter_async_context(raw_client(target, path)) for _ in range(resetters_count)
        ]
        await join_room(survivors)
        await join_group(survivors[0], [raw.send_text for raw in resetters])
        await survivors[0].send("before")
        before = [await receive_real(ws, 1) for ws in survivors]
        for raw in resetters:
            await reset_mid_frame(raw)
        survivors_only = await settle(target, survivors_count)
        await survivors[-1].send("after")
        after = [await receive_real(ws, 1) for ws in survivors]
    return {
        "settled before": settled_before,
        "survivors got the message before": all(got == ["before"] for got in before),
        "connections down to the survivors": survivors_only,
        "survivors got the message after": all(got == ["after"] for got in after),
        "connections down to zero": await settle(target),
        "rooms": (await asyncio.to_thread(target.server.health))["rooms"],
    }
