"""conformance.autobahn: the wstest spec, its output and its reports, read without running wstest."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conformance import autobahn
from conformance.autobahn import (
    BEHAVIORS,
    DEFAULT_CASES,
    DEFLATE_SAMPLE_CASES,
    EXTENDED_CASES,
    MINIMUM_CASES,
    CaseResult,
    ServerResult,
    Wstest,
    case_sort_key,
    fuzzingclient_spec,
    parse_index,
    parse_progress_line,
    summary,
    with_case_report,
)

# What wstest 25.10.1 writes, cut down to the keys that are read.
INDEX = {
    "uvicorn": {
        "1.1.10": {
            "behavior": "OK",
            "behaviorClose": "OK",
            "duration": 3,
            "remoteCloseCode": 1000,
            "reportfile": "uvicorn_case_1_1_10.json",
        },
        "1.1.2": {
            "behavior": "OK",
            "behaviorClose": "OK",
            "duration": 1,
            "remoteCloseCode": 1000,
            "reportfile": "uvicorn_case_1_1_2.json",
        },
        "7.1.5": {
            "behavior": "FAILED",
            "behaviorClose": "WRONG CODE",
            "duration": 0,
            "remoteCloseCode": 1002,
            "reportfile": "uvicorn_case_7_1_5.json",
        },
        "12.1.1": {
            "behavior": "UNIMPLEMENTED",
            "behaviorClose": "UNIMPLEMENTED",
            "duration": 2,
            "remoteCloseCode": None,
            "reportfile": "uvicorn_case_12_1_1.json",
        },
    },
    "hypercorn": {
        "1.1.1": {
            "behavior": "OK",
            "behaviorClose": "OK",
            "duration": 1,
            "remoteCloseCode": 1000,
            "reportfile": "hypercorn_case_1_1_1.json",
        },
    },
}

CASE_REPORT_7_1_5 = {
    "id": "7.1.5",
    "behavior": "FAILED",
    "remoteCloseCode": 1002,
    "remoteCloseReason": "incomplete fragmented message",
    "result": "The close code should have been 1000 or empty",
    "wirelog": [],
}


# The spec


def test_spec_names_the_agent_and_sends_reports_to_the_run_dir(tmp_path: Path) -> None:
    spec = fuzzingclient_spec("uvicorn", "ws://127.0.0.1:8000/echo", ["1.*", "2.*"], tmp_path)
    assert spec == {
        "outdir": str(tmp_path),
        "servers": [{"agent": "uvicorn", "url": "ws://127.0.0.1:8000/echo"}],
        "cases": ["1.*", "2.*"],
        "exclude-cases": [],
        "exclude-agent-cases": {},
    }
    json.dumps(spec)  # wstest reads it as JSON


def test_case_groups_grow_from_minimum_to_extended() -> None:
    assert MINIMUM_CASES == ("1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "10.*")
    assert set(DEFAULT_CASES) - set(MINIMUM_CASES) == {"9.*", *DEFLATE_SAMPLE_CASES}
    assert set(EXTENDED_CASES) - set(MINIMUM_CASES) == {"9.*", "12.*", "13.*"}
    assert DEFLATE_SAMPLE_CASES[0] == "12.1.1"
    assert DEFLATE_SAMPLE_CASES[-1] == "13.7.1"
    assert all("*" not in case for case in DEFLATE_SAMPLE_CASES)  # "12.*.1" would select 12.1.10 too


def test_app_settings_raise_the_limits_autobahn_exceeds() -> None:
    assert autobahn.APP_SETTINGS_FOR_AUTOBAHN == {
        "ASGI_WS_MAX_MESSAGE_SIZE": "16777216",
        "ASGI_WS_RATE_LIMIT": "0",
        "ASGI_WS_IDLE_TIMEOUT": "0",
    }


# wstest's output


def test_progress_line_gives_the_case_id() -> None:
    line = "Running test case ID 12.1.10 for agent uvicorn from peer tcp4:127.0.0.1:8000\n"
    assert parse_progress_line(line) == "12.1.10"
    assert parse_progress_line("Running test case ID 2.1 for agent hypercorn from peer x") == "2.1"


@pytest.mark.parametrize(
    "line",
    [
        "Ok, will run 301 test cases against 1 servers",
        "Cases = ['1.1.1', '1.1.2']",
        "",
    ],
)
def test_other_lines_give_no_case_id(line: str) -> None:
    assert parse_progress_line(line) is None


def test_tracker_reports_each_new_group_and_remembers_failures() -> None:
    lines: list[str] = []
    tracker = autobahn._Tracker("uvicorn", lines.append)
    for line in [
        "Ok, will run 3 test cases against 1 servers\n",
        "Running test case ID 1.1.1 for agent uvicorn from peer p\n",
        "Running test case ID 1.1.2 for agent uvicorn from peer p\n",
        "Running test case ID 2.1 for agent uvicorn from peer p\n",
        "Connection to ws://127.0.0.1:1/echo failed (refused)\n",
    ]:
        tracker.line(line)
    assert lines == ["uvicorn: case 1.1.1 (1/3)", "uvicorn: case 2.1 (3/3)"]
    assert (tracker.total, tracker.done, tracker.current) == (3, 3, "2.1")
    assert tracker.failure == "Connection to ws://127.0.0.1:1/echo failed (refused)"


# index.json and the case reports


def test_case_ids_sort_numerically() -> None:
    assert sorted(["1.1.10", "12.1.1", "1.1.2", "2.1"], key=case_sort_key) == ["1.1.2", "1.1.10", "2.1", "12.1.1"]


def test_index_is_parsed_per_agent_in_autobahn_order() -> None:
    results = parse_index(INDEX, "uvicorn")
    assert list(results) == ["1.1.2", "1.1.10", "7.1.5", "12.1.1"]
    assert results["7.1.5"] == CaseResult(
        case_id="7.1.5",
        behavior="FAILED",
        behavior_close="WRONG CODE",
        duration_ms=0,
        remote_close_code=1002,
        report_file="uvicorn_case_7_1_5.json",
    )
    assert results["12.1.1"].remote_close_code is None
    assert list(parse_index(INDEX, "hypercorn")) == ["1.1.1"]


def test_an_agent_missing_from_the_index_has_no_cases() -> None:
    assert parse_index(INDEX, "daphne") == {}


def test_an_entry_without_a_behaviour_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"case 1\.1\.1 of uvicorn has no 'behavior'"):
        parse_index({"uvicorn": {"1.1.1": {"behaviorClose": "OK", "duration": 1}}}, "uvicorn")


def test_case_report_adds_the_close_reason_and_autobahns_sentence() -> None:
    case = parse_index(INDEX, "uvicorn")["7.1.5"]
    completed = with_case_report(case, CASE_REPORT_7_1_5)
    assert completed.remote_close_reason == "incomplete fragmented message"
    assert completed.result == "The close code should have been 1000 or empty"
    assert completed.behavior == "FAILED"  # the index stays the authority on everything else
    assert with_case_report(case, {"remoteCloseReason": None, "result": ""}).result is None


def test_results_are_read_from_the_run_dir(tmp_path: Path) -> None:
    (tmp_path / "index.json").write_text(json.dumps(INDEX))
    (tmp_path / "uvicorn_case_7_1_5.json").write_text(json.dumps(CASE_REPORT_7_1_5))
    (tmp_path / "uvicorn_case_1_1_2.json").write_text("{not json")  # a torn report: the index entry stays
    results = autobahn._read_results(tmp_path, "uvicorn")
    assert results["7.1.5"].remote_close_reason == "incomplete fragmented message"
    assert results["1.1.2"].remote_close_reason is None
    assert len(results) == 4


def test_a_run_dir_without_index_has_no_results(tmp_path: Path) -> None:
    assert autobahn._read_results(tmp_path, "uvicorn") == {}


# Summaries


def _result(cases: dict[str, CaseResult]) -> ServerResult:
    return ServerResult("uvicorn", "ws://127.0.0.1:8000/echo", cases, 1.25, Path("/tmp/run"))


def test_summary_counts_every_behaviour_including_zeros() -> None:
    counts = summary(_result(parse_index(INDEX, "uvicorn")))
    assert counts == {"OK": 2, "NON-STRICT": 0, "INFORMATIONAL": 0, "UNIMPLEMENTED": 1, "FAILED": 1}
    assert list(counts) == list(BEHAVIORS)


def test_summary_keeps_a_behaviour_it_does_not_know() -> None:
    case = CaseResult("1.1.1", "WEIRD", "OK", 1, 1000)
    assert summary(_result({"1.1.1": case}))["WEIRD"] == 1


def test_to_json_is_plain_json_with_summary_and_cases() -> None:
    document = _result(parse_index(INDEX, "uvicorn")).to_json()
    assert json.loads(json.dumps(document)) == document
    assert document["summary"]["FAILED"] == 1
    assert document["cases"]["7.1.5"]["remote_close_code"] == 1002
    assert "case_id" not in document["cases"]["7.1.5"]
    assert document["error"] is None
    assert document["wall_seconds"] == 1.2


# Finding wstest


def test_command_runs_wstest_through_the_prefix(tmp_path: Path) -> None:
    wstest = Wstest("wstest", ("python2.7", "-u", "launcher.py", "site"))
    assert wstest.command(tmp_path, "unused", "--mode", "fuzzingclient") == [
        "python2.7",
        "-u",
        "launcher.py",
        "site",
        "--mode",
        "fuzzingclient",
    ]


def test_command_in_docker_mounts_the_run_dir_at_its_own_path(tmp_path: Path) -> None:
    wstest = Wstest("docker", ("docker", "run", "--rm"), autobahn.DOCKER_IMAGE)
    argv = wstest.command(tmp_path, "asgi-ws-autobahn-1-uvicorn", "--mode", "fuzzingclient")
    assert argv[:3] == ["docker", "run", "--rm"]
    assert argv[argv.index("--volume") + 1] == f"{tmp_path}:{tmp_path}"
    assert argv[argv.index("--name") + 1] == "asgi-ws-autobahn-1-uvicorn"
    assert argv[-4:] == [autobahn.DOCKER_IMAGE, "wstest", "--mode", "fuzzingclient"]


def test_pyenv_versions_sort_numerically() -> None:
    paths = ["/p/versions/2.7.9/bin/python", "/p/versions/2.7.18/bin/python"]
    assert max(paths, key=autobahn._version_key) == "/p/versions/2.7.18/bin/python"


def test_an_explicit_interpreter_that_is_not_2_7_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFORMANCE_PYTHON2", sys.executable)
    python, tried = autobahn._find_python2()
    assert python is None
    assert tried == [
        f"CONFORMANCE_PYTHON2={sys.executable} is not a working Python 2.7 (it is Python 3.{sys.version_info[1]})"
    ]


def test_an_explicit_interpreter_that_does_not_exist_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFORMANCE_PYTHON2", "/nonexistent/python2.7")
    python, tried = autobahn._find_python2()
    assert python is None
    assert tried == ["CONFORMANCE_PYTHON2=/nonexistent/python2.7 is not a working Python 2.7 (not found)"]


def test_pins_pin_every_package() -> None:
    assert all("==" in pin for pin in autobahn.AUTOBAHN_PINS)
    assert autobahn.AUTOBAHN_PINS[0].startswith("autobahntestsuite==")
