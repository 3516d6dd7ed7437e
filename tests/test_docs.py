"""The docs a new user reads: README.md and docs/*.md say what the code does, and every link leads somewhere.

- every relative link of the README and of the docs resolves to a file of the
  repository, and its anchor, if any, to a heading or an ``id`` of that page;
- every page under ``docs/`` is reachable from ``docs/index.md``;
- the README stays one screen or two, with the two set-up commands;
- the settings table (contract §3, "Settings") lists every ``ASGI_WS_*``
  setting of ``asgi_ws/settings.py`` with its flag and default;
- ``docs/lesson.md`` quotes the code as it is, and every conversation it shows
  is what the app sends when it is replayed here, with no server.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import tomllib
from pathlib import Path
from typing import Any

import anyio
import pytest

from asgi_ws.app import create_app
from asgi_ws.lifecycle import ProtocolError, State, after_send
from asgi_ws.settings import Settings, env_name, flag_name
from bench.peers import raw_asgi
from tests.asgi_driver import DENIAL, WebSocketDriver, websocket_scope

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
INDEX = DOCS / "index.md"
LESSON = DOCS / "lesson.md"
CONTRACT = DOCS / "contract.md"
PAGES = [README, *sorted(DOCS.glob("*.md"))]

FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\]\(([^)\s]+)\)")  # the target of [text](target) and ![alt](target)


def prose(page: Path) -> str:
    """The page without its fenced code blocks, where a ``](`` is code, not a link."""
    return FENCE.sub("", page.read_text())


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor of a Markdown page: its headings' slugs (numbered when repeated) and its ``id``s."""
    found: set[str] = set(re.findall(r'id="([^"]+)"', page.read_text()))
    seen: dict[str, int] = {}
    for heading in re.findall(r"^#{1,6} (.+)$", prose(page), re.MULTILINE):
        base = slug(heading)
        found.add(f"{base}-{seen[base]}" if base in seen else base)
        seen[base] = seen.get(base, 0) + 1
    return found


def relative_links(page: Path) -> list[str]:
    return [target for target in LINK.findall(prose(page)) if not re.match(r"[a-z]+:", target)]


def broken(page: Path, target: str) -> str | None:
    """Why ``target``, linked from ``page``, leads nowhere; None if it resolves."""
    path, _, anchor = target.partition("#")
    resolved = (page.parent / path).resolve() if path else page
    if not resolved.is_relative_to(ROOT) or not resolved.exists():
        return "no such file"
    if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
        return f"no anchor #{anchor} in {resolved.relative_to(ROOT)}"
    return None


# Links


def test_every_relative_link_resolves() -> None:
    dead = {
        f"{page.relative_to(ROOT)}: ({target}) {why}": (page.parent / target.partition("#")[0]).resolve()
        for page in PAGES
        for target in relative_links(page)
        if (why := broken(page, target)) is not None
    }
    needed = sorted({str(path.relative_to(ROOT)) for path in dead.values() if not path.exists()})
    assert not dead, f"links that lead nowhere: {sorted(dead)}; the pages that must exist: {needed}"


def test_the_anchors_are_github_s() -> None:
    page = DOCS / "contract.md"
    # "§0 What it is, and the servers it runs under", "### Portability rules", "### §5.1 How the published matrix reads"
    expected = {"0-what-it-is-and-the-servers-it-runs-under", "portability-rules", "51-how-the-published-matrix-reads"}
    assert expected <= anchors(page)
    assert slug("Is the behaviour identical?") == "is-the-behaviour-identical"
    assert broken(page, "contract.md#no-such-heading") == "no anchor #no-such-heading in docs/contract.md"
    assert broken(page, "no-such-page.md") == "no such file"


def test_every_page_of_the_docs_is_reachable_from_the_index() -> None:
    linked = {(INDEX.parent / target.partition("#")[0]).resolve() for target in relative_links(INDEX)}
    unreachable = [page.name for page in sorted(DOCS.glob("*.md")) if page != INDEX and page not in linked]
    assert not unreachable, f"docs/index.md links to none of {unreachable}"
    assert "docs/index.md" in relative_links(README)


# The README


def test_the_readme_is_one_screen_or_two() -> None:
    lines = README.read_text().count("\n")
    assert lines <= 170, f"README.md has {lines} lines: the reference belongs in docs/ (docs/index.md)"


def test_the_readme_gives_the_two_set_up_commands_after_the_clone() -> None:
    source = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    text = README.read_text()
    clone = f"git clone {source['urls']['Source']}\ncd {source['name']}\n"
    run, test = "scripts/uv run --locked --extra all asgi-ws serve", "scripts/test"
    assert clone in text
    assert text.index(clone) < text.index(f"\n{run}") < text.index(f"\n{test}\n")
    # What they run is there: the scripts, the console script and the extra.
    assert all((ROOT / script).stat().st_mode & 0o111 for script in ("scripts/uv", "scripts/test"))
    assert source["scripts"]["asgi-ws"] == "asgi_ws.cli:main"
    assert "all" in source["optional-dependencies"]


SAME_EVERYWHERE = re.compile(r"behaves\s+the\s+same\s+(?:on\s+the\s+wire\s+)?under\s+every\b[^.]*")


def test_no_page_claims_every_server_behaves_the_same() -> None:
    claims = [
        f"{page.relative_to(ROOT)}: {found.group(0)}"
        for page in PAGES
        for found in SAME_EVERYWHERE.finditer(page.read_text())
    ]
    assert not claims, f"the matrix says how each server differs; say that instead: {claims}"


# The settings


def settings_table() -> dict[str, list[str]]:
    """The rows of contract §3's settings table, by variable: its cells without backticks."""
    section = CONTRACT.read_text().split("\n### Settings\n", 1)[1].split("\n### ", 1)[0]
    rows = [line.strip("|").split("|") for line in section.splitlines() if line.startswith("| `ASGI_WS_")]
    return {cells[0].strip().strip("`"): [cell.strip().strip("`") for cell in cells[1:]] for cells in rows}


def shown(default: Any) -> str:
    """A default as the table writes it: 300.0 as 300, an empty tuple as *(empty)*."""
    if default in ((), ""):
        return "*(empty)*"
    if isinstance(default, bool):
        return str(int(default))
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


def test_the_settings_table_lists_every_setting_with_its_flag_and_default() -> None:
    table = settings_table()
    fields = dataclasses.fields(Settings)
    assert sorted(table) == sorted(env_name(spec.name) for spec in fields), "contract §3 'Settings' against Settings"
    for spec in fields:
        flag, default, _ = table[env_name(spec.name)]
        expected_flag = "*(none: environment only)*" if spec.metadata["secret"] else flag_name(spec.name)
        assert (flag, default) == (expected_flag, shown(spec.default)), spec.name


# The lesson

QUOTE = re.compile(r"<!-- quoted from (\S+) -->\n```python\n(.*?)```", re.DOTALL)
CONVERSATION = re.compile(
    r"<!-- conversation: (\S+) (\S+)( without the denial extension)? -->\n```text\n(.*?)```", re.DOTALL
)


def the_app(name: str) -> Any:
    """The app a conversation names: the floor, or asgi-ws with the default settings."""
    if name == "floor":
        return raw_asgi.app
    assert name == "asgi-ws", f"docs/lesson.md names an app this test does not know: {name}"
    return create_app(Settings())


def conversations() -> list[Any]:
    return [
        pytest.param(app, path, without, text, id=f"{app} {path}{' without' if without else ''}")
        for app, path, without, text in CONVERSATION.findall(LESSON.read_text())
    ]


def test_the_lesson_quotes_the_code_as_it_is() -> None:
    quotes = QUOTE.findall(LESSON.read_text())
    assert {path for path, _ in quotes} == {"bench/peers/raw_asgi.py", "asgi_ws/lifecycle.py"}
    for path, code in quotes:
        assert code in (ROOT / path).read_text(), f"docs/lesson.md no longer quotes {path} as it is"


def test_the_lesson_shows_the_error_the_lifecycle_raises() -> None:
    with pytest.raises(ProtocolError) as raised:
        after_send(State.CONNECTING, {"type": "websocket.send", "text": "hi"})
    assert f"`{raised.value}`" in LESSON.read_text()


def test_the_lesson_shows_every_step() -> None:
    found = {(app, path, bool(without)) for app, path, without, _ in CONVERSATION.findall(LESSON.read_text())}
    assert found == {
        ("floor", "/echo", False),
        ("asgi-ws", "/nowhere", False),
        ("asgi-ws", "/nowhere", True),
        ("asgi-ws", "/echo", False),
        ("asgi-ws", "/ws_json", False),
    }


@pytest.mark.anyio
@pytest.mark.parametrize(("app", "path", "without", "text"), conversations())
async def test_the_lesson_s_conversation_is_what_the_app_does(app: str, path: str, without: str, text: str) -> None:
    """Each ``receive()`` line is given to the app in turn; each ``send()`` line must be the app's next event."""
    driver = WebSocketDriver(the_app(app), websocket_scope(path, extensions={} if without else DENIAL))
    driver.answer_close = False  # the conversation says when the client's disconnect comes
    try:
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(driver.run_app)
            for line in text.splitlines():
                call, _, literal = line.partition(" ")
                event = ast.literal_eval(literal.strip())
                if call == "receive()":
                    driver.put(event)
                    driver.disconnect_sent = event["type"] == "websocket.disconnect"
                else:
                    assert call == "send()", line
                    assert await driver.receive() == event
            await driver.wait_app_done()
        assert driver.app_error is None, driver.app_error
        assert driver.pending() == [], "the app sent more than the lesson shows"
        assert driver.unread() == 0, "the app returned before reading what the lesson gives it"
        assert driver.violations == []
    finally:
        driver.close_streams()
