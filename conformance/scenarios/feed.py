"""The feed, ``/ws/feed/{room}``: numbered messages to every member, resumes served or not, bad ``since``.

- ``feed-offsets-everyone``: every member, the sender included, receives each
  message as ``{"offset", "epoch", "data"}``, offsets counting from 1;
- ``feed-resume-replay``: a client that comes back with ``?since=EPOCH:OFFSET``
  gets ``{"recovered": true, ...}``, then what it missed, then live messages,
  with no gap and no duplicate; one that missed nothing gets the control
  message alone;
- ``feed-resume-not-recovered``: a ``since`` of another epoch, or past the
  newest offset, gets ``{"recovered": false, ...}`` and live messages;
- ``feed-bad-since-400``: a malformed ``since`` is refused before accept (400
  with the extension, a bare 403 without).

Each scenario uses a room of its own, so its offsets start at 1 and the
transcript is the same on every run.  An epoch is random, so the transcript
names them ``E1``, ``E2``... in the order they first appear.  Every message is
recorded as its parsed JSON: the formats are the contract, and key order and
spacing in the JSON are the app's, the same under every server.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from websockets.asyncio.client import ClientConnection

from ..checks import Target, Transcript, scenario
from .helpers import client, handshake, receive

__all__: list[str] = []  # scenarios register themselves; nothing here is for import


class Epochs:
    """Names the random epochs of one scenario ``E1``, ``E2``... in the order they first appear."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}  # the server's epoch -> its name in the transcript

    def read(self, text: Any) -> dict[str, Any]:
        """One feed text as a transcript entry: its JSON, with the epoch named."""
        value: dict[str, Any] = json.loads(text)
        if isinstance(value.get("epoch"), str):
            value["epoch"] = self.names.setdefault(value["epoch"], f"E{len(self.names) + 1}")
        return value

    def real(self, name: str) -> str:
        """The server's epoch behind ``name``."""
        return next(epoch for epoch, known in self.names.items() if known == name)


async def _read(epochs: Epochs, ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    return [epochs.read(text) for text in await receive(ws, count)]


@scenario(
    "feed-offsets-everyone",
    "A feed message reaches every member, the sender included, as {offset, epoch, data}, offsets from 1.",
    "contract §8 wire format",
)
async def feed_offsets_everyone(target: Target) -> Transcript:
    """Three clients join one by one, each proven a member by its own message coming back; then they take turns.

    A client connects only once the one before it is a member, so it is sent exactly the messages after
    its own, and everything each client received is recorded: the room is new, so every offset is
    known in advance.
    """
    epochs = Epochs()
    path = "/ws/feed/offsets"
    seen: dict[str, list[dict[str, Any]]] = {}
    async with contextlib.AsyncExitStack() as stack:
        clients: dict[str, ClientConnection] = {}
        for name in ("a", "b", "c"):
            clients[name] = await stack.enter_async_context(client(target, path))
            seen[name] = []
            await clients[name].send(f"{name} joins ✓")
            for member, ws in clients.items():
                seen[member] += await _read(epochs, ws, 1)
        for name, text in [("b", "from b"), ("a", ""), ("c", '{"json": "as text"}')]:
            await clients[name].send(text)
            for member, ws in clients.items():
                seen[member] += await _read(epochs, ws, 1)
    return seen


async def _resume_after(target: Target, room: str, before: int, resumes: dict[str, tuple[str, int]]) -> Transcript:
    """A talker sends ``before`` messages to a new room; then clients resume, and the talker sends one more.

    ``resumes`` names each resuming client's ``since`` (``{epoch}`` is the room's epoch) and how many
    messages it reads before the last one is sent: its control message and its replay.  Everything each
    client read is recorded, the last message included.
    """
    epochs = Epochs()
    path = f"/ws/feed/{room}"
    transcript: Transcript = {}
    async with client(target, path) as talker, contextlib.AsyncExitStack() as stack:
        for number in range(1, before + 1):
            await talker.send(f"m{number}")
        transcript["talker"] = await _read(epochs, talker, before)
        clients = {"talker": talker}
        for name, (since, count) in resumes.items():
            since = since.format(epoch=epochs.real("E1"))
            clients[name] = await stack.enter_async_context(client(target, f"{path}?since={since}"))
            transcript[name] = await _read(epochs, clients[name], count)
        await talker.send(f"m{before + 1}")
        for name, ws in clients.items():
            transcript[name] += await _read(epochs, ws, 1)
    return transcript


@scenario(
    "feed-resume-replay",
    "A client back with ?since=EPOCH:OFFSET gets {recovered: true}, the messages it missed, then live ones.",
    "contract §8 resume",
)
async def feed_resume_replay(target: Target) -> Transcript:
    """Five messages; a client resumes from the second (three replayed), one from the fifth (none); a sixth is live."""
    return await _resume_after(target, "replay", 5, {"behind": ("{epoch}:2", 4), "current": ("{epoch}:5", 1)})


@scenario(
    "feed-resume-not-recovered",
    "A since of another epoch, or past the newest offset, gets {recovered: false} and then live messages.",
    "contract §8 resume",
)
async def feed_resume_not_recovered(target: Target) -> Transcript:
    """Two messages; then a client resumes from an epoch the room never had, one from offset 9 of the
    room's own epoch (it only reached 2), one from offset 0 (before the first: served, both replayed)."""
    resumes = {"other_epoch": ("another-epoch:1", 1), "ahead": ("{epoch}:9", 1), "from_zero": ("{epoch}:0", 3)}
    return await _resume_after(target, "not-recovered", 2, resumes)


@scenario(
    "feed-bad-since-400",
    "A malformed ?since= on a feed is refused before accept: 400 with the extension, 403 without.",
    "contract §8 resume, §3 rejections",
)
async def feed_bad_since_400(target: Target) -> Transcript:
    """Empty, no colon, no epoch, no offset, a negative, a decimal, a sign, twice, an epoch with a bad
    character or too long, an offset of 19 digits; then the good ones: the longest epoch, no since at all."""
    queries = [
        "since=",
        "since=abc",
        "since=:5",
        "since=e1:",
        "since=e1:-1",
        "since=e1:1.5",
        "since=e1:+1",
        "since=e1:1&since=e1:2",
        "since=e.1:1",
        "since=" + "e" * 33 + ":1",
        "since=e1:" + "9" * 19,
        "since=" + "e" * 32 + ":" + "9" * 18,
        "other=1",
    ]
    return {query: await handshake(target, f"/ws/feed/since?{query}") for query in queries}
