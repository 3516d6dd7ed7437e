"""python -m conformance: a run is kept in run.json, and --rejudge writes the report from it alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.__main__ import Run, main
from conformance.runner import Outcome
from conformance.verdicts import load_expected


def kept_run(directory: Path) -> Path:
    """A run of two checks under two servers, as python -m conformance keeps it."""
    expected = load_expected("probe-raise-after-accept")
    assert expected is not None
    hypercorn = json.loads(json.dumps(expected))
    hypercorn["client"]["then"]["close"] = {"code": 1011, "reason": "", "reason_bytes": 0}
    run = Run(
        command="python -m conformance --servers uvicorn,hypercorn",
        ran_on="2026-01-01, Python 3.11",
        servers=["uvicorn", "hypercorn"],
        versions={"uvicorn": "uvicorn 1", "hypercorn": "hypercorn 2"},
        launcher_flags={"uvicorn": "--ws-ping-interval 20", "hypercorn": ""},
        skipped={},
        checks=["probe-raise-after-accept", "echo-text"],
        outcomes=[
            Outcome("probe-raise-after-accept", "uvicorn", expected),
            Outcome("probe-raise-after-accept", "hypercorn", hypercorn),
            Outcome("echo-text", "uvicorn", load_expected("echo-text")),
            Outcome("echo-text", "hypercorn", None, "timed out after 60 s"),
        ],
        autobahn={},
    )
    run.save(directory / "run.json")
    return directory


def test_a_kept_run_loads_back_equal(tmp_path: Path) -> None:
    directory = kept_run(tmp_path)
    loaded = Run.load(directory / "run.json")
    assert loaded.outcomes[1].transcript is not None
    assert loaded.outcomes[1].transcript["client"]["then"]["close"]["code"] == 1011
    assert loaded.launcher_flags["uvicorn"] == "--ws-ping-interval 20"


def test_rejudge_writes_the_report_and_fails_on_the_unexplained(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = kept_run(tmp_path / "run")
    out = tmp_path / "out"
    status = main(["--rejudge", str(directory), "--out", str(out)])
    # hypercorn's 1011 is a known divergence; its echo-text error is not explained.
    assert status == 1
    report = json.loads((out / "conformance-report.json").read_text())
    cells = {(cell["check"], cell["server"]): cell for cell in report["cells"]}
    assert cells[("probe-raise-after-accept", "hypercorn")]["client"] == "known"
    assert cells[("echo-text", "hypercorn")]["verdict"] == "error"
    assert report["headline"]["hypercorn"]["line"] == (
        "hypercorn: client-visible behaviour of asgi-ws: identical to uvicorn in 0 of 1 scenarios; "
        "except error: echo-text"
    )
    printed = capsys.readouterr().out
    assert "uvicorn: client-visible behaviour of asgi-ws: identical to uvicorn in 1 of 1 scenarios" in printed
    assert "error: echo-text under hypercorn" in printed


def test_rejudge_without_a_run_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--rejudge", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "no run.json there" in capsys.readouterr().err
