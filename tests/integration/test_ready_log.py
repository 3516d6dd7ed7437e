"""The launcher's readiness rule: an HTTP answer, and the entry's ``ready_log`` text where it has one."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from asgi_ws.servers import SERVERS
from conformance.launcher import ServerStartError, run_server

pytestmark = [pytest.mark.server]


def test_a_server_is_ready_once_its_log_shows_the_text(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    entry = replace(SERVERS["uvicorn"], name="uvicorn-logged", ready_log="Application startup complete")
    monkeypatch.setitem(SERVERS, entry.name, entry)
    with run_server(entry.name, tmp_path) as server:
        assert "Application startup complete" in server.log_text()
        assert server.get("/healthz").status == 200


def test_a_server_whose_log_never_shows_the_text_is_not_ready(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    entry = replace(SERVERS["uvicorn"], name="uvicorn-silent", ready_log="a line uvicorn never writes")
    monkeypatch.setitem(SERVERS, entry.name, entry)
    monkeypatch.setattr("conformance.launcher.READY_TIMEOUT", 2.0)
    refused = pytest.raises(ServerStartError, match="did not answer GET / and log 'a line uvicorn never writes'")
    with refused, run_server(entry.name, tmp_path):
        pass
