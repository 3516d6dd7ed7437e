"""The demo page at ``GET /`` in a real browser, under real servers (contract §2).

Playwright drives Debian's Chromium (the ``browser`` fixture of
``conftest.py``).  Each test saves a
screenshot under ``artifacts/`` (kept by CI, ignored by git).  The feed panel's
test also needs ``redis-server`` (``--no-redis`` skips it), because the page's
server is killed and started again and only Redis keeps the history meanwhile.

The README's images are two of these screenshots: ``docs/demo.png``, the whole
page with every panel in use, and ``docs/feed-panel.png``, the feed panel after
its server came back (``docs/http2-demo.png`` comes from ``test_browser_h2.py``).
To take them again, name the server to take them under::

    ASGI_WS_TEST_DOCS_IMAGES=uvicorn python -m pytest tests/integration/test_demo_page.py --servers uvicorn

The tests are synchronous: Playwright's sync API runs its own event loop, which
must not be nested in the anyio plugin's.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from asgi_ws.access import mint_token
from conformance.launcher import REPO_ROOT, RunningServer, StartServer
from conformance.redis_server import RedisServer

from .feed_restart import Publisher, restartable_pair

pytestmark = pytest.mark.server

ARTIFACTS = REPO_ROOT / "artifacts"
DOCS = REPO_ROOT / "docs"
DOCS_IMAGES = "ASGI_WS_TEST_DOCS_IMAGES"  # a server's name: its screenshots replace the README's images
TOKEN_SECRET = "the-demo-page-test-secret-of-32-bytes-or-more"


def open_page(browser: Browser, server: RunningServer) -> Page:
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(f"http://127.0.0.1:{server.port}/")
    expect(page).to_have_title("asgi-ws demo")
    return page


def test_echo_json_and_the_close_codes(browser: Browser, server: RunningServer) -> None:
    page = open_page(browser, server)
    page.fill("#echo-input", "hello, browser")
    page.click("#echo-send-text")
    expect(page.locator("#echo-log")).to_contain_text("← Message text was: hello, browser")
    page.click("#echo-send-binary")
    expect(page.locator("#echo-log")).to_contain_text("← binary, 14 bytes: 68 65 6c 6c 6f")

    # The page closes /ws itself with 1000 and a reason; the browser reports the server's reply.
    # daphne replies 1000 without the reason (docs/server-divergences.md, echo-client-close-4000).
    page.select_option("#echo-path", "/echo")
    expect(page.locator("#echo-log")).to_contain_text(re.compile(r"closed 1000( “page closed it”)? on /ws"))
    page.click("#echo-send-text")
    expect(page.locator("#echo-log")).to_contain_text("← hello, browser")

    # The JSON panel shows each reply as the app wrote it, spaces and key order included.
    page.fill("#json-input", "{not json")
    page.click("#json-send")
    expect(page.locator("#json-log .error")).to_have_text(
        '← {"error": "invalid_json", "detail": "Expecting property name enclosed in double quotes: '
        'line 1 column 2 (char 1)"}'
    )
    page.fill("#json-input", '{"n":[1,2], "a": {"z": 1, "b": 2}}')
    page.click("#json-send")
    expect(page.locator("#json-log li").last).to_have_text(
        '← {"message": "Received JSON data", "data": {"n": [1, 2], "a": {"z": 1, "b": 2}}}'
    )

    page.fill("#chat-room", "not a room!")  # refused before accept: the browser sees 1006
    page.click("#chat-join")
    expect(page.locator("#chat-status")).to_have_text(re.compile(r"closed 1006 \(not clean\)"))
    page.close()


def test_the_links_lead_to_health_metrics_and_the_docs(browser: Browser, server: RunningServer) -> None:
    page = open_page(browser, server)
    page.click("a[href='/healthz']")
    expect(page.locator("body")).to_contain_text('"status": "ok"')
    page.go_back()
    page.click("a[href='/metrics']")
    expect(page.locator("body")).to_contain_text("# TYPE asgi_ws_connections gauge")
    page.go_back()
    # Not followed: it leads off this machine. tests/test_http.py checks it is the project's page.
    expect(page.get_by_role("link", name="documentation")).to_have_attribute("href", re.compile(r"^https://.*#readme$"))
    page.close()


def test_two_tabs_chat_broadcast_and_share_a_feed(browser: Browser, server: RunningServer) -> None:
    one, two = open_page(browser, server), open_page(browser, server)
    for page in (one, two):
        page.fill("#chat-room", "browsers")
        page.click("#chat-join")
        expect(page.locator("#chat-status")).to_have_text("open: /ws/chat/browsers")
        page.click("#broadcast-connect")
        expect(page.locator("#broadcast-status")).to_have_text("open: /ws_broadcast")
    say(one, "chat", "hello from tab one", enter=True)
    expect(two.locator("#chat-log")).to_contain_text("hello from tab one")
    say(two, "chat", "and hello from tab two", enter=False)
    expect(one.locator("#chat-log")).to_contain_text("and hello from tab two")
    expect(two.locator("#chat-log")).to_contain_text("and hello from tab two")

    # A broadcast reaches the other tab, never its sender.
    say(two, "broadcast", "to every other tab", enter=True)
    expect(one.locator("#broadcast-log")).to_have_text("← New message: to every other tab")
    say(one, "broadcast", "and back", enter=False)
    expect(two.locator("#broadcast-log")).to_contain_text("← New message: and back")
    expect(one.locator("#broadcast-log li")).to_have_text(["← New message: to every other tab", "→ and back"])
    expect(two.locator("#broadcast-log li")).to_have_text(["→ to every other tab", "← New message: and back"])

    # The feed: tab one leaves, tab two goes on, and tab one's Connect resumes with what it missed.
    for page in (one, two):
        connect_feed(page, "browsers")
    say(one, "feed", "numbered", enter=True)
    expect(two.locator("#feed-log")).to_contain_text("#1 numbered")
    one.click("#feed-disconnect")
    say(two, "feed", "kept for you", enter=True)
    say(two, "feed", "and this", enter=False)
    expect(two.locator("#feed-offset")).to_have_text("3")
    one.click("#feed-connect")
    expect(one.locator("#feed-recovered")).to_have_text("recovered 2")
    expect(one.locator("#feed-log")).to_contain_text("#3 and this")

    # The other panels in use too, for a screenshot that shows the whole page at work.
    one.click("#echo-send-text")
    expect(one.locator("#echo-log")).to_contain_text("← Message text was: hello")
    one.click("#echo-send-binary")
    expect(one.locator("#echo-log")).to_contain_text("← binary, 5 bytes: 68 65 6c 6c 6f")
    one.click("#json-send")
    expect(one.locator("#json-log")).to_contain_text("Received JSON data")
    one.fill("#stream-count", "2000")
    one.click("#stream-start")
    expect(one.locator("#stream-counter")).to_have_text("2000")
    screenshot(one, f"demo-{server.name}.png", server.name, docs="demo.png")
    one.close()
    two.close()


def test_with_tokens_the_page_enters_the_rooms_its_token_names_and_shows_who_speaks(
    browser: Browser, start_server: StartServer
) -> None:
    """Contract §10: the page's token field; the server refuses a room without one, before accept."""
    server = start_server({"ASGI_WS_TOKEN_SECRET": TOKEN_SECRET})
    anonymous, alice, bob = (open_page(browser, server) for _ in range(3))
    anonymous.fill("#chat-room", "team-red")
    anonymous.click("#chat-join")
    expect(anonymous.locator("#chat-log")).to_contain_text("closed 1006 (not clean) on /ws/chat/team-red")
    for page, name in ((alice, "alice"), (bob, "bob")):
        page.fill("#token", mint_token(TOKEN_SECRET, name, ["team-*"], ttl=600))
        page.fill("#chat-room", "team-red")
        page.click("#chat-join")
        expect(page.locator("#chat-status")).to_have_text("open: /ws/chat/team-red")
    say(alice, "chat", "hello, I am alice", enter=True)
    expect(bob.locator("#chat-log")).to_contain_text("alice: hello, I am alice")
    for page in (alice, bob):
        connect_feed(page, "team-red")
    say(bob, "feed", "numbered, from bob", enter=True)
    expect(alice.locator("#feed-log")).to_contain_text("#1 bob: numbered, from bob")
    bob.fill("#chat-room", "kitchen")  # not one of the token's rooms
    bob.click("#chat-join")
    expect(bob.locator("#chat-log")).to_contain_text("closed 1006 (not clean) on /ws/chat/kitchen")
    screenshot(alice, f"demo-tokens-{server.name}.png", server.name)
    for page in (anonymous, alice, bob):
        page.close()


