"""WebSockets over HTTP/2 (RFC 8441, contract §11): who serves them, who advertises them, and the one who lies.

A browser opens a page's WebSockets over HTTP/2 whenever the page came over
HTTP/2 and the server's SETTINGS carry ``SETTINGS_ENABLE_CONNECT_PROTOCOL = 1``.
So under every server there are two questions, asked here with the harness's
HTTP/2 client (:mod:`conformance.h2client`, h2 and wsproto), over h2c with prior
knowledge and over TLS with ALPN ``h2``:

- does it advertise extended CONNECT?
- if it does, does an extended CONNECT to ``/ws`` become asgi-ws's WebSocket?

A server that advertises and then does not serve breaks browsers; one that does
not advertise is never asked, and browsers open a second, HTTP/1.1 connection.
Every server of contract §0 that speaks HTTP/2 is in exactly one of the tables
below; uvicorn's default HTTP parsers and gunicorn speak HTTP/1.1 only.  The
table of each is what it does today, so a release that changes it fails here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from asgi_ws.servers import SERVERS, Server
from conformance.h2client import H2Client, HandshakeRefused
from conformance.launcher import HOST, RunningServer, Tls, run_server

from .conftest import skip_unless_installed

pytestmark = [pytest.mark.server, pytest.mark.anyio]

# Serve asgi-ws's WebSockets over HTTP/2: they advertise extended CONNECT, and the CONNECT becomes a
# websocket scope (hypercorn/protocol/h2.py, H2Protocol._handle_events; anycorn/protocol/h2.py alike).
SERVES = ["hypercorn", "hypercorn-uvloop", "hypercorn-trio", "anycorn"]
# Speak HTTP/2, and do not advertise extended CONNECT: browsers open their WebSockets over HTTP/1.1.
# daphne speaks it over TLS only (Twisted's H2Connection, chosen by ALPN); granian and pyvoy over h2c too.
SILENT = {"granian": ("h2c", "tls"), "pyvoy": ("h2c", "tls"), "daphne": ("tls",)}
# Speak no HTTP/2 at all: no h2 by ALPN, and a prior-knowledge preface is not answered with SETTINGS.
HTTP1_ONLY = ["uvicorn", "uvicorn-websockets", "uvicorn-wsproto", "uvicorn-zttp", "gunicorn"]

# uvicorn 0.55 with --http zttp --http2 (uvicorn-zttp with Listen.http2): zttp's HTTP/2 connection
# advertises extended CONNECT in its first SETTINGS (zttp's H2Connection.initiate_connection, called by
# uvicorn/protocols/http/zttp_h2_impl.py, ZttpH2Protocol.connection_made; zttp added the setting for
# Kludex/zttp#277), but ZttpH2Protocol.handle_request makes every request an http scope, :protocol or not,
# so the app is asked for an HTTP "CONNECT /ws" and answers 404 (docs/http2.md).
HTTP2_ON: dict[str, float | bool | None] = {"http2": True}


REPRODUCTION = Path(__file__).resolve().parents[2] / "examples" / "uvicorn_http2_rfc8441.py"


def test_every_server_of_the_table_is_in_one_list() -> None:
    assert sorted([*SERVES, *SILENT, *HTTP1_ONLY]) == sorted(SERVERS)


async def open_h2(server: RunningServer, transport: str, tls: Tls) -> H2Client:
    return await H2Client.open(HOST, server.port, tls=tls.client() if transport == "tls" else None)


@contextlib.contextmanager
def serving(
    server: str | Server, tmp_path: Path, config: pytest.Config, settings: dict[str, str] | None = None
) -> Iterator[RunningServer]:
    """``server`` running over plain TCP with ``settings``; skipped where skip_unless_installed says."""
    skip_unless_installed(server, config)
    with run_server(server, tmp_path, settings) as running:
        yield running


@contextlib.asynccontextmanager
async def served_over_h2(
    server: str | Server,
    transport: str,
    tls: Tls,
    tmp_path: Path,
    config: pytest.Config,
    listen: dict[str, float | bool | None] | None = None,
) -> AsyncIterator[tuple[RunningServer, H2Client]]:
    """``server`` running, over TLS for ``transport`` "tls", and an HTTP/2 connection to it."""
    skip_unless_installed(server, config)
    with run_server(server, tmp_path, tls=tls if transport == "tls" else None, listen=listen) as running:
        async with await open_h2(running, transport, tls) as client:
            yield running, client


@pytest.mark.parametrize("name", SERVES)
async def test_a_websocket_over_http2_and_tls_echoes_and_closes(
    name: str, tls: Tls, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """As a browser does it; over h2c, test_what_happens_on_http2_streams."""
    async with served_over_h2(name, "tls", tls, tmp_path, request.config) as (_, client):
        assert client.advertises_websockets
        ws = await client.websocket("/ws")
        await ws.send("over HTTP/2")
        assert await ws.recv() == "Message text was: over HTTP/2"
        await ws.send(b"\x00\xff")
        assert await ws.recv() == b"\x00\xff"
        closed = await ws.close(1000, "done")
        assert closed is not None
        assert closed.code == 1000
        # The connection outlives the WebSocket: a browser keeps using it for the page.
        assert (await client.get("/healthz")).status == 200


@pytest.mark.parametrize(("name", "transport"), [(name, t) for name, ts in SILENT.items() for t in ts])
async def test_a_server_that_does_not_serve_them_does_not_advertise_them(
    name: str, transport: str, tls: Tls, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    async with served_over_h2(name, transport, tls, tmp_path, request.config) as (_, client):
        assert (await client.get("/healthz")).status == 200  # it does speak HTTP/2
        assert not client.advertises_websockets


@pytest.mark.parametrize(
    ("transport", "error"), [("h2c", "closed before its SETTINGS"), ("tls", "ALPN chose no protocol, not h2")]
)
@pytest.mark.parametrize("name", HTTP1_ONLY)
async def test_a_server_without_http2_is_never_asked(
    name: str, transport: str, error: str, tls: Tls, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    skip_unless_installed(name, request.config)
    files = tls if transport == "tls" else None
    with run_server(name, tmp_path, tls=files) as server, pytest.raises(ConnectionError, match=error):
        await open_h2(server, transport, tls)


@pytest.mark.parametrize("transport", ["h2c", "tls"])
async def test_uvicorn_http2_advertises_websockets_then_answers_their_connect_404(
    transport: str, tls: Tls, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    async with served_over_h2("uvicorn-zttp", transport, tls, tmp_path, request.config, HTTP2_ON) as (
        server,
        client,
    ):
        assert client.advertises_websockets
        with pytest.raises(HandshakeRefused) as refused:
            await client.websocket("/ws")
        assert (refused.value.response.status, refused.value.response.body) == (404, b"not found\n")
        assert '"CONNECT /ws HTTP/2" 404' in server.log_text()


def test_the_reproduction_for_uvicorn_shows_what_docs_http2_says(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """examples/uvicorn_http2_rfc8441.py, the reproduction written to go upstream as it stands, with its own app."""
    skip_unless_installed("uvicorn-zttp", request.config)
    with run_server("uvicorn-zttp", tmp_path, app="examples.uvicorn_http2_rfc8441:app", listen=HTTP2_ON) as server:
        shown = subprocess.run(
            [sys.executable, str(REPRODUCTION), HOST, str(server.port)], capture_output=True, text=True, timeout=30
        )
    assert shown.stdout.splitlines() == [
        "SETTINGS_ENABLE_CONNECT_PROTOCOL = 1",
        "CONNECT /ws answered 404",
        "the app got an http scope: CONNECT /ws",
    ], shown.stderr


# Backpressure over HTTP/2.  hypercorn 0.18 releases an app blocked on a full stream buffer whenever its
# send loop pops the buffer with the peer's window shut: hypercorn/protocol/h2.py, H2Protocol._send_data
# pops min(window, frame size) = 0 bytes, and StreamBuffer.pop resumes the writer on any chunk under the
# low-water mark, an empty one included.  So an app's send to a client that stopped reading never waits,
# and the server keeps everything.  anycorn, the fork, resumes on what has drained instead
# (davidbrochart/anycorn#61), and the app's slow-consumer policy closes the client with 4503 (contract §4).
LINES, LINE_SIZE = 1000, 30_000  # 30 MB for a reader that reads nothing
H2_BACKPRESSURE = {"hypercorn": False, "hypercorn-uvloop": False, "hypercorn-trio": False, "anycorn": True}


@pytest.mark.parametrize("name", SERVES)
async def test_a_reader_that_stops_reading_over_http2(
    name: str, tls: Tls, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A chat member over h2c that reads nothing while 60 MB are published to its room over HTTP/1.1."""
    with serving(name, tmp_path, request.config, {"ASGI_WS_RATE_LIMIT": "0"}) as server:
        async with await open_h2(server, "h2c", tls) as client:
            reader = await client.websocket("/ws/chat/flow")
            reader.pause_reading()  # the window it gave is all the server may send
            before = server.rss()
            async with connect(server.url("/ws/chat/flow"), max_size=None, proxy=None) as publisher:
                for _ in range(LINES):
                    await publisher.send("x" * LINE_SIZE)
                    await publisher.recv()  # its own echo: the room has taken the line
            grown = (server.rss() - before) / 2**20
            kicked = server.metrics().total("asgi_ws_slow_consumer_drops_total")
    if H2_BACKPRESSURE[name]:
        assert (kicked, grown < 10) == (1, True), f"{grown:.1f} MiB"
    else:  # every line kept by the server, and the policy never told: the divergence above
        assert (kicked, grown > 20) == (0, True), f"{grown:.1f} MiB"


