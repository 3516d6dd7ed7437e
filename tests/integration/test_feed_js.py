"""The feed's JavaScript client, ``/feed.js``, under Node against real servers (contract §8, §8.1).

``js/publish_with_cutoffs.js`` publishes with ``feed.js`` while its connection is
cut at random, with no close frame, and a reader follows the room.  The client
reconnects and resends every publish that has no ack, with the same id, so the
reader must see each message exactly once, in the order it was published.
Node 20 has no WebSocket: the driver uses npm's ``ws``, Debian's ``node-ws``,
found through ``NODE_PATH`` (``scripts/test`` installs both packages).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conformance.launcher import RunningServer

pytestmark = pytest.mark.server

DRIVER = Path(__file__).parent / "js" / "publish_with_cutoffs.js"
DEBIAN_NODE_MODULES = "/usr/share/nodejs"  # where node-ws puts ws
MESSAGES = 200
CUTOFFS = 5
PATIENCE = 120.0


def node(config: pytest.Config) -> str:
    """Node, with npm's ws where the driver can find it; skipped with --no-node, a failure if missing."""
    if config.getoption("no_node"):
        pytest.skip("--no-node was given: the Node tests did not run")
    found = shutil.which("node")
    if found is None or not Path(DEBIAN_NODE_MODULES, "ws").is_dir():
        pytest.fail("Node and npm's ws are needed: apt-get install -y nodejs node-ws (or pass --no-node)")
    return found


def test_feed_js_publishes_through_cutoffs_and_every_message_arrives_once(
    request: pytest.FixtureRequest, server: RunningServer
) -> None:
    env = {**os.environ, "NODE_PATH": DEBIAN_NODE_MODULES}
    duplicates_before = server.metrics().total("asgi_ws_feed_duplicates_total")
    url = server.url(f"/ws/feed/js-{server.name}")
    done = subprocess.run(
        [node(request.config), str(DRIVER), url, str(MESSAGES), str(CUTOFFS)],
        capture_output=True,
        text=True,
        env=env,
        timeout=PATIENCE,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    read = result["read"]
    published = [f"m{number}" for number in range(1, MESSAGES + 1)]
    assert [message["data"] for message in read] == published  # each once, in order
    assert [message["offset"] for message in read] == list(range(read[0]["offset"], read[0]["offset"] + MESSAGES))
    assert result["acked_ids"] == MESSAGES  # every publish acked, by its id
    assert result["cutoffs"] == CUTOFFS
    assert result["sender_connections"] == CUTOFFS + 1
    # Every other cut-off loses the ack of a message the server numbered: its resend is acked, not numbered.
    duplicates = server.metrics().total("asgi_ws_feed_duplicates_total") - duplicates_before
    assert duplicates >= CUTOFFS // 2
    print(
        f"feed.js under {server.name}: {MESSAGES} published, {CUTOFFS} cut-offs, {duplicates:g} resends the server "
        f"had numbered already (acked again, not numbered), {len(read)} read, 0 doubled, 0 missing"
    )
