"""The floor: the least a raw ASGI WebSocket echo can do (SPEC §6, "minimal raw ASGI echo").

No routing, no policies, no close on the way out.  Whatever a server or a
harness costs with this app is the cost of the server or the harness alone, so
the difference to ``asgi_ws`` under the same server is what ``asgi_ws`` costs.

Lifespan and HTTP scopes return at once: uvicorn's ``--lifespan auto`` takes an
app that returns as "no lifespan support" and carries on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Event = dict[str, Any]


async def app(scope: Event, receive: Callable[[], Awaitable[Event]], send: Callable[[Event], Awaitable[None]]) -> None:
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while (message := await receive())["type"] == "websocket.receive":
        await send({"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")})
