"""scripts/drift.py: its pure parts (package lists, junit XML, conformance cells, the report, the exit status).

The script is not a package (it runs with the standard library alone, before any venv exists), so it
is loaded from its file. Installing and running the environments is what its end-to-end run is for.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "drift.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("drift", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["drift"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


drift = _load()


# Packages


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [("Zope.Interface", "zope-interface"), ("typing_extensions", "typing-extensions"), ("a-_.b", "a-b")],
)
def test_names_are_normalised_as_pep_503_says(raw: str, normalised: str) -> None:
    assert drift.normalise(raw) == normalised


def test_pip_list_is_read_by_normalised_name_without_the_project() -> None:
    listing = json.dumps(
        [
            {"name": "Typing_Extensions", "version": "4.16.0"},
            {"name": "asgi-ws", "version": "0.1.0", "editable_project_location": "/work/main"},
            {"name": "redis", "version": "8.1.0"},
        ]
    )
    assert drift.parse_pip_list(listing) == {"typing-extensions": "4.16.0", "redis": "8.1.0"}


def test_packages_moved_added_and_removed_and_the_rest_left_out() -> None:
    locked = {"redis": "8.1.0", "uvicorn": "0.54.0", "anyio": "4.16.0", "old-dep": "1.0"}
    newest = {"redis": "8.2.0", "uvicorn": "0.55.0", "anyio": "4.16.0", "new-dep": "2.0"}
    assert drift.changes(locked, newest) == [
        drift.Change("new-dep", None, "2.0"),
        drift.Change("old-dep", "1.0", None),
        drift.Change("redis", "8.1.0", "8.2.0"),
        drift.Change("uvicorn", "0.54.0", "0.55.0"),
    ]


def test_the_same_names_spelt_differently_do_not_move() -> None:
    locked = drift.parse_pip_list(json.dumps([{"name": "Zope.Interface", "version": "8.7"}]))
    newest = drift.parse_pip_list(json.dumps([{"name": "zope_interface", "version": "8.7"}]))
    assert drift.changes(locked, newest) == []


# Tests

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="1" skipped="1" tests="5">
<testcase classname="tests.test_app" name="test_echo[asyncio]" time="0.01"/>
<testcase classname="tests.test_app" name="test_broken" time="0.01"><failure message="1 == 2">x</failure></testcase>
<testcase classname="tests.test_app" name="test_fixture_blew_up" time="0.01"><error message="boom">x</error></testcase>
<testcase classname="tests.test_redis_broker" name="test_needs_redis" time="0"><skipped message="no redis"/></testcase>
<testcase classname="tests.test_app" name="test_fails_then_teardown_errors" time="0.01">
<failure message="assert False">x</failure><error message="teardown">y</error></testcase>
</testsuite></testsuites>
"""


def test_junit_gives_each_test_id_its_outcome(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT)
    assert drift.read_junit(path) == {
        "tests.test_app::test_echo[asyncio]": "passed",
        "tests.test_app::test_broken": "failed",
        "tests.test_app::test_fixture_blew_up": "error",
        "tests.test_redis_broker::test_needs_redis": "skipped",
        "tests.test_app::test_fails_then_teardown_errors": "failed",
    }


def test_a_missing_junit_file_is_an_error_of_the_tool(tmp_path: Path) -> None:
    with pytest.raises(drift.DriftError, match="pytest wrote no"):
        drift.read_junit(tmp_path / "junit.xml")


def test_tests_changed_by_outcome_or_by_running_in_one_env_only() -> None:
    locked = {"t::same": "passed", "t::broke": "passed", "t::gone": "skipped", "t::still_failing": "failed"}
    newest = {"t::same": "passed", "t::broke": "failed", "t::new": "passed", "t::still_failing": "failed"}
    assert drift.changes(locked, newest) == [
        drift.Change("t::broke", "passed", "failed"),
        drift.Change("t::gone", "skipped", None),
        drift.Change("t::new", None, "passed"),
    ]


def test_tally_names_passed_and_skipped_always_and_failures_when_there_are_some() -> None:
    assert drift.tally({"a": "passed", "b": "passed"}) == "2 passed, 0 skipped"
    assert drift.tally({"a": "passed", "b": "error", "c": "skipped"}) == "1 passed, 1 error, 1 skipped"


# Conformance cells


def cell(check: str, server: str, client: str = "same", app: str = "same", **extra: Any) -> dict[str, Any]:
    verdict = client if client != "same" else app
    return {"check": check, "server": server, "verdict": verdict, "client": client, "app": app, **extra}


def report_json(cells: list[dict[str, Any]], versions: dict[str, str]) -> str:
    return json.dumps({"versions": versions, "cells": cells, "failing": 0})


def test_a_conformance_report_is_read_by_check_and_server() -> None:
    run = drift.parse_conformance(
        report_json(
            [cell("echo-text", "uvicorn", diff=None, error="it hung"), cell("echo-text", "hypercorn", diff="-a\n+b")],
            {"uvicorn": "uvicorn 0.55.0, websockets 17.4"},
        )
    )
    assert run.versions == {"uvicorn": "uvicorn 0.55.0, websockets 17.4"}
    assert run.cells["uvicorn", "echo-text"].detail == "it hung"
    assert run.cells["hypercorn", "echo-text"].detail == "-a\n+b"


