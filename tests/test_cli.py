"""asgi_ws.cli: the serve command (the command lines themselves: tests/test_servers.py).

These tests stop at the command line (``--print-command``), at a refusal, or
where the command would replace itself with the server (``os.execve`` recorded).
Actually running ``asgi-ws serve`` under each server is in
``tests/integration/test_cli_serve.py``.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from asgi_ws import close_codes
from asgi_ws.access import Grant, check_token
from asgi_ws.cli import main
from asgi_ws.settings import DEFAULTS

SECRET_BROKER = "redis://:secret@127.0.0.1:6379/0"
Execs = list[tuple[str, list[str], dict[str, str]]]  # os.execve's arguments, one call each


@pytest.fixture(autouse=True)
def no_settings_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The defaults, whatever the shell running the tests sets."""
    for name in DEFAULTS.to_env():
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def no_exec(monkeypatch: pytest.MonkeyPatch) -> Execs:
    """``os.execve`` recorded instead of run, and every server importable: ``main`` returns where it would exec."""
    calls: Execs = []
    monkeypatch.setattr("os.execve", lambda path, argv, env: calls.append((path, argv, env)))
    monkeypatch.setattr("importlib.util.find_spec", lambda name: object())
    return calls


def printed_command(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    assert main(["serve", "--print-command", *argv]) == 0
    return shlex.split(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("argv", "prog"),
    [
        (["serve", "--port", "70000"], "asgi-ws serve"),
        (["serve", "--no-such-flag"], "asgi-ws serve"),  # argparse's top parser finds it; serve's --help lists flags
        (["srve"], "asgi-ws"),
    ],
)
def test_a_usage_error_comes_first_then_where_to_look(
    capsys: pytest.CaptureFixture[str], argv: list[str], prog: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith(f"{prog}: error: ")
    assert lines[1:] == [f"run '{prog} --help' for the options"]


def test_a_bad_setting_also_says_where_to_look(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--rate-limit", "fast"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("asgi-ws: error: --rate-limit='fast': expected a number")
    assert lines[1:] == ["run 'asgi-ws serve --help' for the options"]


def test_bare_asgi_ws_prints_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    printed = capsys.readouterr()
    assert printed.out.startswith("usage: asgi-ws ")
    assert "serve     run the app under an ASGI server" in printed.out
    assert printed.err == ""


def test_print_command_puts_the_settings_that_are_not_defaults_first(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--print-command", "--rate-limit", "0", "--broker", SECRET_BROKER]) == 0
    printed = capsys.readouterr()
    words = shlex.split(printed.out)
    assert words[:3] == ["ASGI_WS_RATE_LIMIT=0.0", "ASGI_WS_BROKER=redis://:***@127.0.0.1:6379/0", sys.executable]
    assert "secret" not in printed.out
    assert "the broker's password shows as ***" in printed.err
    # A shell reads the words before the program as assignments: each value is quoted apart from its name.
    assignments = printed.out.partition(shlex.quote(sys.executable))[0]
    shell = subprocess.run(["sh", "-c", f"{assignments} env"], env={}, capture_output=True, text=True, check=True)
    assert "ASGI_WS_BROKER=redis://:***@127.0.0.1:6379/0" in shell.stdout.splitlines()
    assert "ASGI_WS_RATE_LIMIT=0.0" in shell.stdout.splitlines()


def test_print_command_shows_what_the_environment_sets_even_at_its_default(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The shell that runs the printed line by hand would pass its own 5 on: the line sets 100 itself.
    monkeypatch.setenv("ASGI_WS_RATE_LIMIT", "5")
    words = printed_command(capsys, "--rate-limit", "100")
    assert words[0] == "ASGI_WS_RATE_LIMIT=100.0"
    assert words[1] == sys.executable


def test_the_exec_note_is_the_printed_command(capsys: pytest.CaptureFixture[str], no_exec: Execs) -> None:
    flags = ["--idle-timeout", "30", "--broker", SECRET_BROKER, "--port", "8123"]
    assert main(["serve", "--print-command", *flags]) == 0
    printed = capsys.readouterr().out.strip()
    assert main(["serve", *flags]) == 0
    assert f"asgi-ws: exec {printed}\n" in capsys.readouterr().err
    [(path, argv, env)] = no_exec
    assert [path, *argv[1:]] == shlex.split(printed)[2:]  # the server gets the argv shown ...
    assert env["ASGI_WS_BROKER"] == SECRET_BROKER  # ... and the password that the line hides
    assert env["ASGI_WS_IDLE_TIMEOUT"] == "30.0"


@pytest.mark.parametrize(
    ("host", "urls"),
    [
        ("127.0.0.1", "http://127.0.0.1:8000/ (the demo page) and ws://127.0.0.1:8000/ws with uvicorn"),
        ("::1", "http://[::1]:8000/ (the demo page) and ws://[::1]:8000/ws with uvicorn"),
    ],
)
def test_the_startup_line_names_the_demo_page(
    capsys: pytest.CaptureFixture[str], no_exec: Execs, host: str, urls: str
) -> None:
    assert main(["serve", "--host", host]) == 0
    assert f"asgi-ws: serving {urls}, broker memory://\n" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "workers", "note"),
    [
        ("hypercorn", "--workers 0", None),  # serves in the started process
        ("anycorn", "--workers 0", None),
        ("uvicorn", "--workers 1", "--workers 0 is --workers 1 under uvicorn, which has no worker count of 0"),
        ("gunicorn", "--workers 1", "--workers 0 is --workers 1 under gunicorn, which has no worker count of 0"),
        ("daphne", None, "--workers 0 is the same as 1 under daphne: it runs a single process"),
    ],
)
def test_workers_0_says_what_it_became(
    capsys: pytest.CaptureFixture[str], name: str, workers: str | None, note: str | None
) -> None:
    assert main(["serve", "--print-command", "--server", name, "--workers", "0"]) == 0
    printed = capsys.readouterr()
    assert (workers is None) == ("--workers" not in printed.out)
    assert workers is None or f" {workers} " in printed.out
    assert printed.err == ("" if note is None else f"asgi-ws: {note}\n")


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
    assert main(["serve", "--server", name, "--broker", SECRET_BROKER]) == 2
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


@pytest.mark.parametrize(("flags", "value"), [((), "false"), (("--deflate",), "true"), (("--no-deflate",), "false")])
def test_deflate_is_off_unless_asked_for(
    capsys: pytest.CaptureFixture[str], flags: tuple[str, ...], value: str
) -> None:
    argv = printed_command(capsys, *flags)
    assert argv[argv.index("--ws-per-message-deflate") + 1] == value


def test_deflate_on_a_server_without_a_switch_says_it_does_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--server", "hypercorn", "--deflate", "--print-command"]) == 0
    printed = capsys.readouterr()
    assert "--deflate does nothing: hypercorn has no permessage-deflate switch" in printed.err
    assert "deflate" not in printed.out


def test_a_server_without_pings_says_so(capsys: pytest.CaptureFixture[str], no_exec: Execs) -> None:
    assert main(["serve", "--server", "gunicorn"]) == 0
    assert "keepalive pings are off: gunicorn 27's asgi worker has no WebSocket ping option" in capsys.readouterr().err


def test_server_keepalive_is_named(capsys: pytest.CaptureFixture[str], no_exec: Execs) -> None:
    assert main(["serve", "--server", "gunicorn", "--server-keepalive"]) == 0
    err = capsys.readouterr().err
    assert "keepalive pings: gunicorn's own default" in err
    assert "keepalive pings are off" not in err


# TLS


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--certfile", "cert.pem"], "--certfile and --keyfile go together"),
        (["--keyfile", "key.pem"], "--certfile and --keyfile go together"),
        (["--certfile", "/no/such/cert.pem", "--keyfile", "/no/such/key.pem"], "--certfile /no/such/cert.pem: no such"),
    ],
)
def test_tls_needs_two_files_that_exist(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    assert main(["serve", *argv]) == 2
    assert message in capsys.readouterr().err


def test_tls_files_reach_the_server_as_absolute_paths_and_the_urls_say_https(
    capsys: pytest.CaptureFixture[str], no_exec: Execs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cert.pem").write_text("certificate")
    (tmp_path / "key.pem").write_text("key")
    monkeypatch.chdir(tmp_path)
    assert main(["serve", "--server", "hypercorn", "--certfile", "cert.pem", "--keyfile", "key.pem"]) == 0
    ((_, argv, _),) = no_exec
    assert argv[argv.index("--certfile") + 1] == str(tmp_path / "cert.pem")
    assert argv[argv.index("--keyfile") + 1] == str(tmp_path / "key.pem")
    assert (
        "asgi-ws: serving https://127.0.0.1:8000/ (the demo page) and wss://127.0.0.1:8000/ws"
        in capsys.readouterr().err
    )


# asgi-ws token (contract §10)

TOKEN_SECRET = "a-cli-test-secret-of-at-least-32-bytes"


def test_token_mints_what_the_app_accepts_for_its_rooms(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASGI_WS_TOKEN_SECRET", TOKEN_SECRET)
    assert main(["token", "--sub", "alice", "--rooms", "team-*, lobby", "--ttl", "60"]) == 0
    raw = capsys.readouterr().out.strip()
    grant = check_token(raw, TOKEN_SECRET, "team-red")
    assert isinstance(grant, Grant)
    assert (grant.subject, grant.rooms) == ("alice", ("team-*", "lobby"))
    assert 0 < grant.expires - time.time() <= 60
    assert check_token(raw, TOKEN_SECRET, "kitchen") == close_codes.TOKEN_WRONG_ROOM


def test_token_without_the_secret_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "--sub", "alice", "--rooms", "lobby"]) == 2
    assert capsys.readouterr().err == (
        "asgi-ws: error: ASGI_WS_TOKEN_SECRET is not set: the token is signed with the secret the app checks it with\n"
    )


def test_token_with_no_rooms_says_so(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASGI_WS_TOKEN_SECRET", TOKEN_SECRET)
    assert main(["token", "--sub", "alice", "--rooms", " , "]) == 2
    assert capsys.readouterr().err == "asgi-ws: error: --sub and --rooms must not be empty\n"


def test_print_command_never_shows_the_token_secret(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASGI_WS_TOKEN_SECRET", TOKEN_SECRET)
    assert main(["serve", "--print-command"]) == 0
    out, err = capsys.readouterr()
    assert TOKEN_SECRET not in out + err
    assert "ASGI_WS_TOKEN_SECRET='***'" in out
    assert "ASGI_WS_TOKEN_SECRET shows as ***" in err
