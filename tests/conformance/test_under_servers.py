"""Every conformance scenario and probe under each server of ``--servers``, judged as the report judges it.

This is how ``tox -e py311-uvicorn`` (say) runs "the tests and the scenarios for
one server" (contract §5): the whole check suite runs once per server, then each
check is its own test, which passes when the verdict is "same" or a known
server divergence and fails with the diff otherwise.  Autobahn is not run here;
``python -m conformance`` runs it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from asgi_ws.servers import SERVERS
from conformance import probes, scenarios  # noqa: F401  (importing registers the checks)
from conformance.checks import CHECKS
from conformance.launcher import APP
from conformance.outcomes import BEHAVIOURS, Behaviour, cell_words
from conformance.runner import run_checks
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
