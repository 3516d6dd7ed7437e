"""Presence across two server processes on one Redis, and one of them killed (contract §8.2).

A watcher on process ``a`` sees members of process ``b`` join and leave as
they come and go, and, when ``b`` is killed with SIGKILL (no leave is ever
said), sees them leave within ``presence_ttl``.  The test prints how long that
took; it asserts only that it happened within the test's patience.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from websockets.asyncio.client import ClientConnection, connect

from asgi_ws.access import mint_token
from conformance.redis_server import RedisServer

from .test_scale_out import PATIENCE, deploy

pytestmark = [pytest.mark.server, pytest.mark.anyio]

SECRET = "presence-across-processes-secret-of-32-bytes"
TTL = 3.0  # seconds: ASGI_WS_PRESENCE_TTL for this test


def url(base: str, subject: str) -> str:
    return f"{base}?presence=1&token={mint_token(SECRET, subject, ['team-*'], ttl=600)}"


async def event(ws: ClientConnection) -> dict[str, Any]:
    with anyio.fail_after(PATIENCE):
        return dict(json.loads(await ws.recv()))


async def test_members_of_another_process_join_leave_and_leave_when_it_is_killed(
    request: pytest.FixtureRequest, redis_server: RedisServer, tmp_path: Path
) -> None:
    two_processes = contextlib.contextmanager(deploy)  # stopped by their PIDs however the test ends
    with two_processes(request, redis_server, tmp_path, token_secret=SECRET, presence_ttl=str(TTL)) as deployment:
        a, b = deployment.a, deployment.b
        async with connect(url(a.url("/ws/chat/team-red"), "alice")) as alice:
            assert await event(alice) == {"presence": ["alice"]}
            async with connect(url(b.url("/ws/chat/team-red"), "bob")) as bob:
                assert await event(alice) == {"join": "bob"}
                assert (await event(bob))["presence"] in (["alice", "bob"], ["bob"])  # alice, if b has read her yet
            assert await event(alice) == {"leave": "bob"}
            carol = await connect(url(b.url("/ws/chat/team-red"), "carol")).__aenter__()
            assert await event(alice) == {"join": "carol"}
            assert b.process is not None
            os.killpg(b.process.pid, signal.SIGKILL)  # carol's process dies: nobody says she left
            b.process.wait()
            killed = time.monotonic()
            assert await event(alice) == {"leave": "carol"}
            took = time.monotonic() - killed
            print(
                f"presence: {b.name} killed with SIGKILL, carol's leave reached alice on {a.name} after {took:.1f} s "
                f"(presence_ttl {TTL:g} s)"
            )
            await carol.close()
