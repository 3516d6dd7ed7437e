"""conformance.published: the summary, and the generated blocks of the docs that quote it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.published import (
    SHUTDOWN_CHECK,
    TIMES,
    Block,
    block_text,
    conformance_example,
    publish_blocks,
    readme_claim,
    readme_table,
    replace_block,
    stale_blocks,
    summary_of,
)

LINE = "{server}: client-visible behaviour of asgi-ws: identical to uvicorn in {n} of 3 scenarios"
SUMMARY = {
    "ran_on": "2026-01-01, Python 3.11",
    "versions": {"uvicorn": "uvicorn 1", "hypercorn": "hypercorn 2", "daphne": "daphne 3"},
    "packages": {"uvicorn": "1"},
    # Sorted by name, as json.dumps(sort_keys=True) writes it: the table follows contract §0 instead.
    "headline": {
        "daphne": {
            "identical": 1,
            "scenarios": 3,
            "line": LINE.format(server="daphne", n=1) + "; except reason dropped: a, b",
            "exceptions": [{"check": "a", "reason": "reason dropped"}, {"check": "b", "reason": "reason dropped"}],
        },
        "hypercorn": {
            "identical": 2,
            "scenarios": 3,
            "line": LINE.format(server="hypercorn", n=2) + "; except SIGTERM cancels app: c",
            "exceptions": [{"check": "c", "reason": "SIGTERM cancels app"}],
        },
        "uvicorn": {"identical": 3, "scenarios": 3, "line": LINE.format(server="uvicorn", n=3), "exceptions": []},
    },
    "autobahn": {"cases": "1.*", "servers": {"uvicorn": {"summary": {"OK": 5, "FAILED": 1}}}},
}


def test_the_readme_table_counts_reasons_in_the_servers_order() -> None:
    table = readme_table(SUMMARY).splitlines()
    assert table[2] == "| uvicorn | identical in 3 of 3 scenarios | nowhere | 5 of 6 |"
    assert table[3] == f"| hypercorn | identical in 2 of 3 scenarios | SIGTERM cancels app {TIMES}1 | not run |"
    assert table[4] == f"| daphne | identical in 1 of 3 scenarios | reason dropped {TIMES}2 | not run |"
    assert "From the run of 2026-01-01, Python 3.11" in table[-1]


def test_the_readme_claim_groups_the_servers_by_their_identical_count() -> None:
    two_alike = {**SUMMARY, "headline": {**SUMMARY["headline"], "hypercorn": SUMMARY["headline"]["uvicorn"]}}
    assert " ".join(readme_claim(two_alike).split()) == (
        "Tested under 3 server configurations, with uvicorn as the reference, what a client sees of it is "
        "identical in 3 of 3 scenarios under uvicorn and hypercorn; in 1 of 3 under daphne. Which to choose, "
        "with each one's speed, Autobahn results and shutdown: [docs/choosing-a-server.md](docs/choosing-a-server.md)."
    )
    assert max(len(line) for line in readme_claim(SUMMARY).splitlines()) <= 100


def test_over_http2_the_readme_claim_adds_a_sentence_and_the_table_a_row_without_autobahn() -> None:
    over_h2 = {"identical": 2, "scenarios": 2, "line": "hypercorn: over HTTP/2 (h2): ...", "exceptions": []}
    summary = {**SUMMARY, "headline": {**SUMMARY["headline"], "hypercorn over h2": over_h2}}
    claim = " ".join(readme_claim(summary).split())
    assert claim.startswith("Tested under 3 server configurations,")
    assert "Over HTTP/2, as browsers use it where a server advertises it: identical in 2 of 2 scenarios under " in claim
    row = readme_table(summary).splitlines()[5]
    assert row == "| hypercorn over h2 | identical in 2 of 2 scenarios | nowhere | - |"


def test_the_example_is_hypercorns_headline() -> None:
    assert (
        conformance_example(SUMMARY) == "> " + LINE.format(server="hypercorn", n=2) + "; except SIGTERM cancels app: c."
    )


def test_a_block_is_replaced_between_its_markers_and_nothing_else() -> None:
    text = "before\n<!-- numbers: written by a test -->\nold\nlines\n<!-- /numbers -->\nafter\n"
    assert replace_block(text, "numbers", "new") == (
        "before\n<!-- numbers: written by a test -->\nnew\n<!-- /numbers -->\nafter\n"
    )
    assert block_text(text, "numbers") == "old\nlines"
    with pytest.raises(ValueError, match="no <!-- other -->"):
        replace_block(text, "other", "new")


def test_publishing_rewrites_a_stale_block_and_then_none_is_stale(tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps(SUMMARY))
    doc = tmp_path / "doc.md"
    doc.write_text("# Doc\n\n<!-- example: generated -->\n> identical in 45 of 48 scenarios\n<!-- /example -->\n")
    blocks = (Block(doc, "example", conformance_example),)
    assert stale_blocks(SUMMARY, blocks) == list(blocks)
    assert publish_blocks(summary, blocks) == [doc]
    assert stale_blocks(SUMMARY, blocks) == []
    assert "45 of 48" not in doc.read_text()
    assert "identical to uvicorn in 2 of 3 scenarios" in doc.read_text()


def test_the_summary_keeps_versions_packages_headlines_and_autobahn_counts_only() -> None:
    report = {
        **SUMMARY,
        "cells": [{"check": "a"}],
        "autobahn": {"cases": "1.*", "servers": {"uvicorn": {"summary": {"OK": 5}, "cases": {"1.1.1": "OK"}}}},
    }
    summary = summary_of(report)
    assert set(summary) == {"ran_on", "versions", "packages", "headline", "offers", "autobahn", "shutdown"}
    assert summary["packages"] == {"uvicorn": "1"}
    assert summary["autobahn"] == {"cases": "1.*", "servers": {"uvicorn": {"summary": {"OK": 5}}}}
    assert summary["shutdown"] == {}  # the run had no shutdown scenario


def test_the_summary_keeps_the_shutdown_row_as_each_server_s_words() -> None:
    row = {"check": SHUTDOWN_CHECK, "behaviour": "SIGTERM", "anchor": "o-sigterm", "spec": "1001", "severity": None}
    servers = {
        "uvicorn": {"outcome": "1012", "departs": False, "severity": None, "explained_by": None},
        "daphne": {"outcome": "no close frame", "departs": True, "severity": "client-visible", "explained_by": "d-x"},
    }
    other = {**row, "check": "probe-sigterm", "behaviour": "another row"}
    summary = summary_of({**SUMMARY, "outcomes": [other, {**row, "servers": servers}]})
    assert summary["shutdown"] == {
        "behaviour": "SIGTERM",
        "anchor": "o-sigterm",
        "servers": {"uvicorn": "1012", "daphne": "no close frame"},
    }
