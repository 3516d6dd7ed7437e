"""conformance.checks: the kind of a check, by its name, and the report column of a server and transport."""

from __future__ import annotations

from conformance import probes, scenarios  # noqa: F401  (importing registers the checks)
from conformance.checks import CHECKS, column, columns_of, kind_of, split_column


def test_registered_checks_have_their_own_kind() -> None:
    assert kind_of("probe-scope") == "probe"
    assert kind_of("echo-text") == CHECKS["echo-text"].kind == "scenario"


def test_the_autobahn_stage_and_its_cases_are_autobahn() -> None:
    assert kind_of("autobahn") == "autobahn"  # the stage's own outcome, e.g. when the server did not start
    assert kind_of("autobahn:1.1.1") == "autobahn"
    assert kind_of("autobahnish") == "scenario"


def test_a_column_names_its_server_and_transport_and_splits_back() -> None:
    assert column("hypercorn", "http/1.1") == "hypercorn"
    assert column("hypercorn", "h2") == "hypercorn over h2"
    for name in columns_of(["hypercorn", "uvicorn-zttp"]):
        assert column(*split_column(name)) == name
    assert split_column("a server over lunch") == ("a server over lunch", "http/1.1")
