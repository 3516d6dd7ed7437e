"""bench.charts, drawn from the committed bench/results.json: what a reader of results.png and p10.png can rely on.

The checks measure the drawn figure (where each label, bar and goal mark
landed, in pixels), not the code that placed them.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator

import pytest
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from bench import charts, run
from bench.goals import goals
from bench.report import Report
from bench.server_choice import rank_servers

CONFORMANCE = run.REPO_ROOT / "docs" / "server-summary.json"
OKABE_ITO = {"#0072b2", "#e69f00", "#d55e00"}


@pytest.fixture(scope="module")
def document() -> Report:
    return run.load(run.BENCH_DIR, conformance=CONFORMANCE)


@contextlib.contextmanager
def drawn(figure: Figure) -> Iterator[Figure]:
    """``figure`` drawn, so that every artist has its place in pixels; closed afterwards."""
    figure.canvas.draw()
    try:
        yield figure
    finally:
        charts._close(figure)


@pytest.fixture
def goals_chart(document: Report) -> Iterator[Figure]:
    with drawn(charts.goals_figure(document)) as figure:
        yield figure


@pytest.fixture
def p10_chart(document: Report) -> Iterator[Figure]:
    with drawn(charts.p10_figure(document)) as figure:
        yield figure


def extent(text: Text, figure: Figure) -> Bbox:
    return text.get_window_extent(figure.canvas.get_renderer())  # type: ignore[attr-defined]


def hex_colour(rgba: tuple[float, float, float, float]) -> str:
    return "#" + "".join(f"{round(channel * 255):02x}" for channel in rgba[:3])


def test_no_ratio_label_touches_its_goal_mark_or_its_bar(goals_chart: Figure) -> None:
    axes = goals_chart.axes[0]
    [marks] = axes.collections
    mark_x = axes.transData.transform(marks.get_offsets())[:, 0]
    outline = charts.GOAL_STROKE / 2 * goals_chart.dpi / 72  # the mark's half-width with its outline, pixels
    labels, bars = axes.texts, axes.patches
    assert len(labels) == len(bars) == len(mark_x) > 0
    for label, bar, x in zip(labels, bars, mark_x, strict=True):
        box = extent(label, goals_chart)
        assert box.x0 > x + outline, f"{label.get_text()!r} is on its goal mark"
        assert box.x0 > bar.get_window_extent().x1, f"{label.get_text()!r} is on its bar"
        assert box.x1 < axes.get_window_extent().x1, f"{label.get_text()!r} runs out of the chart"


def test_no_two_ratio_labels_overlap(goals_chart: Figure) -> None:
    boxes = sorted((extent(label, goals_chart) for label in goals_chart.axes[0].texts), key=lambda box: box.y0)
    for lower, upper in itertools.pairwise(boxes):
        assert lower.y1 <= upper.y0


def test_a_verdict_is_told_by_hatch_and_word_not_by_colour_alone(goals_chart: Figure, document: Report) -> None:
    axes = goals_chart.axes[0]
    verdicts = [goal.verdict(ratio) for goal in goals() if (ratio := document.ratio(goal)) is not None]
    styles = {
        verdict: (bar.get_hatch(), hex_colour(bar.get_facecolor()))
        for verdict, bar in zip(verdicts, axes.patches, strict=True)
    }
    assert {"pass", "**miss**"} <= set(styles)  # the committed run has both, so the check has something to tell apart
    assert len({hatch for hatch, _ in styles.values()}) == len(styles)
    assert {colour for _, colour in styles.values()} <= OKABE_ITO
    for verdict, label in zip(verdicts, axes.texts, strict=True):
        assert label.get_text().endswith(verdict.strip("*"))


def test_p10_marks_the_server_the_comparison_recommends(p10_chart: Figure, document: Report) -> None:
    ranking = rank_servers(document.speeds())
    assert ranking is not None
    labels = p10_chart.axes[0].get_xticklabels()
    marked = [label for label in labels if "(recommended)" in label.get_text()]
    assert [label.get_text().split("\n")[0] for label in marked] == [ranking.pick.server]
    assert [label.get_fontweight() for label in marked] == ["bold"]
    assert ranking.pick.server in p10_chart.axes[0].get_title()


def test_p10_says_what_its_conformance_counts_are(p10_chart: Figure, document: Report) -> None:
    for label, speed in zip(p10_chart.axes[0].get_xticklabels(), document.speeds(), strict=True):
        found = speed.conformance
        assert found is not None
        expected = f"{found.identical} of {found.scenarios} scenarios\nidentical to the reference"
        assert expected in label.get_text()


def test_p10_bars_are_okabe_ito_colours(p10_chart: Figure) -> None:
    bars = [bar for found in p10_chart.axes[0].containers if isinstance(found, BarContainer) for bar in found]
    assert len(bars) > 0
    assert {hex_colour(bar.get_facecolor()) for bar in bars} == OKABE_ITO
