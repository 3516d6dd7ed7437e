"""Access tokens on the wire, under real servers (contract §10).

With ``ASGI_WS_TOKEN_SECRET`` set, every bad token is refused before accept:
with the app's 401 or 403 and a JSON body naming why where the server offers
the denial extension, and with the server's bare 403 under daphne and
gunicorn, which do not.  A token that expires closes its connection with 4401
then, not at its next message.  Each refusal prints one line,
``token: <case> under <server>: <status> <body>``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import quote

import jwt
import pytest
from websockets.asyncio.client import connect

from asgi_ws.access import mint_token
from conformance.launcher import RunningServer, run_server
from conformance.scenarios.access import tampered, unsigned

from .client import refusal, refused_as, server_close

pytestmark = [pytest.mark.server, pytest.mark.anyio]

SECRET = "integration-test-secret-of-at-least-32-bytes"


def bad_tokens() -> dict[str, tuple[str | None, str]]:
    """Case -> (the token, the reason the app gives), each for the room "lobby"."""
    now = time.time()
    good = {"sub": "alice", "exp": int(now + 600), "rooms": ["lobby"]}
    signed = mint_token(SECRET, "alice", ["lobby"], ttl=600)
    return {
        "missing": (None, "token_missing"),
        "malformed": ("not.a.jwt", "token_malformed"),
        "tampered": (tampered(signed, {**good, "rooms": ["*"]}), "token_tampered"),
        "expired": (jwt.encode({**good, "exp": int(now - 1)}, SECRET, algorithm="HS256"), "token_expired"),
        "wrong room": (mint_token(SECRET, "alice", ["kitchen"], ttl=600), "token_wrong_room"),
        "alg none": (unsigned(good), "token_algorithm"),
        "alg HS512": (jwt.encode(good, SECRET * 2, algorithm="HS512"), "token_algorithm"),
    }


@pytest.fixture(scope="module")
def token_server(server_name: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The app with access tokens on."""
    with run_server(
        server_name, tmp_path_factory.mktemp(f"{server_name}-tokens"), {"ASGI_WS_TOKEN_SECRET": SECRET}
    ) as server:
        yield server


def with_token(url: str, token: str | None) -> str:
    return url if token is None else f"{url}?token={quote(token)}"


async def test_every_bad_token_is_refused_before_accept_with_its_reason(token_server: RunningServer) -> None:
    lines = []
    for case, (token, reason) in bad_tokens().items():
        status, body = await refusal(with_token(token_server.url("/ws/feed/lobby"), token))
        status_wanted = 403 if reason == "token_wrong_room" else 401
        if (status, body) != refused_as(token_server.name, 403, b""):
            assert status == status_wanted, case
            assert json.loads(body)["error"] == reason, case
        else:  # daphne and gunicorn: the bare 403 of a close before accept
            assert refused_as(token_server.name, status_wanted, body) == (403, b"")
        lines.append(f"token: {case} under {token_server.name}: {status} {body.decode() or '(no body)'}")
    print("\n".join(lines))


@pytest.mark.parametrize("path", ["/ws/chat/lobby", "/ws/feed/lobby", "/ws_broadcast"])
async def test_the_rooms_and_broadcast_need_a_token_and_the_echo_does_not(
    token_server: RunningServer, path: str
) -> None:
    status, _ = await refusal(token_server.url(path))
    assert status in (401, 403)
    async with connect(with_token(token_server.url(path), mint_token(SECRET, "alice", ["lobby"], ttl=600))) as ws:
        await ws.ping()
    async with connect(token_server.url("/echo")) as echo:
        await echo.send("open")
        assert await echo.recv() == "open"


async def test_a_token_that_expires_closes_its_connection_4401_then(token_server: RunningServer) -> None:
    token = mint_token(SECRET, "alice", ["lobby"], ttl=2)
    async with connect(with_token(token_server.url("/ws/chat/lobby"), token)) as ws:
        await ws.send("still valid")
        assert json.loads(await ws.recv()) == {"from": "alice", "data": "still valid"}
        assert await server_close(ws) == (4401, "token expired")  # nothing sent: the expiry alone closes it