@pytest.mark.parametrize("name", SERVES)
async def test_what_happens_on_http2_streams(
    name: str, tls: Tls, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The cases of docs/http2.md that have no HTTP/1.1 twin, over h2c, on one server process."""
    with serving(name, tmp_path, request.config) as server:
        # Two WebSockets and a plain request, multiplexed on one connection.
        async with await open_h2(server, "h2c", tls) as client:
            assert client.advertises_websockets
            first, second = await client.websocket("/ws/chat/h2"), await client.websocket("/ws/chat/h2")
            assert json.loads((await client.get("/healthz")).body)["connections"] == 2
            await first.send("to both")
            assert [await first.recv(), await second.recv()] == ["to both", "to both"]
        # A stream of 2000, then the app's close, then END_STREAM.
        async with await open_h2(server, "h2c", tls) as client:
            ws = await client.websocket("/stream?count=2000")
            await ws.send("go")
            assert [await ws.recv() for _ in range(2000)] == [str(number) for number in range(1, 2001)]
            closed = await ws.close()
            await ws.wait_closed()
            assert (closed and closed.code, ws.stream_ended) == (1000, True)
        # RST_STREAM in the middle of a frame: the app sees the client leave.
        async with await open_h2(server, "h2c", tls) as client:
            ws = await client.websocket("/ws")
            await ws.send_raw(bytes([0x81, 0x80 | 100]) + bytes(4) + b"a" * 10)  # 10 of a frame's 100 bytes
            client.reset(ws.stream_id)
            await until_no_connections(client)
        # :protocol other than websocket: a WebSocket all the same (pgjones/hypercorn#277, davidbrochart/anycorn#84).
        async with await open_h2(server, "h2c", tls) as client:
            ws = await client.websocket("/ws", protocol="foo")
            await ws.send("not a WebSocket")
            assert await ws.recv() == "Message text was: not a WebSocket"
        # CONNECT with :scheme and :path and no :protocol, which RFC 9113 §8.5 calls malformed: GOAWAY.
        async with await H2Client.open(HOST, server.port, validate=False) as client:
            with pytest.raises(ConnectionError, match="closed the HTTP/2 connection"):
                await client.websocket("/ws", protocol=None)
            assert client.goaway == 1  # PROTOCOL_ERROR
        await the_feed_resumes_after_its_stream_is_reset(server, tls)


async def until_no_connections(client: H2Client) -> None:
    """Until the app's /healthz, asked on ``client``'s connection, counts no WebSocket."""
    for _ in range(50):
        if json.loads((await client.get("/healthz")).body)["connections"] == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the app still counts the reset WebSocket after 5 s")


async def the_feed_resumes_after_its_stream_is_reset(server: RunningServer, tls: Tls) -> None:
    """A feed reader over HTTP/2 whose stream is reset, as when its tab goes away, comes back with ?since."""
    async with (
        connect(server.url("/ws/feed/h2"), proxy=None) as publisher,
        await open_h2(server, "h2c", tls) as client,
    ):
        reader = await client.websocket("/ws/feed/h2")
        for number in range(3):
            await publisher.send(f"line {number}")
            await publisher.recv()  # its own line, numbered
        seen = [json.loads(await reader.recv()) for _ in range(3)]
        client.reset(reader.stream_id)
        for number in range(3, 8):  # published while the reader is away
            await publisher.send(f"line {number}")
            await publisher.recv()
        last = seen[-1]
        back = await client.websocket(f"/ws/feed/h2?since={last['epoch']}:{last['offset']}")
        control = json.loads(await back.recv())
        missed = [json.loads(await back.recv())["data"] for _ in range(5)]
    assert [entry["data"] for entry in seen] == ["line 0", "line 1", "line 2"]
    assert (control["recovered"], control["offset"]) == (True, 8)
    assert missed == [f"line {number}" for number in range(3, 8)]
