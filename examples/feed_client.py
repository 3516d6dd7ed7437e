"""Follow a feed room and lose nothing: python -u examples/feed_client.py ws://127.0.0.1:8000/ws/feed/lobby"""

import argparse
import asyncio
import json
import random

from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException


async def follow(url: str, count: int) -> None:
    epoch, offset, seen, attempt = "", 0, 0, 0  # the last message seen: none yet
    while seen != count:
        try:
            async with connect(url + (f"?since={epoch}:{offset}" if epoch else "")) as ws:
                attempt = 0
                async for text in ws:
                    message = json.loads(text)
                    if "recovered" in message:  # a resume's first message: the missed ones follow
                        print(f"recovered {message['offset'] - offset}" if message["recovered"] else "not recovered")
                        offset = offset if message["recovered"] else message["offset"]
                    else:
                        offset, seen = message["offset"], seen + 1
                        print(f"{message['epoch']}:{offset} {message['data']}")
                    epoch = message["epoch"]
                    if seen == count:
                        return
        except (OSError, WebSocketException) as exc:
            print(f"disconnected ({exc}), resuming from {epoch}:{offset}")
        attempt += 1
        await asyncio.sleep(random.uniform(0, min(5.0, 0.25 * 2**attempt)))  # full jitter, 5 s cap


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--count", type=int, default=-1, help="exit after this many messages (default: never)")
    arguments = parser.parse_args()
    asyncio.run(follow(arguments.url, arguments.count))
