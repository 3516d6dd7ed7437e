"""Fixtures for the integration tests: which servers to run, and the running servers themselves.

Every test that asks for ``server``, ``start_server`` or ``server_name`` runs once
per server named by ``--servers`` (comma-separated; ``ASGI_WS_TEST_SERVERS`` when
the option is not given; all of :data:`DEFAULT_SERVERS` when neither is).

- ``server``: the app with default settings, one process per server name for the
  whole session.  Most tests use it.
- ``start_server``: starts the app with special ``ASGI_WS_*`` settings (a tiny
  connection cap, say) for one test, and stops it after that test.
- ``tls``: a certificate for 127.0.0.1 from a throwaway CA (trustme), its key,
  and a client context that trusts that CA, for ``run_server(..., tls=tls)``.
- ``browser``: Debian's Chromium (``apt-get install chromium``), driven by
  Playwright through ``executable_path``, so that no browser is downloaded.
  Without Chromium the tests that ask for it fail and say how to install it,
  unless ``--no-browser`` is given.

A requested server that is not installed is an error in every test that needs
it, never a skip: a run that was asked to cover hypercorn must not pass without
running hypercorn.

``--servers`` itself is declared in ``tests/conftest.py``, which pytest loads
before it parses the command line, so the option works with a bare ``pytest``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from asgi_ws.servers import SERVERS, Server
from conformance.launcher import RunningServer, StartServer, Tls, run_server

from ..conftest import requested_servers

PATIENCE_MS = 60_000  # for any one expectation; a loaded machine is slow, a broken page never gets there
MISSING = (
    "Chromium is not installed, and the browser tests drive a real one: "
    "apt-get install -y chromium (or pass --no-browser to run without the browser tests)"
)


def chromium(config: pytest.Config) -> str:
    """Debian's Chromium, for Playwright's ``executable_path``; skips with --no-browser, fails if missing."""
    if config.getoption("no_browser"):
        pytest.skip("--no-browser was given: the browser tests did not run")
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(MISSING, pytrace=False)
    expect.set_options(timeout=PATIENCE_MS)
    return found


@contextlib.contextmanager
def launched_chromium(config: pytest.Config, *args: str) -> Iterator[Browser]:
    """Chromium launched with ``args`` for the ``with`` block, and closed after it, whatever happens."""
    executable = chromium(config)
    with sync_playwright() as playwright:
        # Chromium's sandbox refuses to run as root, which is what CI runs as.
        launched = playwright.chromium.launch(
            executable_path=executable, args=[*(["--no-sandbox"] if os.geteuid() == 0 else []), *args]
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def browser(request: pytest.FixtureRequest) -> Iterator[Browser]:
    with launched_chromium(request.config) as launched:
        yield launched


def skip_unless_installed(server: str | Server, config: pytest.Config) -> None:
    """For tests that run under every server of the table, not only those ``--servers`` names.

    A server that is not installed here fails the test if ``--servers`` asked for it, as everywhere,
    and is skipped, saying so, if not: a tox environment installs one server family. CI installs all.
    """
    entry = SERVERS[server] if isinstance(server, str) else server
    if not entry.installed() and entry.name not in requested_servers(config):
        pytest.skip(
            f"{entry.name} is not installed here ({', '.join(entry.missing())}), and --servers did not ask for it"
        )


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A server certificate for HOST, its private key and the authority that signed it (PKCS#8 key)."""
    return Tls.issued(tmp_path_factory.mktemp("tls"))


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
