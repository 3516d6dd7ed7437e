"""conformance.checks: the kind of a check, by its name."""

from __future__ import annotations

from conformance import probes, scenarios  # noqa: F401  (importing registers the checks)
from conformance.checks import CHECKS, kind_of


def test_registered_checks_have_their_own_kind() -> None:
    assert kind_of("probe-scope") == "probe"
    assert kind_of("echo-text") == CHECKS["echo-text"].kind == "scenario"


def test_the_autobahn_stage_and_its_cases_are_autobahn() -> None:
    assert kind_of("autobahn") == "autobahn"  # the stage's own outcome, e.g. when the server did not start
    assert kind_of("autobahn:1.1.1") == "autobahn"
    assert kind_of("autobahnish") == "scenario"
