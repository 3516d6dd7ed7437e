"""bench/report.py, with bench/record.py and bench/summary.py: the pages are rendered from results.json alone,
and agree with each other (contract §12).

The committed ``bench/RESULTS.md`` and the README's bench-summary block must be
exactly what ``python -m bench --render`` makes of the committed
``bench/results.json`` (with ``bench/c100k.json``, ``docs/server-summary.json``
and ``uv.lock``): a hand edit, a stale page or a lock refresh without a new
render fails here. Nothing here starts a server; only the render of the charts draws with matplotlib.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from importlib import metadata
from pathlib import Path

import pytest

# bench imports its load generator (picows) and uvloop, which only the bench extra installs;
# tox's per-server environments do not have them.
pytest.importorskip("picows", reason="bench's load generator, in the bench extra")
pytest.importorskip("uvloop", reason="bench's event loop, in the bench extra")

from bench import record, report, run, summary
from bench.results import Sizes
from conformance.published import block_text
from conformance.versions import LOCK

RESULTS = run.BENCH_DIR / "RESULTS.md"
RESULTS_JSON = run.BENCH_DIR / "results.json"
CONFORMANCE = run.REPO_ROOT / "docs" / "server-summary.json"  # --render's default, as python -m bench's


def committed(lock: Path = LOCK) -> report.Report:
    """The committed run, as ``python -m bench --render`` rebuilds it."""
    return run.load(run.BENCH_DIR, conformance=CONFORMANCE, lock=lock)


def lock_file(tmp_path: Path, pins: dict[str, str]) -> Path:
    """A uv.lock that pins each of ``pins`` at its version, and nothing else."""
    packages = "".join(f'\n[[package]]\nname = "{name}"\nversion = "{version}"\n' for name, version in pins.items())
    path = tmp_path / "uv.lock"
    path.write_text(f'version = 1\nrequires-python = ">=3.11"\n{packages}')
    return path


# The committed pages


def test_results_page_is_what_results_json_renders() -> None:
    rendered = report.markdown(committed(), report.kept_analysis(RESULTS))
    assert rendered == RESULTS.read_text(), "bench/RESULTS.md is stale or edited by hand: python -m bench --render"


def test_readme_summary_is_what_results_json_renders() -> None:
    readme = (run.REPO_ROOT / "README.md").read_text()
    assert "tests/test_bench_report.py checks it -->" in readme  # the marker names this test as its checker
    assert block_text(readme, report.README_BLOCK) == summary.readme_summary(committed())


def test_every_figure_of_the_readme_summary_is_on_the_results_page() -> None:
    block, page = block_text((run.REPO_ROOT / "README.md").read_text(), report.README_BLOCK), RESULTS.read_text()
    figures = {found.rstrip(".,") for found in re.findall(r"(?<![\w.])\d[\d,.]*", block)}
    assert {"0.926", "1.337", "0.885", "1.166", "1.15", "19,985", "33.5", "0.19"} <= figures
    assert sorted(figure for figure in figures if figure not in page) == []


def test_goal_ratios_in_results_json_are_what_its_runs_give() -> None:
    recorded = json.loads(RESULTS_JSON.read_text())["goals"]
    assert len(recorded) == 32
    assert recorded == report.goal_record(committed())


def test_render_rewrites_the_page_and_the_charts_from_the_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("results.json", "c100k.json"):
        shutil.copy(run.BENCH_DIR / name, tmp_path / name)
    # The analysis is carried over from the page already there; the rest is rewritten.
    (tmp_path / "RESULTS.md").write_text("stale\n" + "".join(RESULTS.read_text().partition(report.ANALYSIS_START)[1:]))
    assert run.main(["--render", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "RESULTS.md").read_text() == RESULTS.read_text()
    # Outside bench/: not the README. The charts are drawn again, since p10.png's labels quote the conformance summary.
    written = [tmp_path / name for name in ("RESULTS.md", "results.png", "p10.png")]
    assert capsys.readouterr().out == "".join(f"wrote {path}\n" for path in written)
    assert all(path.stat().st_size > 10_000 for path in written[1:])


def test_render_refuses_what_would_measure() -> None:
    with pytest.raises(SystemExit):
        run.main(["--render", "--only", "echo-10"])


# Versions against the lock


def test_the_page_names_each_version_that_differs_from_the_lock(tmp_path: Path) -> None:
    pins = {**committed().run.versions, "uvicorn": "0.55.0"}
    del pins["picows"]
    page = report.markdown(committed(lock_file(tmp_path, pins)), "")
    assert (
        "- Measured with versions that uv.lock no longer pins: uvicorn 0.54.0 (uv.lock: 0.55.0), "
        "picows 2.3.1 (not in uv.lock); the next full run (`python -m bench`) from the lock replaces these figures.\n"
    ) in page
    assert "Every version above" not in page


def test_the_page_says_so_when_the_lock_pins_every_version(tmp_path: Path) -> None:
    page = report.markdown(committed(lock_file(tmp_path, committed().run.versions)), "")
    assert "\n- Every version above is the one uv.lock pins.\n" in page
    assert "no longer pins" not in page


def test_without_a_lock_the_page_says_there_was_none(tmp_path: Path) -> None:
    assert "No uv.lock at `uv.lock` to compare" in committed(tmp_path / "uv.lock").machine()


# What a run stood on


def test_the_header_is_what_the_run_recorded_not_this_machine(tmp_path: Path) -> None:
    document = committed()
    recorded = record.Run(
        command="python -m bench --only idle",
        date="2031-01-02",
        seconds=90.0,
        sizes=Sizes(rounds=3),
        server_cpus=[0, 1],
        client_cpus=[2, 3],
        cpu_model="Some CPU",
        cpu_count=4,
        system="Linux 9.9",
        python="3.13.1",
        redis_server="8.0.0",
        versions={"uvicorn": "0.60.0"},
    )
    header = report.Report(document.results, recorded, lock=lock_file(tmp_path, {"uvicorn": "0.60.0"})).machine()
    assert header.splitlines() == [
        "- machine: Some CPU, 4 CPUs, Linux 9.9",
        "- pinning: servers on CPU [0, 1], load generator on CPU [2, 3]",
        "- Python 3.13.1; uvicorn 0.60.0; redis-server 8.0.0",
        "- Every version above is the one uv.lock pins.",
        "- 3 rounds, alternated (A B C, then C B A); figures are medians",
        "- `python -m bench --only idle`, on 2031-01-02, 1.5 minutes",
    ]


def test_a_run_record_survives_the_json() -> None:
    recorded = record.observe("python -m bench --quick", 61.5, Sizes.quick(), ({0}, {1}), ["asgi-ws", "uvicorn"])
    assert record.Run.from_json(json.loads(json.dumps(recorded.to_json()))) == recorded


def test_observe_records_the_measured_packages_and_what_they_require() -> None:
    recorded = record.observe("python -m bench", 1.0, Sizes(), ({0}, {1, 2}), ["asgi-ws"])
    assert recorded.versions["asgi-ws"] == metadata.version("asgi-ws")
    assert "anyio" in recorded.versions  # asgi-ws requires it
    assert "fastapi" not in recorded.versions  # nor does anything it requires
    assert (recorded.server_cpus, recorded.client_cpus, recorded.cpu_count) == ([0], [1, 2], 3)
    assert recorded.python == f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"


def test_the_backfilled_run_records_only_what_its_page_named() -> None:
    raw = json.loads(RESULTS_JSON.read_text())
    assert list(raw["versions"]) == [
        *("uvicorn", "websockets", "hypercorn", "granian", "fastapi", "starlette"),
        *("anyio", "picows", "uvloop", "redis"),
    ]
    assert "transcribed" in raw
