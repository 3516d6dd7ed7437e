"""conformance.report: the Markdown, JSON and HTML renderings of a run."""

from __future__ import annotations

import json
from pathlib import Path

from conformance.report import Report, write_html, write_json, write_markdown
from conformance.runner import Outcome
from conformance.verdicts import Divergence, judge

EXPECTED = {"close": [1000, ""]}
ENTRY = Divergence(("check-b",), ("daphne",), "Daphne closes with 1001.", "daphne/server.py")


def sample_report() -> Report:
    cells = [
        judge(Outcome("check-a", "uvicorn", EXPECTED), EXPECTED, [ENTRY]),
        judge(Outcome("check-a", "daphne", EXPECTED), EXPECTED, [ENTRY]),
        judge(Outcome("check-b", "uvicorn", EXPECTED), EXPECTED, [ENTRY]),
        judge(Outcome("check-b", "daphne", {"close": [1001, ""]}), EXPECTED, [ENTRY]),
        judge(Outcome("check-c", "daphne", None, "timed out after 60 s"), EXPECTED, [ENTRY]),
    ]
    return Report(
        "python -m conformance",
        ["uvicorn", "daphne"],
        {"uvicorn": "uvicorn 1", "daphne": "daphne 2"},
        {"granian": "not installed (granian)"},
        cells,
        [ENTRY],
        {"cases": "1.*", "servers": {"uvicorn": {"summary": {"OK": 5, "FAILED": 1}}}},
    )


def test_markdown_has_matrix_known_divergence_and_unexplained(tmp_path: Path) -> None:
    path = tmp_path / "report.md"
    write_markdown(sample_report(), path)
    text = path.read_text()
    assert "| `check-b` | ✓ | ≈ |" in text
    assert "| `check-c` | - | ! |" in text
    assert "Daphne closes with 1001." in text
    assert "Source: daphne/server.py" in text
    assert "timed out after 60 s" in text
    assert "| granian | skipped: not installed (granian) |" in text
    assert "| uvicorn | 5 | 0 | 0 | 0 | 1 |" in text


def test_json_counts_failing_cells(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    write_json(sample_report(), path)
    document = json.loads(path.read_text())
    assert document["failing"] == 1
    assert {cell["verdict"] for cell in document["cells"]} == {"same", "known", "error"}


def test_html_is_standalone(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    write_html(sample_report(), path)
    text = path.read_text()
    assert text.startswith("<!doctype html>")
    assert "<script" not in text
    assert "<link" not in text
    assert "src=" not in text
