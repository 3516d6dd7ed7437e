"""The charts beside RESULTS.md: results.png (each goal's ratio against its target) and p10.png (the servers).

Both use Okabe and Ito's colours ("Color Universal Design", 2002), which
readers with any common colour-vision deficiency tell apart, and neither lets
colour carry a meaning alone: a goal's verdict is also its bar's hatch and a
word beside the bar, and the recommended server is also named in bold.

matplotlib is imported inside the functions that draw, not with this module,
so that :mod:`bench.report`, which imports it, writes and tests the pages
without matplotlib installed.

This module does not compute a figure (:class:`bench.report.Report` does),
pick a server (:func:`bench.server_choice.rank_servers` does), nor decide
which files a run writes (:func:`bench.report.write` does).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .goals import goals
from .results import figure_text
from .server_choice import P10, rank_servers

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .goals import Goal
    from .report import Report
    from .server_choice import ServerSpeed

BLUE, ORANGE, VERMILLION = "#0072B2", "#E69F00", "#D55E00"  # Okabe and Ito's
# Per verdict of Goal.verdict(): the bar's colour, its hatch, and the word after its ratio.
VERDICTS = {
    "pass": (BLUE, "", "meets the goal"),
    "within noise": (ORANGE, "..", "within noise of the goal"),
    "**miss**": (VERMILLION, "///", "misses the goal"),
}
LABEL_GAP = 8  # points between a ratio's label and whichever ends later, its bar or its goal mark
GOAL_STROKE = 5  # points: the white outline that keeps a goal mark visible on any bar (wider than the mark)
P10_COLOURS = (BLUE, ORANGE, VERMILLION)  # one per workload of P10, in its order
DPI = 110


# results.png


def chart(document: Report, path: Path) -> None:
    """results.png: one bar per goal row, the measured ratio, with the goal as a mark across the bar."""
    figure = goals_figure(document)
    figure.savefig(path, dpi=DPI)
    _close(figure)


def goals_figure(document: Report) -> Figure:
    """The chart of :func:`chart`, not yet saved."""
    from matplotlib import patheffects

    rows = [(goal, ratio) for goal in goals() if (ratio := document.ratio(goal)) is not None]
    figure, axes = _figure(10, 0.38 * len(rows) + 2.0)
    positions = list(range(len(rows)))
    for position, (goal, ratio) in zip(positions, rows, strict=True):
        _ratio_bar(axes, position, goal, ratio)
    marks = axes.scatter([goal.target for goal, _ in rows], positions, marker="|", s=320, linewidths=2.5)
    marks.set_color("black")
    marks.set_path_effects([patheffects.withStroke(linewidth=GOAL_STROKE, foreground="white")])  # seen on any bar
    axes.set_yticks(positions, [f"{goal.id} {goal.measure}" for goal, _ in rows], fontsize=8)
    axes.invert_yaxis()
    axes.set_xlim(0, max(max(ratio, goal.target) for goal, ratio in rows) * 1.3)  # room for the labels
    axes.set_xlabel("asgi-ws ÷ peer (medians); the black mark is the goal")
    axes.set_title(f"asgi-ws vs its peers, {document.date}")
    _verdict_legend(figure)
    return figure


def _ratio_bar(axes: Axes, position: int, goal: Goal, ratio: float) -> None:
    """One goal's bar, coloured and hatched by its verdict, and its ratio and verdict in words beside it."""
    verdict = goal.verdict(ratio)
    colour, hatch, _ = VERDICTS[verdict]
    axes.barh(position, ratio, color=colour, hatch=hatch, edgecolor="white", linewidth=0)
    # Right of the bar or of the goal mark, whichever ends later: never on the mark.
    axes.annotate(
        f"{ratio:.2f}x {verdict.strip('*')}",
        (max(ratio, goal.target), position),
        xytext=(LABEL_GAP, 0),
        textcoords="offset points",
        va="center",
        fontsize=8,
    )


