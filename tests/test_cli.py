"""asgi_ws.cli: the serve command (the command lines themselves: tests/test_servers.py).

These tests stop at the command line (``--print-command``) or at a refusal.
Actually running ``asgi-ws serve`` under each server is in
``tests/integration/test_cli_serve.py``.
"""

from __future__ import annotations

import shlex
import sys

import pytest

from asgi_ws.cli import main


def printed_command(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    assert main(["serve", "--print-command", *argv]) == 0
    return shlex.split(capsys.readouterr().out)


def test_defaults_serve_uvicorn_on_localhost_8000(capsys: pytest.CaptureFixture[str]) -> None:
    argv = printed_command(capsys)
    assert argv[:3] == [sys.executable, "-m", "uvicorn"]
    assert argv[-1] == "asgi_ws.app:app"
    joined = " ".join(argv)
    assert "--host 127.0.0.1 --port 8000 --workers 1" in joined
    assert "--ws websockets-sansio" in joined
    assert "--ws-ping-interval 20 --ws-ping-timeout 20" in joined


def test_hypercorn_pings_too(capsys: pytest.CaptureFixture[str]) -> None:
    argv = printed_command(capsys, "--server", "hypercorn", "--port", "9001", "--workers", "3", "--ping-interval", "5")
    joined = " ".join(argv)
    assert argv[2] == "hypercorn"
    assert "--bind 127.0.0.1:9001 --workers 3" in joined
    assert "--websocket-ping-interval 5" in joined
    assert "--worker-class asyncio" in joined


def test_hypercorn_binds_ipv6_in_brackets(capsys: pytest.CaptureFixture[str]) -> None:
    assert "[::1]:8000" in printed_command(capsys, "--server", "hypercorn", "--host", "::1")


@pytest.mark.parametrize(("name", "flag"), [("hypercorn-trio", "trio"), ("hypercorn-uvloop", "uvloop")])
def test_hypercorn_workers(capsys: pytest.CaptureFixture[str], name: str, flag: str) -> None:
    assert f"--worker-class {flag}" in " ".join(printed_command(capsys, "--server", name))


def test_hypercorn_trio_does_not_ping(capsys: pytest.CaptureFixture[str]) -> None:
    # hypercorn 0.18's trio worker can crash when a ping races a close: see TRIO_PING_RACE.
    assert "--websocket-ping-interval" not in printed_command(capsys, "--server", "hypercorn-trio")
    assert "--websocket-ping-interval" in printed_command(capsys, "--server", "hypercorn-uvloop")


def test_daphne_refuses_several_workers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--server", "daphne", "--workers", "2", "--print-command"]) == 2
    assert "daphne runs a single process" in capsys.readouterr().err


def test_bad_setting_flag_fails_with_its_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--idle-timeout", "soon"]) == 2
    assert "--idle-timeout='soon'" in capsys.readouterr().err


def test_bad_setting_variable_fails_with_its_name(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASGI_WS_MAX_CONNECTIONS", "-3")
    assert main(["serve"]) == 2
    assert "ASGI_WS_MAX_CONNECTIONS='-3'" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--port", "70000"], ["--workers", "-1"], ["--server", "tornado"]])
def test_bad_listen_options_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", *argv])
    assert exit_info.value.code == 2


def test_a_missing_server_is_named(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    assert main(["serve", "--server", "granian"]) == 2
    assert "--server granian needs granian" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "why"), [("hypercorn-trio", "needs asyncio"), ("daphne", "lifespan")])
def test_servers_that_cannot_run_the_redis_broker_refuse_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, name: str, why: str
) -> None:
    monkeypatch.setattr("os.execve", lambda *args: pytest.fail("the server was started"))
    assert main(["serve", "--server", name, "--broker", "redis://:secret@127.0.0.1:6379/0"]) == 2
    error = capsys.readouterr().err
    assert f"--server {name} cannot use the broker redis://:***@127.0.0.1:6379/0" in error
    assert why in error
    assert "secret" not in error


def test_server_keepalive_passes_no_ping_flags(capsys: pytest.CaptureFixture[str]) -> None:
    argv = printed_command(capsys, "--server-keepalive", "--ping-interval", "5")
    assert not any(arg.startswith("--ws-ping") for arg in argv)
    assert "--workers" in argv


@pytest.mark.parametrize(
    ("name", "line"),
    [
        ("gunicorn", "-m gunicorn --worker-class asgi --no-control-socket --bind 127.0.0.1:8000 --workers 1"),
        ("anycorn", "-m anycorn --worker-class asyncio --bind 127.0.0.1:8000 --workers 1 --websocket-ping-interval 20"),
    ],
)
def test_gunicorn_and_anycorn(capsys: pytest.CaptureFixture[str], name: str, line: str) -> None:
    assert line in shlex.join(printed_command(capsys, "--server", name))


def test_a_server_without_pings_says_so(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.execve", lambda *args: None)  # main returns where the server would have run
    monkeypatch.setattr("importlib.util.find_spec", lambda name: object())  # whichever servers are installed
    assert main(["serve", "--server", "gunicorn"]) == 0
    assert "keepalive pings are off: gunicorn 27's asgi worker has no WebSocket ping option" in capsys.readouterr().err


def test_server_keepalive_is_named(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.execve", lambda *args: None)  # main returns where the server would have run
    monkeypatch.setattr("importlib.util.find_spec", lambda name: object())  # whichever servers are installed
    assert main(["serve", "--server", "gunicorn", "--server-keepalive"]) == 0
    err = capsys.readouterr().err
    assert "keepalive pings: gunicorn's own default" in err
    assert "keepalive pings are off" not in err
