"""The published evidence agrees with the lock and with itself (contract §12).

The conformance matrix is a statement about exact versions, and the README and
docs quote its numbers. These tests read the committed files only, so they fail
the moment a lock refresh or a hand edit makes them disagree:

- every package the published matrix ran on is the version ``uv.lock`` pins;
- the matrix page and ``docs/server-summary.json`` come from the same run;
- the portability guide comes from that run too, links to the matrix's rows, and is not
  carried by the matrix page as well;
- every block that quotes the summary is what the summary gives;
- every scenario total that any doc quotes is the summary's.

The benchmark results have their own, in ``tests/test_bench_report.py``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from conformance.checks import split_column
from conformance.portability import RULES
from conformance.published import SUMMARY, stale_blocks
from conformance.versions import disagreements, locked

ROOT = Path(__file__).resolve().parent.parent
MATRIX = ROOT / "docs" / "server-divergences.md"
GUIDE = ROOT / "docs" / "portability.md"
# Where a run's numbers are quoted: the README, the docs, and the bench's results and analysis.
QUOTING = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md"), ROOT / "bench" / "RESULTS.md"])


@pytest.fixture(scope="module")
def summary() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(SUMMARY.read_text())
    return document


def test_the_matrix_names_every_package_its_servers_ran_on(summary: dict[str, Any]) -> None:
    names = set(summary["packages"])
    for server, versions in summary["versions"].items():
        for package in versions.split(", "):
            name, _, version = package.rpartition(" ")
            assert summary["packages"].get(name) == version, f"{server}: {package} is not in the summary's packages"
    # The servers' protocol libraries are named too, not only the servers.
    assert {"h11", "wsproto", "websockets", "anyio"} <= names


def test_the_matrix_describes_the_locked_versions(summary: dict[str, Any]) -> None:
    differ = disagreements(summary["packages"], locked())
    assert not differ, (
        "docs/server-summary.json describes versions that uv.lock does not pin: "
        + ", ".join(f"{name} {text}" for name, text in differ.items())
        + ". Run `python -m conformance --publish --html` from the locked .venv (docs/reproducible.md)."
    )


def test_every_version_a_divergence_cites_is_the_locked_one(summary: dict[str, Any]) -> None:
    """An entry's source cites code at a version ("autobahn 26.11.1, autobahn/websocket/..."): the lock's."""
    text = (ROOT / "conformance" / "divergences.toml").read_text()
    names = "|".join(re.escape(name) for name in summary["packages"])
    cited = set(re.findall(rf"\b({names})\s+(\d+\.\d+(?:\.\d+)?)\b", text))
    assert cited, "divergences.toml cites no package version"
    pinned = locked()
    differ = sorted(text for name, version in cited for text in disagreements({name: version}, pinned).values())
    assert not differ, f"divergences.toml cites versions that uv.lock does not pin: {differ}"


def test_the_matrix_page_and_the_summary_come_from_one_run(summary: dict[str, Any]) -> None:
    page = MATRIX.read_text()
    assert f"on {summary['ran_on']}." in page.splitlines()[2]
    for headline in summary["headline"].values():
        assert f"- {headline['line']}." in page
    for name, version in summary["packages"].items():
        assert f"{name} {version}" in page


def test_the_portability_guide_is_published_beside_the_matrix_from_the_same_run(summary: dict[str, Any]) -> None:
    guide, matrix = GUIDE.read_text(), MATRIX.read_text()
    assert f" on {summary['ran_on']}, with the matrix [{MATRIX.name}]({MATRIX.name})" in guide.splitlines()[2]
    rules = [line for line in guide.splitlines() if re.match(r"\d+\. \*\*", line)]
    assert [line.split("**")[1] for line in rules] == [rule.rule for rule in RULES]
    anchors = set(re.findall(r'<a id="(o-[^"]+)"></a>', matrix))
    linked = set(re.findall(rf"\]\({re.escape(MATRIX.name)}#(o-[^)]+)\)", guide))
    assert linked, f"{GUIDE.name} links to no row of {MATRIX.name}"
    assert linked <= anchors, f"{GUIDE.name} links to rows {MATRIX.name} does not have: {sorted(linked - anchors)}"
    assert f"[{GUIDE.name}]({GUIDE.name})" in matrix
    assert not [rule.rule for rule in RULES if rule.rule in matrix], f"{MATRIX.name} carries the guide's rules too"


def test_every_block_that_quotes_the_summary_is_current(summary: dict[str, Any]) -> None:
    stale = stale_blocks(summary)
    assert not stale, f"{stale} differ from docs/server-summary.json: python -c " + (
        "'from conformance.published import publish_blocks; publish_blocks()' rewrites them"
    )


def test_every_scenario_total_quoted_anywhere_is_the_summarys(summary: dict[str, Any]) -> None:
    by_transport: dict[str, set[int]] = {}
    for name, headline in summary["headline"].items():
        by_transport.setdefault(split_column(name)[1], set()).add(headline["scenarios"])
    uneven = {transport: totals for transport, totals in by_transport.items() if len(totals) != 1}
    assert not uneven, f"the servers ran different numbers of scenarios over one transport: {uneven}"
    totals = set().union(*by_transport.values())
    quoted = {
        f"{path.relative_to(ROOT)}: {found.group(0)}"
        for path in QUOTING
        for found in re.finditer(r"\b(\d+) of (\d+)(?: scenarios\b|(?= \| \d+/\d+ OK))", path.read_text())
        if int(found.group(2)) not in totals
    }
    assert not quoted, f"scenario totals other than the summary's {totals}: {sorted(quoted)}"


def test_no_cell_of_the_behaviour_table_is_a_question_mark() -> None:
    """Every cell of "What each server does" was described; "?" means a describer misread a transcript."""
    rows = [line for line in MATRIX.read_text().splitlines() if line.startswith('| <a id="o-')]
    assert rows, f"{MATRIX.name} has no behaviour table"
    unread = [
        (row.split("</a>")[1].split("|")[0].strip(), cell.strip())
        for row in rows
        for cell in row.strip("|").split("|")
        if re.search(r"(^|[\s\[;])\?($|[\s\];])", cell)
    ]
    assert not unread, f"cells the describer could not read: {unread}"