def _verdict_legend(figure: Figure) -> None:
    """Under the chart: each verdict's colour and hatch, and the goal mark."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    verdicts = [Patch(facecolor=colour, hatch=hatch, edgecolor="white") for colour, hatch, _ in VERDICTS.values()]
    goal_mark = Line2D([], [], marker="|", markersize=12, markeredgewidth=2.5, color="black", linestyle="")
    figure.legend(
        handles=[*verdicts, goal_mark],
        labels=[*(text for _, _, text in VERDICTS.values()), "the goal"],
        loc="outside lower center",
        ncol=len(VERDICTS) + 1,
        fontsize=8,
        frameon=False,
    )


# p10.png


def p10_chart(document: Report, path: Path) -> None:
    """p10.png: per server, a bar per workload, each the server's median over the best server's."""
    figure = p10_figure(document)
    figure.savefig(path, dpi=DPI)
    _close(figure)


def p10_figure(document: Report) -> Figure:
    """The chart of :func:`p10_chart`, not yet saved: min - max as a line, the recommended server marked."""
    speeds = document.speeds()
    ranking = rank_servers(speeds)
    pick = ranking.pick.server if ranking else None
    figure, axes = _figure(max(8.0, 1.45 * len(speeds) + 2), 5.4)
    top = 1.0
    for index, key in enumerate(P10):
        top = max(top, _p10_bars(axes, document, speeds, index, key))
    if pick is not None:  # a light band behind the recommended server's bars, named in its label
        where = [speed.server for speed in speeds].index(pick)
        axes.axvspan(where - 0.5, where + 0.5, color="#e8e8e8", zorder=0)
    axes.set_xticks(list(range(len(speeds))), [_server_label(speed, pick) for speed in speeds], fontsize=7)
    for label, speed in zip(axes.get_xticklabels(), speeds, strict=True):
        label.set_fontweight("bold" if speed.server == pick else "normal")
    axes.set_xlim(-0.5, len(speeds) - 0.5)
    axes.set_ylim(0, top + 0.1)
    axes.set_ylabel("median ÷ the fastest server's (lines: min - max over rounds)")
    advice = f"; recommended: {pick}, the fastest of the most conformant" if pick else ""
    axes.set_title(f"asgi-ws under every server: which to choose for WebSockets, {document.date}{advice}")
    figure.legend(loc="outside lower center", ncol=len(P10), fontsize=8, frameon=False)
    return figure


def _p10_bars(axes: Axes, document: Report, speeds: list[ServerSpeed], index: int, key: str) -> float:
    """One workload's bar for every server, its figure written inside at its foot; the top of its lines."""
    best = max((speed.median(key) or 0.0 for speed in speeds), default=0.0) or 1.0
    titles = {arm.workload.key: arm.workload.title for arm in document.results.arms.values()}
    width = 0.8 / len(P10)
    positions = [number + (index - (len(P10) - 1) / 2) * width for number in range(len(speeds))]
    heights = [(speed.median(key) or 0.0) / best for speed in speeds]
    rates = [speed.figures.get(key) or [0.0] for speed in speeds]
    low = [height - min(found) / best for found, height in zip(rates, heights, strict=True)]
    high = [max(found) / best - height for found, height in zip(rates, heights, strict=True)]
    colour = P10_COLOURS[index]
    axes.bar(positions, heights, width, color=colour, label=titles.get(key, key), yerr=[low, high], capsize=2)
    ink = "black" if colour == ORANGE else "white"  # the darker of the two on the bar's colour
    for position, speed, height in zip(positions, speeds, heights, strict=True):
        if key in speed.unable and not speed.figures.get(key):
            axes.text(position, 0.02, "could not run", rotation=90, fontsize=7, ha="center", va="bottom")
        elif height:  # the figure itself, inside the bar at its foot, clear of the min - max line
            text = figure_text(speed.median(key) or 0.0)
            axes.text(position, 0.02, text, rotation=90, fontsize=6, ha="center", va="bottom", color=ink)
    return max(height + above for height, above in zip(heights, high, strict=True))


def _server_label(speed: ServerSpeed, pick: str | None) -> str:
    """The server's name, "recommended" under the pick's, and its line of the conformance summary."""
    name = f"{speed.server}\n(recommended)" if speed.server == pick else speed.server
    found = speed.conformance
    if found is None:
        return f"{name}\n(no conformance report)"
    return (
        f"{name}\n{found.identical} of {found.scenarios} scenarios\nidentical to the reference\n"
        f"Autobahn {found.autobahn_ok}/{found.autobahn_cases} OK"
    )


# Both charts


def _figure(width: float, height: float) -> tuple[Figure, Axes]:
    """A figure of one axes, ``width`` by ``height`` inches, laid out so that no label is cut off."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no window
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height), layout="constrained")


def _close(figure: Figure) -> None:
    import matplotlib.pyplot as plt

    plt.close(figure)
