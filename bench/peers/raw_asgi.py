"""The floor: a minimal raw ASGI echo (``/echo``) and stream (``/stream?count=N``), no policies at all.

It imports nothing and does nothing but the protocol, so that an app's cost is
its figure's distance from this one.  Importing nothing once made it the slowest
arm under hypercorn: the server's 256 KiB socket reads landed above glibc's
untouched mmap threshold, an mmap per read that bigger apps escape by what their
imports free.  The benchmark fixes the thresholds instead (``bench.run.FIXED_MALLOC``),
so the floor stays free of anything that is not the protocol.
"""

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
