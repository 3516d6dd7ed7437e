"""The launcher's readiness rule: an HTTP answer, and the entry's ``ready_log`` text where it has one.

Each test runs under every server the run asks for (``--servers``), with a copy of its
entry that waits for a line the app itself writes at lifespan startup, so that a tox
environment with one server family tests the rule with that family.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from asgi_ws.servers import NO_LIFESPAN, SERVERS, Server
from conformance.launcher import ServerStartError, run_server

pytestmark = [pytest.mark.server]

STARTUP_LINE = "event=startup"  # asgi_ws/lifespan.py logs it once the broker runs


def waiting_for(server_name: str, text: str, monkeypatch: pytest.MonkeyPatch) -> Server:
    """A copy of ``server_name``'s entry, registered for this test, that is ready only once its log shows ``text``."""
    original = SERVERS[server_name]
    if original.no_redis == NO_LIFESPAN:
        pytest.skip(f"{server_name} runs no lifespan, so the app writes no startup line to wait for")
    entry = replace(original, name=f"{server_name}-waiting", ready_log=text)
    monkeypatch.setitem(SERVERS, entry.name, entry)
    return entry


def test_a_server_is_ready_once_its_log_shows_the_text(
    server_name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    entry = waiting_for(server_name, STARTUP_LINE, monkeypatch)
    with run_server(entry.name, tmp_path) as server:
        assert STARTUP_LINE in server.log_text()
        assert server.get("/healthz").status == 200


def test_a_server_whose_log_never_shows_the_text_is_not_ready(
    server_name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    entry = waiting_for(server_name, "a line no server writes", monkeypatch)
    monkeypatch.setattr("conformance.launcher.READY_TIMEOUT", 2.0)
    refused = pytest.raises(ServerStartError, match="did not answer GET / and log 'a line no server writes'")
    with refused, run_server(entry.name, tmp_path):
        pass
