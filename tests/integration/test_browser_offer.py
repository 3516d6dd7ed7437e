"""What a real Chromium offers when it opens a WebSocket: the line the benchmarks' browser-like clients copy.

``bench.browser.BROWSER_OFFER`` is Chromium's ``Sec-WebSocket-Extensions``,
copied from a capture.  This test takes the capture again: a page in Debian's
Chromium opens a WebSocket to a bare TCP listener that only reads the request,
so that a new Chromium that offers something else fails here, not silently in
the benchmarks' figures.
"""

from __future__ import annotations

import socket
import threading

import pytest
from playwright.sync_api import Browser

from bench.browser import BROWSER_OFFER

pytestmark = pytest.mark.server

READ_WAIT = 30.0  # seconds for Chromium to send its request


def read_request(listener: socket.socket, head: list[bytes]) -> None:
    """Accept one connection on ``listener`` and put its request's head into ``head``; answer nothing."""
    connection, _ = listener.accept()
    with connection:
        connection.settimeout(READ_WAIT)
        data = b""
        while b"\r\n\r\n" not in data and (chunk := connection.recv(4096)):
            data += chunk
        head.append(data.split(b"\r\n\r\n")[0])


def test_chromium_offers_permessage_deflate_exactly_as_the_browser_like_clients_do(browser: Browser) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(READ_WAIT)
        port = listener.getsockname()[1]
        head: list[bytes] = []
        reader = threading.Thread(target=read_request, args=(listener, head), daemon=True)
        reader.start()
        page = browser.new_page()
        try:
            page.evaluate("url => { window.socket = new WebSocket(url) }", f"ws://127.0.0.1:{port}/ws/chat/room")
            reader.join(READ_WAIT)
        finally:
            page.close()
    assert head, "Chromium sent no request"
    lines = head[0].decode("latin-1").split("\r\n")
    assert lines[0] == "GET /ws/chat/room HTTP/1.1"
    offers = [line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("sec-websocket-extensions:")]
    assert offers == [BROWSER_OFFER]
