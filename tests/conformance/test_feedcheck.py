"""conformance.feedcheck: the feed's gap and duplicate checker, on histories written by hand."""

from __future__ import annotations

import json

from asgi_ws.feed import Since
from conformance.feedcheck import Connection, check


def numbered(offset: int, epoch: str = "E1", data: str | None = None) -> str:
    return json.dumps({"offset": offset, "epoch": epoch, "data": f"m{offset}" if data is None else data})


def control(recovered: bool, epoch: str, top: int) -> str:
    return json.dumps({"recovered": recovered, "epoch": epoch, "offset": top})


def run(*offsets: int, epoch: str = "E1") -> list[str]:
    return [numbered(offset, epoch) for offset in offsets]


def test_a_clean_history_with_a_served_resume() -> None:
    result = check(
        {
            "a": [Connection(None, run(1, 2, 3)), Connection(Since("E1", 3), [control(True, "E1", 5), *run(4, 5, 6)])],
            "b": [Connection(None, run(2, 3, 4, 5, 6))],
        }
    )
    assert result.clean, result.report()
    assert result.line("hand") == (
        "feed-check hand: clients=2 messages=11 resumes=1 (not recovered 0) gaps=0 duplicates=0 doubled=0"
    )
    assert result.clients["a"].connections == 2
    assert result.clients["a"].epochs == ["E1"]


def test_a_gap_within_one_connection_and_across_two() -> None:
    result = check(
        {"a": [Connection(None, run(1, 2, 4)), Connection(Since("E1", 4), [control(True, "E1", 4), *run(7)])]}
    )
    tally = result.clients["a"]
    assert (tally.gaps, tally.missing, tally.duplicates) == (2, 3, 0)
    assert not result.clean
    assert "gap in E1 from 2 to 4" in result.report()


def test_a_duplicate_within_one_connection_and_across_a_resume() -> None:
    replayed_again = Connection(Since("E1", 2), [control(True, "E1", 3), *run(3)])
    result = check({"a": [Connection(None, run(1, 2, 2, 3)), replayed_again]})
    tally = result.clients["a"]
    assert (tally.gaps, tally.duplicates, tally.bad_resumes) == (0, 2, 0)
    assert "duplicates=2" in result.line("hand")


def test_a_served_resume_that_starts_elsewhere_is_a_bad_resume() -> None:
    too_late = Connection(Since("E1", 2), [control(True, "E1", 5), *run(4, 5)])
    too_early = Connection(Since("E1", 5), [control(True, "E1", 6), *run(5, 6)])
    result = check({"late": [Connection(None, run(1, 2)), too_late], "early": [Connection(None, run(4, 5)), too_early]})
    assert (result.clients["late"].bad_resumes, result.clients["late"].gaps) == (1, 1)
    assert (result.clients["early"].bad_resumes, result.clients["early"].duplicates) == (1, 1)
    assert "the replay started at E1:4, not at E1:3" in result.report()
    assert "bad_resumes=2" in result.line("hand")


def test_a_served_resume_in_another_epoch_is_a_bad_resume() -> None:
    result = check({"a": [Connection(None, run(1)), Connection(Since("E1", 1), [control(True, "E2", 1)])]})
    assert result.clients["a"].bad_resumes == 1


def test_a_resume_without_its_control_message_or_a_control_message_unasked() -> None:
    missing = Connection(Since("E1", 1), run(2))
    unasked = Connection(None, [control(False, "E1", 2), *run(3)])
    result = check({"a": [Connection(None, run(1)), missing, unasked]})
    assert result.clients["a"].malformed == 2
    assert not result.clean


def test_a_resume_not_recovered_may_jump_once() -> None:
    trimmed = Connection(Since("E1", 2), [control(False, "E1", 90), *run(91, 92, 94)])
    result = check({"a": [Connection(None, run(1, 2)), trimmed]})
    tally = result.clients["a"]
    assert (tally.resumes, tally.not_recovered, tally.gaps) == (1, 1, 1)  # the jump to 91 is allowed, 92 to 94 is not
    assert (tally.skipped, tally.missing) == (88, 1)
    assert "(not recovered 1)" in result.line("hand")


def test_a_new_epoch_starts_a_new_sequence() -> None:
    lost = Connection(Since("E1", 3), [control(False, "E2", 0), *run(1, 2, epoch="E2")])
    result = check(
        {"a": [Connection(None, run(1, 2, 3)), lost], "b": [Connection(None, run(3) + run(1, 2, epoch="E2"))]}
    )
    assert result.clean, result.report()
    assert result.clients["b"].epochs == ["E1", "E2"]


def test_clients_that_disagree_on_the_data_at_an_offset() -> None:
    result = check(
        {"a": [Connection(None, run(1, 2))], "b": [Connection(None, [numbered(1), numbered(2, data="other")])]}
    )
    assert result.disagreements == 1
    assert "disagreements=1" in result.line("hand")
    assert "b: E1:2 carried other data" in result.report()


def test_a_text_that_is_no_feed_message() -> None:
    result = check(
        {"a": [Connection(None, ["hello", json.dumps([1]), json.dumps({"offset": True, "epoch": "E1", "data": ""})])]}
    )
    assert result.clients["a"].malformed == 3
    assert result.clients["a"].messages == 0


def test_one_message_numbered_twice_is_doubled_for_every_client_that_received_both() -> None:
    resent = [numbered(1, data="s:1"), numbered(2, data="s:2"), numbered(3, data="s:1")]
    result = check({"a": [Connection(None, resent)], "b": [Connection(None, resent[1:])]})
    assert (result.clients["a"].doubled, result.clients["b"].doubled) == (1, 0)
    assert result.clients["a"].duplicates == 0  # every offset came once: only the data repeats
    assert not result.clean
    assert "doubled=1" in result.line("hand")
    assert "a: connection 1: 's:1' at E1:3, and before at E1:1" in result.report()


def test_the_same_data_in_two_epochs_is_not_doubled() -> None:
    result = check({"a": [Connection(None, [numbered(1, data="s:1"), numbered(1, epoch="E2", data="s:1")])]})
    assert result.clients["a"].doubled == 0
    assert result.clean, result.report()


def test_an_ack_must_name_where_the_clients_received_its_message() -> None:
    history = {"a": [Connection(None, [numbered(1, data="s:1"), numbered(2, data="s:2")])]}
    assert check(history, {"s:1": ("E1", 1), "s:2": ("E1", 2)}).clean
    result = check(history, {"s:1": ("E1", 2), "s:3": ("E1", 3)})
    assert result.wrong_acks == 2
    assert "wrong_acks=2" in result.line("hand")
    assert "'s:3' was acked at E1:3, where no client received it" in result.report()


def test_a_resume_lost_before_its_first_message_says_nothing() -> None:
    lost = Connection(Since("E1", 1), [])
    result = check(
        {"a": [Connection(None, run(1)), lost, Connection(Since("E1", 1), [control(True, "E1", 2), *run(2)])]}
    )
    assert result.clean, result.report()
    assert (result.clients["a"].connections, result.clients["a"].resumes) == (3, 1)
