"""The demo page at ``GET /`` in a real browser, under real servers (contract §2).

Playwright drives Debian's Chromium (``apt-get install chromium``) through
``executable_path``: no browser is downloaded.  Without Chromium the tests fail
and say how to install it, unless ``--no-browser`` is given.  Each test saves a
screenshot under ``artifacts/`` (kept by CI, ignored by git).  The feed panel's
test also needs ``redis-server`` (``--no-redis`` skips it), because the page's
server is killed and started again and only Redis keeps the history meanwhile.

The tests are synchronous: Playwright's sync API runs its own event loop, which
must not be nested in the anyio plugin's.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from conformance.launcher import REPO_ROOT, RunningServer
from conformance.redis_server import RedisServer

from .feed_restart import Publisher, restartable_pair

pytestmark = pytest.mark.server

ARTIFACTS = REPO_ROOT / "artifacts"
PATIENCE_MS = 60_000  # for any one expectation; a loaded machine is slow, a broken page never gets there
MISSING = (
    "Chromium is not installed, and the demo page test drives a real one: "
    "apt-get install -y chromium (or pass --no-browser to run without the browser tests)"
)


@pytest.fixture(scope="module")
def browser(request: pytest.FixtureRequest) -> Iterator[Browser]:
    if request.config.getoption("no_browser"):
        pytest.skip("--no-browser was given: the browser tests did not run")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail(MISSING, pytrace=False)
    expect.set_options(timeout=PATIENCE_MS)
    with sync_playwright() as playwright:
        # Chromium's sandbox refuses to run as root, which is what CI runs as.
        launched = playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox"] if os.geteuid() == 0 else []
        )
        try:
            yield launched
        finally:
            launched.close()


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

    page.fill("#json-input", "{not json")
    page.click("#json-send")
    expect(page.locator("#json-log .error")).to_contain_text("error invalid_json")
    page.fill("#json-input", '{"n": [1, 2]}')
    page.click("#json-send")
    expect(page.locator("#json-log")).to_contain_text('← {"message":"Received JSON data","data":{"n":[1,2]}}')

    page.fill("#chat-room", "not a room!")  # refused before accept: the browser sees 1006
    page.click("#chat-join")
    expect(page.locator("#chat-status")).to_have_text(re.compile(r"closed 1006 \(not clean\)"))
    page.close()


def test_two_tabs_chat_in_one_room(browser: Browser, server: RunningServer) -> None:
    one, two = open_page(browser, server), open_page(browser, server)
    for page in (one, two):
        page.fill("#chat-room", "browsers")
        page.click("#chat-join")
        expect(page.locator("#chat-status")).to_have_text("open: /ws/chat/browsers")
    one.fill("#chat-input", "hello from tab one")
    one.press("#chat-input", "Enter")
    expect(two.locator("#chat-log")).to_contain_text("hello from tab one")
    two.fill("#chat-input", "and hello from tab two")
    two.click("#chat-send")
    expect(one.locator("#chat-log")).to_contain_text("and hello from tab two")
    expect(two.locator("#chat-log")).to_contain_text("and hello from tab two")
    # The other panels in use too, for a screenshot that shows the whole page at work.
    one.click("#echo-send-text")
    expect(one.locator("#echo-log")).to_contain_text("← Message text was: hello")
    one.click("#json-send")
    expect(one.locator("#json-log")).to_contain_text("Received JSON data")
    one.fill("#stream-count", "2000")
    one.click("#stream-start")
    expect(one.locator("#stream-counter")).to_have_text("2000")
    screenshot(one, f"demo-chat-{server.name}.png")
    one.close()
    two.close()


def test_the_stream_counts_to_10000(browser: Browser, server: RunningServer) -> None:
    page = open_page(browser, server)
    page.fill("#stream-count", "10000")
    page.fill("#stream-label", "tick")
    page.click("#stream-start")
    expect(page.locator("#stream-counter")).to_have_text("10000")
    expect(page.locator("#stream-log")).to_contain_text('← {"message": "tick - 10000", "number": 10000}')
    expect(page.locator("#stream-log")).to_contain_text("done: 10000 messages in")
    assert page.eval_on_selector("#stream-progress", "bar => bar.value === bar.max && bar.max === 10000")
    screenshot(page, f"demo-stream-{server.name}.png")
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
        panel.screenshot(path=str(tmp_path / "feed-panel.png"))
        screenshot(page, f"demo-feed-{server_name}.png")
        page.close()


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path
