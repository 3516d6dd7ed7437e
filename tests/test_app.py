"""asgi_ws.app and asgi_ws.lifespan: dispatch by scope type, startup and shutdown."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from asgi_ws.app import App, create_app
from asgi_ws.settings import Settings, SettingsError

pytestmark = pytest.mark.anyio


async def test_lifespan_startup_and_shutdown_complete(app: App) -> None:
    events = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return events.pop(0)

    async def send(event: dict[str, Any]) -> None:
        sent.append(event)

    with anyio.fail_after(5):
        await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]


async def test_unknown_scope_type_raises(app: App) -> None:
    async def receive() -> dict[str, Any]:
        raise AssertionError("not called")

    async def send(event: dict[str, Any]) -> None:
        raise AssertionError("not called")

    with pytest.raises(ValueError, match="unsupported ASGI scope type 'webtransport'"):
        await app({"type": "webtransport"}, receive, send)


def test_create_app_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASGI_WS_MAX_CONNECTIONS", "7")
    assert create_app().hub.max_connections == 7


def test_create_app_fails_fast_on_a_bad_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASGI_WS_OUTBOX_SIZE", "lots")
    with pytest.raises(SettingsError, match="ASGI_WS_OUTBOX_SIZE='lots'"):
        create_app()


def test_create_app_applies_the_log_level() -> None:
    import logging

    create_app(Settings(log_level="debug"))
    assert logging.getLogger("asgi_ws").level == logging.DEBUG
    create_app(Settings())
    assert logging.getLogger("asgi_ws").level == logging.INFO
