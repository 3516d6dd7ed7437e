"""The ASGI callable: one object that every server calls for every scope (contract §0).

``asgi_ws.app:app`` is what ``uvicorn asgi_ws.app:app`` and
``hypercorn asgi_ws.app:app`` load.  It is built at import time from the
``ASGI_WS_*`` environment variables, so a bad value stops the server before it
listens, with a message that names the variable.  Tests and embedders build
their own with :func:`create_app`.

This module only dispatches on ``scope["type"]``; each scope type has its own
module: :mod:`asgi_ws.websocket`, :mod:`asgi_ws.http`, :mod:`asgi_ws.lifespan`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import logs
from .broker import Broker, BrokerError, MemoryBroker, redact
from .feed import MemoryHistory
from .http import handle_http
from .hub import Hub
from .lifespan import handle_lifespan
from .metrics import Metrics
from .publish_ids import SeenIds
from .settings import Settings
from .websocket import handle_websocket

if TYPE_CHECKING:
    from asgiref.typing import ASGIReceiveCallable, ASGISendCallable, Scope

__all__ = ["App", "app", "create_app", "create_broker"]


class App:
    """An ASGI 3 application: ``await app(scope, receive, send)``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings  # every policy value, fixed for the app's life
        self.hub = Hub(settings.max_connections, create_broker(settings))  # connections and rooms
        self.metrics = Metrics(self.hub.broker.state, lambda: len(self.hub.roster))  # /metrics, this app only

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] == "websocket":
            await handle_websocket(scope, receive, send, self.settings, self.hub, self.metrics)
        elif scope["type"] == "http":
            await handle_http(scope, receive, send, self.hub, self.metrics)
        elif scope["type"] == "lifespan":
            await handle_lifespan(scope, receive, send, self.settings, self.hub)
        else:
            # ASGI spec: an app must raise on a scope type it does not know.
            raise ValueError(f"unsupported ASGI scope type {scope['type']!r}")


def create_broker(settings: Settings) -> Broker:
    """The broker ``settings.broker`` names.  Redis is imported only when asked for."""
    if settings.broker.startswith("memory://"):
        history = MemoryHistory(settings.history_size, settings.history_ttl, settings.history_bytes)
        return MemoryBroker(history, SeenIds(settings.dedupe_window, settings.dedupe_ids))
    try:
        from .redis_broker import RedisBroker
    except ImportError as exc:  # the optional dependency is missing
        raise BrokerError(
            f"the broker {redact(settings.broker)} needs redis-py ({exc.name} is missing): pip install 'asgi-ws[redis]'"
        ) from None
    return RedisBroker(
        settings.broker,
        history_size=settings.history_size,
        history_ttl=settings.history_ttl,
        dedupe_window=settings.dedupe_window,
        presence_ttl=settings.presence_ttl,
    )


def create_app(settings: Settings | None = None) -> App:
    """Build the app from ``settings``, or from the environment when none are given."""
    settings = Settings.from_env() if settings is None else settings
    logs.configure(settings.python_log_level, settings.log_format)
    return App(settings)


app = create_app()
