"""``asgi-ws serve`` for real: the command starts each server, and its flags reach the app.

The flags are handed to the server as ``ASGI_WS_*`` variables; a connection cap
of 1 given as a flag, and a refused second connection, show that they arrived.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from conformance.launcher import run_server

from .client import refusal, refused_as

pytestmark = [pytest.mark.server, pytest.mark.anyio]


async def test_serve_runs_the_app_with_its_flags(server_name: str, tmp_path: Path) -> None:
    with run_server(server_name, tmp_path, via_cli=["--max-connections", "1"]) as server:
        assert "asgi-ws: exec " in server.log_text()
        async with connect(server.url("/ws")) as ws:
            await ws.send("via the CLI")
            assert await ws.recv() == "Message text was: via the CLI"
            assert await refusal(server.url("/ws")) == refused_as(server_name, 503, b"too many connections")
