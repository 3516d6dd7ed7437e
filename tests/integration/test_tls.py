"""TLS under every server of contract §0 (contract §11): ``https://`` and ``wss://``.

Each server is started by the launcher with the ``tls`` fixture's certificate,
asked for ``/healthz`` over HTTPS, and sent an echo over ``wss://``.  What each
offers by ALPN is checked too: a server that offers ``h2`` to a browser is one
that browsers will open WebSockets to over HTTP/2 if it advertises them there.

Unlike the other integration tests these run under every server of the table, not only those
``--servers`` names, since each only starts one process.  One that is not installed fails if
``--servers`` asked for it, and is skipped, saying so, if not (a tox environment with one server
family); CI installs them all.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from asgi_ws.servers import SERVERS
from conformance.launcher import HOST, RunningServer, Tls, run_server

from .conftest import skip_unless_installed

pytestmark = [pytest.mark.server, pytest.mark.anyio]

TLS_SERVERS = [name for name, server in SERVERS.items() if server.serves_tls]
# The servers that pick h2 when a client offers h2 and http/1.1 by ALPN, as browsers do; the others
# pick nothing, which means HTTP/1.1.  A browser loads a page from the first ones over HTTP/2, and then
# opens its WebSockets over HTTP/2 too wherever the server advertises extended CONNECT (RFC 8441).
OFFERS_H2 = {"hypercorn", "hypercorn-uvloop", "hypercorn-trio", "daphne", "granian", "anycorn", "pyvoy"}


def alpn(server: RunningServer, tls: Tls) -> str | None:
    """The protocol the server picks when a client offers ``h2`` and ``http/1.1``, as browsers do."""
    context = tls.client(alpn=["h2", "http/1.1"])
    with (
        socket.create_connection((HOST, server.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=HOST) as wrapped,
    ):
        return wrapped.selected_alpn_protocol()


def test_every_server_of_the_table_serves_tls() -> None:
    assert list(SERVERS) == TLS_SERVERS, [name for name in SERVERS if name not in TLS_SERVERS]


@pytest.mark.parametrize("name", TLS_SERVERS)
async def test_healthz_over_https_and_an_echo_over_wss(
    name: str, tls: Tls, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    skip_unless_installed(name, request.config)
    with run_server(name, tmp_path, tls=tls) as server:
        assert server.url("/ws").startswith("wss://")
        response = server.get("/healthz")
        assert (response.status, json.loads(response.body)["status"]) == (200, "ok")
        async with connect(server.url("/ws"), ssl=tls.client(), proxy=None) as ws:
            await ws.send("over TLS")
            assert await ws.recv() == "Message text was: over TLS"
        print(name, "ALPN", alpn(server, tls))


async def test_asgi_ws_serve_passes_the_files_to_the_server(tls: Tls, tmp_path: Path) -> None:
    with run_server("uvicorn", tmp_path, via_cli=[], tls=tls) as server:
        assert "serving https://" in server.log_text()
        async with connect(server.url("/ws"), ssl=tls.client(), proxy=None) as ws:
            await ws.send("via the CLI")
            assert await ws.recv() == "Message text was: via the CLI"