def connect_feed(page: Page, room: str) -> None:
    """Connect the page's feed panel to ``room`` and wait until it is open."""
    page.fill("#feed-room", room)
    page.click("#feed-connect")
    expect(page.locator("#feed-status")).to_have_text(f"open: /ws/feed/{room}")


def say(page: Page, panel: str, text: str, *, enter: bool) -> None:
    """Type ``text`` into ``panel``'s message box and send it, with the Enter key or the Send button."""
    page.fill(f"#{panel}-input", text)
    if enter:
        page.press(f"#{panel}-input", "Enter")
    else:
        page.click(f"#{panel}-send")


def test_the_stream_counts_to_10000(browser: Browser, server: RunningServer) -> None:
    page = open_page(browser, server)
    page.fill("#stream-count", "10000")
    page.fill("#stream-label", "tick")
    page.click("#stream-start")
    expect(page.locator("#stream-counter")).to_have_text("10000")
    expect(page.locator("#stream-log")).to_contain_text('← {"message": "tick - 10000", "number": 10000}')
    expect(page.locator("#stream-log")).to_contain_text("done: 10000 messages in")
    assert page.eval_on_selector("#stream-progress", "bar => bar.value === bar.max && bar.max === 10000")
    screenshot(page, f"demo-stream-{server.name}.png", server.name)
    page.close()


