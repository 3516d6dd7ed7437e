"""The ``lifespan`` scope: startup and shutdown of the process (contract §4, "Lifespan").

Startup starts the broker and shutdown stops it.  The broker's tasks live
inside this scope's coroutine, which the server keeps running from startup to
shutdown, so they end with the process's life cycle and never outlive it.

- The memory broker has nothing to start.
- The Redis broker tries to connect once, for at most a few seconds.  If Redis
  is unreachable the app still starts, degraded (``/healthz`` says so), and the
  broker keeps retrying in the background: a missing Redis must not stop chat
  inside one process, and it must not hang startup.
- A broker that can never work here, such as Redis under trio, fails startup
  with ``lifespan.startup.failed`` and a message that says why.  Servers then
  refuse to start, which is better than a server that mysteriously never
  delivers across processes.

Servers that do not speak lifespan (daphne) never call this, so with them the
broker never starts; ``asgi-ws serve`` refuses that combination.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .broker import BrokerError, redact
from .logs import log_event

if TYPE_CHECKING:
    from asgiref.typing import ASGIReceiveCallable, ASGISendCallable, LifespanScope

    from .hub import Hub
    from .settings import Settings

__all__ = ["handle_lifespan"]

logger = logging.getLogger(__name__)


async def handle_lifespan(
    scope: LifespanScope, receive: ASGIReceiveCallable, send: ASGISendCallable, settings: Settings, hub: Hub
) -> None:
    """Answer ``lifespan.startup``, run the broker until ``lifespan.shutdown``, then return."""
    message = await receive()
    if message["type"] != "lifespan.startup":  # pragma: no cover - the ASGI spec sends startup first
        return
    log_event(logger, logging.INFO, "startup", broker=redact(settings.broker))
    try:
        async with hub.broker.running(hub.deliver_remote):
            await send({"type": "lifespan.startup.complete"})
            await receive()  # the process runs; this returns at lifespan.shutdown
    except BrokerError as exc:
        log_event(logger, logging.ERROR, "startup_failed", error=str(exc))
        await send({"type": "lifespan.startup.failed", "message": str(exc)})
        return
    log_event(logger, logging.INFO, "shutdown")
    await send({"type": "lifespan.shutdown.complete"})
