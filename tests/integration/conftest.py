"""Fixtures for the integration tests: which servers to run, and the running servers themselves.

Every test that asks for ``server``, ``start_server`` or ``server_name`` runs once
per server named by ``--servers`` (comma-separated; ``ASGI_WS_TEST_SERVERS`` when
the option is not given; all of :data:`DEFAULT_SERVERS` when neither is).

- ``server``: the app with default settings, one process per server name for the
  whole session.  Most tests use it.
- ``start_server``: starts the app with special ``ASGI_WS_*`` settings (a tiny
  connection cap, say) for one test, and stops it after that test.

A requested server that is not installed is an error in every test that needs
it, never a skip: a run that was asked to cover hypercorn must not pass without
running hypercorn.

``--servers`` itself is declared in ``tests/conftest.py``, which pytest loads
before it parses the command line, so the option works with a bare ``pytest``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path

import pytest

from conformance.launcher import RunningServer, StartServer, run_server


@pytest.fixture
def anyio_backend() -> str:
    """The websockets client runs on asyncio, so the async tests do too."""
    return "asyncio"


@pytest.fixture(scope="session")
def server(server_name: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The app with default settings under ``server_name``, shared by the whole session."""
    with run_server(server_name, tmp_path_factory.mktemp(server_name)) as running:
        yield running


@pytest.fixture
def start_server(server_name: str, tmp_path: Path) -> Iterator[StartServer]:
    """``start_server({"ASGI_WS_...": "..."})`` runs the app with those settings until the test ends."""
    with ExitStack() as running:

        def start(settings: Mapping[str, str]) -> RunningServer:
            return running.enter_context(run_server(server_name, tmp_path, settings))

        yield start
