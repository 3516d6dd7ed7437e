"""Follow a feed room and lose nothing, double nothing: python -u examples/feed_client.py ws://127.0.0.1:8000/ws/feed/lobby

With --say, it also publishes: each text goes with an id, and is sent again after every reconnect
until the server acks it, so the room gets it exactly once (docs/feed.md).
"""

import argparse
import asyncio
import json
import random
import secrets

from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException


async def follow(url: str, count: int, say: list[str]) -> None:
    epoch, offset, seen, attempt = "", 0, 0, 0  # the last message seen: none yet
    prefix = secrets.token_hex(4)  # this client's ids: PREFIX-1, PREFIX-2, ...
    unacked = {f"{prefix}-{number}": text for number, text in enumerate(say, start=1)}  # sent until acked
    while seen != count or unacked:
        try:
            async with connect(url + (f"?since={epoch}:{offset}" if epoch else "")) as ws:
                attempt = 0
                for publish_id, text in unacked.items():  # the same ids after every reconnect: never doubled
                    await ws.send(json.dumps({"id": publish_id, "data": text}))
                async for text in ws:
                    message = json.loads(text)
                    if "ack" in message:  # our publish, numbered
                        unacked.pop(message["ack"], None)
                        print(f"acked {message['epoch']}:{message['offset']}")
                        continue
                    if "recovered" in message:  # a resume's first message: the missed ones follow
                        print(f"recovered {message['offset'] - offset}" if message["recovered"] else "not recovered")
                        offset = offset if message["recovered"] else message["offset"]
                    else:
                        offset, seen = message["offset"], seen + 1
                        print(f"{message['epoch']}:{offset} {message['data']}")
                    epoch = message["epoch"]
                    if seen == count and not unacked:
                        return
        except (OSError, WebSocketException) as exc:
            print(f"disconnected ({exc}), resuming from {epoch}:{offset}")
        attempt += 1
        await asyncio.sleep(random.uniform(0, min(5.0, 0.25 * 2**attempt)))  # full jitter, 5 s cap


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("--count", type=int, default=-1, help="exit after this many messages (default: never)")
    parser.add_argument("--say", action="append", default=[], help="publish this text, once (repeatable)")
    arguments = parser.parse_args()
    asyncio.run(follow(arguments.url, arguments.count, arguments.say))
