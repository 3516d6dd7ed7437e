"""Every conformance scenario and probe under each server of ``--servers``, judged as the report judges it.

This is how ``tox -e py311-uvicorn`` (say) runs "the tests and the scenarios for
one server" (contract §5): the whole check suite runs once per server, then each
check is its own test, which passes when the verdict is "same" or a known
server divergence and fails with the diff otherwise.  Autobahn is not run here;
``python -m conformance`` runs it.

Over HTTP/2 (contract §11) the server is asked what a browser would ask
(:mod:`conformance.transports`): where it advertises WebSockets over HTTP/2, the
scenarios run over it too and are judged in its "over h2" column; where it does
not, a browser's fallback to HTTP/1.1 must work.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from asgi_ws.servers import SERVERS
from conformance import probes, scenarios  # noqa: F401  (importing registers the checks)
from conformance.checks import CHECKS, column
from conformance.launcher import APP
from conformance.outcomes import BEHAVIOURS, Behaviour, cell_words
from conformance.runner import run_checks
from conformance.transports import offer
from conformance.verdicts import Cell, judge, load_divergences, load_expected

# The first test of each server runs every check under it (the session fixture below): minutes,
# not the two minutes pytest-timeout gives one test (gunicorn alone waits 30 s at SIGTERM).
pytestmark = [pytest.mark.server, pytest.mark.timeout(900)]


@pytest.fixture(scope="session")
def verdicts(server_name: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Cell]:
    """Run every check under ``server_name`` once; each check's verdict, by name."""
    work_dir: Path = tmp_path_factory.mktemp(f"conformance-{server_name}")
    outcomes = run_checks(
        SERVERS[server_name],
        list(CHECKS.values()),
        app=APP,
        echo_path="/echo",
        work_dir=work_dir,
        progress=lambda line: None,
    )
    divergences = load_divergences()
    return {outcome.check: judge(outcome, load_expected(outcome.check), divergences) for outcome in outcomes}


@pytest.mark.parametrize("check", list(CHECKS))
def test_check(verdicts: dict[str, Cell], check: str) -> None:
    cell = verdicts[check]
    assert not cell.failing, f"{cell.verdict} under {cell.server}:\n{cell.diff or cell.error}"


@pytest.mark.parametrize("behaviour", BEHAVIOURS, ids=lambda behaviour: behaviour.title)
def test_every_row_describes_what_the_server_did(verdicts: dict[str, Cell], behaviour: Behaviour) -> None:
    """The behaviour table's cell for this server is words, never "?" (a transcript shape its describer misreads).

    A check that could not finish reads "did not finish", or "the server process exits" where it ended the
    server; test_check fails the first unless an entry expects it."""
    cell = verdicts[behaviour.check]
    words = cell_words(behaviour, cell)
    assert "?" not in words, f"{behaviour.title}: {words!r} from {cell.observed}"


def test_over_http2_as_a_browser_finds_it(server_name: str, tmp_path: Path) -> None:
    """Over TLS with ALPN h2: every scenario the same or explained where the server advertises extended
    CONNECT; otherwise the browser's fallback, a WebSocket over HTTP/1.1 at the same address, works."""
    server = SERVERS[server_name]
    found = offer(server, "h2", tmp_path / "offer")
    if not found.served:
        assert found.found.endswith("a browser falls back to HTTP/1.1, where the WebSocket works"), found.found
        return
    over = [check for check in CHECKS.values() if check.kind == "scenario" and check.http1_only is None]
    outcomes = run_checks(
        server, over, app=APP, echo_path="/echo", work_dir=tmp_path, progress=lambda line: None, transport="h2"
    )
    divergences = load_divergences()
    cells = [judge(outcome, load_expected(outcome.check), divergences) for outcome in outcomes]
    assert {cell.server for cell in cells} == {column(server_name, "h2")}
    failing = [f"{cell.verdict}: {cell.check}\n{cell.diff or cell.error}" for cell in cells if cell.failing]
    assert not failing, "\n".join(failing)
