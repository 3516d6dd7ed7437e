"""The demo page over HTTPS in a real Chromium, and how its WebSockets went, from Chromium's own net log (contract §11).

Chromium is launched with ``--log-net-log``, which records every connection and
stream the browser makes, headers included, in a JSON file written when it
closes.  The page is loaded over HTTPS from a server with the ``tls`` fixture's
certificate (Chromium is told to ignore that its authority is unknown), its echo
and stream panels are used, and the log then says what transport their
WebSockets took:

- hypercorn offers h2 by ALPN and advertises extended CONNECT: the page comes
  over HTTP/2, and each WebSocket is an extended CONNECT on that connection
  (``:method: CONNECT``, ``:protocol: websocket``);
- granian offers h2 and does not advertise extended CONNECT: the page comes over
  HTTP/2, and the WebSockets fall back to connections of their own, over HTTP/1.1;
- uvicorn offers no h2: the page and its WebSockets go over HTTP/1.1, and the
  log has no extended CONNECT at all.

The hypercorn screenshot is ``docs/http2-demo.png`` when ``ASGI_WS_TEST_DOCS_IMAGES=hypercorn``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from conformance.launcher import Tls, run_server

from .conftest import launched_chromium, skip_unless_installed
from .test_demo_page import screenshot

pytestmark = pytest.mark.server

STREAM = 2000  # messages the stream panel asks for


def use_the_page(page: Page) -> None:
    """The echo panel's text message, and a stream of STREAM messages to the end."""
    page.fill("#echo-input", "hello over TLS")
    page.click("#echo-send-text")
    expect(page.locator("#echo-log")).to_contain_text("← Message text was: hello over TLS")
    page.fill("#stream-count", str(STREAM))
    page.click("#stream-start")
    expect(page.locator("#stream-counter")).to_have_text(str(STREAM))
    expect(page.locator("#stream-log")).to_contain_text(f"done: {STREAM} messages in")


def net_log(path: Path) -> tuple[list[str], list[dict[str, str]], dict[int, list[str]]]:
    """From a Chromium net log: the protocols TLS settled on by ALPN, every extended CONNECT sent on HTTP/2, and
    how Chromium ended each stream it sent one on.

    Each CONNECT is its pseudo-headers by name (``:path``, ``:protocol``...), as Chromium logged them, and its
    ``stream_id``.  A stream's ending is what Chromium sent last on it, in order: each DATA frame that carried
    END_STREAM, with its size, and each RST_STREAM, with its code.
    """
    log: dict[str, Any] = json.loads(path.read_text())
    names = {number: name for name, number in log["constants"]["logEventTypes"].items()}
    alpn, connects = [], []
    endings: dict[int, list[str]] = {}
    for event in log["events"]:
        kind, params = names.get(event["type"]), event.get("params", {})
        if kind == "SSL_CONNECT" and "next_proto" in params:
            alpn.append(params["next_proto"])
        elif kind == "HTTP2_SESSION_SEND_HEADERS":
            pseudo = dict(line.split(": ", 1) for line in params.get("headers", []) if line.startswith(":"))
            if pseudo.get(":method") == "CONNECT":
                connects.append({**pseudo, "stream_id": str(params["stream_id"])})
                endings[params["stream_id"]] = []
        elif kind == "HTTP2_SESSION_SEND_DATA" and params.get("fin") and params.get("stream_id") in endings:
            endings[params["stream_id"]].append(f"DATA {params['size']} bytes, END_STREAM")
        elif kind == "HTTP2_SESSION_SEND_RST_STREAM" and params.get("stream_id") in endings:
            endings[params["stream_id"]].append(f"RST_STREAM {params['error_code']}")
    return alpn, connects, endings


@pytest.mark.parametrize("name", ["hypercorn", "granian", "uvicorn"])
def test_the_demo_page_over_https_and_the_transport_of_its_websockets(
    name: str, tls: Tls, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    skip_unless_installed(name, request.config)
    record = tmp_path / "netlog.json"
    flags = ["--ignore-certificate-errors", f"--log-net-log={record}", "--net-log-capture-mode=IncludeSensitive"]
    with run_server(name, tmp_path, tls=tls) as server, launched_chromium(request.config, *flags) as browser:
        page = browser.new_page(ignore_https_errors=True, viewport={"width": 1100, "height": 900})
        page.goto(f"{server.origin}/")
        expect(page).to_have_title("asgi-ws demo")
        use_the_page(page)
        screenshot(page, f"demo-https-{name}.png", name, docs="http2-demo.png")
    alpn, connects, endings = net_log(record)
    if name == "hypercorn":
        assert set(alpn) == {"h2"}
        assert [(c[":protocol"], c[":path"]) for c in connects] == [
            ("websocket", "/ws"),
            ("websocket", f"/stream?count={STREAM}"),
        ]
        assert {c[":scheme"] for c in connects} == {"https"}
        # As the page goes, Chromium closes each WebSocket: its close frame (a 2-byte header, the 4-byte mask
        # and a code: 8 bytes) on a DATA frame that also carries END_STREAM, then it cancels the stream.
        # conformance/h2client.py's StreamTransport closes the same way.
        for connect in connects:
            assert endings[int(connect["stream_id"])] == ["DATA 8 bytes, END_STREAM", "RST_STREAM 8 (CANCEL)"]
    elif name == "granian":
        assert "h2" in alpn  # the page
        assert connects == []  # and its WebSockets on connections of their own
    else:
        assert set(alpn) == {"unknown"}  # no ALPN answer from the server: HTTP/1.1
        assert connects == []


def test_the_demo_page_from_uvicorn_zttp_with_http2_turned_on_gets_no_websocket(
    tls: Tls, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """uvicorn --http zttp --http2 advertises extended CONNECT, so Chromium sends one, and gets no WebSocket
    (docs/http2.md, and the matrix's "uvicorn-zttp over h2" column)."""
    skip_unless_installed("uvicorn-zttp", request.config)
    record = tmp_path / "netlog.json"
    flags = ["--ignore-certificate-errors", f"--log-net-log={record}", "--net-log-capture-mode=IncludeSensitive"]
    http2_on: dict[str, float | bool | None] = {"http2": True}
    with (
        run_server("uvicorn-zttp", tmp_path, tls=tls, listen=http2_on) as server,
        launched_chromium(request.config, *flags) as browser,
    ):
        page = browser.new_page(ignore_https_errors=True)
        page.goto(f"{server.origin}/")
        expect(page).to_have_title("asgi-ws demo")
        page.fill("#echo-input", "hello over HTTP/2")
        page.click("#echo-send-text")
        expect(page.locator("#echo-log")).to_contain_text("closed 1006 (not clean) on /ws")
        log = server.log_text()
    alpn, connects, _ = net_log(record)
    assert set(alpn) == {"h2"}
    assert [(c[":protocol"], c[":path"]) for c in connects][:1] == [("websocket", "/ws")]
    assert '"CONNECT /ws HTTP/2" 404' in log