def test_the_feed_panel_resumes_after_its_server_is_killed(
    browser: Browser, server_name: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    """The page's server dies under it; the panel reconnects by itself and recovers what it missed.

    The page is on process ``a``, a publisher on ``b``, both on one Redis.
    While ``a`` is down the publisher goes on, and Redis keeps the messages;
    ``a`` comes back on its port and the page, resuming with ``since``,
    receives exactly the five it missed.
    """
    with restartable_pair(server_name, redis_server, tmp_path) as pair, Publisher.on(pair.b, "browsers") as publisher:
        page = open_page(browser, pair.a)
        panel = page.locator("#feed")
        page.fill("#feed-room", "browsers")
        page.click("#feed-connect")
        expect(page.locator("#feed-status")).to_have_text("open: /ws/feed/browsers")
        pair.wait_until_subscribed("browsers")
        numbered = publisher.send([f"before {number}" for number in range(1, 6)])
        epoch = numbered[-1][0]
        expect(page.locator("#feed-offset")).to_have_text("5")
        expect(page.locator("#feed-epoch")).to_have_text(epoch)
        expect(page.locator("#feed-log")).to_contain_text("#5 before 5")

        pair.kill_a()
        expect(page.locator("#feed-status")).to_contain_text("reconnecting in")
        numbered += publisher.send([f"while away {number}" for number in range(6, 11)])
        pair.restart_a()

        expect(page.locator("#feed-status")).to_have_text(f"open: /ws/feed/browsers?since={epoch}:5")
        expect(page.locator("#feed-recovered")).to_have_text("recovered 5")
        expect(page.locator("#feed-offset")).to_have_text("10")
        expect(page.locator("#feed-log")).to_contain_text(f"resumed from {epoch}:5: 5 missed")
        log = page.locator("#feed-log li").all_inner_texts()
        received = [line for line in log if line.startswith("#")]
        assert received == [f"#{offset} before {offset}" for offset in range(1, 6)] + [
            f"#{offset} while away {offset}" for offset in range(6, 11)
        ]
        assert numbered == [(epoch, offset) for offset in range(1, 11)]
        screenshot(page, f"demo-feed-{server_name}.png", server_name)
        # The whole log in the panel's picture, from the first message on, not only what fits in its box.
        panel.locator(".log").evaluate("log => { log.style.height = 'auto'; }")
        screenshot(panel, f"feed-panel-{server_name}.png", server_name, docs="feed-panel.png")
        page.close()


def screenshot(shown: Page | Locator, name: str, server_name: str, docs: str | None = None) -> Path:
    """Save ``shown`` (a whole page, or one element) as ``artifacts/name``; also as ``docs/<docs>`` if asked."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    if isinstance(shown, Page):
        shown.screenshot(path=str(path), full_page=True)
    else:
        shown.screenshot(path=str(path))
    if docs is not None and os.environ.get(DOCS_IMAGES) == server_name:
        shutil.copyfile(path, DOCS / docs)
    return path
