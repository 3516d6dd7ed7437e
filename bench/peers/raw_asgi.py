"""The floor: a minimal raw ASGI echo (``/echo``) and stream (``/stream?count=N``), no policies at all."""

from __future__ import annotations

from typing import Any


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "websocket":
        return  # lifespan and HTTP: returning at once means "not supported"
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    count = int(scope["query_string"].decode().partition("count=")[2] or 10_000)
    while (message := await receive())["type"] == "websocket.receive":
        if scope["path"] == "/stream":
            for number in range(1, count + 1):
                await send({"type": "websocket.send", "text": str(number)})
        else:
            await send({"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")})
