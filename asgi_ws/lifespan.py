"""The ``lifespan`` scope: startup and shutdown of the process (SPEC §4, "Lifespan").

The in-memory hub needs no start or stop, so today both phases only report
success.  Servers that do not speak lifespan (daphne) never call this, which is
why nothing the app needs is created here: the hub is built with the app.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from asgiref.typing import ASGIReceiveCallable, ASGISendCallable, LifespanScope

    from .settings import Settings

__all__ = ["handle_lifespan"]

logger = logging.getLogger(__name__)


async def handle_lifespan(
    scope: LifespanScope, receive: ASGIReceiveCallable, send: ASGISendCallable, settings: Settings
) -> None:
    """Answer ``lifespan.startup`` and ``lifespan.shutdown``, then return."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            logger.info("startup: broker %s", settings.broker)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            logger.info("shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return
