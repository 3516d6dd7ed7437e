"""Access tokens, pure: every way a token is refused, and what a valid one grants (contract §10)."""

from __future__ import annotations

import json

import jwt
import pytest

from asgi_ws import close_codes
from asgi_ws.access import Grant, check_token, mint_token
from asgi_ws.app import App
from conformance.scenarios.access import tampered, unsigned
from tests.asgi_driver import connect
from tests.conftest import MakeApp

SECRET = "a-test-secret-long-enough-for-hs512-too-which-wants-64-bytes-ok!"
NOW = 1_800_000_000.0


def token(claims: dict[str, object], secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


GOOD = {"sub": "alice", "exp": NOW + 60, "rooms": ["lobby", "team-*"]}


def test_a_valid_token_grants_its_subject_expiry_and_rooms() -> None:
    grant = check_token(token(GOOD), SECRET, "lobby", now=NOW)
    assert grant == Grant("alice", NOW + 60, ("lobby", "team-*"))


@pytest.mark.parametrize(
    ("room", "allowed"),
    [("lobby", True), ("team-", True), ("team-red", True), ("lobby2", False), ("team", False), ("Team-red", False)],
)
def test_rooms_are_names_or_prefixes_ending_in_a_star(room: str, allowed: bool) -> None:
    assert Grant("alice", NOW, ("lobby", "team-*")).allows(room) is allowed


def test_an_endpoint_that_is_not_a_room_takes_any_valid_token() -> None:
    assert isinstance(check_token(token({**GOOD, "rooms": []}), SECRET, None, now=NOW), Grant)


@pytest.mark.parametrize(
    ("raw", "room", "refusal"),
    [
        (None, "lobby", close_codes.TOKEN_MISSING),
        ("", "lobby", close_codes.TOKEN_MISSING),
        ("not-a-jwt", "lobby", close_codes.TOKEN_MALFORMED),
        ("a.b.c", "lobby", close_codes.TOKEN_MALFORMED),
        (token({"sub": "alice", "exp": NOW + 60}), "lobby", close_codes.TOKEN_MALFORMED),  # no rooms
        (token({"sub": "alice", "rooms": ["lobby"]}), "lobby", close_codes.TOKEN_MALFORMED),  # no exp
        (token({"exp": NOW + 60, "rooms": ["lobby"]}), "lobby", close_codes.TOKEN_MALFORMED),  # no sub
        (token({**GOOD, "rooms": "lobby"}), "lobby", close_codes.TOKEN_MALFORMED),  # a string, not a list
        (token({**GOOD, "rooms": [""]}), "lobby", close_codes.TOKEN_MALFORMED),
        (token({**GOOD, "sub": 7}), "lobby", close_codes.TOKEN_MALFORMED),
        (token({**GOOD, "exp": "soon"}), "lobby", close_codes.TOKEN_MALFORMED),
        (tampered(token(GOOD), {**GOOD, "rooms": ["*"]}), "lobby", close_codes.TOKEN_TAMPERED),
        (token(GOOD, secret="another-secret-" + "x" * 32), "lobby", close_codes.TOKEN_TAMPERED),
        (token({**GOOD, "exp": NOW}), "lobby", close_codes.TOKEN_EXPIRED),
        (token({**GOOD, "exp": NOW - 3600}), "lobby", close_codes.TOKEN_EXPIRED),
        (token(GOOD), "kitchen", close_codes.TOKEN_WRONG_ROOM),
        (unsigned(GOOD), "lobby", close_codes.TOKEN_ALGORITHM),
        (token(GOOD, algorithm="HS512"), "lobby", close_codes.TOKEN_ALGORITHM),
        (token(GOOD, algorithm="HS384"), "lobby", close_codes.TOKEN_ALGORITHM),
    ],
    ids=lambda value: getattr(value, "reason", None) or "",
)
def test_every_bad_token_is_refused_with_its_reason(raw: str | None, room: str, refusal: object) -> None:
    assert check_token(raw, SECRET, room, now=NOW) == refusal


def test_refusals_are_401_but_the_wrong_room_is_403_each_with_a_json_body() -> None:
    refusals = [
        close_codes.TOKEN_MISSING,
        close_codes.TOKEN_MALFORMED,
        close_codes.TOKEN_ALGORITHM,
        close_codes.TOKEN_TAMPERED,
        close_codes.TOKEN_EXPIRED,
        close_codes.TOKEN_WRONG_ROOM,
    ]
    assert [refusal.status for refusal in refusals] == [401, 401, 401, 401, 401, 403]
    for refusal in refusals:
        assert refusal.content_type == "application/json"
        assert json.loads(refusal.body)["error"] == refusal.reason


def test_a_minted_token_is_accepted_until_its_ttl_ends() -> None:
    raw = mint_token(SECRET, "bob", ["team-*"], ttl=3600, now=NOW)
    assert check_token(raw, SECRET, "team-blue", now=NOW + 3599) == Grant("bob", NOW + 3600, ("team-*",))
    assert check_token(raw, SECRET, "team-blue", now=NOW + 3600) == close_codes.TOKEN_EXPIRED
    assert jwt.get_unverified_header(raw)["alg"] == "HS256"


# In the app, through the ASGI callable: what a token lets a connection do, and "from"


def query(raw: str) -> bytes:
    return b"token=" + raw.encode()


@pytest.fixture
def token_app(make_app: MakeApp) -> App:
    return make_app(token_secret=SECRET)


@pytest.mark.anyio
async def test_the_app_refuses_a_room_without_a_token_and_says_why_in_json(token_app: App) -> None:
    async with connect(token_app, "/ws/chat/lobby", accept=False) as ws:
        status, body = await ws.refusal()
    assert (status, json.loads(body)["error"]) == (401, "token_missing")
    raw = mint_token(SECRET, "alice", ["lobby"], ttl=60)
    async with connect(token_app, "/ws/chat/kitchen", query_string=query(raw), accept=False) as ws:
        status, body = await ws.refusal()
    assert (status, json.loads(body)["error"]) == (403, "token_wrong_room")
    async with connect(token_app, "/ws/chat/lobby", query_string=query(raw) + b"&" + query(raw), accept=False) as ws:
        assert (await ws.refusal())[0] == 401  # two tokens are one too many: malformed


@pytest.mark.anyio
async def test_every_room_message_says_who_sent_it_from_the_token(token_app: App) -> None:
    alice, bob = mint_token(SECRET, "alice", ["*"], ttl=60), mint_token(SECRET, "bob", ["*"], ttl=60)
    async with connect(token_app, "/ws/chat/r", query_string=query(alice)) as a:
        a.send_text("hi")
        assert json.loads(await a.receive_text()) == {"from": "alice", "data": "hi"}
    async with connect(token_app, "/ws/feed/r", query_string=query(alice)) as a:
        a.send_text(json.dumps({"id": "m1", "data": "numbered"}))
        replies = [json.loads(await a.receive_text()) for _ in range(2)]
        message = next(reply for reply in replies if "ack" not in reply)
        assert message == {"offset": 1, "epoch": message["epoch"], "data": "numbered", "from": "alice"}
    async with (
        connect(token_app, "/ws_broadcast", query_string=query(alice)) as a,
        connect(token_app, "/ws_broadcast", query_string=query(bob)) as b,
    ):
        a.send_text("to all")
        assert json.loads(await b.receive_text()) == {"from": "alice", "data": "New message: to all"}


@pytest.mark.anyio
async def test_a_client_cannot_say_who_it_is(token_app: App) -> None:
    """ "from" is the token's: a feed publish that sets it is not one, and chat wraps whatever is sent."""
    raw = mint_token(SECRET, "alice", ["r"], ttl=60)
    async with connect(token_app, "/ws/feed/r", query_string=query(raw)) as ws:
        ws.send_text(json.dumps({"id": "m1", "data": "x", "from": "mallory"}))
        assert await ws.receive_close() == (4400, "invalid publish id")
    async with connect(token_app, "/ws/chat/r", query_string=query(raw)) as ws:
        ws.send_text(json.dumps({"from": "mallory", "data": "x"}))
        assert json.loads(await ws.receive_text())["from"] == "alice"


@pytest.mark.anyio
async def test_the_echo_endpoints_stay_open_unless_token_all(make_app: MakeApp) -> None:
    async with connect(make_app(token_secret=SECRET), "/echo") as ws:
        ws.send_text("open")
        assert await ws.receive_text() == "open"
    async with connect(make_app(token_secret=SECRET, token_all=True), "/echo", accept=False) as ws:
        assert (await ws.refusal())[0] == 401
