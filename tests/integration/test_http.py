"""Plain HTTP under every server (SPEC §2): the ``/healthz`` document and 404 for the rest."""

from __future__ import annotations

import json

import pytest

from conformance.launcher import RunningServer

pytestmark = pytest.mark.server


def test_healthz_has_the_spec_keys(server: RunningServer) -> None:
    response = server.get("/healthz")
    assert response.status == 200
    assert response.content_type == "application/json"
    health = json.loads(response.body)
    assert health.keys() == {"status", "connections", "rooms", "broker"}
    assert health["status"] == "ok"
    assert isinstance(health["connections"], int)
    assert isinstance(health["rooms"], int)
    assert health["broker"] == {"kind": "memory", "connected": True}


@pytest.mark.parametrize("path", ["/nope", "/healthz/", "/ws"])
def test_unknown_http_path_is_404(server: RunningServer, path: str) -> None:
    assert server.get(path).status == 404
