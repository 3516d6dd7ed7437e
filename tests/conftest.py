"""Fixtures shared by every test module.

Why anyio's pytest plugin and not pytest-asyncio: unit tests are ``async`` and
must run on *both* event loops, asyncio and trio, because the app runs under
hypercorn's trio worker as well as under the asyncio servers (contract §0). pytest-asyncio
runs tests on asyncio only; anyio's plugin runs each test once per backend that
the ``anyio_backend`` fixture below lists, so a test that passes on asyncio but
not on trio fails here rather than in production.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from asgi_ws.app import App, create_app
from asgi_ws.servers import SERVERS
from asgi_ws.settings import Settings
from conformance.redis_server import RedisServer

# Which servers the tests that take ``server_name`` run under: tests/integration, tests/conformance.
DEFAULT_SERVERS = "uvicorn,hypercorn,hypercorn-trio"
SERVERS_ENV = "ASGI_WS_TEST_SERVERS"


def requested_servers(config: pytest.Config) -> list[str]:
    """The server names to test, from the option, the environment or the default, in that order."""
    raw = config.getoption("servers", default=None) or os.environ.get(SERVERS_ENV) or DEFAULT_SERVERS
    names = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = [name for name in names if name not in SERVERS]
    if unknown or not names:
        raise pytest.UsageError(f"--servers {raw!r}: expected names from {', '.join(SERVERS)}")
    return names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Session scope: pytest orders the tests server by server, so each shared server starts once.
    if "server_name" in metafunc.fixturenames:
        metafunc.parametrize("server_name", requested_servers(metafunc.config), scope="session")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--no-browser",
        action="store_true",
        help="run without Chromium: the demo page tests are skipped, and the summary says so. "
        "Without this flag a missing chromium fails those tests.",
    )
    parser.addoption(
        "--no-node",
        action="store_true",
        help="run without Node: the tests of the feed's JavaScript client are skipped, and the summary says so. "
        "Without this flag a missing node or node-ws fails those tests.",
    )
    parser.addoption(
        "--no-redis",
        action="store_true",
        help="run without redis-server: the Redis broker tests are skipped, and the summary says so. "
        "Without this flag a missing redis-server fails those tests.",
    )
    parser.addoption(
        "--servers",
        default=None,
        help=f"comma-separated servers for the integration tests, from {', '.join(SERVERS)} "
        f"(default: ${SERVERS_ENV}, else {DEFAULT_SERVERS})",
    )


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


MakeApp = Callable[..., App]


@pytest.fixture
def make_app() -> MakeApp:
    """``make_app(rate_limit=0, ...)``: an app with these settings, defaults for the rest."""

    def make(**settings: Any) -> App:
        return create_app(Settings(**settings))

    return make


@pytest.fixture
def app(make_app: MakeApp) -> App:
    """An app with the default settings."""
    return make_app()


@pytest.fixture
def redis_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server on a free port for this test, which the test may kill and restart."""
    yield from _redis_server(request, tmp_path, persistent=False)


@pytest.fixture
def persistent_redis(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RedisServer]:
    """The same, but a restart keeps every acknowledged write (an append-only file, fsynced always)."""
    yield from _redis_server(request, tmp_path, persistent=True)


def _redis_server(request: pytest.FixtureRequest, tmp_path: Path, *, persistent: bool) -> Iterator[RedisServer]:
    if request.config.getoption("no_redis"):
        pytest.skip("--no-redis was given: the Redis broker tests did not run")
    try:
        server = RedisServer(tmp_path, persistent=persistent)
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        server.start()
        yield server
    finally:
        server.stop()
