"""The docs say what the code does.

- the settings table (contract §3, "Settings") lists every ``ASGI_WS_*``
  setting of ``asgi_ws/settings.py`` with its flag and default;
- ``docs/lesson.md`` quotes the code as it is, and every conversation it shows
  is what the app sends when it is replayed here, with no server.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path
from typing import Any

import anyio
import pytest

from asgi_ws.app import create_app
from asgi_ws.lifecycle import ProtocolError, State, after_send
from asgi_ws.settings import Settings, env_name, flag_name
from bench.peers import raw_asgi
from tests.asgi_driver import WebSocketDriver, websocket_scope

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
LESSON = DOCS / "lesson.md"
CONTRACT = DOCS / "contract.md"

# The settings


def settings_table() -> dict[str, list[str]]:
    """The rows of contract §3's settings table, by variable: its cells without backticks."""
    section = CONTRACT.read_text().split("\n### Settings\n", 1)[1].split("\n### ", 1)[0]
    rows = [line.strip("|").split("|") for line in section.splitlines() if line.startswith("| `ASGI_WS_")]
    return {cells[0].strip().strip("`"): [cell.strip().strip("`") for cell in cells[1:]] for cells in rows}


def shown(default: Any) -> str:
    """A default as the table writes it: 300.0 as 300, an empty tuple as *(empty)*."""
    if default == ():
        return "*(empty)*"
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


def test_the_settings_table_lists_every_setting_with_its_flag_and_default() -> None:
    table = settings_table()
    fields = dataclasses.fields(Settings)
    assert sorted(table) == sorted(env_name(spec.name) for spec in fields), "contract §3 'Settings' against Settings"
    for spec in fields:
        flag, default, _ = table[env_name(spec.name)]
        assert (flag, default) == (flag_name(spec.name), shown(spec.default)), spec.name


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
    driver = WebSocketDriver(the_app(app), websocket_scope(path, extensions={} if without else None))
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
