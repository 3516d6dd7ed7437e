"""conformance.verdicts: judging transcripts against expected ones and known divergences."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest

from conformance import probes, scenarios  # noqa: F401  (importing registers the checks)
from conformance.checks import CHECKS
from conformance.runner import Outcome
from conformance.verdicts import (
    Divergence,
    DivergenceFileError,
    ReferenceNote,
    judge,
    load_divergences,
    load_expected,
    load_reference_notes,
    save_expected,
    split_sides,
    stale,
    unexplained,
)

EXPECTED = {"handshake": 101, "frames": ["a"], "close": [1000, ""]}
KNOWN = Divergence(("close-*",), ("daphne",), "Daphne sends 1001 on its own.", "daphne/ws_protocol.py", "client")
# A transcript with both sides: what the client saw, and what the app saw (keys starting with "app").
TWO_SIDED = {"client": {"close": 1000}, "app": {"disconnect": 1000}, "step": {"app saw": "x", "status": 101}}
APP_ONLY = Divergence(("both-*",), ("hypercorn",), "The app is told 1006.", "hypercorn/ws_stream.py", "app")
CLIENT_ONLY = Divergence(("both-*",), ("hypercorn",), "The client gets 1011.", "hypercorn/ws_stream.py", "client")


def test_equal_transcripts_are_same() -> None:
    cell = judge(Outcome("close-normal", "hypercorn", dict(EXPECTED)), EXPECTED, [KNOWN])
    assert cell.verdict == "same"
    assert not cell.failing


def test_a_difference_without_entry_differs_with_a_diff() -> None:
    observed = {**EXPECTED, "close": [1001, ""]}
    cell = judge(Outcome("close-normal", "hypercorn", observed), EXPECTED, [KNOWN])
    assert cell.verdict == "differs"
    assert cell.failing
    assert cell.diff is not None
    assert "-    1000," in cell.diff
    assert "+    1001," in cell.diff


def test_a_difference_with_a_matching_entry_is_known() -> None:
    observed = {**EXPECTED, "close": [1001, ""]}
    cell = judge(Outcome("close-normal", "daphne", observed), EXPECTED, [KNOWN])
    assert cell.verdict == "known"
    assert cell.divergence is KNOWN
    assert not cell.failing


def test_a_transcript_splits_into_client_and_app_sides_at_any_depth() -> None:
    client, app = split_sides(TWO_SIDED)
    assert client == {"client": {"close": 1000}, "step": {"status": 101}}
    assert app == {"app": {"disconnect": 1000}, "step": {"app saw": "x"}}


def test_each_side_is_judged_apart() -> None:
    app_differs = {**TWO_SIDED, "app": {"disconnect": 1006}}
    cell = judge(Outcome("both-a", "hypercorn", app_differs), TWO_SIDED, [APP_ONLY])
    assert (cell.client, cell.app, cell.verdict) == ("same", "known", "known")
    assert cell.explanation("app") is APP_ONLY
    assert cell.explanation("client") is None


def test_an_app_side_entry_does_not_hide_a_client_side_difference() -> None:
    both_differ = {**TWO_SIDED, "app": {"disconnect": 1006}, "client": {"close": 1011}}
    cell = judge(Outcome("both-a", "hypercorn", both_differ), TWO_SIDED, [APP_ONLY])
    assert (cell.client, cell.app) == ("differs", "known")
    assert cell.failing
    explained = judge(Outcome("both-a", "hypercorn", both_differ), TWO_SIDED, [APP_ONLY, CLIENT_ONLY])
    assert (explained.client, explained.app) == ("known", "known")
    assert explained.divergences == (CLIENT_ONLY, APP_ONLY)
    assert not explained.failing


def test_a_nested_app_key_counts_as_the_app_side() -> None:
    nested = {**TWO_SIDED, "step": {"app saw": "y", "status": 101}}
    cell = judge(Outcome("both-a", "hypercorn", nested), TWO_SIDED, [APP_ONLY])
    assert (cell.client, cell.app) == ("same", "known")


def test_errors_fail_unless_explained() -> None:
    assert judge(Outcome("x", "granian", None, "timed out"), EXPECTED, []).verdict == "error"
    assert judge(Outcome("close-x", "daphne", None, "timed out"), EXPECTED, [KNOWN]).verdict == "known"


def test_no_expected_transcript_fails() -> None:
    cell = judge(Outcome("new-check", "uvicorn", EXPECTED), None, [])
    assert cell.verdict == "no baseline"
    assert unexplained([cell]) == [cell]


def test_expected_files_round_trip(tmp_path: Path) -> None:
    save_expected("autobahn:1.1.1", EXPECTED, tmp_path)
    assert load_expected("autobahn:1.1.1", tmp_path) == EXPECTED
    assert load_expected("missing", tmp_path) is None


def test_divergence_file_is_validated(tmp_path: Path) -> None:
    path = tmp_path / "divergences.toml"
    path.write_text(
        '[[divergence]]\ncheck = "a"\nservers = ["daphne"]\nwhy = """Two\n  lines."""\nsource = "s"\n'
        'side = "app"\nlabel = "two lines"\nupstream = ["https://example.org/1 (open)"]\n'
    )
    assert load_divergences(path, ["daphne"]) == [
        Divergence(("a",), ("daphne",), "Two lines.", "s", "app", "two lines", ("https://example.org/1 (open)",))
    ]
    with pytest.raises(DivergenceFileError, match="unknown servers"):
        load_divergences(path, ["uvicorn"])
    path.write_text('[[divergence]]\ncheck = "a"\nservers = ["daphne"]\n')
    with pytest.raises(DivergenceFileError, match="missing why, source, side, label"):
        load_divergences(path)
    path.write_text('[[divergence]]\ncheck = "a"\nservers = ["d"]\nwhy = "W."\nsource = "s"\nside = "x"\nlabel = "l"\n')
    with pytest.raises(DivergenceFileError, match="side must be client, app or both"):
        load_divergences(path)


def test_one_entry_can_cover_several_checks(tmp_path: Path) -> None:
    path = tmp_path / "divergences.toml"
    path.write_text(
        '[[divergence]]\nchecks = ["a-*", "b"]\nservers = ["daphne"]\nwhy = "W."\nsource = "s"\n'
        'side = "both"\nlabel = "l"\n'
    )
    (entry,) = load_divergences(path)
    assert entry.covers("a-1", "daphne")
    assert entry.covers("b", "daphne")
    assert not entry.covers("c", "daphne")
    assert not entry.covers("b", "granian")


def test_stale_entries_are_the_unused_ones() -> None:
    other = Divergence(("z",), ("granian",), "Why.", "src")
    cell = judge(Outcome("close-a", "daphne", {"x": 1}), EXPECTED, [KNOWN, other])
    assert stale([KNOWN, other], [cell]) == [other]


def test_the_committed_divergence_file_is_valid() -> None:
    from asgi_ws.servers import SERVERS
    from conformance.checks import columns_of

    for entry in load_divergences(known_servers=columns_of(SERVERS)):
        assert entry.why.endswith("."), entry
        assert entry.source, entry
        assert 1 <= len(entry.label.split()) <= 5, entry.label
        for link in entry.upstream:
            assert link.startswith("https://github.com/"), link
            assert link.endswith(("(open)", "(closed)", "(merged)")), link


def test_reference_notes_load_and_need_every_key(tmp_path: Path) -> None:
    path = tmp_path / "divergences.toml"
    path.write_text('[[reference]]\nchecks = ["a"]\nwhy = """Two\n lines."""\nsource = "s"\n')
    assert load_reference_notes(path) == [ReferenceNote(("a",), "Two lines.", "s")]
    path.write_text('[[reference]]\nchecks = ["a"]\n')
    with pytest.raises(DivergenceFileError, match="reference note 1: missing why, source"):
        load_reference_notes(path)


def test_the_shipped_reference_notes_name_real_checks() -> None:
    for note in load_reference_notes():
        assert note.why.endswith("."), note
        for pattern in note.checks:
            assert fnmatch.filter(CHECKS, pattern), pattern