def test_cells_changed_by_either_side_or_by_running_in_one_env_only() -> None:
    locked = drift.parse_conformance(
        report_json(
            [
                cell("echo-text", "uvicorn"),
                cell("echo-binary", "uvicorn", app="known"),
                cell("echo-unicode", "uvicorn", client="differs"),
                cell("echo-gone", "hypercorn"),
            ],
            {},
        )
    )
    newest = drift.parse_conformance(
        report_json(
            [
                cell("echo-text", "uvicorn"),
                cell("echo-binary", "uvicorn", app="differs"),
                cell("echo-unicode", "uvicorn", client="differs", diff="a new diff, same verdicts"),
                cell("echo-new", "hypercorn"),
            ],
            {},
        )
    )
    changed = drift.changes(locked.cells, newest.cells)
    assert [change.key for change in changed] == [
        ("hypercorn", "echo-gone"),
        ("hypercorn", "echo-new"),
        ("uvicorn", "echo-binary"),
    ]
    assert (changed[0].newest, changed[1].locked) == (None, None)
    assert (changed[2].locked.app, changed[2].newest.app) == ("known", "differs")


def test_shorten_keeps_a_few_lines_and_counts_the_rest() -> None:
    assert drift.shorten("a\nb", limit=3) == ["a", "b"]
    assert drift.shorten("1\n2\n3\n4\n5", limit=2) == ["1", "2", "... 3 more lines"]


# The report and the exit status


def findings(
    packages: list[Any] | None = None,
    tests: tuple[dict[str, str], dict[str, str]] | None = None,
    conformance: tuple[Any, Any] | None = None,
) -> Any:
    return drift.Findings(
        date="2026-12-06 16:40 UTC",
        out=Path("/tmp/drift"),
        pythons={"locked": "3.11.7", "newest": "3.11.7"},
        what_ran=["Tests: the whole suite with ASGI_WS_TEST_SERVERS=uvicorn."],
        packages=packages or [],
        tests=tests,
        conformance=conformance,
    )


def test_the_report_names_what_moved_and_what_changed() -> None:
    locked = drift.parse_conformance(report_json([cell("echo-text", "uvicorn")], {"uvicorn": "uvicorn 0.54.0"}))
    newest = drift.parse_conformance(
        report_json(
            [cell("echo-text", "uvicorn", client="differs", diff="-frame: text 'hi'\n+frame: close 1011")],
            {"uvicorn": "uvicorn 0.55.0"},
        )
    )
    found = findings(
        packages=[drift.Change("redis", "8.1.0", "8.2.0"), drift.Change("new-dep", None, "2.0")],
        tests=({"tests.test_app::test_echo": "passed"}, {"tests.test_app::test_echo": "failed"}),
        conformance=(locked, newest),
    )
    report = drift.render_report(found)
    assert "Python 3.11.7" in report
    assert "| redis | 8.1.0 | 8.2.0 |" in report
    assert "| new-dep | not installed | 2.0 |" in report
    assert "| `tests.test_app::test_echo` | passed | failed |" in report
    assert "| uvicorn | uvicorn 0.54.0 | uvicorn 0.55.0 |" in report
    assert "| `echo-text` | uvicorn | same / same | differs / same |" in report
    assert "+frame: close 1011" in report
    assert "Result: 2 packages moved, 1 test changed, 1 cell changed." in report
    assert "No test changed" not in report
    assert "No cell changed" not in report
    assert drift.exit_status(found) == 1


def test_the_report_says_when_nothing_changed_and_packages_alone_are_not_a_failure() -> None:
    run = drift.parse_conformance(report_json([cell("echo-text", "uvicorn"), cell("echo-text", "hypercorn")], {}))
    outcomes = {"t::a": "passed", "t::b": "skipped"}
    found = findings(
        packages=[drift.Change("uvicorn", "0.54.0", "0.55.0")],
        tests=(outcomes, dict(outcomes)),
        conformance=(run, run),
    )
    report = drift.render_report(found)
    assert "No test changed: 1 passed, 1 skipped in both." in report
    assert "No cell changed: 2 cells." in report
    assert drift.exit_status(found) == 0


def test_skipped_stages_are_said_so_and_change_nothing() -> None:
    found = findings()
    report = drift.render_report(found)
    assert "Not run (--skip-tests)." in report
    assert "Not run (--skip-conformance)." in report
    assert "None: the newest releases allowed are the locked ones." in report
    assert "Result: 0 packages moved." in report
    assert drift.exit_status(found) == 0


def test_a_pipe_in_a_test_id_does_not_break_the_table() -> None:
    found = findings(tests=({"t::test[a|b]": "passed"}, {}))
    assert "| `t::test[a\\|b]` | passed | not run |" in drift.render_report(found)


# The options


def test_the_plan_reckons_with_what_is_selected() -> None:
    parser = drift.build_parser()
    whole = drift.plan(parser.parse_args([]), Path("/tmp/drift"))
    narrow = drift.plan(parser.parse_args(["--pytest-args", "tests/test_app.py", "--scenarios", "echo-*"]), Path("/x"))
    assert whole[-1] == "roughly 35 minutes in all (the first install downloads more)"
    assert narrow[-1] == "roughly 7 minutes in all (the first install downloads more)"
    skipped = drift.plan(parser.parse_args(["--skip-tests", "--skip-conformance"]), Path("/x"))
    assert skipped[1:3] == ["tests: skipped", "conformance: skipped"]


def test_empty_servers_are_refused() -> None:
    with pytest.raises(drift.DriftError, match="--servers"):
        drift.plan(drift.build_parser().parse_args(["--servers", " , "]), Path("/x"))
