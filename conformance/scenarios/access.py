"""Publish ids and acks, access tokens, and presence, as a client sees them (contract §8.1, §8.2, §10).

- ``feed-publish-ack``: a publish with an id is numbered once and acked to its
  sender; the same id again, from a new connection, is acked with the first
  number and not numbered again, as a reader of the room shows;
- ``token-refusals``: with ``ASGI_WS_TOKEN_SECRET`` set, every bad token is
  refused before accept with its status and a JSON body naming why (a bare
  403 where the server offers no denial response), and a good one is let in;
- ``token-from``: with tokens, a chat message and a feed message say who sent
  them, from the token;
- ``presence-join-leave``: a watcher gets the members, then a join and a leave,
  once per subject however many connections it has.

Each uses rooms of its own, so offsets start at 1 and the transcript is the
same on every run; the feed's random epochs are named ``E1``... as in
:mod:`conformance.scenarios.feed`, and ``anonymous-`` subjects are not used.
The tokens are minted at run time with the secret the scenario's server runs
with, each valid for ten minutes, so no transcript holds one.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
from typing import Any

import jwt
from websockets.asyncio.client import ClientConnection

from asgi_ws.access import mint_token

from ..checks import Target, Transcript, scenario
from .feed import Epochs, _read
from .helpers import client, handshake, receive

__all__ = ["TOKENS"]

SECRET = "the-conformance-harness-secret-of-32-bytes-or-more"
TOKENS = {"ASGI_WS_TOKEN_SECRET": SECRET}  # the settings of the token scenarios' server
LIFETIME = 600  # seconds every token of a scenario is valid


def _token(subject: str, rooms: list[str]) -> str:
    return mint_token(SECRET, subject, rooms, LIFETIME)


def _with(path: str, token: str, **query: str) -> str:
    extra = "".join(f"&{name}={value}" for name, value in query.items())
    return f"{path}?token={token}{extra}"


async def _json(ws: ClientConnection, count: int) -> list[Any]:
    return [json.loads(text) for text in await receive(ws, count)]


@scenario(
    "feed-publish-ack",
    'A feed publish {"id", "data"} is numbered once and acked to its sender; the same id again, from a new '
    "connection, gets the same ack and is not numbered again.",
    "contract §8.1",
)
async def feed_publish_ack(target: Target) -> Transcript:
    epochs = Epochs()
    path = "/ws/feed/publish-ack"
    publish = json.dumps({"id": "m1", "data": "once"})
    async with client(target, path) as reader:
        async with client(target, path) as sender:
            await sender.send(publish)
            # The ack and the sender's own copy come in either order (contract §8.1): sorted, by kind.
            first = sorted(await _read(epochs, sender, 2), key=lambda message: "ack" in message)
        async with client(target, path) as again:
            await again.send(publish)
            resent = await _read(epochs, again, 1)
            await again.send(json.dumps({"id": "m2", "data": "next"}))
            after = sorted(await _read(epochs, again, 2), key=lambda message: "ack" in message)
        room = await _read(epochs, reader, 2)
    return {"sender": first, "resent, new connection": resent, "then m2": after, "reader": room}


def tampered(token: str, claims: dict[str, Any]) -> str:
    """``token`` with its claims replaced by ``claims`` and its signature kept: the forgery tried first."""
    header, _, signature = token.split(".")
    return f"{header}.{_base64url_json(claims)}.{signature}"


def unsigned(claims: dict[str, Any]) -> str:
    """A token of ``claims`` with ``"alg": "none"`` and no signature, which PyJWT will not make by accident."""
    return f"{_base64url_json({'alg': 'none', 'typ': 'JWT'})}.{_base64url_json(claims)}."


def _base64url_json(document: dict[str, Any]) -> str:
    """One part of a JWT: ``document`` as JSON, base64url without padding (RFC 7515)."""
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


@scenario(
    "token-refusals",
    "With access tokens on, a room without a token, or with a malformed, tampered, expired, wrong-room or "
    "unsigned one, is refused before accept: 401/403 and a JSON reason, or a bare 403 without the extension.",
    "contract §10, §3 rejections",
    settings=TOKENS,
)
async def token_refusals(target: Target) -> Transcript:
    path = "/ws/chat/team-red"
    good = _token("alice", ["team-*"])
    claims = {"sub": "alice", "exp": int(time.time()) + LIFETIME, "rooms": ["team-*"]}
    expired = jwt.encode({**claims, "exp": int(time.time()) - 1}, SECRET, algorithm="HS256")
    cases = {
        "missing": path,
        "malformed": _with(path, "not.a.jwt"),
        "tampered": _with(path, tampered(good, {**claims, "sub": "mallory", "rooms": ["*"]})),
        "expired": _with(path, expired),
        "wrong room": _with("/ws/chat/kitchen", good),
        "alg none": _with(path, unsigned(claims)),
        "good": _with(path, good),
        "echo, no token": "/echo",
    }
    return {case: await handshake(target, address) for case, address in cases.items()}


@scenario(
    "token-from",
    'With access tokens on, every room message says who sent it: chat as {"from", "data"}, the feed with "from" '
    "beside its offset, from the token and never from the client.",
    "contract §8.2, §10",
    settings=TOKENS,
)
async def token_from(target: Target) -> Transcript:
    epochs = Epochs()
    alice, bob = _token("alice", ["team-*"]), _token("bob", ["team-*"])
    async with (
        client(target, _with("/ws/chat/team-from", alice)) as a,
        client(target, _with("/ws/chat/team-from", bob)) as b,
    ):
        await a.send("hi")
        chat = await _json(b, 1)
        await b.send(json.dumps({"from": "mallory", "data": "not me"}))
        claimed = await _json(a, 1)
    async with client(target, _with("/ws/feed/team-from", bob)) as feed:
        await feed.send("numbered")
        numbered = await _read(epochs, feed, 1)
    return {"chat, bob reads": chat, "chat, a text that claims a sender": claimed, "feed": numbered}


@scenario(
    "presence-join-leave",
    "?presence=1 gives the members once, then a join and a leave per subject, however many connections "
    "it has; a member that does not watch is sent no event.",
    "contract §8.2",
    settings=TOKENS,
)
async def presence_join_leave(target: Target) -> Transcript:
    path = "/ws/chat/team-presence"
    tokens = {name: _token(name, ["team-*"]) for name in ("alice", "bob", "carol")}
    transcript: Transcript = {}
    async with contextlib.AsyncExitStack() as stack:
        carol = await stack.enter_async_context(client(target, _with(path, tokens["carol"])))
        await carol.send("carol is a member")  # her own echo back: she is in the room before alice comes
        await receive(carol, 1)
        alice = await stack.enter_async_context(client(target, _with(path, tokens["alice"], presence="1")))
        transcript["alice, first"] = await _json(alice, 1)
        async with client(target, _with(path, tokens["bob"], presence="1")) as bob:
            transcript["bob, first"] = await _json(bob, 1)
            transcript["alice, when bob comes"] = await _json(alice, 1)
            async with client(target, _with(path, tokens["bob"])) as bob_again:
                await bob_again.send("bob's second tab")
                transcript["alice, bob's second tab speaks"] = await _json(alice, 1)  # a message, no join
            await bob.send("one tab left")
            transcript["alice, bob's second tab gone"] = await _json(alice, 1)  # his message, no leave
        transcript["alice, when bob goes"] = await _json(alice, 1)
        await carol.send("carol again")
        # Bob's two messages, then her own: no presence event in between.
        transcript["carol, who does not watch"] = await _json(carol, 3)
    return transcript
