"""conformance.outcomes, conformance.portability and conformance.summary: the tables read first."""

from __future__ import annotations

import pytest

from conformance import probes, scenarios  # noqa: F401  (importing registers the checks)
from conformance.checks import CHECKS
from conformance.outcomes import (
    BEHAVIOURS,
    Behaviour,
    cell_words,
    close_words,
    disconnect,
    ending,
    handshake,
    outcome_rows,
)
from conformance.portability import RULES
from conformance.runner import Outcome
from conformance.verdicts import Cell, Divergence, judge, load_expected

REFERENCE_CLOSE = {"client": {"close": {"code": 1000, "reason": "", "reason_bytes": 0}, "end": "closed"}}


def test_closing_views_read_as_a_few_words() -> None:
    assert ending({"close": None, "end": "closed", "messages": []}) == "no close frame"
    assert ending({"close": None, "end": "still open", "messages": []}) == "left open ≥ 5 s"
    assert ending({"close": {"code": 1011, "reason": ""}, "end": "closed"}) == "1011"
    assert ending({"close": {"code": None, "payload_length": 0}, "end": "closed"}) == "close, no code"
    assert ending({"status": 101, "then": {"close": None, "end": "closed"}}) == "no close frame"
    assert ending({"status": 403, "body": ""}) == "403"
    assert close_words({"code": 4000, "reason": "é" * 61, "reason_bytes": 122}) == "4000, 122-byte reason"
    assert close_words("eof without close frame") == "no close frame"
    assert handshake({"status": None, "failure": "closed without a response", "at once": False}) == (
        "TCP closed after a delay"
    )


def test_the_app_disconnect_reads_from_either_view() -> None:
    probe_view = {
        "disconnect": {"keys": {"code": "int"}, "type": "websocket.disconnect"},
        "received": [{"code": 1006, "type": "websocket.disconnect"}],
    }
    assert disconnect(probe_view) == "1006, no reason"
    assert disconnect({"disconnect": {"code": 4000, "reason": "bye"}}) == "4000 'bye'"
    assert disconnect({"received": []}) == "no disconnect"


@pytest.mark.parametrize("behaviour", BEHAVIOURS, ids=lambda behaviour: behaviour.title)
def test_every_row_describes_its_expected_transcript(behaviour: Behaviour) -> None:
    assert behaviour.check in CHECKS, behaviour.check
    expected = load_expected(behaviour.check)
    assert expected is not None, behaviour.check
    words = behaviour.describe(expected)
    assert "?" not in words, (behaviour.title, words)


def test_a_departing_cell_links_to_the_entry_for_its_side() -> None:
    entry = Divergence(("probe-raise-after-accept",), ("hypercorn",), "Sends 1011.", "ws_stream.py", "client", "1011")
    expected = load_expected("probe-raise-after-accept")
    assert expected is not None
    observed = {
        **expected,
        "client": {
            **expected["client"],
            "then": {"close": {"code": 1011, "reason": ""}, "end": "closed", "messages": []},
        },
    }
    cells = [
        judge(Outcome("probe-raise-after-accept", "uvicorn", expected), expected, [entry]),
        judge(Outcome("probe-raise-after-accept", "hypercorn", observed), expected, [entry]),
    ]
    (row,) = [row for row in outcome_rows(cells, ["uvicorn", "hypercorn"]) if row.check == "probe-raise-after-accept"]
    assert row.cells["uvicorn"].words == "no close frame"
    assert not row.cells["uvicorn"].departs
    assert row.cells["hypercorn"].words == "1011"
    assert row.cells["hypercorn"].explained_by is entry
    assert row.departing() == ["hypercorn"]
    assert row.cells["uvicorn"].severity is None
    assert row.cells["hypercorn"].severity == "client-visible"


def _row(title: str) -> Behaviour:
    return next(behaviour for behaviour in BEHAVIOURS if behaviour.title == title)


