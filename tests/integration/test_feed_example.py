"""``examples/feed_client.py``, the client docs/feed.md shows, against real servers (contract §8).

The example runs as its own process, as a reader would run it.  Its server is
killed under it and started again, and it must come back by itself, resume
with ``since``, and have printed every message once, in order.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

import pytest

from conformance.launcher import REPO_ROOT
from conformance.redis_server import RedisServer

from .feed_restart import PATIENCE, Publisher, restartable_pair

pytestmark = pytest.mark.server

EXAMPLE = REPO_ROOT / "examples" / "feed_client.py"
GUIDE = REPO_ROOT / "docs" / "feed.md"
ROOM = "example"


class Lines:
    """A process's stdout, line by line, read by a thread so that a test can wait with a deadline."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        self.seen: list[str] = []  # every line so far
        self._queue: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stdout: Iterable[str]) -> None:
        for line in stdout:
            self._queue.put(line.rstrip("\n"))

    def join(self) -> None:
        """Once the process has exited: wait for the reader to reach the end of its output."""
        self._reader.join(PATIENCE)

    def wait_for(self, wanted: str) -> None:
        """Read lines until one ends with ``wanted``."""
        while not (self.seen and self.seen[-1].endswith(wanted)):
            try:
                self.seen.append(self._queue.get(timeout=PATIENCE))
            except queue.Empty:
                raise AssertionError(f"no line ending with {wanted!r} after {PATIENCE} s; got {self.seen}") from None


def test_the_example_client_resumes_after_its_server_is_killed(
    server_name: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    with restartable_pair(server_name, redis_server, tmp_path) as pair, Publisher.on(pair.b, ROOM) as publisher:
        argv = [sys.executable, "-u", str(EXAMPLE), pair.a.url(f"/ws/feed/{ROOM}"), "--count", "10"]
        with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as client:
            lines = Lines(client)
            try:
                pair.wait_until_subscribed(ROOM)
                numbered = publisher.send([f"message {number}" for number in range(1, 6)])
                epoch = numbered[0][0]
                lines.wait_for(f"{epoch}:5 message 5")

                pair.kill_a()
                numbered += publisher.send([f"message {number}" for number in range(6, 11)])
                pair.restart_a()
                lines.wait_for(f"{epoch}:10 message 10")
                assert client.wait(timeout=PATIENCE) == 0, lines.seen  # --count 10: it exits after the tenth
            finally:
                client.kill()
                client.wait()
                lines.join()

    assert numbered == [(epoch, offset) for offset in range(1, 11)]
    messages = [line for line in lines.seen if line.startswith(f"{epoch}:")]
    assert messages == [f"{epoch}:{offset} message {offset}" for offset in range(1, 11)]
    assert "recovered 5" in lines.seen, lines.seen
    assert any(line.startswith("disconnected (") for line in lines.seen), lines.seen


def test_the_guide_shows_the_example_as_it_is() -> None:
    """docs/feed.md quotes the example from its imports to the end of ``follow``: the code this module runs."""
    example = EXAMPLE.read_text()
    quoted = example[example.index("import asyncio") : example.index("\n\n\nif __name__")]
    assert f"```python\n{quoted}\n```" in GUIDE.read_text()
