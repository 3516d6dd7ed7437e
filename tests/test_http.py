"""asgi_ws.http: /healthz and 404 (contract §2)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from asgi_ws.app import App
from tests.asgi_driver import call_http, connect
from tests.test_broker import IDLE_MEMORY_BROKER

pytestmark = pytest.mark.anyio

PYPROJECT = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
PROJECT_PAGE = PYPROJECT["project"]["urls"]["Source"]


async def test_healthz_reports_the_spec_keys(app: App) -> None:
    status, headers, body = await call_http(app, "/healthz")
    assert status == 200
    assert headers[b"content-type"] == b"application/json"
    assert json.loads(body) == {
        "status": "ok",
        "connections": 0,
        "rooms": 0,
        "broker": IDLE_MEMORY_BROKER,
    }


async def test_healthz_counts_connections_and_rooms(app: App) -> None:
    async with connect(app, "/ws/chat/a"), connect(app, "/ws/chat/b"), connect(app, "/ws/chat/b"), connect(app, "/ws"):
        _, _, body = await call_http(app, "/healthz")
        assert json.loads(body)["connections"] == 4
        assert json.loads(body)["rooms"] == 2
    _, _, body = await call_http(app, "/healthz")
    assert (json.loads(body)["connections"], json.loads(body)["rooms"]) == (0, 0)


async def test_head_healthz_has_no_body(app: App) -> None:
    status, headers, body = await call_http(app, "/healthz", method="HEAD")
    assert status == 200
    assert body == b""
    assert int(headers[b"content-length"]) > 0


async def test_other_methods_on_healthz_are_405(app: App) -> None:
    status, headers, _ = await call_http(app, "/healthz", method="POST")
    assert status == 405
    assert headers[b"allow"] == b"GET, HEAD"


@pytest.mark.parametrize("path", ["/nope", "/healthz/", "/ws", "/index.html", "/metrics/"])
async def test_everything_else_is_404(app: App, path: str) -> None:
    status, _, body = await call_http(app, path)
    assert status == 404
    assert body == b"not found\n"


async def test_the_demo_page_loads_nothing_but_its_own_feed_client(app: App) -> None:
    status, headers, body = await call_http(app, "/")
    assert status == 200
    assert headers[b"content-type"] == b"text/html; charset=utf-8"
    page = body.decode()
    assert page.startswith("<!doctype html>")
    # No CDN, no external fonts or scripts: every URL the page could load is its own. The one
    # address elsewhere is a link to the documentation, which the browser follows only when clicked.
    assert re.findall(r"https?://[^\s\"'<>]*", page) == [f"{PROJECT_PAGE}#readme"]
    assert f'<a href="{PROJECT_PAGE}#readme">documentation</a>' in page
    assert "<link" not in page
    assert re.findall(r"src=\S*", page) == ['src="/feed.js"></script>']  # served by the app itself
    # It connects back to the host that served it, so the origin check passes (contract §3).
    assert "location.host" in page
    policy = headers[b"content-security-policy"].decode()
    assert "default-src 'none'" in policy
    assert "connect-src 'self'" in policy


@pytest.mark.parametrize("path", ["/", "/metrics"])
async def test_the_page_and_the_metrics_take_head_and_refuse_post(app: App, path: str) -> None:
    status, headers, body = await call_http(app, path, method="HEAD")
    assert (status, body) == (200, b"")
    assert int(headers[b"content-length"]) > 0
    status, _, _ = await call_http(app, path, method="POST")
    assert status == 405


async def test_the_feed_client_is_served_and_the_page_may_load_it(app: App) -> None:
    status, headers, body = await call_http(app, "/feed.js")
    assert status == 200
    assert headers[b"content-type"] == b"text/javascript; charset=utf-8"
    assert body.startswith(b"// A client for asgi-ws feed rooms")
    _, page_headers, _ = await call_http(app, "/")
    assert b"script-src 'self' 'unsafe-inline'" in page_headers[b"content-security-policy"]
