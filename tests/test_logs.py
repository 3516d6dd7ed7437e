"""asgi_ws.logs: one line per event, key=value or JSON, and never a payload (contract §2 operability)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from asgi_ws.logs import JSONFormatter, KeyValueFormatter, configure, log_event
from tests.asgi_driver import DENIAL, connect

from .conftest import MakeApp

SECRET = "my password is hunter2"


@pytest.fixture
def lines() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """Two handlers on the asgi_ws logger at debug: key=value text and JSON."""
    logger = logging.getLogger("asgi_ws")
    text, document = io.StringIO(), io.StringIO()
    handlers = [logging.StreamHandler(text), logging.StreamHandler(document)]
    handlers[0].setFormatter(KeyValueFormatter())
    handlers[1].setFormatter(JSONFormatter())
    level = logger.level
    logger.setLevel(logging.DEBUG)
    for handler in handlers:
        logger.addHandler(handler)
    try:
        yield text, document
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
        logger.setLevel(level)


def test_an_event_is_one_line_of_key_value_pairs(lines: tuple[io.StringIO, io.StringIO]) -> None:
    text, document = lines
    log_event(logging.getLogger("asgi_ws.test"), logging.INFO, "rejected", status=400, path="/a b", empty="")
    line = text.getvalue().strip()
    assert "\n" not in line
    assert line.split(" ", 1)[1] == 'level=info logger=asgi_ws.test event=rejected status=400 path="/a b" empty=""'
    record = json.loads(document.getvalue())
    assert {key: record[key] for key in ("level", "logger", "event", "status", "path")} == {
        "level": "info",
        "logger": "asgi_ws.test",
        "event": "rejected",
        "status": 400,
        "path": "/a b",
    }
    assert record["ts"].endswith("Z")


def test_errors_carry_their_traceback(lines: tuple[io.StringIO, io.StringIO]) -> None:
    text, document = lines
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("asgi_ws.test").exception("error in /ws")
    assert 'event="error in /ws"' in text.getvalue()
    assert "ValueError: boom" in text.getvalue()
    assert "ValueError: boom" in json.loads(document.getvalue())["traceback"]


@pytest.mark.anyio
async def test_connections_are_logged_at_debug_and_rejections_at_info_without_payloads(
    make_app: MakeApp, lines: tuple[io.StringIO, io.StringIO]
) -> None:
    text, _ = lines
    app = make_app(log_level="debug")
    async with connect(app, "/echo") as ws:
        ws.send_text(SECRET)
        assert await ws.receive_text() == SECRET
    async with connect(app, "/ws/chat/no way", extensions=DENIAL, accept=False) as refused:
        await refused.refusal()
    logged = text.getvalue()
    assert "level=debug logger=asgi_ws.websocket event=connected endpoint=echo" in logged
    assert "event=disconnected endpoint=echo" in logged
    assert "code=1000 by=client" in logged
    assert "received=1 sent=1" in logged
    assert "level=info logger=asgi_ws.websocket event=rejected endpoint=chat status=400 reason=bad_room" in logged
    assert SECRET not in logged
    assert "no way" not in logged  # not even the refused path: it is client input too


def test_configure_adds_one_handler_only_where_nobody_else_did(monkeypatch: pytest.MonkeyPatch) -> None:
    logger, root = logging.getLogger("asgi_ws"), logging.getLogger()
    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setattr(root, "handlers", [])
    stream = io.StringIO()
    configure(logging.INFO, "json", stream)
    configure(logging.INFO, "json", stream)  # idempotent
    assert len(logger.handlers) == 1
    log_event(logging.getLogger("asgi_ws.x"), logging.INFO, "hello", n=1)
    assert json.loads(stream.getvalue())["event"] == "hello"

    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setattr(root, "handlers", [logging.NullHandler()])  # e.g. daphne's basicConfig
    configure(logging.INFO, "text", io.StringIO())
    assert logger.handlers == []  # records go to the root handler: no line twice
