"""conformance.__main__: choosing the checks and the servers (the stages themselves run elsewhere)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from asgi_ws.servers import SERVERS, Listen
from conformance.__main__ import _ad_hoc_server, _select, build_parser, main


def test_skip_scenarios_leaves_the_probes() -> None:
    checks = _select(build_parser().parse_args(["--skip-scenarios"]))
    assert checks
    assert {check.kind for check in checks} == {"probe"}


def test_skip_scenarios_and_probes_together_leave_nothing() -> None:
    assert _select(build_parser().parse_args(["--skip-scenarios", "--skip-probes"])) == []


def test_an_ad_hoc_server_runs_its_template_as_given() -> None:
    server = _ad_hoc_server("mine=mine --bind {bind} --fast {app}")
    assert server.name == "mine"
    assert server.packages == ("mine",)
    assert server.command("a:b", Listen(port=5)) == [
        sys.executable,
        "-m",
        "mine",
        "--bind",
        "127.0.0.1:5",
        "--fast",
        "a:b",
    ]
    assert server.launcher_flags(Listen(workers=0)) == []


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("mine", "expected NAME=TEMPLATE"),
        ("=mine {app}", "expected NAME=TEMPLATE"),
        ("uvicorn=uvicorn {app}", "uvicorn is already a server"),
        ("mine=mine --bind {bind}", "needs the word {app}"),
    ],
)
def test_a_bad_ad_hoc_server_is_refused(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _ad_hoc_server(raw)


def test_ad_hoc_servers_alone_run_and_a_missing_one_is_skipped(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = dict(SERVERS)
    monkeypatch.setattr("conformance.__main__.SERVERS", registry)  # the run adds to it
    argv = ["--server-command", "nope=no_such_server_package {app}", "--skip-autobahn", "--out", str(tmp_path)]
    assert main([*argv, "--scenarios", "probe-scope"]) == 0
    out = capsys.readouterr().out
    assert "skip nope: not installed (no_such_server_package)" in out
    assert "== uvicorn" not in out
    assert "nope" in registry


def test_a_bad_server_command_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["--server-command", "broken", "--out", str(tmp_path)]) == 2
    assert "expected NAME=TEMPLATE" in capsys.readouterr().err