def test_the_rows_of_server_states_read_each_shape_a_server_gave() -> None:
    """Transcripts as servers recorded them (pyvoy, hypercorn, granian, daphne), in the rows' words."""
    unanswered, early, one_byte, backpressure = (
        _row(title)
        for title in (
            "Client never answers the app's close frame",
            "Client sends a message with its handshake, before the 101",
            "Client's close frame with a 1-byte payload",
            "Client writes 16 MiB while the app calls no receive()",
        )
    )
    words = unanswered.describe({"client": {"TCP ended by the server": "not within 15 s"}})
    assert words == "TCP left open ≥ 15 s"
    assert unanswered.severity(words, "ends TCP within 15 s") == "crash or hang"
    assert unanswered.describe({"client": {"TCP ended by the server": "within 1.5 s"}}) == "ends TCP within 1.5 s"
    later = {"client": {"TCP ended by the server": "later than 1.5 s, within 15 s"}}
    assert unanswered.describe(later) == "ends TCP within 15 s"
    no_record = {"client": {"status": 400}, "app": {"received": "the app wrote no observation for this connection"}}
    assert early.describe(no_record) == "400; no record from the app"
    delivered = {"type": "websocket.receive", "text": 5}
    assert early.describe({"client": {"status": 101}, "app": {"received": [delivered]}}) == (
        "101; the message reaches the app"
    )
    assert early.describe({"client": {"status": None}, "app": {"received": []}}) == (
        "TCP closed, no response; the app told nothing"
    )
    assert one_byte.describe({"client": {"close code": "0-byte payload", "end": "closed"}}) == "an empty close"
    assert one_byte.describe({"client": {"close code": 1002, "end": "still open"}}) == "1002, TCP left open"
    queued = {"client": {"all written within 3 s, the app not reading": True}, "app": {"received": "some"}}
    assert backpressure.describe(queued) == "the server queues it all; the app gets some"


def test_a_check_that_ended_the_server_reads_so_and_is_a_crash() -> None:
    early = _row("Client sends a message with its handshake, before the 101")
    died = Cell("probe-data-before-101", "x", "known", "known", error="the server process exited (1) during this check")
    stuck = Cell("probe-data-before-101", "x", "error", "error", error="timed out after 60 s")
    assert cell_words(early, died) == "the server process exits"
    assert cell_words(early, stuck) == "did not finish"
    assert early.severity("the server process exits", "101; the message is lost") == "crash or hang"


def test_each_departing_cell_has_a_severity_and_the_row_its_worst() -> None:
    check = "probe-return-after-accept"
    expected = load_expected(check)
    assert expected is not None

    def ended(then: dict[str, object]) -> dict[str, object]:
        return {**expected, "client": {**expected["client"], "then": then}}

    observed = {
        "uvicorn": expected,
        "uvicorn-wsproto": expected,
        "hypercorn": ended({"close": {"code": 1011, "reason": ""}, "end": "closed", "messages": []}),
        "daphne": ended({"close": None, "end": "still open", "messages": []}),
    }
    entry = Divergence((check,), ("hypercorn", "daphne"), "Ends it its own way.", "server.py", "client", "own end")
    cells = [judge(Outcome(check, server, transcript), expected, [entry]) for server, transcript in observed.items()]
    (row,) = [row for row in outcome_rows(cells, list(observed)) if row.check == check]
    assert {server: cell.severity for server, cell in row.cells.items()} == {
        "uvicorn": None,
        "uvicorn-wsproto": None,
        "hypercorn": "client-visible",
        "daphne": "crash or hang",
    }
    assert row.severity == "crash or hang"

    alike = [cell for cell in cells if cell.server.startswith("uvicorn")]
    (quiet,) = [row for row in outcome_rows(alike, ["uvicorn", "uvicorn-wsproto"]) if row.check == check]
    assert quiet.severity is None


def test_every_portability_rule_is_proven_by_a_row() -> None:
    rows = {behaviour.check for behaviour in BEHAVIOURS}
    for rule in RULES:
        assert rule.checks, rule.rule
        for check in rule.checks:
            assert check in CHECKS, check
            assert check in rows, f"{rule.rule}: no outcome row shows {check}"


def test_racy_checks_say_how_they_stay_stable() -> None:
    racy = [check for check in CHECKS.values() if check.racy is not None]
    assert racy
    for check in racy:
        assert len(check.racy or "") > 20, check.name
