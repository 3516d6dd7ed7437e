"""The charts beside RESULTS.md: results.png (each goal's ratio against its target) and p10.png (the servers).

matplotlib is imported inside each function, not with this module, so that
``python -m bench --render``, which draws nothing, runs without it.

This module does not compute a figure (:class:`bench.report.Report` does), nor
decide which files a run writes (:func:`bench.report.write` does).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .goals import goals
from .results import figure_text
from .server_choice import P10

if TYPE_CHECKING:
    from .report import Report


def chart(document: Report, path: Path) -> None:
    """One bar per goal row: the measured ratio, with the goal as a tick on the bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(goal, ratio) for goal in goals() if (ratio := document.ratio(goal)) is not None]
    figure, axes = plt.subplots(figsize=(10, 0.38 * len(rows) + 1.6))
    labels = [f"{goal.id} {goal.measure}" for goal, _ in rows]
    colours = [
        "#f9a825" if goal.verdict(ratio) == "within noise" else "#2e7d32" if goal.met(ratio) else "#c62828"
        for goal, ratio in rows
    ]
    positions = range(len(rows))
    axes.barh(positions, [ratio for _, ratio in rows], color=colours)
    axes.scatter([goal.target for goal, _ in rows], positions, marker="|", s=300, color="black", zorder=3, label="goal")
    for position, (_, ratio) in zip(positions, rows, strict=True):
        axes.text(ratio, position, f" {ratio:.2f}x", va="center", fontsize=8)
    axes.set_yticks(list(positions), labels, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel("asgi-ws ÷ peer (medians); green meets the goal, red misses it, amber is within noise")
    axes.set_title(f"asgi-ws vs its peers, {document.date}")
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def p10_chart(document: Report, path: Path) -> None:
    """P10: per server, a bar per workload, each the server's median over the best server's, min - max as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    speeds = document.speeds()
    best = {key: max((speed.median(key) or 0.0 for speed in speeds), default=0.0) or 1.0 for key in P10}
    titles = {arm.workload.key: arm.workload.title for arm in document.results.arms.values()}
    figure, axes = plt.subplots(figsize=(max(8.0, 1.1 * len(speeds) + 2), 4.8))
    width = 0.8 / len(P10)
    top = 1.0
    for index, (key, colour) in enumerate(zip(P10, ("#1565c0", "#2e7d32", "#ef6c00"), strict=True)):
        positions = [number + (index - (len(P10) - 1) / 2) * width for number in range(len(speeds))]
        heights = [(speed.median(key) or 0.0) / best[key] for speed in speeds]
        low = [
            height - min(speed.figures.get(key) or [0.0]) / best[key]
            for speed, height in zip(speeds, heights, strict=True)
        ]
        high = [
            max(speed.figures.get(key) or [0.0]) / best[key] - height
            for speed, height in zip(speeds, heights, strict=True)
        ]
        axes.bar(positions, heights, width, color=colour, label=titles.get(key, key), yerr=[low, high], capsize=2)
        top = max([top, *(height + above for height, above in zip(heights, high, strict=True))])
        for position, speed, height in zip(positions, speeds, heights, strict=True):
            if key in speed.unable and not speed.figures.get(key):
                axes.text(position, 0.02, "could not run", rotation=90, fontsize=7, ha="center", va="bottom")
            elif height:  # the figure itself, inside the bar at its foot, clear of the min - max line
                text = figure_text(speed.median(key) or 0.0)
                axes.text(position, 0.02, text, rotation=90, fontsize=6, ha="center", va="bottom", color="white")
    labels = [
        f"{speed.server}\n{found.identical_text}\nAutobahn {found.autobahn_ok}/{found.autobahn_cases}"
        if (found := speed.conformance)
        else f"{speed.server}\n(no conformance report)"
        for speed in speeds
    ]
    axes.set_xticks(list(range(len(speeds))), labels, fontsize=7)
    axes.set_ylim(0, top + 0.3)  # room for the legend
    axes.set_ylabel("median ÷ the fastest server's (lines: min - max over rounds)")
    axes.set_title(f"asgi-ws under every server: which to choose for WebSockets, {document.date}")
    axes.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
