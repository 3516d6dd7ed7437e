"""The ``websockets`` library's own asyncio server: echo, stream and chat, no ASGI layer (contract §6 peer).

python -m bench.peers.websockets_server PORT
"""

from __future__ import annotations

import asyncio
import sys
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, broadcast, serve

rooms: dict[str, set[ServerConnection]] = {}


async def handler(websocket: ServerConnection) -> None:
    assert websocket.request is not None
    url = urlsplit(websocket.request.path)
    if url.path == "/stream":
        count = int(parse_qs(url.query).get("count", ["10000"])[0])
        async for _ in websocket:
            for number in range(1, count + 1):
                await websocket.send(str(number))
    elif url.path.startswith("/ws/chat/"):
        members = rooms.setdefault(url.path, set())
        members.add(websocket)
        try:
            async for message in websocket:
                broadcast(members, message)
        finally:
            members.discard(websocket)
    else:
        async for message in websocket:
            await websocket.send(message)


async def main(port: int) -> None:
    async with serve(handler, "127.0.0.1", port, compression=None) as server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
